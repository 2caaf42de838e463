"""Whether a newly trained model replaces the one in use: never a worse one without being asked.

Both are scored the same way on the person's confirmed photos: the model in use on the photos it
never trained on, the new one out of fold on the same photos (cross-validation never lets a
photo score the model it trained), with the spread over the folds. The new model is taken when
it is at least as good; otherwise it is kept as a candidate and the person is told why, in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.learn.metrics import samples_f1

POLICIES = ("better", "always", "never")  # take the new model when at least as good; always; never
MIN_PHOTOS = 5  # fewer photos than this to compare on: the scores say nothing, so the new model is taken


@dataclass(frozen=True)
class Comparison:
    """The two scores on the same confirmed photos (samples F1 over the labels the person decided)."""

    new_score: float
    new_spread: float
    current_score: float | None  # None: the model in use could not be scored on photos it never saw
    current_spread: float
    photos: int
    how: str = "on your photos it never trained on"  # how the current model's score was taken, in words

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Verdict:
    activate: bool
    sentence: str


def masked_scores(truth: np.ndarray, predicted: np.ndarray, decided: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """Samples F1 over the decided cells only (undecided ones count neither way), pooled, and the
    standard deviation of the per-fold scores."""
    truth, predicted = truth & decided, predicted & decided
    per_fold = [samples_f1(truth[folds == f], predicted[folds == f]) for f in np.unique(folds)]
    return samples_f1(truth, predicted), float(np.std(per_fold)) if len(per_fold) > 1 else 0.0


def decide_activation(comparison: Comparison, policy: str = "better") -> Verdict:
    """The one rule for whether a new model becomes the project's, with the sentence that says why."""
    if policy not in POLICIES:
        raise ValueError(f"unknown activation policy {policy!r}; use one of {', '.join(POLICIES)}")
    new = f"{comparison.new_score:.2f}"
    spread = f" (+/- {comparison.new_spread:.2f} over the folds)" if comparison.new_spread else ""
    on = f"on your {comparison.photos} confirmed photos"
    if comparison.current_score is None or comparison.photos < MIN_PHOTOS:
        scored = "" if comparison.current_score is None else f" (too few photos to compare: {comparison.photos})"
        if policy == "never":
            return Verdict(False, f"kept the current model as asked; the new one scored {new}{spread} {on}{scored}")
        return Verdict(True, f"the new model is now in use: {new}{spread} {on}; the current model could not be "
                             f"scored the same way{scored}")
    current = f"{comparison.current_score:.2f}"
    better = comparison.new_score >= comparison.current_score - 1e-9
    figures = f"{new}{spread} against {current} {on} (the current model {comparison.how})"
    if policy == "always" or (policy == "better" and better):
        asked = " as asked" if policy == "always" and not better else ""
        return Verdict(True, f"the new model is now in use{asked}: {figures}")
    if policy == "never":
        return Verdict(False, f"kept the current model as asked: {figures}")
    return Verdict(False, f"kept the current model: {current} against {new}{spread} for the new one, {on}; the new "
                          f"one is kept as a candidate (to use it anyway: --activate always, or 'Use selected model' in "
                          f"the Training tab)")
