"""Decode ahead of the model: a small thread pool works a few batches in front of the consumer.

Shared by the embedding pipeline (classify, train) and the caption job, so the encoder never
waits on the disk and a cancel drops the queued work at once.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from core.progress import CancelToken

PREFETCH_BATCHES = 3
MAX_DECODE_WORKERS = 4


def decode_workers() -> int:
    """Leave one core to the encoder: on two cores a second decode thread fought the encoder's
    threads and made classify 8% slower (docs/benchmarks.md); more than four never helped."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform (macOS, Windows)
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DECODE_WORKERS, cores - 1))


R = TypeVar("R")
T = TypeVar("T")


def prefetched(
    batches: Sequence[Sequence[R]],
    decode: Callable[[R], T],
    needs_decode: Callable[[R], bool],
    cancel: CancelToken | None = None,
    thread_name: str = "tagline-decode",
    workers: int | None = None,
) -> Iterator[list[tuple[R, Future[T] | None]]]:
    """Yield each batch as (item, future) pairs; the future is None where no decode is needed."""
    pool_size = workers if workers is not None else decode_workers()
    with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=thread_name) as pool:

        def submit(batch: Sequence[R]) -> list[tuple[R, Future[T] | None]]:
            return [(item, pool.submit(decode, item) if needs_decode(item) else None) for item in batch]

        pending = deque(submit(batch) for batch in batches[:PREFETCH_BATCHES])
        for index in range(len(batches)):
            if cancel is not None and cancel.cancelled:
                for queued in pending:
                    for _, future in queued:
                        if future is not None:
                            future.cancel()
                cancel.raise_if_cancelled()
            current = pending.popleft()
            if index + PREFETCH_BATCHES < len(batches):
                pending.append(submit(batches[index + PREFETCH_BATCHES]))
            yield current
