"""`suggest`: the photos to confirm next, those the project's model is least sure of."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.formats.exporting import atomic_write_text, check_output_path, csv_text
from core.jobs.project import Notes, project_model
from core.progress import CancelToken, Job
from core.store.database import ProjectStore
from core.tagging.classifier import Classifier
from core.tagging.suggest import STRATEGY, Suggestion, suggest_next


@dataclass(frozen=True)
class SuggestRequest:
    n: int = 50
    model: Path | None = None  # None: the project's model, else the bundled one
    strategy: str = STRATEGY
    out: Path | None = None  # write ImageID,Uncertainty as CSV


@dataclass
class SuggestOutcome:
    suggestions: list[Suggestion]
    notes: Notes = field(default_factory=Notes)


def suggest_job(store: ProjectStore, request: SuggestRequest, cancel: CancelToken | None = None) -> Job[SuggestOutcome]:
    notes = Notes()
    classifier = Classifier(project_model(store, request.model, notes))
    if request.out:
        check_output_path(store, request.out)
    suggestions = yield from suggest_next(store, classifier, request.n, request.strategy, cancel)
    if request.out:
        atomic_write_text(request.out, csv_text(["ImageID", "Uncertainty"],
                                                ([s.relpath, f"{s.uncertainty:.3f}"] for s in suggestions)))
        notes.info.append(f"wrote {len(suggestions)} photos to label next to {request.out}")
    return SuggestOutcome(suggestions, notes)
