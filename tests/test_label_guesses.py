"""A new label's first guesses from its name: on the real sample photos, labels the bundled model
does not know (rocket, astronaut) get their photo suggested first, before any confirmation; the
guesses give way once enough photos are confirmed; the person's prompts are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.jobs.project import scan_job
from core.jobs.suggest import SuggestRequest, suggest_job
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.label_guesses import (
    FIRST_ROUNDS_POSITIVES,
    add_prompt,
    first_round_picks,
    label_prompts,
    saved_prompts,
    unknown_labels,
)


def test_new_labels_get_their_photo_suggested_first_from_their_names(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(scan_job(store))
    store.ensure_labels(["cat", "rocket", "astronaut"])  # the bundled model knows cat only
    outcome = run_to_end(suggest_job(store, SuggestRequest(n=4)))
    # the labels take turns, each its best guess first ("a photo of astronaut" alone scores the
    # rocket photo higher: the turn before took it)
    first = [(s.guess, s.relpath) for s in outcome.suggestions[:2]]
    assert first == [("rocket", "rocket.jpg"), ("astronaut", "astronaut.jpg")]
    assert len({s.image_id for s in outcome.suggestions}) == 4
    assert any("rocket" in note for note in outcome.notes.info)
    without = run_to_end(suggest_job(store, SuggestRequest(n=4, guesses=False)))
    assert not any(s.guess for s in without.suggestions)
    store.close()


def test_guesses_give_way_once_a_label_has_enough_confirmed_photos() -> None:
    guesses = {"snow": (np.arange(10), np.linspace(1, 0, 10)), "boat": (np.arange(10), np.linspace(0, 1, 10))}
    confirmed = {i: {"snow": True} for i in range(20, 20 + FIRST_ROUNDS_POSITIVES - 1)}
    assert first_round_picks(guesses, confirmed, 4) == [(0, "snow"), (9, "boat"), (1, "snow"), (8, "boat")]
    confirmed[99] = {"snow": True}  # the fifth
    assert [name for _, name in first_round_picks(guesses, confirmed, 4)] == ["boat"] * 4
    assert first_round_picks(guesses, {9: {"boat": False}}, 2, candidates={0, 1, 8}) == [(0, "snow"), (8, "boat")]


def test_a_persons_prompts_are_kept_beside_the_default_one(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    assert label_prompts("snow")[0] == "a photo of snow" and "snow" in label_prompts("snow")
    assert add_prompt(store, "snow", " a snowy mountain ")[-1] == "a snowy mountain"
    assert saved_prompts(store) == {"snow": ["a snowy mountain"]}
    store.ensure_labels(["person", "snow"])
    assert [label.name for label in unknown_labels(store.labels(), ["person", "cat"])] == ["snow"]
    store.close()
