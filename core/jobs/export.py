"""`export`: labels and captions as CSV, JSON or caption sidecars, as the grid shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.formats.exporting import collect_rows, export_csv, export_json, export_sidecars
from core.jobs.project import active_model_folder, active_model_key
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore


@dataclass(frozen=True)
class ExportRequest:
    path: Path | None  # the file for csv and json; None for sidecars
    fmt: str = "csv"  # "csv", "json" or "sidecars"
    image_ids: list[int] | None = None  # None: all images
    label_ids: bool = False
    probabilities: bool = False
    overwrite_sidecars: bool = False
    threshold: float | None = None  # one threshold the person chose instead of the model's
    predicted_only: bool = False  # the model's labels alone, confirmations ignored (to score it)


@dataclass
class ExportOutcome:
    written: int  # rows, or caption files for sidecars
    summary: str
    warnings: list[str] = field(default_factory=list)


def export_job(store: ProjectStore, request: ExportRequest, cancel: CancelToken | None = None) -> Job[ExportOutcome]:
    if request.fmt not in ("csv", "json", "sidecars"):
        raise ValueError(f"unknown export format {request.fmt!r}")
    yield Progress("export", 0, 1, message="collecting rows")
    rows = collect_rows(store, active_model_key(store), request.image_ids, request.predicted_only, request.threshold)
    unpredicted = sum(1 for r in rows if not r.predicted)
    notes: list[str] = []
    if unpredicted:
        notes.append(f"{unpredicted} photos have no prediction by the active model ({active_model_folder(store)}), "
                     f"so only the person's decisions are written for them: run classify to decide them")
    if cancel is not None:
        cancel.raise_if_cancelled()
    if request.fmt == "sidecars":
        report = export_sidecars(store, rows, request.overwrite_sidecars)
        outcome = ExportOutcome(report.written, report.summary())
    else:
        if request.path is None:
            from core.errors import TaglineError

            raise TaglineError(f"export to {request.fmt} needs a file to write")
        if request.fmt == "csv":
            count = export_csv(store, request.path, rows, request.label_ids, request.probabilities)
        else:
            count = export_json(store, request.path, rows)
        outcome = ExportOutcome(count, f"exported {count} images to {request.path}")
    outcome.warnings = notes
    yield Progress("export", 1, 1, message=outcome.summary)
    return outcome
