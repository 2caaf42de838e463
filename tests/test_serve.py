"""`tagline serve`: endpoints, bad input answered with a 4xx and a message, the token, batching
across clients, and the web page in a real browser (Debian's chromium, headless)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from core.serve.app import create_app  # noqa: E402
from core.serve.batching import Batcher  # noqa: E402
from core.serve.engine import Engine  # noqa: E402
from tests import badfiles  # noqa: E402
from tests.conftest import SAMPLE  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    served = Engine(prefer_gpu=False)
    yield served
    served.close()


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(engine), base_url="http://localhost")


def photo(name: str) -> tuple[str, bytes, str]:
    return (name, (SAMPLE / name).read_bytes(), "image/jpeg")


def test_health_labels_classify_and_caption(client: TestClient, engine: Engine) -> None:
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["model"] == engine.version and health["provider"]
    assert client.get("/v1/labels").json()["labels"] == engine.classifier.labels
    answer = client.post("/v1/classify", files={"file": photo("chelsea.jpg")},
                         data={"caption": "A tabby cat lying on a rug"})
    body = answer.json()
    assert answer.status_code == 200 and "cat" in body["labels"] and body["probabilities"]["cat"] > 0.5
    assert body["caption"] == "A tabby cat lying on a rug" and body["model"] == engine.version
    alone = client.post("/v1/classify", files={"file": photo("chelsea.jpg")}).json()
    assert "cat" in alone["labels"] and alone["caption"] is None
    described = client.post("/v1/caption", files={"file": photo("chelsea.jpg")}).json()
    assert isinstance(described["caption"], str) and len(described["caption"].split()) >= 3
    assert "Tagline" in client.get("/").text and client.get("/openapi.json").json()["info"]["title"] == "Tagline"
    assert client.get("/docs").status_code == 404  # FastAPI's page loads Swagger UI from a CDN: not served


def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(engine: Engine, tmp_path: Path) -> None:
    client = TestClient(create_app(engine, max_upload_mb=0.05), base_url="http://localhost")
    truncated = (SAMPLE / "rocket.jpg").read_bytes()[:3000]
    bomb = badfiles.bomb_png(tmp_path / "bomb.png").read_bytes()
    cases = [
        ({"file": ("notes.jpg", b"this is text, not a photo", "image/jpeg")}, 422, "not an image"),
        ({"file": ("half.jpg", truncated, "image/jpeg")}, 422, "broken or truncated"),
        ({"file": ("bomb.png", bomb, "image/png")}, 422, "decompression bomb"),
        ({"file": ("empty.jpg", b"", "image/jpeg")}, 422, "empty"),
        ({"file": ("big.jpg", b"\xff" * 80_000, "image/jpeg")}, 413, "too large"),
        ({}, 422, "file"),
    ]
    for files, status, words in cases:
        answer = client.post("/v1/classify", files=files) if files else client.post("/v1/classify", data={"caption": "x"})
        assert answer.status_code == status, (words, answer.text)
        assert words in answer.json()["error"] and "Traceback" not in answer.text
    assert client.get("/v1/health").json()["status"] == "ok"
    assert client.post("/v1/classify", files={"file": photo("rocket.jpg")}).status_code == 200


def test_a_token_is_required_when_set(engine: Engine) -> None:
    client = TestClient(create_app(engine, token="s3cret"))
    assert client.get("/v1/health").status_code == 401
    assert client.get("/v1/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "token" in client.post("/v1/classify", files={"file": photo("rocket.jpg")}).json()["error"]
    assert client.get("/v1/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/").status_code == 200  # the page itself asks for the token


def test_requests_arriving_together_share_a_batch() -> None:
    seen: list[int] = []

    def run(items: object) -> list[int]:
        seen.append(len(items))  # type: ignore[arg-type]
        time.sleep(0.05)
        return [2 * i for i in items]  # type: ignore[attr-defined]

    batcher: Batcher[int, int] = Batcher(run, max_batch=8, window_s=0.02)
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: batcher.submit(i).result(5), range(12)))
    batcher.close()
    assert results == [2 * i for i in range(12)] and max(seen) > 1 and sum(seen) == 12


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(engine: Engine) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_concurrent_clients_share_forward_passes(live_server: str, engine: Engine) -> None:
    import httpx

    before = len(engine.classify_batches.batches)
    data = (SAMPLE / "astronaut.jpg").read_bytes()

    def one(_: int) -> int:
        return httpx.post(f"{live_server}/v1/classify", files={"file": ("a.jpg", data, "image/jpeg")}, timeout=60).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(16)))
    assert codes == [200] * 16
    sizes = engine.classify_batches.batches[before:]
    assert sum(sizes) == 16 and max(sizes) > 1  # some uploads rode in one pass


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_web_page_labels_photos_in_a_real_browser(live_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(live_server + "/")
        page.wait_for_selector("#meta:has-text('model')")
        page.set_input_files("#files", [str(SAMPLE / "chelsea.jpg"), str(SAMPLE / "astronaut.jpg")])
        page.wait_for_function("document.querySelectorAll('.card .caption').length == 2 && "
                               "[...document.querySelectorAll('.card .caption')].every(c => c.textContent.length > 0)",
                               timeout=60_000)
        cards = {page.locator(".card .name").nth(i).inner_text(): page.locator(".card .chips").nth(i).inner_text()
                 for i in range(2)}
        assert "cat" in cards["chelsea.jpg"] and "person" in cards["astronaut.jpg"]
        assert page.locator(".card .bar").count() == 10  # five confidence bars each
        assert page.locator("#tokenbox").is_hidden()  # this server has no token: nothing to ask
        broken = tmp_path / "notes.jpg"
        broken.write_text("not a photo", encoding="utf-8")
        page.set_input_files("#files", [str(broken)])
        page.wait_for_selector(".card .failed", timeout=30_000)
        failed = page.locator(".card").first
        assert "Not labelled" in failed.locator(".failed").inner_text() and failed.locator(".chips").count() == 0
        page.screenshot(path=str(tmp_path / "web-page.png"), full_page=True)
        browser.close()
    assert (tmp_path / "web-page.png").stat().st_size > 10_000
