"""Requests from many clients share one forward pass: a short queue in front of the encoders.

One worker thread takes the first waiting item, gathers whatever else arrives within
`window_s` (up to `max_batch`), runs the batch and hands each caller its own result. A
caller waits on a `concurrent.futures.Future`, which an async endpoint awaits without
blocking the event loop.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    def __init__(self, run: Callable[[Sequence[In]], Sequence[Out]], max_batch: int = 16, window_s: float = 0.005) -> None:
        self._run = run
        self.max_batch = max(1, max_batch)
        self.window_s = window_s
        self._queue: queue.Queue[tuple[In, Future[Out]] | None] = queue.Queue()
        self.batches: list[int] = []  # sizes of the batches run (the load benchmark reads them)
        self._thread = threading.Thread(target=self._loop, name="tagline-batcher", daemon=True)
        self._thread.start()

    def submit(self, item: In) -> Future[Out]:
        future: Future[Out] = Future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._serve(batch)

    def _serve(self, batch: list[tuple[In, Future[Out]]]) -> None:
        self.batches.append(len(batch))
        try:
            results: Sequence[Any] = self._run([item for item, _ in batch])
        except BaseException as exc:  # every caller of the batch learns it failed
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)
