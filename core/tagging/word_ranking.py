"""A project's photos ranked by words, held in memory between searches (the window's search box).

`ProjectWords` is built once per project by `refresh`, a generator job run on a worker: it loads
the alignment and the text encoder (so no query waits for them), reads the aligned vectors kept
in the store, projects cached photo features and embeds the photos never seen. Later refreshes
redo only photos whose aligned vector is missing or older than the photo. A query is one text
encoding and one matrix product; it may run on another thread than a refresh: the matrix grows
by copy (a query reads a consistent prefix) and the text encoder is used under a lock.

`order_by_words` is the one rule for what the search box shows (docs/architecture.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.models.alignment import Alignment, load_alignment
from core.models.embedding import Encoders, iter_embedded_batches
from core.models.registry import image_spec, text_spec
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore
from core.tagging.word_search import WordIndex, best_first, save_aligned


class GrowingIndex:
    """Aligned photo vectors by image id: rows replaced in place or appended (capacity doubles)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids = np.zeros(0, np.int64)
        self._matrix = np.zeros((0, dim), np.float32)
        self._count = 0
        self._row: dict[int, int] = {}
        self.digests: dict[int, str] = {}  # image id -> the photo digest its vector was made from

    def __len__(self) -> int:
        return self._count

    def put(self, image_ids: Sequence[int], vectors: np.ndarray, digests: Sequence[str]) -> None:
        new = [k for k, i in enumerate(image_ids) if i not in self._row]
        needed = self._count + len(new)
        if needed > len(self._ids):  # grow by copy: a query holding the old arrays is unaffected
            capacity = max(needed, 2 * len(self._ids), 1024)
            ids, matrix = np.zeros(capacity, np.int64), np.zeros((capacity, self.dim), np.float32)
            ids[: self._count], matrix[: self._count] = self._ids[: self._count], self._matrix[: self._count]
            self._ids, self._matrix = ids, matrix
        for k, i in enumerate(image_ids):
            row = self._row.get(i)
            if row is None:
                row = self._row[i] = self._count
                self._ids[row] = i
                self._count += 1
            self._matrix[row] = vectors[k]
            self.digests[i] = digests[k]

    def view(self) -> WordIndex:
        count = self._count
        return WordIndex(self._ids[:count], self._matrix[:count])


@dataclass
class RefreshOutcome:
    indexed: int  # photos the index holds
    embedded: int = 0  # photos embedded by this refresh
    failures: list[tuple[str, str]] = field(default_factory=list)  # (relpath, why)


class ProjectWords:
    """What the window keeps to rank a project's photos by words."""

    def __init__(self, store: ProjectStore, alignment_dir: Path | None = None, prefer_gpu: bool = False,
                 batch_size: int = 32) -> None:
        self.store, self.alignment_dir, self.prefer_gpu, self.batch_size = store, alignment_dir, prefer_gpu, batch_size
        self.alignment: Alignment | None = None
        self.encoders: Encoders | None = None
        self.index: GrowingIndex | None = None
        self._failed: dict[int, str] = {}  # unreadable photos, by digest: not retried until they change
        self._text_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.index is not None and self.encoders is not None

    def refresh(self, cancel: CancelToken | None = None) -> Job[RefreshOutcome]:
        """Bring the index in line with the store's photos (the first call loads everything)."""
        if self.alignment is None or self.encoders is None:
            yield Progress("load", 0, 1, message="loading the image-text alignment")
            alignment = load_alignment(self.alignment_dir)
            encoders = Encoders(image_spec(str(alignment.info.get("image_encoder", "efficientnet_lite0"))),
                                text_spec(str(alignment.info.get("text_encoder", "minilm_l6"))), self.prefer_gpu)
            alignment = alignment.require_encoders(encoders.image_key, encoders.text_key)
            encoders.text.encode(["warm up"])  # the session loads here, on the worker, not at the first query
            self.alignment, self.encoders = alignment, encoders
        alignment, encoders = self.alignment, self.encoders
        index = self.index or GrowingIndex(alignment.dim)
        records = self.store.images()
        if self.index is None:  # first build: what the store already keeps (the CLI's searches too)
            kept = self.store.cached_embeddings(alignment.key)
            current = [r for r in records if r.id in kept and kept[r.id][0] == (r.digest or "")]
            if current:
                index.put([r.id for r in current], np.stack([kept[r.id][1] for r in current]),
                          [r.digest or "" for r in current])
            del kept
            self.index = index
        stale = [r for r in records if index.digests.get(r.id) != (r.digest or "")
                 and self._failed.get(r.id) != (r.digest or "")]
        outcome = RefreshOutcome(len(index))
        if not stale:
            return outcome
        digests = {r.id: r.digest or "" for r in stale}
        yield Progress("embed", 0, len(stale), message="embedding photos for search by words")
        for batch in iter_embedded_batches(self.store, encoders, stale, self.batch_size, cancel, captions={}):
            saved: dict[int, tuple[str, np.ndarray]] = {}
            save_aligned(self.store, alignment, batch, digests, saved)
            if saved:
                ids = list(saved)
                index.put(ids, np.stack([saved[i][1] for i in ids]), [saved[i][0] for i in ids])
            failed_ids = {r.id for r, _ in batch.failures}
            self._failed.update((i, digests[i]) for i in failed_ids)
            outcome.failures.extend((r.relpath, reason) for r, reason in batch.failures)
            outcome.embedded += len(batch.image_ids)
            yield Progress("embed", outcome.embedded + len(outcome.failures), len(stale), failed=len(outcome.failures))
        outcome.indexed = len(index)
        return outcome

    def query_vector(self, texts: Sequence[str]) -> np.ndarray:
        """The mean of the texts' aligned vectors, unit length (one text: its vector)."""
        if self.alignment is None or self.encoders is None:
            raise RuntimeError("refresh() first: the alignment and text encoder load there")
        with self._text_lock:
            encoded = np.asarray(self.encoders.text.encode(list(texts)), np.float32)
        return self.alignment.mean_text(encoded)

    def rank(self, words: str, limit: int) -> list[int]:
        """Image ids of the `limit` best matches for the words, best first (indexed photos only)."""
        if self.index is None:
            return []
        view = self.index.view()  # ids only: rounding 20,000 scores for display cost 0.1 s
        rows, _ = best_first(view.matrix, self.query_vector([words]), limit)
        return view.image_ids[rows].tolist()  # type: ignore[no-any-return]

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, cosine score of each to the texts' mean vector) over every indexed photo."""
        if self.index is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        view = self.index.view()
        return view.image_ids, view.matrix @ self.query_vector(texts)


def order_by_words(candidates: Sequence[int], caption_hits: set[int], ranked: Sequence[int]) -> list[int]:
    """What the search box shows when the words name no file: the candidates (the photos the
    other filters let through) whose caption says the words first, then every other candidate,
    each part best match first; photos the ranking has not reached (not embedded yet, or past
    its limit) last in each part, in the candidates' order. Nothing is hidden: a ranking has no
    honest cut-off. One stable sort of two keys in numpy (a million photos on the GUI thread)."""
    shown = np.asarray(candidates, np.int64)
    if not len(shown):
        return []
    best = np.asarray(ranked, np.int64)
    said = np.fromiter(caption_hits, np.int64, len(caption_hits))
    top = int(max(shown.max(), best.max(initial=0), said.max(initial=0))) + 1
    position = np.full(top, len(best), np.int64)  # not ranked: after every ranked photo
    position[best] = np.arange(len(best))
    says = np.zeros(top, bool)
    says[said] = True
    order = np.lexsort((position[shown], ~says[shown]))  # stable: ties keep the candidates' order
    return shown[order].tolist()  # type: ignore[no-any-return]
