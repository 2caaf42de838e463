"""Photos ranked by words: the aligned photo vectors, kept in the store, against a query.

A photo's aligned vector (384 numbers, float16, unit length) is cached in the embeddings table
under the alignment's own key, so a search reads 768 bytes a photo instead of the 2,560-d
features, and ranking a million photos is one matrix product (float32 in memory) and a partial
sort.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.models.alignment import Alignment
from core.models.embedding import EmbeddedBatch, Encoders
from core.store.database import ImageRecord, ProjectStore

Cache = dict[int, tuple[str, np.ndarray]]  # image id -> (photo digest, aligned vector)


def aligned_cache(store: ProjectStore, alignment: Alignment) -> Cache:
    return store.cached_embeddings(alignment.key)


def stale_records(cache: Cache, records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """The photos whose aligned vector is missing or older than the photo."""
    return [r for r in records if r.id not in cache or cache[r.id][0] != (r.digest or "")]


def save_aligned(store: ProjectStore, alignment: Alignment, batch: EmbeddedBatch, digests: dict[int, str],
                 cache: Cache) -> None:
    """Project a batch of photo features and keep the result (source key: the photo's digest)."""
    if not batch.image_ids:
        return
    aligned = alignment.project_images(batch.image_vectors)
    rows = [(i, digests[i], v) for i, v in zip(batch.image_ids, aligned)]
    store.save_embeddings(alignment.key, rows)
    cache.update((i, (k, v)) for i, k, v in rows)


def aligned_matrix(cache: Cache, records: Sequence[ImageRecord], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, float32 matrix) of the given photos whose aligned vector is current.

    float32 in memory although float16 on disk: numpy multiplies float16 without BLAS, ten
    times slower (1.2 s against 0.1 s for 100,000 photos on 2 busy cores)."""
    ids = np.array([r.id for r in records if r.id in cache and cache[r.id][0] == (r.digest or "")], np.int64)
    if not len(ids):
        return ids, np.zeros((0, dim), np.float32)
    return ids, np.stack([cache[int(i)][1] for i in ids]).astype(np.float32)


class WordIndex:
    """A folder's aligned photo vectors held in memory (float32), to rank by many queries:
    what a window keeps between searches, so that only the query is encoded each time."""

    def __init__(self, image_ids: np.ndarray, matrix: np.ndarray) -> None:
        self.image_ids, self.matrix = image_ids, matrix

    @classmethod
    def from_cache(cls, cache: Cache, records: Sequence[ImageRecord], dim: int) -> WordIndex:
        return cls(*aligned_matrix(cache, records, dim))

    def __len__(self) -> int:
        return len(self.image_ids)

    def rank(self, query: np.ndarray, count: int) -> tuple[list[int], list[float]]:
        """Image ids of the `count` best matches for an aligned query vector, best first, and their scores."""
        rows, scores = best_first(self.matrix, query, count)
        return [int(self.image_ids[r]) for r in rows], [round(float(v), 4) for v in scores]


def query_vectors(encoders: Encoders, alignment: Alignment, texts: list[str]) -> np.ndarray:
    """The texts in the aligned space (unit length), one row each."""
    return alignment.project_texts(np.asarray(encoders.text.encode(texts), np.float32))


def best_first(matrix: np.ndarray, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the `count` best matches and their cosine scores, best first.

    A partial sort (argpartition) keeps a million rows cheap: only the winners are sorted.
    """
    if not len(matrix) or count < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = np.asarray(matrix, np.float32) @ np.asarray(query, np.float32)
    count = min(count, len(scores))
    top = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
    order = top[np.argsort(-scores[top], kind="stable")]
    return order, scores[order]


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the precision-recall steps (as scikit-learn's average_precision_score)."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(np.float64)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def zero_shot_scores(photos: np.ndarray, queries: np.ndarray, targets: np.ndarray, names: list[str],
                     top: int = 50) -> dict[str, object]:
    """Mean average precision and precision of the top `top` of each query over `photos`
    (labels with no positive photo are left out), beside what a random order gives."""
    scores = np.asarray(photos, np.float32) @ np.asarray(queries, np.float32).T
    per_label: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        positive = targets[:, j].astype(bool)
        if not positive.any():
            continue
        best = np.argsort(-scores[:, j], kind="stable")[:top]
        per_label[name] = {"ap": round(average_precision(scores[:, j], positive), 4),
                           f"p@{top}": round(float(positive[best].mean()), 4),
                           "prevalence": round(float(positive.mean()), 4)}
    values = list(per_label.values())
    return {
        "map": round(float(np.mean([v["ap"] for v in values])), 4),
        f"p@{top}": round(float(np.mean([v[f"p@{top}"] for v in values])), 4),
        "chance": round(float(np.mean([v["prevalence"] for v in values])), 4),
        "photos": int(len(photos)), "labels": len(values), "per_label": per_label,
    }
