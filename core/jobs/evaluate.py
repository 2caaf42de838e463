"""`evaluate`: score a predictions CSV against a truth CSV."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.learn.metrics import Report
from core.progress import CancelToken, Job, Progress
from core.tagging.evaluation import evaluate_csvs


@dataclass(frozen=True)
class EvaluateRequest:
    predictions: Path
    truth: Path
    label_map: Path | None = None


@dataclass
class EvaluateOutcome:
    report: Report
    notes: list[str] = field(default_factory=list)


def evaluate_job(request: EvaluateRequest, cancel: CancelToken | None = None) -> Job[EvaluateOutcome]:
    yield Progress("evaluate", 0, 1)
    report, notes = evaluate_csvs(request.predictions, request.truth, request.label_map)
    yield Progress("evaluate", 1, 1)
    return EvaluateOutcome(report, notes)
