"""What `core.serve.limits.RequestLimits` costs a request: the same upload of a sample photo
through a FastAPI app with and without it, in process (httpx's ASGI transport, no sockets,
no model), alternating rounds.
Usage: python -m bench.bench_request_limits [REQUESTS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, File, UploadFile

from core.serve.limits import RequestLimits

PHOTO = Path(__file__).resolve().parents[1] / "resources" / "sample" / "astronaut.jpg"


def make(limited: bool) -> FastAPI:
    app = FastAPI()

    @app.post("/up")
    async def up(file: UploadFile = File(...)) -> dict[str, Any]:
        return {"n": len(await file.read())}

    if limited:
        app.add_middleware(RequestLimits, max_body=20 * 2**20 + 65536, limit_words="the limit is 20 MB")
    return app


async def per_request_ms(app: FastAPI, count: int, photo: bytes) -> float:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        start = time.perf_counter()
        for _ in range(count):
            answer = await client.post("/up", files={"file": ("a.jpg", photo, "image/jpeg")})
            assert answer.status_code == 200
        return (time.perf_counter() - start) / count * 1e3


def main(count: int = 400, rounds: int = 3) -> None:
    photo = PHOTO.read_bytes()
    for round_ in range(rounds):
        without = asyncio.run(per_request_ms(make(False), count, photo))
        with_limits = asyncio.run(per_request_ms(make(True), count, photo))
        print(f"round {round_}: {without:.2f} ms a request without RequestLimits, {with_limits:.2f} ms with "
              f"({len(photo):,}-byte photo, {count} requests)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
