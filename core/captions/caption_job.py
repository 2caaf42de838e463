"""The caption job: fill missing captions of a project with generated ones, batch by batch.

Captions a person typed or imported are never replaced unless asked (`overwrite`). Each
batch is committed before the next starts, so a cancelled or killed run resumes where it
stopped: the images it finished now have captions and are skipped next time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.captions.captioning import FeatureSource, ImageCaptioner
from core.errors import ImageDecodeError
from core.media.images import load_rgb
from core.media.prefetch import prefetched
from core.progress import CancelToken, Job, Progress
from core.store.database import ImageRecord, ProjectStore


@dataclass
class FeatureBatch:
    records: list[ImageRecord]
    features: np.ndarray  # rows follow `records`
    failures: list[tuple[ImageRecord, str]] = field(default_factory=list)


@dataclass
class CaptionReport:
    captioned: int = 0
    kept: int = 0  # images that already had a caption and were left alone
    failures: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)
    seconds: float = 0.0


def _decode(store: ProjectStore, record: ImageRecord, captioner: FeatureSource) -> np.ndarray | str:
    try:
        return captioner.preprocess(load_rgb(store.image_path(record), max_side=captioner.max_side))
    except ImageDecodeError as exc:
        return exc.reason


def iter_feature_batches(
    store: ProjectStore, captioner: FeatureSource, records: Sequence[ImageRecord],
    batch_size: int = 32, cancel: CancelToken | None = None,
) -> Iterator[FeatureBatch]:
    """Features for `records`: from the store's embedding cache when the captioner can use it,
    else decoded (threads, a few batches ahead) and encoded; new embeddings are cached."""
    key = captioner.feature_key
    cache = store.cached_embeddings(key, [r.id for r in records]) if key else {}
    batches = [records[i : i + batch_size] for i in range(0, len(records), batch_size)]

    def cached(record: ImageRecord) -> np.ndarray | None:
        hit = cache.get(record.id)
        return hit[1] if hit is not None and hit[0] == (record.digest or "") else None

    def decode(record: ImageRecord) -> np.ndarray | str:
        return _decode(store, record, captioner)

    for current in prefetched(batches, decode, lambda r: cached(r) is None, cancel, "tagline-caption-decode"):
        yield _encode(store, captioner, current, cached)


def _encode(store: ProjectStore, captioner: FeatureSource,
            items: list[tuple[ImageRecord, Future[np.ndarray | str] | None]], cached: object) -> FeatureBatch:
    vectors: dict[int, np.ndarray] = {}
    fresh: list[tuple[ImageRecord, np.ndarray]] = []
    failures: list[tuple[ImageRecord, str]] = []
    for record, future in items:
        if future is None:
            vectors[record.id] = cached(record)  # type: ignore[operator]
            continue
        result = future.result()
        if isinstance(result, str):
            failures.append((record, result))
        else:
            fresh.append((record, result))
    if fresh:
        encoded = captioner.encode(np.stack([pixels for _, pixels in fresh]))
        for (record, _), vector in zip(fresh, encoded):
            vectors[record.id] = vector
        if captioner.feature_key:
            store.save_embeddings(captioner.feature_key, [(r.id, r.digest or "", vectors[r.id]) for r, _ in fresh])
        elif captioner.embedding_key:  # region features: cache their pooled form for the classifier
            pooled = captioner.embedding(np.stack([vectors[r.id] for r, _ in fresh]))
            store.save_embeddings(captioner.embedding_key, [(r.id, r.digest or "", v) for (r, _), v in zip(fresh, pooled)])
    kept = [r for r, _ in items if r.id in vectors]
    features = np.stack([vectors[r.id] for r in kept]).astype(np.float32) if kept else np.zeros((0, 0), np.float32)
    return FeatureBatch(kept, features, failures)


def caption_project(
    store: ProjectStore, captioner: ImageCaptioner, overwrite: bool = False,
    cancel: CancelToken | None = None, batch_size: int = 32,
) -> Job[CaptionReport]:
    """Generate a caption for every image without one (every image, with `overwrite`).

    Progress `extra["image_ids"]` names the images of each committed batch; broken photos
    are skipped, marked with their error in the store and listed in the report.
    """
    started = time.perf_counter()
    existing = store.captions()
    images = store.images()
    records = [r for r in images if overwrite or r.id not in existing]
    report = CaptionReport(kept=len(images) - len(records))
    total = len(records)
    yield Progress("caption", 0, total, message=f"loading {captioner.name}")
    for batch in iter_feature_batches(store, captioner, records, batch_size, cancel):
        texts = captioner.generate(batch.features) if batch.records else []
        with store.transaction():
            store.set_captions([(r.id, t) for r, t in zip(batch.records, texts) if t], "generated")
            for record, reason in batch.failures:
                store.set_image_error(record.id, reason)
        report.captioned += len(batch.records)
        report.failures.extend((r.relpath, reason) for r, reason in batch.failures)
        yield Progress("caption", report.captioned + len(report.failures), total, failed=len(report.failures),
                       extra={"image_ids": [r.id for r in batch.records]})
    report.seconds = time.perf_counter() - started
    return report


def write_caption_csv(store: ProjectStore, path: Path, image_ids: Iterable[int] | None = None) -> int:
    """`ImageID,Caption,Source` for every captioned image (or those of `image_ids`)."""
    from core.formats.exporting import atomic_write_text, check_output_path, csv_text

    check_output_path(store, path)
    captions = store.captions()
    wanted = set(image_ids) if image_ids is not None else None
    rows = [[record.relpath, *captions[record.id]] for record in store.images()
            if record.id in captions and (wanted is None or record.id in wanted)]
    atomic_write_text(path, csv_text(["ImageID", "Caption", "Source"], rows))
    return len(rows)
