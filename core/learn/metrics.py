"""Multi-label metrics and decision rules, in plain numpy (no sklearn at run time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def decide(probabilities: np.ndarray, thresholds: np.ndarray | float, top1_fallback: bool = True) -> np.ndarray:
    """Labels above threshold; with `top1_fallback`, the most likely label when none passes.

    Every photo in a labelled collection carries at least one label, so predicting nothing
    is always wrong; the fallback measurably raises samples F1.
    """
    chosen = probabilities >= np.asarray(thresholds, dtype=probabilities.dtype)
    if top1_fallback and len(probabilities):
        empty = ~chosen.any(axis=1)
        chosen[empty, probabilities[empty].argmax(axis=1)] = True
    return chosen


def thresholds_by_row(base: np.ndarray, no_caption: Sequence[float] | np.ndarray | None,
                      has_caption: np.ndarray) -> np.ndarray:
    """(photos, labels) thresholds: `base` per label, `no_caption` (when given) for photos
    without a caption."""
    rows = np.tile(np.asarray(base, np.float32), (len(has_caption), 1))
    if no_caption is not None and len(no_caption):
        rows[np.asarray(has_caption) == 0] = np.asarray(no_caption, np.float32)
    return rows


def samples_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = (truth & predicted).sum(axis=1)
    denom = truth.sum(axis=1) + predicted.sum(axis=1)
    scores = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)
    return float(scores.mean()) if len(scores) else 0.0


@dataclass(frozen=True)
class Report:
    samples_f1: float
    micro_f1: float
    macro_f1: float
    exact_match: float
    hamming_loss: float
    per_label: dict[str, dict[str, float]]  # name -> precision, recall, f1, support

    def as_dict(self) -> dict[str, object]:
        return {
            "samples_f1": self.samples_f1, "micro_f1": self.micro_f1, "macro_f1": self.macro_f1,
            "exact_match": self.exact_match, "hamming_loss": self.hamming_loss,
            "per_label": self.per_label,
        }


def evaluate(truth: np.ndarray, predicted: np.ndarray, names: list[str]) -> Report:
    truth, predicted = truth.astype(bool), predicted.astype(bool)
    tp = (truth & predicted).sum(axis=0).astype(float)
    fp = (~truth & predicted).sum(axis=0).astype(float)
    fn = (truth & ~predicted).sum(axis=0).astype(float)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    present = (tp + fn) > 0  # macro F1 over labels that occur in the truth
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    return Report(
        samples_f1=samples_f1(truth, predicted),
        micro_f1=float(micro),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        exact_match=float((truth == predicted).all(axis=1).mean()) if len(truth) else 0.0,
        hamming_loss=float((truth != predicted).mean()) if truth.size else 0.0,
        per_label={
            name: {"precision": float(precision[j]), "recall": float(recall[j]),
                   "f1": float(f1[j]), "support": int(tp[j] + fn[j])}
            for j, name in enumerate(names)
        },
    )


def best_global_threshold(truth: np.ndarray, probabilities: np.ndarray,
                          top1_fallback: bool = True) -> tuple[float, float]:
    """The single threshold that maximises samples F1 on this split (deciding with or without
    the top-1 fallback) and that score."""
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    scores = [samples_f1(truth, decide(probabilities, t, top1_fallback)) for t in grid]
    best = int(np.argmax(scores))
    return float(grid[best]), float(scores[best])


def best_label_thresholds(truth: np.ndarray, probabilities: np.ndarray, fallback: float) -> np.ndarray:
    """Per-label thresholds maximising each label's F1; rare labels keep the global one."""
    grid = np.arange(0.05, 0.96, 0.01)
    thresholds = np.full(truth.shape[1], fallback, dtype=np.float32)
    for j in range(truth.shape[1]):
        positives = truth[:, j].astype(bool)
        if positives.sum() < 10:
            continue
        chosen = probabilities[:, j][:, None] >= grid[None, :]
        tp = (chosen & positives[:, None]).sum(axis=0)
        f1 = 2 * tp / (chosen.sum(axis=0) + positives.sum())
        thresholds[j] = float(grid[int(np.argmax(f1))])
    return thresholds
