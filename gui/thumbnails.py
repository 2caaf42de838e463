"""Background thumbnails (calibre's cover-grid pattern): placeholder first, decode off the GUI
thread, last requested first, a bounded memory cache and a disk cache.

Decoding runs on `worker.io_pool()`; results come back through a queued signal, so the memory
cache is touched by the GUI thread only. Workers make `QImage`s (thread-safe), never `QPixmap`s.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from core.errors import ImageDecodeError
from gui.worker import run_io

MAX_PENDING = 600  # older requests are dropped: the user has scrolled past them


def thumbnail_cache_dir() -> Path:
    """`$TAGLINE_CACHE_DIR/thumbnails`, else the platform's user cache folder."""
    base = os.environ.get("TAGLINE_CACHE_DIR")
    if base:
        return Path(base) / "thumbnails"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("Tagline", appauthor=False)) / "thumbnails"


def pil_to_qimage(image: object) -> QImage:
    """A deep copy, so the QImage does not point into memory Python may free."""
    rgb = image.convert("RGB")  # type: ignore[attr-defined]
    width, height = rgb.size
    data = rgb.tobytes("raw", "RGB")
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def decode_scaled(path: Path, max_side: int) -> QImage:
    """Decode at reduced size (JPEG draft mode); raises ImageDecodeError."""
    from core.media.images import load_rgb

    return pil_to_qimage(load_rgb(path, max_side=max_side))


class MemoryCache:
    """Least-recently-used QImages, bounded by bytes rather than count."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[int, QImage] = OrderedDict()

    def get(self, key: int) -> QImage | None:
        image = self._items.get(key)
        if image is not None:
            self._items.move_to_end(key)
        return image

    def put(self, key: int, image: QImage) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.sizeInBytes()
        self._items[key] = image
        self.bytes += image.sizeInBytes()
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= dropped.sizeInBytes()

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)


class ThumbnailLoader(QObject):
    """Request by image id and path; `loaded(id)` fires in the GUI thread when ready."""

    loaded = Signal(int)
    _decoded = Signal(int, int, object)  # generation, image id, QImage | None

    def __init__(self, size: int = 160, max_bytes: int = 160 * 2**20, workers: int | None = None,
                 disk_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.memory = MemoryCache(max_bytes)
        self.failed: set[int] = set()
        self.disk_dir = (disk_dir or thumbnail_cache_dir()) / str(size)
        # one core stays free for the GUI thread: with 2 decoders on 2 cores, painting waited
        # 30-110 ms for the CPU and the GIL while scrolling over photos not yet cached
        self._workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self._lock = threading.Lock()
        self._stack: list[tuple[int, int, Path, str]] = []  # (generation, id, path, disk key), LIFO
        self._pending: set[int] = set()
        self._active = 0
        self._generation = 0
        self._decoded.connect(self._on_decoded)

    def reset(self) -> None:
        """A new project: forget queued work and cached images (late results are ignored)."""
        with self._lock:
            self._generation += 1
            self._stack.clear()
            self._pending.clear()
        self.memory.clear()
        self.failed.clear()

    def get(self, image_id: int) -> QImage | None:
        return self.memory.get(image_id)

    def request(self, image_id: int, path: Path, stamp: str) -> None:
        """Queue a decode unless cached, failed or queued; `stamp` changes when the file does."""
        if image_id in self.failed or self.memory.get(image_id) is not None:
            return
        with self._lock:
            if image_id in self._pending:
                return
            self._pending.add(image_id)
            self._stack.append((self._generation, image_id, path, stamp))
            if len(self._stack) > MAX_PENDING:
                _, old_id, _, _ = self._stack.pop(0)
                self._pending.discard(old_id)
            start = self._active < self._workers
            if start:
                self._active += 1
        if start:
            run_io(self._drain)

    def _drain(self) -> None:
        """Pool thread: decode until the stack is empty (newest first)."""
        while True:
            with self._lock:
                if not self._stack:
                    self._active -= 1
                    return
                generation, image_id, path, stamp = self._stack.pop()
            image = self._load(path, stamp)
            self._decoded.emit(generation, image_id, image)

    def _load(self, path: Path, stamp: str) -> QImage | None:
        key = hashlib.blake2b(f"{path}|{stamp}".encode(), digest_size=12).hexdigest()
        cached = self.disk_dir / key[:2] / f"{key}.jpg"
        if cached.is_file():
            image = QImage(str(cached))
            if not image.isNull():
                return image
        try:
            image = decode_scaled(path, self.size)
        except ImageDecodeError:
            return None
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{threading.get_ident()}")
            if image.save(str(tmp), "JPEG", 85):  # type: ignore[call-overload]  # the stub says bytes; PySide6 takes only str
                os.replace(tmp, cached)
        except OSError:
            pass  # a read-only or full cache disk only costs speed
        return image

    def _on_decoded(self, generation: int, image_id: int, image: QImage | None) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._pending.discard(image_id)
        if image is None:
            self.failed.add(image_id)
        else:
            self.memory.put(image_id, image)
        self.loaded.emit(image_id)


class PreviewLoader(QObject):
    """One large image at a time for the detail panel; a newer request supersedes older ones."""

    ready = Signal(int, object)  # image id, QImage | None
    _decoded = Signal(int, int, object)

    def __init__(self, max_side: int = 1280, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.max_side = max_side
        self._ticket = 0
        self._decoded.connect(self._on_decoded)

    def request(self, image_id: int, path: Path) -> None:
        self._ticket += 1
        ticket, max_side = self._ticket, self.max_side

        def task() -> None:
            try:
                image: QImage | None = decode_scaled(path, max_side)
            except ImageDecodeError:
                image = None
            self._decoded.emit(ticket, image_id, image)

        run_io(task)

    def _on_decoded(self, ticket: int, image_id: int, image: QImage | None) -> None:
        if ticket == self._ticket:
            self.ready.emit(image_id, image)
