"""`suggest`: the photos to confirm next, those the project's model is least sure of."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import TaglineError
from core.formats.exporting import atomic_write_text, check_output_path, csv_text
from core.jobs.project import Notes, project_model
from core.progress import CancelToken, Job
from core.store.database import ProjectStore
from core.tagging.classifier import Classifier
from core.tagging.label_guesses import label_prompts, saved_prompts, unknown_labels
from core.tagging.suggest import STRATEGY, Suggestion, suggest_next
from core.tagging.word_ranking import ProjectWords


@dataclass(frozen=True)
class SuggestRequest:
    n: int = 50
    model: Path | None = None  # None: the project's model, else the bundled one
    strategy: str = STRATEGY
    out: Path | None = None  # write ImageID,Uncertainty as CSV
    guesses: bool = True  # labels the model does not know: their first photos guessed from their names


@dataclass
class SuggestOutcome:
    suggestions: list[Suggestion]
    notes: Notes = field(default_factory=Notes)


def new_label_guesses(store: ProjectStore, model_labels: list[str], notes: Notes,
                      cancel: CancelToken | None = None) -> Job[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """label -> (image ids, scores from its prompts) for the labels the model does not know."""
    unknown = unknown_labels(store.labels(), model_labels)
    if not unknown:
        return {}
    words = ProjectWords(store)
    try:
        yield from words.refresh(cancel)
    except TaglineError as exc:  # no alignment installed: suggest as before, and say why
        notes.warnings.append(f"no first guesses for {', '.join(label.name for label in unknown)}: {exc}")
        return {}
    prompts = saved_prompts(store)
    notes.info.append("first guesses from their names for " + ", ".join(label.name for label in unknown))
    return {label.name: words.scores(label_prompts(label.name, prompts.get(label.name, []))) for label in unknown}


def suggest_job(store: ProjectStore, request: SuggestRequest, cancel: CancelToken | None = None) -> Job[SuggestOutcome]:
    notes = Notes()
    classifier = Classifier(project_model(store, request.model, notes))
    if request.out:
        check_output_path(store, request.out)
    guesses = (yield from new_label_guesses(store, classifier.labels, notes, cancel)) if request.guesses else {}
    suggestions = yield from suggest_next(store, classifier, request.n, request.strategy, cancel, guesses=guesses)
    if request.out:
        atomic_write_text(request.out, csv_text(["ImageID", "Uncertainty"],
                                                ([s.relpath, f"{s.uncertainty:.3f}"] for s in suggestions)))
        notes.info.append(f"wrote {len(suggestions)} photos to label next to {request.out}")
    return SuggestOutcome(suggestions, notes)
