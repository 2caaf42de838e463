"""A new label's first guesses from its name: on the real sample photos, labels the bundled model
does not know (rocket, astronaut) get their photo suggested first, before any confirmation; the
guesses give way once enough photos are confirmed; the person's prompts are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def test_a_label_described_in_other_words_keeps_them_through_a_rename(sample_folder: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main
    from core.tagging.label_guesses import rename_label, set_prompts

    assert main(["-q", "scan", str(sample_folder)]) == 0
    with ProjectStore(sample_folder) as store:
        store.ensure_labels(["traffic_light"])
    capsys.readouterr()
    assert main(["-q", "describe", str(sample_folder), "traffic_light", "a", "red", "light", "at", "a", "crossing"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "a photo of traffic light" and printed[-1] == "a red light at a crossing"
    with ProjectStore(sample_folder) as store:
        rename_label(store, "traffic_light", "signal")
        assert saved_prompts(store) == {"signal": ["a red light at a crossing"]}
        assert set_prompts(store, "signal", ["", " a red light at a crossing ", "a green light"])[-2:] == [
            "a red light at a crossing", "a green light"]
    assert main(["-q", "describe", str(sample_folder), "signal", "--clear"]) == 0
    assert capsys.readouterr().out.splitlines() == label_prompts("signal")
    with ProjectStore(sample_folder) as store:
        assert saved_prompts(store) == {}
