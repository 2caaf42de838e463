"""The project store: rescans, edits that survive reopening, atomic batches."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from core.progress import run_to_end
from core.store import ProjectStore
from core.sync import sync_folder


def open_synced(folder: Path) -> ProjectStore:
    store = ProjectStore(folder)
    run_to_end(sync_folder(store))
    return store


def test_store_lives_in_the_folder_and_survives_reopen(sample_folder: Path) -> None:
    store = open_synced(sample_folder)
    assert store.db_path == sample_folder.resolve() / ".tagline" / "project.db"
    ids = store.image_ids_by_relpath()
    assert sorted(ids) == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    store.set_caption(ids["chelsea.jpg"], "a cat", "typed")
    store.confirm(ids["chelsea.jpg"], "cat", True)
    store.close()
    reopened = ProjectStore(sample_folder)
    assert reopened.caption(ids["chelsea.jpg"]) == ("a cat", "typed")
    assert reopened.confirmations() == {ids["chelsea.jpg"]: {"cat": True}}
    assert reopened.integrity_ok()


def test_rescan_finds_new_changed_removed_and_moved(sample_folder: Path) -> None:
    store = open_synced(sample_folder)
    ids = store.image_ids_by_relpath()
    store.set_caption(ids["coffee.jpg"], "coffee cup", "typed")
    (sample_folder / "sub").mkdir()
    shutil.copy(sample_folder / "astronaut.jpg", sample_folder / "sub" / "copy.jpg")
    (sample_folder / "coffee.jpg").rename(sample_folder / "sub" / "renamed.jpg")
    (sample_folder / "rocket.jpg").unlink()
    report = run_to_end(sync_folder(store))
    assert report.added == ["sub/copy.jpg"]
    assert report.moved == [("coffee.jpg", "sub/renamed.jpg")]
    assert report.removed == ["rocket.jpg"]
    now = store.image_ids_by_relpath()
    assert now["sub/renamed.jpg"] == ids["coffee.jpg"]  # the caption followed the file
    assert store.caption(now["sub/renamed.jpg"]) == ("coffee cup", "typed")
    second = run_to_end(sync_folder(store))
    assert (second.added, second.removed, second.unchanged) == ([], [], 4)


def test_read_only_folder_keeps_project_in_user_data(sample_folder: Path) -> None:
    sample_folder.chmod(0o555)
    try:
        store = ProjectStore(sample_folder)
        assert sample_folder not in store.db_path.parents
        assert not (sample_folder / ".tagline").exists()
    finally:
        sample_folder.chmod(0o755)


def test_failed_batch_leaves_nothing_half_written(sample_folder: Path) -> None:
    store = open_synced(sample_folder)
    ids = list(store.image_ids_by_relpath().values())
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction():
            store.set_captions([(ids[0], "first")], "imported")
            store.set_captions([(999_999, "no such image")], "imported")
    assert store.captions() == {}


def test_predictions_and_embeddings_round_trip(sample_folder: Path) -> None:
    store = open_synced(sample_folder)
    ids = sorted(store.image_ids_by_relpath().values())
    probs = np.array([[0.9, 0.1]] * len(ids), np.float32)
    store.save_predictions(ids, probs, probs > 0.5, ["cat", "traffic light"], "v1", ["k"] * len(ids))
    assert store.predictions()[ids[0]] == {"cat": (pytest.approx(0.9), True), "traffic light": (pytest.approx(0.1), False)}
    assert store.prediction_inputs("v1") == {i: "k" for i in ids}
    vector = np.linspace(-1, 1, 8, dtype=np.float32)
    store.save_embeddings("image:x", [(ids[0], "d", vector)])
    key, cached = store.cached_embeddings("image:x")[ids[0]]
    assert key == "d" and np.allclose(cached, vector, atol=1e-3)
