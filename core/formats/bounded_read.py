"""Reading a person's file with bounds: regular files only, never more than a limit.

`--captions /dev/zero` was read until memory ran out and a FIFO hung the command until it was
killed. Every reader of a file a person names (captions CSV, label map, model.json) goes
through here: the file is opened without blocking (a FIFO with no writer opens at once), its
kind is checked on the open handle (no race with a rename), and at most `limit` bytes are
read; more is an error that names the limit.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

MiB = 1 << 20


def read_bounded(path: Path, limit: int, error: Callable[[str], Exception], what: str = "file") -> bytes:
    """The bytes of the regular file at `path` (links followed), at most `limit` of them.

    `error` makes the exception to raise from a reason in words that does not name the path
    (a ModelError, a CsvImportError... each names it its own way).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"there is no such {what}") from None
    except OSError as exc:
        raise error(f"the {what} cannot be read: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)  # the kind of what was opened: no race with a rename after a check by name
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a pipe" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a file")
            raise error(f"this {what} is {kind}, not a regular file; name a file")
        if info.st_size > limit:
            raise error(f"this {what} is {_size(info.st_size)}; Tagline reads at most {_size(limit)} from a {what} "
                        f"(is it the right file?)")
        with os.fdopen(os.dup(fd), "rb", buffering=0) as handle:
            data = _read_up_to(handle, limit + 1)
    except OSError as exc:
        raise error(f"the {what} cannot be read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while read, or a file system that reports no size
        raise error(f"this {what} is larger than {_size(limit)}, the most Tagline reads from a {what}")
    return data


def _read_up_to(handle: BinaryIO, count: int) -> bytes:
    chunks: list[bytes] = []
    left = count
    while left > 0:
        chunk = handle.read(min(left, 4 * MiB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _size(count: int) -> str:
    return f"{count / MiB:,.0f} MB" if count >= MiB else f"{count:,} bytes"
