"""The server's edges, against a real uvicorn on localhost: uploads counted on the bytes that
arrive (chunked, no Content-Length), stalled uploads and silent connections timed out, the
Host header checked without a token, no CDN page, a port in use, the token from a file or
the environment."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from core.cli import EXIT_ERROR, build_parser, main  # noqa: E402
from core.errors import TaglineError  # noqa: E402
from core.serve.app import create_app  # noqa: E402
from core.serve.engine import Engine  # noqa: E402
from core.serve.limits import header_timeout_protocol, host_name  # noqa: E402
from tests.conftest import SAMPLE  # noqa: E402

LIMIT_MB = 1.0


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    served = Engine(prefer_gpu=False, with_captioner=False)
    yield served
    served.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[int]:
    """uvicorn as `tagline serve` runs it: 1 MB uploads, 2 s for each piece of a body, 1 s to start a request."""
    import uvicorn
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    port = _free_port()
    protocol = header_timeout_protocol(import_from_string(HTTP_PROTOCOLS["auto"]), timeout=1.0)
    app = create_app(engine, max_upload_mb=LIMIT_MB, body_timeout=2.0)
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=protocol))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    running.should_exit = True
    thread.join(10)


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def _read_reply(conn: socket.socket, seconds: float = 10.0) -> bytes:
    conn.settimeout(seconds)
    reply = b""
    try:
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return reply


def test_a_chunked_upload_past_the_limit_is_refused_having_read_little_more(server: int) -> None:
    """200 MB offered without a Content-Length: refused with 413 once 1 MB has arrived; the
    client manages to push only what the socket buffers hold before the server stops reading."""
    conn = socket.create_connection(("127.0.0.1", server))
    boundary = "b0undary"
    conn.sendall((f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{server}\r\nTransfer-Encoding: chunked\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode())
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode()
    conn.sendall(b"%x\r\n%s\r\n" % (len(head), head))
    piece = b"\xff" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    sent = 0
    conn.settimeout(3)
    started = time.monotonic()
    try:
        while sent < 200 * 2**20:
            conn.sendall(chunk)
            sent += len(piece)
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass
    reply = _read_reply(conn)
    conn.close()
    assert _status(reply) == 413 and b"upload too large: the limit is 1 MB" in reply, reply[:300]
    assert sent < 40 * 2**20, f"the client pushed {sent / 2**20:.0f} MB"  # socket buffers, not 200 MB
    assert time.monotonic() - started < 30


def test_a_form_refused_early_closes_the_connection_instead_of_reading_the_rest(server: int) -> None:
    """300 fields of 1 MB, chunked: refused at the first field (over 64 KB, or past the body
    limit), and the connection closed, so the other 299 MB are not read (uvicorn drained them)."""
    conn = socket.create_connection(("127.0.0.1", server))
    conn.sendall((f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{server}\r\nTransfer-Encoding: chunked\r\n"
                  f"Content-Type: multipart/form-data; boundary=B\r\n\r\n").encode())
    value = b"x" * 2**20
    sent = 0
    conn.settimeout(3)
    try:
        for i in range(300):
            part = b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n' % i + value + b"\r\n"
            conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            sent += len(part)
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass
    reply = _read_reply(conn)
    conn.close()
    assert _status(reply) in (400, 413) and b"connection: close" in reply.lower(), reply[:300]
    assert sent < 40 * 2**20, f"the client pushed {sent / 2**20:.0f} MB"


def test_many_form_fields_are_bounded_by_the_body_limit(server: int) -> None:
    import httpx

    fields = {f"f{i}": "x" * 100_000 for i in range(30)}  # 3 MB of fields beside a real photo
    answer = httpx.post(f"http://127.0.0.1:{server}/v1/classify", data=fields,
                        files={"file": ("rocket.jpg", (SAMPLE / "rocket.jpg").read_bytes(), "image/jpeg")}, timeout=30)
    assert answer.status_code == 413 and "too large" in answer.json()["error"]
    ok = httpx.post(f"http://127.0.0.1:{server}/v1/classify", data={"caption": "a rocket"},
                    files={"file": ("rocket.jpg", (SAMPLE / "rocket.jpg").read_bytes(), "image/jpeg")}, timeout=60)
    assert ok.status_code == 200 and ok.json()["caption"] == "a rocket"


def test_a_stalled_upload_gets_408_and_a_silent_connection_is_closed(server: int) -> None:
    conn = socket.create_connection(("127.0.0.1", server))
    conn.sendall(f"POST /v1/classify HTTP/1.1\r\nHost: localhost:{server}\r\nContent-Length: 5000\r\n"
                 f"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n".encode())
    started = time.monotonic()
    reply = _read_reply(conn, 15)
    conn.close()
    assert _status(reply) == 408 and b"stalled" in reply and time.monotonic() - started < 10
    for opening in (b"", b"GET /v1/health HTTP/1.1\r\nHo"):  # nothing at all; half a header line
        conn = socket.create_connection(("127.0.0.1", server))
        conn.sendall(opening)
        conn.settimeout(10)
        started = time.monotonic()
        assert conn.recv(100) == b""  # closed by the server
        assert time.monotonic() - started < 5
        conn.close()


def test_the_host_header_is_checked_without_a_token(engine: Engine) -> None:
    assert TestClient(create_app(engine), base_url="http://localhost:8765").get("/v1/health").status_code == 200
    assert TestClient(create_app(engine), base_url="http://127.0.0.1:8765").get("/v1/health").status_code == 200
    assert TestClient(create_app(engine), base_url="http://[::1]:8765").get("/v1/health").status_code == 200
    rebound = TestClient(create_app(engine), base_url="http://attacker.example:8765")
    answer = rebound.get("/v1/labels")
    assert answer.status_code == 421 and "start it with a token" in answer.json()["error"]
    assert rebound.get("/").status_code == 421
    for address in ("http://192.168.1.9:8765", "http://[fe80::1]:8765", "http://10.0.0.1"):  # cannot be rebound
        assert TestClient(create_app(engine), base_url=address).get("/v1/health").status_code == 200
    named = TestClient(create_app(engine, hosts={"localhost", "photos.lan"}), base_url="http://photos.lan")
    assert named.get("/v1/health").status_code == 200
    with_token = TestClient(create_app(engine, token="t0ken"), base_url="http://attacker.example")
    assert with_token.get("/v1/health", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    assert [host_name(h) for h in ("LocalHost:80", "[::1]:8765", "::1", "a.b")] == ["localhost", "[::1]", "::1", "a.b"]


def test_no_page_loads_anything_from_another_site(engine: Engine) -> None:
    client = TestClient(create_app(engine), base_url="http://localhost")
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]
    page = client.get("/").text
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_a_port_in_use_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        started = time.monotonic()
        assert main(["serve", "--port", str(port)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err and "serving on" not in err
    assert time.monotonic() - started < 10  # said before any model loads


def test_the_token_comes_from_the_flag_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.cli import _serve_token

    def token(*argv: str) -> str | None:
        return _serve_token(build_parser().parse_args(["serve", *argv]))

    monkeypatch.delenv("TAGLINE_TOKEN", raising=False)
    assert token() is None and token("--token", "abc") == "abc"
    secret = tmp_path / "token"
    secret.write_text("  from-a-file \nsecond line\n")
    secret.chmod(0o600)
    assert token("--token-file", str(secret)) == "from-a-file"
    monkeypatch.setenv("TAGLINE_TOKEN", "from-the-env")
    assert token() == "from-the-env" and token("--token", "flag") == "flag"
    with pytest.raises(TaglineError, match="not both"):
        token("--token", "a", "--token-file", str(secret))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TaglineError, match="the token is empty"):
        token("--token-file", str(tmp_path / "empty"))
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(TaglineError, match="is a pipe"):
        token("--token-file", str(tmp_path / "pipe"))
    assert "TAGLINE_TOKEN" in build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]


def test_the_host_names_answered_follow_host_and_allow_host() -> None:
    from core.cli import _serve_hosts

    def hosts(*argv: str) -> frozenset[str]:
        return _serve_hosts(build_parser().parse_args(["serve", *argv]))

    assert hosts() == {"localhost", "127.0.0.1", "::1", "[::1]"}
    assert hosts("--host", "0.0.0.0") >= {"localhost"} and "attacker.example" not in hosts("--host", "::")
    assert {"192.168.1.5", "photos.lan"} <= hosts("--host", "192.168.1.5", "--allow-host", "Photos.LAN")
    assert "[fe80::1]" in hosts("--host", "fe80::1")


def test_form_fields_and_files_are_counted_and_sized(engine: Engine) -> None:
    import inspect

    from fastapi import FastAPI

    if "form_limits" not in inspect.signature(FastAPI.__init__).parameters:
        pytest.skip("this FastAPI cannot be given form limits; the body limit bounds the fields")
    client = TestClient(create_app(engine), base_url="http://localhost")
    photo = ("rocket.jpg", (SAMPLE / "rocket.jpg").read_bytes(), "image/jpeg")
    cases = [({"data": {f"f{i}": "x" for i in range(10)}, "files": {"file": photo}}, "Too many fields"),
             ({"data": {"caption": "x" * 70_000}, "files": {"file": photo}}, "exceeded maximum size of 64KB"),
             ({"files": [("file", photo), ("file", photo)]}, "Too many files")]
    for request, words in cases:
        answer = client.post("/v1/classify", **request)  # type: ignore[arg-type]
        assert answer.status_code == 400 and words in answer.json()["error"], answer.text


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "2000", "x"])
def test_an_upload_limit_that_is_not_a_size_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--max-upload-mb", value])
    assert stopped.value.code == EXIT_ERROR and "--max-upload-mb" in capsys.readouterr().err
