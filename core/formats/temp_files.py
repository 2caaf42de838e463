"""Temporary files written beside their target and renamed over it (the atomic-write pattern).

A temporary file carries the writing process's id in its name (`.NAME.PID.tmp`), so when a
process is killed mid-write the next writer of the same target can tell its leftovers from a
live writer's and remove them; an interrupt (Ctrl-C) removes its own at once.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def temp_path(target: Path) -> Path:
    """A temporary name beside `target`; leftovers of dead processes for it are removed first."""
    target = Path(target)
    sweep_stale(target)
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def sweep_stale(target: Path) -> list[Path]:
    """Remove `.TARGET.PID.tmp` files whose process no longer runs; returns what was removed."""
    removed: list[Path] = []
    try:
        siblings = list(Path(target).parent.glob(f".{glob.escape(Path(target).name)}.*.tmp"))
    except OSError:
        return removed
    for path in siblings:
        match = _TEMP.match(path.name)
        if match is None or match["name"] != Path(target).name:
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and not _alive(pid):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


@contextmanager
def writing_beside(target: Path) -> Iterator[Path]:
    """Yield a temporary path for `target`; it is removed unless the body renamed it away."""
    tmp = temp_path(target)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    import psutil  # os.kill(pid, 0) would send Ctrl-C on Windows

    return bool(psutil.pid_exists(pid))
