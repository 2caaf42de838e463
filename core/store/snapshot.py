"""The present photos of a project as columns, for a view that shows a million of them.

A million `ImageRecord`s took 3 s to build and about 500 MB; a view needs only each photo's
name, the bytes of a name that is not UTF-8, and the size and time its thumbnail is keyed by.
Those are kept here as parallel columns, filled a page at a time from the store's rows with
C-level transposes; a record for one photo is made when a view asks for it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# The store's columns a snapshot row carries, in this order (`ProjectStore.shown_page`).
SHOWN_COLUMNS = "id, relpath, size, mtime_ns, raw_path, reviewed_at"
ShownRow = tuple[int, str, int, int, bytes | None, float | None]


@dataclass(frozen=True, slots=True)
class ShownImage:
    """What a view knows of one photo (the store's `ImageRecord` has its hash and error too)."""

    id: int
    relpath: str
    size: int
    mtime_ns: int
    raw_path: bytes | None = None

    @property
    def stamp(self) -> str:
        """The thumbnail cache's key for this version of the file."""
        return f"{self.size}:{self.mtime_ns}"


class ImageColumns:
    """Photos in the order they were appended (the natural order, page by page), by id."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self._row: dict[int, int] = {}  # id -> position in the columns
        self._relpaths: list[str] = []
        self._sizes = array("q")
        self._mtimes = array("q")
        self._raw: dict[int, bytes] = {}  # only the few names that are not UTF-8
        self._folded: list[str] | None = None  # the names case-folded, made by the first text search
        self.reviewed: set[int] = set()

    def extend(self, rows: Sequence[ShownRow]) -> list[int]:
        """Append rows not held yet (a scan may have appended some before the paged read came to
        them); returns the ids appended, in order."""
        row = self._row
        if any(r[0] in row for r in rows):
            rows = [r for r in rows if r[0] not in row]
        if not rows:
            return []
        ids, relpaths, sizes, mtimes, raws, reviewed = zip(*rows, strict=True)
        start = len(self.ids)
        self.ids += ids
        row.update(zip(ids, range(start, start + len(ids)), strict=True))
        self._relpaths += relpaths
        if self._folded is not None:
            self._folded += [name.casefold() for name in relpaths]
        self._sizes.extend(sizes)
        self._mtimes.extend(mtimes)
        if any(raws):
            self._raw.update((i, raw) for i, raw in zip(ids, raws, strict=True) if raw)
        if any(r is not None for r in reviewed):
            self.reviewed.update(i for i, stamp in zip(ids, reviewed, strict=True) if stamp is not None)
        return list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._row

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def __getitem__(self, image_id: int) -> ShownImage:
        at = self._row[image_id]
        return ShownImage(image_id, self._relpaths[at], self._sizes[at], self._mtimes[at], self._raw.get(image_id))

    def relpath(self, image_id: int) -> str:
        """The shown name alone (a text filter over a million asks it a million times)."""
        return self._relpaths[self._row[image_id]]

    def relpaths(self, image_ids: Iterable[int]) -> list[str]:
        row, names = self._row, self._relpaths
        return [names[row[i]] for i in image_ids]

    def folded_names(self, image_ids: list[int]) -> list[str]:
        """The case-folded names of `image_ids`, in their order, for a text search: folded once
        and kept (each keystroke in the search box folded a million names again: 0.5 s)."""
        if self._folded is None:
            self._folded = [name.casefold() for name in self._relpaths]
        if image_ids is self.ids or image_ids == self.ids:
            return self._folded
        row, folded = self._row, self._folded
        return [folded[row[i]] for i in image_ids]
