"""Region features of a folder's photos, kept on disk between captioner trainings.

The attention captioner reads 64 regions x 1280 channels a photo (160 KB in float16): too
much for the project's SQLite store, too much to hold for a large folder (16 GB for 100,000
photos), and 6 minutes to recompute for comp5329 on two cores. They live in the user cache
folder as one raw float16 file, one row per photo, read through a memory map, plus a JSON
index (row count, row shape, and which row holds which photo by relative path and content
digest). Rows are only appended, batch by batch; the index is replaced (atomically) after the
rows it names are written, and a run starts by cutting the file back to the rows its index
names: a kill at any moment never lets the index point at a half-written row, and memory stays
at one batch however large the folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.captions.caption_job import iter_feature_batches
from core.captions.captioning import FrozenImageFeatures
from core.errors import write_failure_message
from core.formats.temp_files import writing_beside
from core.models.registry import cache_dir
from core.store.database import ImageRecord, ProjectStore

log = logging.getLogger(__name__)
INDEX_EVERY = 16  # batches between index commits: a kill loses at most this much work


@dataclass
class FeatureRows:
    """Features of some photos, one row each, read on demand (a memory map, or an array)."""

    array: np.ndarray
    rows: np.ndarray  # row in `array` of each photo, in order

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.asarray(self.array[self.rows[np.asarray(positions, dtype=np.int64)]])

    @staticmethod
    def of(array: np.ndarray) -> FeatureRows:
        return FeatureRows(array, np.arange(len(array)))


def region_cache_paths(store: ProjectStore, source: FrozenImageFeatures) -> tuple[Path, Path]:
    digest = hashlib.blake2b(f"{Path(store.folder).resolve()}|{source.key}".encode(), digest_size=8).hexdigest()
    base = cache_dir() / "caption-regions" / digest
    return base.with_suffix(".f16"), base.with_suffix(".json")


def region_features(store: ProjectStore, source: FrozenImageFeatures, records: Sequence[ImageRecord],
                    batch_size: int = 64) -> tuple[list[ImageRecord], np.ndarray]:
    """(records that could be read, their features as float16 (n, regions, channels)) in memory."""
    kept, table = region_rows(store, source, records, batch_size)
    return kept, table.take(np.arange(len(table))) if len(table) else np.zeros((0, 0, 0), np.float16)


def region_rows(store: ProjectStore, source: FrozenImageFeatures, records: Sequence[ImageRecord],
                batch_size: int = 64) -> tuple[list[ImageRecord], FeatureRows]:
    """(records that could be read, their region features read on demand from the cache).
    Photos already in the cache are not decoded again; broken ones are skipped."""
    data_path, index_path = region_cache_paths(store, source)
    index = _read_index(index_path)
    photos: dict[str, list[Any]] = index["photos"]

    def hit(record: ImageRecord) -> bool:
        entry = photos.get(record.relpath)
        return entry is not None and entry[1] == (record.digest or "")

    missing = [r for r in records if not hit(r)]
    spilled: dict[str, np.ndarray] = {}  # features the cache could not keep (full disk)
    if missing:
        log.info("%s: encoding regions of %d photos (%d cached)", store.folder, len(missing), len(records) - len(missing))
        spilled = _append(store, source, missing, batch_size, data_path, index_path, index)
    kept = [r for r in records if hit(r) or r.relpath in spilled]
    if not kept:
        return [], FeatureRows.of(np.zeros((0, 0, 0), np.float16))
    if spilled:  # rare: assemble in memory what the disk could not hold
        cached = _open(data_path, index)
        rows = [spilled[r.relpath] if r.relpath in spilled else cached[photos[r.relpath][0]] for r in kept]
        return kept, FeatureRows.of(np.stack(rows))
    return kept, FeatureRows(_open(data_path, index), np.array([photos[r.relpath][0] for r in kept], np.int64))


def _read_index(index_path: Path) -> dict[str, Any]:
    empty: dict[str, Any] = {"rows": 0, "shape": None, "photos": {}}
    if not index_path.is_file():
        return empty
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(index.get("photos"), dict) or not isinstance(index.get("rows"), int):
            raise ValueError("not a region index")
        return dict(index)
    except (OSError, ValueError) as exc:  # a damaged cache is only a cache: start again
        log.warning("region cache %s unreadable (%s); recomputing", index_path, exc)
        return empty


def _open(data_path: Path, index: dict[str, Any]) -> np.ndarray:
    shape = (int(index["rows"]), *index["shape"]) if index["shape"] else (0, 0, 0)
    if not shape[0]:
        return np.zeros(shape, np.float16)
    return np.memmap(data_path, dtype=np.float16, mode="r", shape=shape)


def _append(store: ProjectStore, source: FrozenImageFeatures, missing: Sequence[ImageRecord], batch_size: int,
            data_path: Path, index_path: Path, index: dict[str, Any]) -> dict[str, np.ndarray]:
    """Encode `missing` and append their rows, committing the index every few batches; if the
    disk fills, what was not committed is returned in memory instead (the cache keeps what it had)."""
    spilled: dict[str, np.ndarray] = {}
    pending: list[tuple[list[ImageRecord], np.ndarray]] = []  # written since the last commit
    committed = index["rows"]
    handle: BinaryIO | None = None

    def give_up(exc: OSError) -> None:
        nonlocal handle
        _warn_full(data_path, exc)
        if handle is not None:
            handle.close()
        handle = None
        for records, rows in pending:  # the index never names rows that may not be on disk
            for record, row in zip(records, rows):
                index["photos"].pop(record.relpath, None)
                spilled[record.relpath] = row
        pending.clear()
        index["rows"] = committed

    try:
        data_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(data_path, "r+b" if data_path.exists() else "w+b")  # noqa: SIM115 (closed below)
        row_bytes = int(np.prod(index["shape"])) * 2 if index["shape"] else 0
        handle.truncate(index["rows"] * row_bytes)  # drop any rows a killed run wrote past its index
        handle.seek(0, os.SEEK_END)
    except OSError as exc:
        give_up(exc)
    for number, batch in enumerate(iter_feature_batches(store, source, missing, batch_size)):
        if not batch.records:
            continue
        rows = batch.features.astype(np.float16)
        if handle is None:
            spilled.update((r.relpath, v) for r, v in zip(batch.records, rows))
            continue
        try:
            _write_rows(handle, rows)
            pending.append((list(batch.records), rows))
            for offset, record in enumerate(batch.records):
                index["photos"][record.relpath] = [index["rows"] + offset, record.digest or ""]
            index["rows"] += len(rows)
            index["shape"] = list(rows.shape[1:])
            if number % INDEX_EVERY == INDEX_EVERY - 1:
                _commit(handle, index_path, index)
                pending.clear()
                committed = index["rows"]
        except OSError as exc:  # a full disk costs the cache, not the training
            if not pending or pending[-1][0] != list(batch.records):
                spilled.update((r.relpath, v) for r, v in zip(batch.records, rows))
            give_up(exc)
    if handle is not None:
        try:
            _commit(handle, index_path, index)
            pending.clear()
        except OSError as exc:
            give_up(exc)
    if handle is not None:
        handle.close()
    return spilled


def _write_rows(handle: BinaryIO, rows: np.ndarray) -> None:
    handle.write(np.ascontiguousarray(rows, np.float16).tobytes())


def _commit(handle: BinaryIO, index_path: Path, index: dict[str, Any]) -> None:
    """Rows first, on disk; then the index that names them, replaced atomically."""
    handle.flush()
    os.fsync(handle.fileno())
    with writing_beside(index_path) as tmp:
        tmp.write_text(json.dumps(index), encoding="utf-8")
        os.replace(tmp, index_path)


def _warn_full(data_path: Path, exc: OSError) -> None:
    log.warning("could not keep region features in %s (%s); they will be computed again next time",
                data_path.parent, write_failure_message(data_path.parent, exc))
