"""The HTTP face: endpoints over an `Engine`, bad input answered with a 4xx and a clear JSON
message, never a stack trace; optional bearer token; localhost unless told otherwise."""

from __future__ import annotations

import asyncio
import hmac
import logging
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from core.errors import ImageDecodeError
from core.media.images import decode_bytes
from core.serve.engine import ClassifyItem, Engine

log = logging.getLogger(__name__)
MAX_UPLOAD_MB = 20.0
MAX_CAPTION_CHARS = 2000
PUBLIC = ("/", "/docs", "/openapi.json", "/favicon.ico")


def web_page() -> Path:
    import core

    return Path(str(resources.files(core))).parent / "resources" / "web" / "index.html"


def create_app(engine: Engine, token: str | None = None, max_upload_mb: float = MAX_UPLOAD_MB) -> FastAPI:
    limit = int(max_upload_mb * 1024 * 1024)
    app = FastAPI(title="Tagline", version=engine.version,
                  description="Labels (and captions) for photos, from the picture and its caption together.")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if token and request.url.path not in PUBLIC:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"error": "missing or wrong token: send Authorization: Bearer TOKEN"}, 401)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 65536:
            return JSONResponse({"error": f"upload too large: the limit is {max_upload_mb:g} MB"}, 413)
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

    return app


def serve(model: Path | None, captioner: Path | None, host: str, port: int, token: str | None,
          max_upload_mb: float, max_batch: int, prefer_gpu: bool) -> None:
    import uvicorn

    engine = Engine(model, captioner, prefer_gpu=prefer_gpu, max_batch=max_batch)
    try:
        uvicorn.run(create_app(engine, token, max_upload_mb), host=host, port=port, log_level="warning")
    finally:
        engine.close()
