"""The search box's core, without Qt: a project's word index built once and refreshed photo by
photo, its ranking on the real sample photos, and the rule that orders what the box shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from core.jobs.project import scan_job
from core.jobs.search import SearchRequest, search_job
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.word_ranking import GrowingIndex, ProjectWords, order_by_words


def test_the_index_is_built_once_and_refreshed_only_for_new_photos(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(scan_job(store))
    words = ProjectWords(store)
    first = run_to_end(words.refresh())
    assert (first.indexed, first.embedded) == (4, 4)
    ids = store.image_ids_by_relpath()
    assert words.rank("a cat", 4)[0] == ids["chelsea.jpg"]
    assert words.rank("an astronaut in a space suit", 4)[0] == ids["astronaut.jpg"]
    assert words.rank("a rocket", 1) == [ids["rocket.jpg"]]
    again = run_to_end(words.refresh())
    assert (again.indexed, again.embedded) == (4, 0)
    shutil.copyfile(sample_folder / "chelsea.jpg", sample_folder / "cat2.jpg")
    run_to_end(scan_job(store))
    grown = run_to_end(words.refresh())
    assert (grown.indexed, grown.embedded) == (5, 1)
    new = store.image_ids_by_relpath()["cat2.jpg"]
    assert set(words.rank("a cat", 2)) == {ids["chelsea.jpg"], new}
    store.close()


def test_a_new_window_reads_the_vectors_the_command_line_kept(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(scan_job(store))
    run_to_end(search_job(store, SearchRequest("a cat", 1)))
    outcome = run_to_end(ProjectWords(store).refresh())
    assert (outcome.indexed, outcome.embedded) == (4, 0)
    store.close()


def test_scores_of_several_prompts_rank_the_photo_they_describe_first(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(scan_job(store))
    words = ProjectWords(store)
    run_to_end(words.refresh())
    image_ids, scores = words.scores(["a photo of a cup", "a cup of coffee"])
    assert int(image_ids[int(np.argmax(scores))]) == store.image_ids_by_relpath()["coffee.jpg"]
    store.close()


def test_a_growing_index_replaces_rows_and_keeps_old_views_intact() -> None:
    index = GrowingIndex(2)
    index.put([7, 8], np.array([[1, 0], [0, 1]], np.float32), ["a", "b"])
    before = index.view()
    index.put([8] + list(range(100, 1200)), np.tile(np.array([[1, 0]], np.float32), (1101, 1)), ["c"] * 1101)
    assert len(before) == 2 and before.matrix[1].tolist() == [0, 1]  # grown by copy
    assert len(index) == 1102 and index.digests[8] == "c"
    view = index.view()
    assert view.matrix[list(view.image_ids).index(8)].tolist() == [1, 0]


def test_caption_hits_come_first_then_the_rest_best_first_and_unranked_last() -> None:
    candidates = [1, 2, 3, 4, 5, 6]  # the photos the other filters let through, in name order
    ranked = [9, 5, 3, 1, 2]  # best first; 9 is filtered out, 4 and 6 not embedded yet
    assert order_by_words(candidates, {1, 6}, ranked) == [1, 6, 5, 3, 2, 4]
    assert order_by_words(candidates, set(), []) == candidates
