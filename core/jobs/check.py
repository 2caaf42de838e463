"""The whole rescan, in a child process: the app's check of every file after a trusted open.

Opening a folder lists again only folders whose time moved (`core.store.sync`); a photo
rewritten in place is found by stat-ing every file. At a million photos that is 10-20 s of
Python in a loop, and in the app's process it took the interpreter from the window each few
milliseconds: scrolling stalled for 90 ms at a time while it ran. So the check is `tagline
scan` in a child process at low priority, writing to the same store (SQLite serialises the two
processes' transactions); its report comes back as JSON. Cancelling ends the child: its walk
writes nothing, its writes are single transactions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.errors import Cancelled, TaglineError
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore
from core.store.sync import SyncReport

POLL_S = 0.1


def tagline_command() -> list[str]:
    """How to run this Tagline's command line: the frozen executable is it, else `-m core.cli`."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "core.cli"]


def check_job(store: ProjectStore, cancel: CancelToken | None = None) -> Job[SyncReport]:
    """Run the whole rescan of `store` in a child process; progress while it runs."""
    with tempfile.TemporaryDirectory(prefix="tagline-check-") as scratch:
        report_path = Path(scratch) / "report.json"
        command = [*tagline_command(), "-q", "scan", str(store.folder), "--store", str(store.db_path),
                   "--report", str(report_path), "--background"]
        root = Path(__file__).resolve().parents[2]
        # what the child says goes to a file: a pipe nobody reads while it runs fills and stalls it
        with open(Path(scratch) / "stderr.txt", "w+b") as errors:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                     cwd=None if getattr(sys, "frozen", False) else root)
            try:
                started = time.monotonic()
                while child.poll() is None:
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled("cancelled")
                    yield Progress("check", 0, 0, extra={"seconds": time.monotonic() - started})
                    time.sleep(POLL_S)
            finally:
                if child.poll() is None:
                    child.terminate()
                child.wait()
            errors.seek(0)
            said = errors.read().decode("utf-8", "replace").strip().splitlines()
        if not report_path.is_file():
            raise TaglineError(f"checking the files failed (exit status {child.returncode})"
                               + (f": {said[-1]}" if said else ""))
        return SyncReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
