"""Load on `tagline serve`: N concurrent clients on localhost for a bounded time, batched
across clients against one request per forward pass, side by side in one run.

Reports requests/s, p50 and p99 latency, errors, the batch sizes the server formed, and the
server's RSS before and after. The server runs in this process (uvicorn on a thread) so its
RSS is this process's; the clients are threads sending real HTTP through httpx.
Usage: python -m bench.bench_serve [CLIENTS] [SECONDS]
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


def load(url: str, clients: int, seconds: float) -> tuple[int, int, list[float]]:
    import httpx

    photos = [(p.name, p.read_bytes()) for p in sorted(SAMPLE.glob("*.jpg"))]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=60) as http:
            turn = index
            while time.monotonic() < stop:
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


def main(clients: int = 8, seconds: float = 20.0) -> None:
    import psutil
    import uvicorn

    process = psutil.Process()
    rss_start = process.memory_info().rss
    engine = Engine(prefer_gpu=False, with_captioner=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
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
        count, errors, latencies = load(url, clients, seconds)
        ms = np.array(latencies) * 1000
        sizes = engine.classify_batches.batches
        print(f"{mode:<20} {count / seconds:6.1f} requests/s, p50 {np.percentile(ms, 50):6.0f} ms, "
              f"p99 {np.percentile(ms, 99):6.0f} ms, {errors} errors, mean batch {np.mean(sizes):.1f} "
              f"(largest {max(sizes)}), RSS {process.memory_info().rss / 2**20:.0f} MB")
    server.should_exit = True
    engine.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8, float(sys.argv[2]) if len(sys.argv) > 2 else 20.0)
