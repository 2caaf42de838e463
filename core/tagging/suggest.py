"""What to label next: the photos whose confirmation teaches the model most.

Three ways to pick, compared in `bench/bench_learning_curve.py --active` (a simulated person
labelling in rounds): at random, the most uncertain (a label's probability nearest its
threshold), and the most diverse (farthest, in the photo embedding, from everything already
labelled or picked: greedy k-centre). `STRATEGY` is the one that measured best; the GUI's
"next photo" key and `tagline suggest` use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.progress import CancelToken, Job
from core.tagging.label_guesses import first_round_picks

if TYPE_CHECKING:
    from core.store.database import ProjectStore
    from core.tagging.classifier import Classifier

STRATEGIES = ("uncertain", "diverse", "random")
STRATEGY = "uncertain"


def uncertainty(probabilities: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """Per photo, 1 at a label's threshold falling to 0 at certainty (0 or 1), the highest over
    its labels: a photo is worth confirming when any one of its labels is in doubt."""
    t = np.broadcast_to(np.asarray(thresholds, np.float32), probabilities.shape)
    distance = np.where(probabilities >= t, (probabilities - t) / np.maximum(1 - t, 1e-6), (t - probabilities) / np.maximum(t, 1e-6))
    return (1 - np.clip(distance, 0, 1)).max(axis=1)


def photo_uncertainty(probabilities: Sequence[float], thresholds: Sequence[float]) -> float:
    """`uncertainty` for one photo in plain Python: the gallery sorts 100,000 photos by it,
    where a numpy call per photo costs more than the arithmetic (a test pins the two together)."""
    doubt = 0.0
    for p, t in zip(probabilities, thresholds):
        distance = (p - t) / max(1 - t, 1e-6) if p >= t else (t - p) / max(t, 1e-6)
        doubt = max(doubt, 1 - min(max(distance, 0.0), 1.0))
    return doubt


def k_center(features: np.ndarray, labelled: np.ndarray, n: int) -> np.ndarray:
    """Greedy k-centre: `n` rows, each the farthest from every labelled or already picked row
    (features standardised first, so no dimension dominates)."""
    x = (features - features.mean(0)) / (features.std(0) + 1e-6)
    picked: list[int] = []
    nearest = np.full(len(x), np.inf, np.float32)
    for known in np.flatnonzero(labelled):
        nearest = np.minimum(nearest, ((x - x[known]) ** 2).sum(1))
    if not np.isfinite(nearest).any():  # nothing labelled yet: start from the photo nearest the mean
        first = int(np.argmin((x**2).sum(1)))
        picked.append(first)
        nearest = ((x - x[first]) ** 2).sum(1)
    candidates = ~labelled.copy()
    candidates[picked] = False
    while len(picked) < n and candidates.any():
        row = int(np.argmax(np.where(candidates, nearest, -1)))
        picked.append(row)
        candidates[row] = False
        nearest = np.minimum(nearest, ((x - x[row]) ** 2).sum(1))
    return np.array(picked[:n], np.int64)


def choose(strategy: str, n: int, labelled: np.ndarray, probabilities: np.ndarray | None = None,
           thresholds: np.ndarray | float = 0.5, features: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Row indices of the next `n` photos to label among the rows not `labelled`."""
    free = np.flatnonzero(~labelled)
    n = min(n, len(free))
    if strategy == "random" or (strategy == "uncertain" and probabilities is None):
        return np.random.default_rng(seed).choice(free, n, replace=False)
    if strategy == "uncertain":
        assert probabilities is not None
        scores = uncertainty(probabilities[free], thresholds)
        return free[np.argsort(-scores, kind="stable")[:n]]
    if strategy == "diverse":
        if features is None:
            raise ValueError("diverse needs the photo features")
        return k_center(features, labelled, n)
    raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    relpath: str
    uncertainty: float  # 1: a label sits on its threshold; 0: the model is sure of every label
    guess: str = ""  # a new label this photo is a first guess for (core.tagging.label_guesses), if any


def suggest_next(store: ProjectStore, classifier: Classifier, n: int = 50, strategy: str = STRATEGY,
                 cancel: CancelToken | None = None, seed: int = 0,
                 guesses: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Job[list[Suggestion]]:
    """The next `n` photos to confirm, best first, among photos no person has decided on.
    Classifies first what the model has not yet seen (cached embeddings make that cheap).

    `guesses` (label -> (image ids, scores from its name), for labels the model does not know):
    while such a label has few confirmed photos, its best guesses come first, since the model
    cannot be uncertain about a label it has no output for."""
    from core.tagging.classifier import classify_project

    yield from classify_project(store, classifier, cancel=cancel)
    confirmed = store.confirmations()
    predictions = store.predictions(classifier.key)
    records = [r for r in store.images() if r.error is None and r.id in predictions]
    labelled = np.array([r.id in confirmed for r in records], bool)
    labels = classifier.labels
    probabilities = np.array([[predictions[r.id].get(name, (0.0, False))[0] for name in labels] for r in records],
                             np.float32).reshape(len(records), len(labels))
    thresholds = classifier.info.decision_thresholds()
    features = None
    if strategy == "diverse":
        cache = store.cached_embeddings(classifier.encoders().image_key, [r.id for r in records])
        features = np.stack([cache[r.id][1] for r in records]) if records else np.zeros((0, 1), np.float32)
    doubt = uncertainty(probabilities, thresholds) if records else np.zeros(0, np.float32)
    row = {r.id: k for k, r in enumerate(records)}
    first = first_round_picks(guesses, confirmed, n, set(row)) if guesses else []
    labelled[[row[i] for i, _ in first]] = True  # taken by the guesses: the strategy picks among the rest
    picked = choose(strategy, n - len(first), labelled, probabilities, thresholds, features, seed) \
        if records and n > len(first) else np.zeros(0, int)
    return ([Suggestion(i, records[row[i]].relpath, float(doubt[row[i]]), name) for i, name in first]
            + [Suggestion(records[i].id, records[i].relpath, float(doubt[i])) for i in picked])
