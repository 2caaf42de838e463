"""The worker adapter: signals arrive in order, cancel stops a job, nothing keeps running."""

from __future__ import annotations

import time

import pytest

from core.errors import TaglineError
from core.progress import Progress
from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)


def counting_job(n, cancel, delay=0.0):
    for i in range(n):
        if delay:
            time.sleep(delay)
        cancel.raise_if_cancelled()
        yield Progress("count", i + 1, n)
    return f"counted {n}"


def failing_job(cancel):
    yield Progress("fail", 0, 1)
    raise TaglineError("the disk is full: free some space")


def record(handle):
    events = []
    handle.progress.connect(lambda p: events.append(("progress", p.done)))
    handle.succeeded.connect(lambda r: events.append(("succeeded", r)))
    handle.failed.connect(lambda e: events.append(("failed", str(e))))
    handle.cancelled.connect(lambda: events.append(("cancelled",)))
    handle.finished.connect(lambda: events.append(("finished",)))
    return events


def test_signals_arrive_in_order(qtbot):
    from gui.worker import JobQueue

    queue = JobQueue()
    handle = queue.submit("count", lambda token: counting_job(5, token))
    events = record(handle)
    with qtbot.waitSignal(handle.finished, timeout=10_000):
        pass
    assert events == [*(("progress", i) for i in range(1, 6)), ("succeeded", "counted 5"), ("finished",)]
    qtbot.waitUntil(lambda: not queue.busy)


def test_failure_becomes_a_signal(qtbot):
    from gui.worker import JobQueue

    queue = JobQueue()
    handle = queue.submit("fail", failing_job)
    events = record(handle)
    with qtbot.waitSignal(handle.finished, timeout=10_000):
        pass
    assert events == [("progress", 0), ("failed", "the disk is full: free some space"), ("finished",)]
    qtbot.waitUntil(lambda: not queue.busy)


def test_cancel_stops_between_steps_and_queue_runs_in_order(qtbot):
    from gui.worker import JobQueue

    queue = JobQueue()
    slow = queue.submit("slow", lambda token: counting_job(1000, token, delay=0.01))
    fast = queue.submit("fast", lambda token: counting_job(2, token))
    slow_events, fast_events = record(slow), record(fast)
    with qtbot.waitSignal(slow.progress, timeout=10_000):
        pass
    assert not fast_events, "the second job must wait for the first (single slot)"
    slow.cancel()
    with qtbot.waitSignal(fast.finished, timeout=10_000):
        pass
    assert slow_events[-2:] == [("cancelled",), ("finished",)]
    assert len([e for e in slow_events if e[0] == "progress"]) < 1000
    assert fast_events[-2:] == [("succeeded", "counted 2"), ("finished",)]
    assert slow.outcome == "cancelled" and fast.outcome == "succeeded"
    qtbot.waitUntil(lambda: not queue.busy)


def test_wait_cancels_and_joins(qtbot):
    from gui.worker import JobQueue, live_thread_count

    queue = JobQueue()
    queue.submit("slow", lambda token: counting_job(10_000, token, delay=0.01))
    queued = queue.submit("never", lambda token: counting_job(1, token))
    qtbot.wait(50)
    assert queue.wait(5000)
    assert live_thread_count() == 0
    assert queued.outcome == "cancelled"
    qtbot.waitUntil(lambda: not queue.busy)


@pytest.mark.parametrize("seconds", [65, 3700])
def test_eta_format(seconds):
    from gui.status import RateMeter, format_eta

    assert format_eta(seconds) in ("1 min 05 s", "1 h 01 min")
    meter = RateMeter()
    meter.update(Progress("classify", 0, 100), now=0.0)
    rate, eta = meter.update(Progress("classify", 10, 100), now=2.0)
    assert rate == pytest.approx(5.0) and eta == pytest.approx(18.0)


def test_a_background_job_gives_way_to_any_other(qtbot):
    from gui.worker import JobQueue

    queue = JobQueue()
    check = queue.submit("check", lambda token: counting_job(1000, token, delay=0.01), background=True)
    later_check = queue.submit("later check", lambda token: counting_job(1, token), background=True)
    check_events = record(check)
    with qtbot.waitSignal(check.progress, timeout=10_000):
        pass
    person = queue.submit("person", lambda token: counting_job(2, token))  # goes ahead of the waiting check
    order: list[str] = []
    person.finished.connect(lambda: order.append("person"))
    later_check.finished.connect(lambda: order.append("later check"))
    qtbot.waitUntil(lambda: not queue.busy, timeout=10_000)
    assert check.outcome == "cancelled" and check.preempted
    assert check_events[-2:] == [("cancelled",), ("finished",)]
    assert order == ["person", "later check"]
    assert person.outcome == "succeeded" and not person.preempted
    cancelled_by_hand = queue.submit("check", lambda token: counting_job(1000, token, delay=0.01), background=True)
    with qtbot.waitSignal(cancelled_by_hand.progress, timeout=10_000):
        pass
    queue.cancel_all()
    qtbot.waitUntil(lambda: not queue.busy, timeout=10_000)
    assert cancelled_by_hand.outcome == "cancelled" and not cancelled_by_hand.preempted
