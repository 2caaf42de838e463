"""The HTTP face: endpoints over an `Engine`, bad input answered with a 4xx and a clear JSON
message, never a stack trace; optional bearer token; localhost unless told otherwise; what one
request may cost bounded in `core.serve.limits`. No /docs page (FastAPI's loads Swagger UI from
a CDN, and the app is offline): the schema is at /openapi.json."""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import socket
from collections.abc import Callable, Collection
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from core.errors import ImageDecodeError, TaglineError
from core.media.images import decode_bytes
from core.serve.engine import ClassifyItem, Engine
from core.serve.limits import BODY_TIMEOUT_S, LOCAL_NAMES, RequestLimits

log = logging.getLogger(__name__)
MAX_UPLOAD_MB = 20.0
MAX_CAPTION_CHARS = 2000
PUBLIC = ("/", "/openapi.json", "/favicon.ico")
MAX_FORM_FIELD = 64 * 1024  # the caption field and multipart headers: room beyond the photo's limit


def web_page() -> Path:
    import core

    return Path(str(resources.files(core))).parent / "resources" / "web" / "index.html"


def create_app(engine: Engine, token: str | None = None, max_upload_mb: float = MAX_UPLOAD_MB,
               hosts: Collection[str] | None = LOCAL_NAMES, body_timeout: float = BODY_TIMEOUT_S) -> FastAPI:
    """`hosts`: the Host names answered without a token, beside any IP address (None: every name);
    with a token, any.
    `body_timeout`: the longest wait for the next piece of an upload."""
    limit = int(max_upload_mb * 1024 * 1024)
    app = FastAPI(title="Tagline", version=engine.version, docs_url=None, redoc_url=None,
                  description="Labels (and captions) for photos, from the picture and its caption together.",
                  **_form_limits())

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if token and request.url.path not in PUBLIC:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"error": "missing or wrong token: send Authorization: Bearer TOKEN"}, 401)
        try:
            return await call_next(request)
        except Exception:  # a bug: logged here, never shown to the client; the server keeps serving
            log.exception("request %s failed", request.url.path)
            return JSONResponse({"error": "internal error; the request was not processed"}, 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()]
        return JSONResponse({"error": "; ".join(problems) or "invalid request"}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code)

    async def read_image(file: UploadFile) -> Any:
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"upload too large: the limit is {max_upload_mb:g} MB")
        if not data:
            raise HTTPException(422, "the file is empty")
        try:
            return await run_in_threadpool(decode_bytes, data, file.filename or "upload", 2 * engine.encoders.image_spec.input_size)
        except ImageDecodeError as exc:
            raise HTTPException(422, f"{file.filename or 'the upload'}: {exc.reason}") from exc

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(web_page(), media_type="text/html")

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": engine.version, "provider": engine.provider,
                "captioner": getattr(engine.captioner, "name", None)}

    @app.get("/v1/labels")
    async def labels() -> dict[str, Any]:
        return {"labels": engine.classifier.labels, "model": engine.version}

    @app.post("/v1/classify")
    async def classify(file: UploadFile = File(...), caption: str | None = Form(None)) -> dict[str, Any]:
        image = await read_image(file)
        text = (caption or "").strip()[:MAX_CAPTION_CHARS] or None
        result = await asyncio.wrap_future(engine.classify_batches.submit(ClassifyItem(image, text)))
        return {"labels": result.labels, "probabilities": result.probabilities, "guessed": result.guessed,
                "caption": text, "model": engine.version}

    @app.post("/v1/caption")
    async def caption(file: UploadFile = File(...)) -> dict[str, Any]:
        if engine.captioner is None:
            raise HTTPException(503, "this server was started without a captioner")
        image = await read_image(file)
        return {"caption": await asyncio.wrap_future(engine.caption_batches.submit(image))}

    app.add_middleware(RequestLimits, max_body=limit + MAX_FORM_FIELD, limit_words=f"the limit is {max_upload_mb:g} MB",
                       hosts=None if token else hosts, body_timeout=body_timeout)
    return app


def _form_limits() -> dict[str, Any]:
    """At most one file and a few short fields a form, where FastAPI can be told (0.13x on);
    the body's limit bounds them anyway."""
    import inspect

    if "form_limits" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"form_limits": {"max_files": 1, "max_fields": 4, "max_part_size": MAX_FORM_FIELD}}


def serve(model: Path | None, captioner: Path | None, host: str, port: int, token: str | None,
          max_upload_mb: float, max_batch: int, prefer_gpu: bool, hosts: Collection[str] | None = LOCAL_NAMES,
          announce: Callable[[str], None] | None = None) -> None:
    """Bind first (a port in use is a TaglineError naming it, before the models load), then serve."""
    import uvicorn
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    from core.serve.limits import header_timeout_protocol

    listener = bind(host, port)
    try:
        engine = Engine(model, captioner, prefer_gpu=prefer_gpu, max_batch=max_batch)
        try:
            protocol = header_timeout_protocol(import_from_string(HTTP_PROTOCOLS["auto"]))
            config = uvicorn.Config(create_app(engine, token, max_upload_mb, hosts), log_level="warning", http=protocol,
                                    timeout_keep_alive=5, limit_concurrency=CONNECTION_LIMIT)
            if announce is not None:
                announce(f"serving on {url(host, port)}/ (the API's schema at /openapi.json); Ctrl-C stops")
            uvicorn.Server(config).run(sockets=[listener])
        finally:
            engine.close()
    finally:
        listener.close()


CONNECTION_LIMIT = 256  # connections and requests at once; more are answered 503 at once


def url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port`, or a TaglineError that names the port and the fix."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (OSError, UnicodeError) as exc:
        raise TaglineError(f"--host {host!r} is not an address of this machine ({exc})") from exc
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not SO_REUSEPORT: a second server must fail
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise TaglineError(f"port {port} on {host} is already in use by another program: stop it, or choose "
                               f"another port with --port") from exc
        if exc.errno == errno.EACCES:
            raise TaglineError(f"port {port} needs administrator rights on this machine: choose one from 1024 up "
                               f"with --port") from exc
        raise TaglineError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from exc
    listener.set_inheritable(True)
    return listener
