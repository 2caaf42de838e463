"""The one rule for which labels a photo has: the person's decision for a label, else the
model's decision, at the model's thresholds or at one threshold the person chose.

The grid, the detail panel, every export and the CLI call these functions, so what is shown
and what is exported never disagree (they did: a slider at 0.09 showed `person, bench` while the
export wrote `person`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FALLBACK = 2  # stored `predicted` code of a label given only because no label passed its threshold
Prediction = tuple[float, bool]  # (probability, decided present at the model's thresholds)


def is_predicted(prediction: Prediction | None, threshold: float | None = None) -> bool:
    """The model's call for one label; `threshold` replaces the model's own when given."""
    if prediction is None:
        return False
    probability, decided = prediction
    return decided if threshold is None else probability >= threshold


def has_label(name: str, predictions: Mapping[str, Prediction], confirmed: Mapping[str, bool],
                threshold: float | None = None) -> bool:
    """Whether a photo has one label: the same rule as `photo_labels`, for one name (a label
    filter over a million photos asks this, not for each photo's whole list)."""
    return confirmed.get(name, is_predicted(predictions.get(name), threshold))


def photo_labels(order: Sequence[str], predictions: Mapping[str, Prediction], confirmed: Mapping[str, bool],
                 threshold: float | None = None) -> list[str]:
    """The labels a photo has, in vocabulary order."""
    return [n for n in order if has_label(n, predictions, confirmed, threshold)]
