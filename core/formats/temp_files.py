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


def plain_file_mode() -> int:
    """The permissions `open()` gives a new file here (0666 less the umask, usually 0644).

    Libraries that write through a private temporary file (safetensors' weights came out 0600
    while model.json was 0644, so a model folder copied to a colleague could not be read) get
    their file set to this. The umask is read from /proc where there is one: setting it to read
    it back would race with other threads creating files.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _alive(pid: int) -> bool:
    import psutil  # os.kill(pid, 0) would send Ctrl-C on Windows

    return bool(psutil.pid_exists(pid))
