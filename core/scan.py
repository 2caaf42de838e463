"""Recursive folder scan: image files only, hidden folders and the project folder skipped."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.images import is_image_path

PROJECT_DIRNAME = ".tagline"


@dataclass(frozen=True)
class FoundFile:
    relpath: str  # POSIX-style, relative to the scanned root
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    path: str
    reason: str


def walk_images(root: Path, problems: list[ScanProblem] | None = None) -> Iterator[FoundFile]:
    """Yield image files under `root`, sorted per folder so results are stable.

    Symbolic links to files are followed, links to folders are not (which also rules out link
    loops); unreadable folders and dangling links are reported in `problems`, not raised.
    """
    root = Path(root)
    sink = problems if problems is not None else []

    def on_error(error: OSError) -> None:
        sink.append(ScanProblem(str(error.filename), error.strerror or str(error)))

    for folder, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(folder) / name
            if name.startswith(".") or not is_image_path(path):
                continue
            try:
                stat = path.stat()
            except OSError as exc:
                sink.append(ScanProblem(str(path), exc.strerror or str(exc)))
                continue
            if not path.is_file():
                continue
            yield FoundFile(path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns)


def file_digest(path: Path) -> str:
    """Content hash (BLAKE2b-128) used to notice edited files and carry work across renames."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
