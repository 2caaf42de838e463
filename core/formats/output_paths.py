"""Writing an output where the person said: to the file a name stands for, never over the name.

`--out` used to write `.NAME.PID.tmp` beside the name and rename it over, whatever the name
was: as root, `--out /dev/null` replaced the machine's /dev/null with a CSV file, and a link
was replaced by a file while the file it pointed to kept the old content. Here a link is
followed (the file it points to gets the new content, written beside that file and renamed
over it, so a reader never sees half); /dev/null (zero, full), a terminal or a pipe with a
reader is written to directly; a folder, a disk or other device, a socket or a pipe nobody
reads is refused with a message, before any work where the command checks its output first.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from core.errors import TaglineError, write_failure_message
from core.formats.temp_files import writing_beside


@dataclass(frozen=True)
class OutputTarget:
    path: Path  # where the bytes go: the name with its links followed
    stream: bool  # a device or pipe: written to directly, never renamed over
    mode: int | None  # an existing file's permission bits, kept by the new content


def output_target(path: Path) -> OutputTarget:
    """What writing to `path` means, or a TaglineError saying why it cannot be written."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        real = Path(os.path.realpath(path))  # a new file, or the missing file a link points to
        if not real.parent.is_dir():
            raise TaglineError(f"cannot write {path}: the folder {real.parent} does not exist; create it first") from None
        return OutputTarget(real, False, None)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TaglineError(f"cannot write {path}: its symbolic links form a loop; name a file instead") from None
        raise TaglineError(write_failure_message(path, exc)) from exc
    real = Path(os.path.realpath(path))
    kind = info.st_mode
    if stat.S_ISDIR(kind):
        raise TaglineError(f"{path} is a folder; name a file inside it (for example {path / 'labels.csv'})")
    if stat.S_ISFIFO(kind) or (stat.S_ISCHR(kind) and (info.st_rdev in _sink_devices() or _terminal(real))):
        return OutputTarget(real, True, None)
    if stat.S_ISCHR(kind):  # /dev/mem, /dev/port, a serial line...: a CSV written there does harm
        raise TaglineError(f"{path} is a device; Tagline writes only to files, pipes, terminals and /dev/null")
    if not stat.S_ISREG(kind):
        what = "a disk device" if stat.S_ISBLK(kind) else "a socket" if stat.S_ISSOCK(kind) else "not a regular file"
        raise TaglineError(f"{path} is {what}; Tagline writes only files, pipes and character devices such as /dev/null")
    # A file with other hard links gets a new file under this name, as any file does: the other
    # names keep the old content (rewriting in place could write over a photo or the command's
    # own input through a second name the checks by path cannot see).
    return OutputTarget(real, False, stat.S_IMODE(kind))


def _sink_devices() -> set[int]:
    """The device numbers of /dev/null, /dev/zero and /dev/full (the last says "disk full")."""
    found = set()
    for name in (os.devnull, "/dev/zero", "/dev/full"):
        try:
            info = os.stat(name)
        except OSError:
            continue
        if stat.S_ISCHR(info.st_mode):
            found.add(info.st_rdev)
    return found


def _terminal(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def write_output(path: Path, data: bytes) -> None:
    """Write `data` to what `path` names (see the module's docstring); errors say the fix."""
    target = output_target(path)
    try:
        if target.stream:
            _write_stream(path, target.path, data)
        else:
            _write_file(target, data)
    except OSError as exc:
        raise TaglineError(write_failure_message(path, exc)) from exc


def _write_stream(shown: Path, real: Path, data: bytes) -> None:
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # a pipe without a reader fails at once instead of hanging
    try:
        fd = os.open(real, os.O_WRONLY | nonblocking | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise TaglineError(f"cannot write {shown}: it is a pipe that no program is reading; start the reader "
                               f"first, or write to a file") from None
        raise
    try:
        if nonblocking:
            os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _write_file(target: OutputTarget, data: bytes) -> None:
    """Beside the real file, fsynced, then renamed over it; all of it is on disk before the
    file is touched, so a full disk leaves the old content whole."""
    with writing_beside(target.path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.mode is not None:
            os.chmod(tmp, target.mode)  # a person's 0600 export stays 0600
        os.replace(tmp, target.path)
