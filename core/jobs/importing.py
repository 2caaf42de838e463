"""`import`: captions and confirmed labels from a CSV, then `.txt` sidecars."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.formats.captions_io import import_rows, load_label_map, read_caption_csv, read_sidecar_captions
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore

MAX_LISTED = 20  # rejected CSV rows listed one by one; the rest are counted
NOT_IN_FOLDER = "no image "  # the reason given for a row naming a photo the folder lacks


@dataclass(frozen=True)
class ImportRequest:
    captions: Path | None = None  # CSV with ImageID and Labels and/or Caption columns
    label_map: Path | None = None  # JSON id -> name, for CSVs that use label ids
    labels: bool = True  # import the Labels column as confirmed decisions
    keep_typed: bool = False  # keep captions a person typed
    complete: str = "file"  # which labels a row's Labels cell decides (core.formats.captions_io.import_rows)


@dataclass
class ImportOutcome:
    captions: int = 0
    labelled: int = 0
    sidecars: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    messages: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # what happened to the person's decisions, in words


def import_job(store: ProjectStore, request: ImportRequest, cancel: CancelToken | None = None) -> Job[ImportOutcome]:
    outcome = ImportOutcome()
    yield Progress("import", 0, 1, message="reading captions")
    if request.captions is not None:
        label_map = load_label_map(request.label_map) if request.label_map else None
        report = import_rows(store, read_caption_csv(request.captions), label_map,
                             overwrite_captions=not request.keep_typed, import_labels=request.labels,
                             complete=request.complete)
        outcome.captions, outcome.labelled, outcome.rejected = report.captions, report.labelled, report.rejected
        outcome.decisions = report.summary() if request.labels else []
        absent = [(line, reason) for line, reason in report.rejected if reason.startswith(NOT_IN_FOLDER)]
        other = [(line, reason) for line, reason in report.rejected if not reason.startswith(NOT_IN_FOLDER)]
        if absent:  # one line, not one a row: a CSV of a whole set imported into part of it
            line, reason = absent[0]
            outcome.messages.append(f"{request.captions}: {len(absent)} rows name photos that are not in the folder "
                                    f"(for example line {line}: {reason})")
        outcome.messages += [f"{request.captions}, line {line}: {reason}" for line, reason in other[:MAX_LISTED]]
        if len(other) > MAX_LISTED:
            outcome.messages.append(f"... and {len(other) - MAX_LISTED} more rejected rows")
    if cancel is not None:
        cancel.raise_if_cancelled()
    have = store.captions()
    sidecars = {i: t for i, t in read_sidecar_captions(store).items() if i not in have}
    if sidecars:
        store.set_captions(sidecars.items(), "imported")
    outcome.sidecars = len(sidecars)
    yield Progress("import", 1, 1)
    return outcome


def import_summary(request: ImportRequest, outcome: ImportOutcome) -> list[str]:
    lines = []
    if request.captions is not None:
        lines.append(f"imported {outcome.captions} captions, {outcome.labelled} labelled rows, "
                     f"{len(outcome.rejected)} rows rejected")
        lines += outcome.decisions
    if outcome.sidecars:
        lines.append(f"imported {outcome.sidecars} captions from .txt sidecars")
    return lines
