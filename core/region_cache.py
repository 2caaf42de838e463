"""Region features of a folder's photos, kept on disk between captioner trainings.

The attention captioner reads 64 regions x 1280 channels a photo (160 KB in float16): too
much for the project's SQLite store, and 6 minutes to recompute for comp5329 on two cores.
They live in the user cache folder as one `.npy` array plus a JSON index of which row holds
which photo (relative path and content digest). Rows are only ever appended, and the array is
replaced before its index: a run killed between the two leaves an index whose rows are all
still where it says, so nothing is ever read from the wrong row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.caption_job import iter_feature_batches
from core.captioning import FrozenImageFeatures
from core.errors import write_failure_message
from core.registry import cache_dir
from core.store import ImageRecord, ProjectStore

log = logging.getLogger(__name__)


def region_cache_paths(store: ProjectStore, source: FrozenImageFeatures) -> tuple[Path, Path]:
    digest = hashlib.blake2b(f"{Path(store.folder).resolve()}|{source.key}".encode(), digest_size=8).hexdigest()
    base = cache_dir() / "caption-regions" / digest
    return base.with_suffix(".npy"), base.with_suffix(".json")


def region_features(store: ProjectStore, source: FrozenImageFeatures, records: Sequence[ImageRecord],
                    batch_size: int = 64) -> tuple[list[ImageRecord], np.ndarray]:
    """(records that could be read, their features as float16 (n, regions, channels)).
    Photos already in the cache are not decoded again; broken ones are skipped."""
    array_path, index_path = region_cache_paths(store, source)
    index: dict[str, list] = {}
    array: np.ndarray | None = None
    if index_path.is_file() and array_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            array = np.load(array_path, mmap_mode="r")
        except (OSError, ValueError) as exc:  # a damaged cache is only a cache: start again
            log.warning("region cache %s unreadable (%s); recomputing", array_path, exc)
            index, array = {}, None
    rows = len(array) if array is not None else 0

    def hit(record: ImageRecord) -> bool:
        entry = index.get(record.relpath)
        return entry is not None and entry[1] == (record.digest or "") and entry[0] < rows

    missing = [r for r in records if not hit(r)]
    if missing:
        log.info("%s: encoding regions of %d photos (%d cached)", store.folder, len(missing), len(records) - len(missing))
        fresh: list[tuple[ImageRecord, np.ndarray]] = []
        for batch in iter_feature_batches(store, source, missing, batch_size):
            fresh.extend(zip(batch.records, batch.features.astype(np.float16)))
        if fresh:
            added = np.stack([v for _, v in fresh])
            array = added if array is None else np.concatenate([np.asarray(array), added])
            for offset, (record, _) in enumerate(fresh):
                index[record.relpath] = [rows + offset, record.digest or ""]
            try:
                _save(array_path, index_path, array, index)
            except OSError as exc:  # a full disk costs the cache, not the training
                log.warning("could not keep region features in %s (%s); they will be computed again next time",
                            array_path.parent, write_failure_message(array_path.parent, exc))
    rows = len(array) if array is not None else 0
    kept = [r for r in records if hit(r)]
    if array is None or not kept:
        return [], np.zeros((0, 0, 0), np.float16)
    return kept, np.asarray(array[[index[r.relpath][0] for r in kept]])


def _save(array_path: Path, index_path: Path, array: np.ndarray, index: dict[str, list]) -> None:
    array_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_array = array_path.with_suffix(f".{os.getpid()}.tmp.npy")
    tmp_index = index_path.with_suffix(f".{os.getpid()}.tmp")
    try:
        np.save(tmp_array, array)
        os.replace(tmp_array, array_path)  # rows only appended: the old index still reads right
        tmp_index.write_text(json.dumps(index), encoding="utf-8")
        os.replace(tmp_index, index_path)
    finally:
        tmp_array.unlink(missing_ok=True)
        tmp_index.unlink(missing_ok=True)
