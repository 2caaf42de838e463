"""Load on `tagline serve`: N concurrent clients on localhost for a bounded time, batched
across clients against one request per forward pass, side by side in one run.

Reports requests/s, p50 and p99 latency, errors, the batch sizes the server formed, and the
server's RSS before and after. The server runs in this process (uvicorn on a thread) so its
RSS is this process's; the clients are threads sending real HTTP through httpx.
The server is configured as `tagline serve` runs it (core.serve.limits: the body limit, the Host
check, the header timeout, the connection limit), so the figures include what the limits cost.
Usage: python -m bench.bench_serve [CLIENTS] [SECONDS] [REQUESTS]  (REQUESTS: stop each mode after
that many, whichever comes first)
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

from core.serve.app import create_app
from core.serve.batching import Batcher
from core.serve.engine import Engine

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "sample"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load(url: str, clients: int, seconds: float, requests: int | None = None) -> tuple[int, int, list[float]]:
    import httpx

    photos = [(p.name, p.read_bytes()) for p in sorted(SAMPLE.glob("*.jpg"))]
    latencies: list[float] = []
    errors = [0]
    started = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=60) as http:
            turn = index
            while time.monotonic() < stop:
                with lock:
                    if requests is not None and started[0] >= requests:
                        return
                    started[0] += 1
                name, data = photos[turn % len(photos)]
                turn += 1
                start = time.perf_counter()
                answer = http.post(f"{url}/v1/classify", files={"file": (name, data, "image/jpeg")},
                                   data={"caption": "a photo"} if turn % 2 else {})
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    errors[0] += answer.status_code != 200

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), errors[0], latencies


def main(clients: int = 8, seconds: float = 20.0, requests: int | None = None) -> None:
    import psutil
    import uvicorn
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    from core.serve.app import CONNECTION_LIMIT
    from core.serve.limits import header_timeout_protocol

    process = psutil.Process()
    rss_start = process.memory_info().rss
    engine = Engine(prefer_gpu=False, with_captioner=False)
    port = free_port()
    protocol = header_timeout_protocol(import_from_string(HTTP_PROTOCOLS["auto"]))
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning",
                                           http=protocol, timeout_keep_alive=5, limit_concurrency=CONNECTION_LIMIT))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    rss_loaded = process.memory_info().rss
    print(f"server {url}: model {engine.version} on {engine.provider}; RSS {rss_start / 2**20:.0f} MB before the "
          f"models, {rss_loaded / 2**20:.0f} MB loaded; {clients} clients, {seconds:g} s per mode")
    for mode, max_batch in (("batched (up to 16)", 16), ("one by one", 1)):
        engine.classify_batches.close()
        engine.classify_batches = Batcher(engine.classify_many, max_batch)
        load(url, clients, 2.0)  # warm-up
        engine.classify_batches.batches.clear()
        began = time.monotonic()
        count, errors, latencies = load(url, clients, seconds, requests)
        took = time.monotonic() - began
        ms = np.array(latencies) * 1000
        sizes = engine.classify_batches.batches
        print(f"{mode:<20} {count} requests in {took:.1f} s: {count / took:6.1f} requests/s, p50 {np.percentile(ms, 50):6.0f} ms, "
              f"p99 {np.percentile(ms, 99):6.0f} ms, {errors} errors, mean batch {np.mean(sizes):.1f} "
              f"(largest {max(sizes)}), RSS {process.memory_info().rss / 2**20:.0f} MB")
    server.should_exit = True
    engine.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8, float(sys.argv[2]) if len(sys.argv) > 2 else 20.0,
         int(sys.argv[3]) if len(sys.argv) > 3 else None)
