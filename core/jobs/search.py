"""`search`: the folder's photos ranked by how well they match some words, best first.

Photos not embedded yet are embedded first (cached, so an interrupted search resumes) and
their aligned vectors kept; then the words are encoded once and matched by one matrix product.
Captions play no part: a photo without one is found by what it shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import TaglineError
from core.models.alignment import load_alignment
from core.models.embedding import Encoders, iter_embedded_batches
from core.models.registry import image_spec, text_spec
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore
from core.tagging.word_search import WordIndex, aligned_cache, query_vectors, save_aligned, stale_records


@dataclass(frozen=True)
class SearchRequest:
    words: str
    count: int = 20
    alignment: Path | None = None  # None: the bundled one
    batch_size: int = 32
    prefer_gpu: bool = True


@dataclass
class SearchOutcome:
    relpaths: list[str]  # best first
    scores: list[float]  # cosine similarity of each to the words
    embedded: int = 0  # photos embedded by this search
    failures: list[tuple[str, str]] = field(default_factory=list)  # (relpath, why) of photos skipped


def search_job(store: ProjectStore, request: SearchRequest, cancel: CancelToken | None = None) -> Job[SearchOutcome]:
    words = " ".join(request.words.split())
    if not words:
        raise TaglineError("search needs some words to look for")
    alignment = load_alignment(request.alignment)
    encoders = Encoders(image_spec(str(alignment.info.get("image_encoder", "efficientnet_lite0"))),
                        text_spec(str(alignment.info.get("text_encoder", "minilm_l6"))), request.prefer_gpu)
    alignment = alignment.require_encoders(encoders.image_key, encoders.text_key)
    records = store.images()
    cache = aligned_cache(store, alignment)
    stale = stale_records(cache, records)
    outcome = SearchOutcome([], [])
    if stale:
        digests = {r.id: r.digest or "" for r in stale}
        yield Progress("embed", 0, len(stale), message="embedding photos not seen before")
        for batch in iter_embedded_batches(store, encoders, stale, request.batch_size, cancel, captions={}):
            save_aligned(store, alignment, batch, digests, cache)
            outcome.failures.extend((r.relpath, reason) for r, reason in batch.failures)
            outcome.embedded += len(batch.image_ids)
            yield Progress("embed", outcome.embedded + len(outcome.failures), len(stale), failed=len(outcome.failures))
    index = WordIndex.from_cache(cache, records, alignment.dim)
    image_ids, outcome.scores = index.rank(query_vectors(encoders, alignment, [words])[0], request.count)
    relpath = {r.id: r.relpath for r in records}
    outcome.relpaths = [relpath[i] for i in image_ids]
    return outcome
