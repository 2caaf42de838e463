"""What a label's name says about a photo, as a prior the trainer starts from.

The image-text alignment (`core.models.alignment`) scores every photo against a label's prompts
before any photo is confirmed; a model trained on five confirmed photos knows far less than that
(bench_label_guesses: 0.06 mean average precision against 0.57 for the guesses). So the linear
rung reads the zero-shot score as one more input, standardised per label over the project's
photos, with one shared scale that starts at `PRIOR_WEIGHT` and is pulled back there (`PRIOR_WORTH`),
and the ladder adds strengths strong enough that the label is ranked by its name alone, preferred
when the folds cannot tell (`core.learn.ladder`): with few photos the prior carries the label,
with many the photos decide. The numbers were chosen on comp5329's validation part
(bench/bench_label_prior.py, docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

PRIOR_WEIGHT = 3.0  # the shared scale's start: logit units per standardised unit of zero-shot score
PRIOR_WORTH = 2.5  # how strongly it is pulled there (the penalty (scale - start)^2 x worth / photos)


@dataclass(frozen=True)
class LabelPrior:
    """The alignment's photo side and each label's prompts in the aligned space."""

    alignment_key: str  # `core.models.alignment.Alignment.key`: its version and the features' precision
    image_weight: np.ndarray  # (image dim, joint dim): standardisation folded in
    image_bias: np.ndarray  # (joint dim,)
    prompts: np.ndarray  # (labels, joint dim): the mean of each label's prompt vectors, unit length
    weight: float = PRIOR_WEIGHT
    worth: float = PRIOR_WORTH
    # the scores' mean and spread per label over the project's photos (None: over the photos trained on, which
    # the first rounds pick from the best guesses, so their spread is narrower than the project's)
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.image_weight.shape[1])

    def subset(self, columns: Sequence[int]) -> LabelPrior:
        picked = list(columns)
        return replace(self, prompts=self.prompts[picked], mean=None if self.mean is None else self.mean[picked],
                       std=None if self.std is None else self.std[picked])

    def with_statistics(self, image: np.ndarray) -> LabelPrior:
        """The prior standardised over these photos (the project's)."""
        return self.standardised_by(self.scores(image))

    def standardised_by(self, scores: np.ndarray) -> LabelPrior:
        """The prior standardised by these (photos, labels) scores' mean and spread."""
        return replace(self, mean=scores.mean(0), std=spread(scores))

    def statistics(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread per label: the project's where known, else these photos'."""
        if self.mean is not None and self.std is not None:
            return self.mean, self.std
        scores = self.scores(image)
        return scores.mean(0), spread(scores) if len(image) > 1 else np.ones(scores.shape[1], np.float32)

    def scores(self, image: np.ndarray) -> np.ndarray:
        """(photos, labels) cosine of each photo with each label's prompts."""
        projected = np.asarray(image, np.float32) @ self.image_weight + self.image_bias
        projected /= np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-8)
        return np.asarray(projected @ self.prompts.T, np.float32)


def spread(scores: np.ndarray) -> np.ndarray:
    """Each label's standard deviation over the photos, at least 1e-3."""
    return np.asarray(np.maximum(scores.std(0), 1e-3))
