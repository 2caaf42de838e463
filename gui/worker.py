"""The one place threads start.

Two queues, as in STYLE.md practice 4:
- `JobQueue`: long core generator jobs (sync, classify, train, export) one at a time, each on
  its own `QThread`; model work never competes with itself for the GPU or the two CPU cores.
- `io_pool()`: a small `QThreadPool` for short file work (thumbnail and preview decoding, the
  device probe). `gui/thumbnails.py` submits to it; it starts no thread of its own.

A job is a callable taking a `CancelToken` and returning a core generator job. Its handle's
signals arrive in the GUI thread in this order: `progress`* then exactly one of `succeeded`,
`failed` or `cancelled`, then `finished`. Workers get plain inputs, never widgets or models.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThread, QThreadPool, QTimer, Signal

from core.errors import Cancelled
from core.progress import CancelToken, Progress

log = logging.getLogger(__name__)
_RUNNING: set[QThread] = set()  # job threads not yet joined

JobFactory = Callable[[CancelToken], Generator[Progress, None, Any]]


class JobHandle(QObject):
    """What the GUI holds of a running or queued job: its signals and its cancel button."""

    progress = Signal(object)  # core.progress.Progress
    succeeded = Signal(object)  # the generator's return value
    failed = Signal(object)  # the exception
    cancelled = Signal()
    finished = Signal()  # always last, whatever the outcome

    def __init__(self, name: str, factory: JobFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.factory = factory
        self.token = CancelToken()
        self.outcome: str | None = None  # "succeeded", "failed" or "cancelled" once done
        self.background = False  # gives way to any other job (`JobQueue.submit`)
        self.preempted = False  # cancelled to give way, not by the person: its owner may submit it again

    def cancel(self) -> None:
        """Safe from any thread; the job stops at its next progress step."""
        self.token.cancel()


class _JobThread(QThread):
    """Drives one generator to its end; emits through the handle (queued to the GUI thread)."""

    def __init__(self, handle: JobHandle) -> None:
        super().__init__()
        self.handle = handle
        self.setObjectName(f"tagline-job-{handle.name}")

    def run(self) -> None:
        handle = self.handle
        try:
            job = handle.factory(handle.token)
            while True:
                handle.token.raise_if_cancelled()
                try:
                    step = next(job)
                except StopIteration as stop:
                    handle.outcome = "succeeded"
                    handle.succeeded.emit(stop.value)
                    break
                handle.progress.emit(step)
                if handle.token.cancelled:
                    job.close()  # runs the generator's finally blocks; finished batches are kept
                    raise Cancelled("cancelled")
        except Cancelled:
            handle.outcome = "cancelled"
            handle.cancelled.emit()
        except Exception as exc:  # any failure goes to the GUI as a signal, never kills the app
            log.debug("job %s failed", handle.name, exc_info=True)
            handle.outcome = "failed"
            handle.failed.emit(exc)
        finally:
            handle.finished.emit()


class JobQueue(QObject):
    """Single-slot queue: jobs run one after another, in the order submitted."""

    busy_changed = Signal(bool)
    started = Signal(object)  # JobHandle

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting: deque[JobHandle] = deque()
        self._thread: _JobThread | None = None
        self._start_pending = False

    @property
    def current(self) -> JobHandle | None:
        return self._thread.handle if self._thread is not None else None

    @property
    def busy(self) -> bool:
        return self._thread is not None or bool(self._waiting) or self._start_pending

    def submit(self, name: str, factory: JobFactory, background: bool = False) -> JobHandle:
        """Queue a job; connect to the handle's signals right away (nothing arrives before
        control returns to the event loop).

        A `background` job (a check nobody waits for) gives way: any other job goes ahead of it
        in the queue, and cancels it if it is running, marking it `preempted`."""
        handle = JobHandle(name, factory, self)
        handle.background = background
        if background:
            self._waiting.append(handle)
        else:
            at = next((i for i, queued in enumerate(self._waiting) if queued.background), len(self._waiting))
            self._waiting.insert(at, handle)
            current = self.current
            if current is not None and current.background and not current.token.cancelled:
                current.preempted = True
                current.cancel()
        if self._thread is None and not self._start_pending:
            # Start from the event loop, so a caller connects its slots before the thread can
            # emit anything (a queued signal emitted before a connection is never delivered).
            self._start_pending = True
            QTimer.singleShot(0, self._start_from_loop)
        return handle

    def _start_from_loop(self) -> None:
        self._start_pending = False
        if self._thread is None:
            self._start_next()

    def cancel_all(self) -> None:
        for handle in self._waiting:
            handle.cancel()
        if self._thread is not None:
            self._thread.handle.cancel()

    def wait(self, msecs: int = 30_000) -> bool:
        """Cancel everything and block until the running thread has ended (shutdown, tests)."""
        for handle in self._waiting:
            handle.outcome = "cancelled"
        self._waiting.clear()
        if self._thread is None:
            return True
        thread = self._thread
        thread.handle.cancel()
        ended = thread.wait(msecs)
        if ended:
            _RUNNING.discard(thread)
        return ended

    def _start_next(self) -> None:
        was_busy = self._thread is not None
        self._thread = None
        while self._waiting:
            handle = self._waiting.popleft()
            if handle.token.cancelled:  # cancelled before it started: report it, run nothing
                handle.outcome = "cancelled"
                handle.cancelled.emit()
                handle.finished.emit()
                continue
            thread = _JobThread(handle)
            thread.finished.connect(self._on_thread_finished)
            self._thread = thread
            _RUNNING.add(thread)
            self.started.emit(handle)
            thread.start()
            if not was_busy:
                self.busy_changed.emit(True)
            return
        if was_busy:
            self.busy_changed.emit(False)

    def _on_thread_finished(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.wait()
            _RUNNING.discard(thread)
            thread.deleteLater()
        self._start_next()


_IO_POOL: QThreadPool | None = None


def io_pool() -> QThreadPool:
    """The pool for short file tasks (two threads: the machine may have only two cores)."""
    global _IO_POOL
    if _IO_POOL is None:
        _IO_POOL = QThreadPool()
        _IO_POOL.setMaxThreadCount(2)
        _IO_POOL.setExpiryTimeout(2000)
    return _IO_POOL


def run_io(task: Callable[[], None]) -> None:
    """Run a short callable on the I/O pool; it reports back through signals of its own."""
    io_pool().start(task)


def live_thread_count() -> int:
    """Threads of ours still working (tests assert zero when they end)."""
    pool = _IO_POOL.activeThreadCount() if _IO_POOL is not None else 0
    return pool + sum(1 for thread in _RUNNING if thread.isRunning())
