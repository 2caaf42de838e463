"""Running out of GPU memory is a setting to adapt, not a crash.

A batch that does not fit is split in halves (and the smaller size is remembered for the
batches that follow); when even one item does not fit, the work moves to the CPU once and
carries on. Both onnxruntime and torch report OOM as plain exceptions with recognisable text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from core.errors import ModelError

log = logging.getLogger(__name__)

_MARKERS = (
    "out of memory",  # torch.cuda.OutOfMemoryError, CUDA's own text
    "failed to allocate memory",  # onnxruntime's BFC arena
    "cudnn_status_alloc_failed",
    "cublas_status_alloc_failed",
    "cudaerrormemoryallocation",
)

S = TypeVar("S", bound=Sequence[object] | np.ndarray)


def is_out_of_memory(exc: BaseException) -> bool:
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _MARKERS)


def free_gpu_cache() -> None:
    """Give torch's cached blocks back before retrying smaller (no-op without torch or CUDA)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class OomGuard:
    """Calls `run` on a batch, in smaller chunks after an OOM, on the CPU as a last resort."""

    def __init__(self, to_cpu: Callable[[], bool] | None = None) -> None:
        self.to_cpu = to_cpu  # switches the work to the CPU; False when it already runs there
        self.chunk: int | None = None  # the largest chunk known to fit, once one did not
        self.on_cpu = False

    def __call__(self, run: Callable[[S], np.ndarray], items: S) -> np.ndarray:
        total = len(items)
        while True:
            size = min(total, self.chunk or total) or 1
            try:
                if size >= total:
                    return run(items)
                return np.concatenate([run(items[i : i + size]) for i in range(0, total, size)])  # type: ignore[arg-type]
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                free_gpu_cache()
                if size > 1:
                    self.chunk = size // 2
                    log.warning("out of memory with a batch of %d; retrying with %d", size, self.chunk)
                    continue
                if self.on_cpu or self.to_cpu is None or not self.to_cpu():
                    raise ModelError(f"out of memory even for one item at a time: {exc}") from exc
                log.warning("out of GPU memory even for one item; continuing on the CPU")
                self.on_cpu, self.chunk = True, None
