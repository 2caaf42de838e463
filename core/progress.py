"""Progress events and cancel tokens shared by every long job (CLI, tests and GUI alike)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.errors import Cancelled

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One step of a long job. `total` is 0 when unknown."""

    stage: str
    done: int
    total: int
    failed: int = 0
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class CancelToken:
    """Set from any thread; jobs check it between batches and stop cleanly."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


Job = Generator[Progress, None, T]


def run_to_end(job: Generator[Progress, None, T]) -> T:
    """Drive a job generator, ignoring progress, and return its result."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
