"""The project store: rescans, edits that survive reopening, atomic batches."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.errors import StoreError
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.snapshot import ImageColumns
from core.store.sync import sync_folder


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
    shutil.copy(sample_folder / "chelsea.jpg", sample_folder / "astronaut.jpg")  # edited in place
    report = run_to_end(sync_folder(store))
    assert report.changed == ["astronaut.jpg"]  # its old digest is read for it alone
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
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        with store.transaction():
            store.set_captions([(ids[0], "first")], "imported")
            store.set_captions([(999_999, "no such image")], "imported")
    assert store.captions() == {}


def test_predictions_and_embeddings_round_trip(sample_folder: Path) -> None:
    store = open_synced(sample_folder)
    ids = sorted(store.image_ids_by_relpath().values())
    probs = np.array([[0.9, 0.1]] * len(ids), np.float32)
    store.save_predictions(ids, probs, probs > 0.5, ["cat", "traffic light"], "v1", ["k"] * len(ids))
    assert store.predictions("v1")[ids[0]] == {"cat": (pytest.approx(0.9), True), "traffic light": (pytest.approx(0.1), False)}
    assert store.prediction_inputs("v1") == {i: "k" for i in ids}
    vector = np.linspace(-1, 1, 8, dtype=np.float32)
    store.save_embeddings("image:x", [(ids[0], "d", vector)])
    key, cached = store.cached_embeddings("image:x")[ids[0]]
    assert key == "d" and np.allclose(cached, vector, atol=1e-3)


def label_tables(store: ProjectStore) -> tuple[list[tuple], ...]:
    return (store.query("SELECT * FROM labels ORDER BY id"),
            store.query("SELECT * FROM confirmations ORDER BY image_id, label_id"),
            store.query("SELECT * FROM predictions ORDER BY image_id, label_id"))


def test_deleted_label_is_restored_exactly(sample_folder: Path) -> None:
    from core.errors import StoreError

    store = open_synced(sample_folder)
    ids = sorted(store.image_ids_by_relpath().values())
    probs = np.linspace(0.1, 0.9, len(ids) * 3, dtype=np.float32).reshape(len(ids), 3)
    store.save_predictions(ids, probs, probs > 0.5, ["person", "cat", "cup"], "v1", [f"k{i}" for i in ids])
    store.ensure_labels(["cat"], ["17"])
    store.set_hotkey("cat", "c")
    store.confirm_many([(ids[0], "cat", True), (ids[1], "cat", False), (ids[0], "person", True)])
    before = label_tables(store)

    snapshot = store.delete_label("cat")
    assert snapshot is not None and (snapshot.label.name, snapshot.label.hotkey, snapshot.label.external_id) == ("cat", "c", "17")
    assert len(snapshot.confirmations) == 2 and len(snapshot.predictions) == len(ids)
    assert [label.name for label in store.labels()] == ["person", "cup"]
    assert store.confirmations() == {ids[0]: {"person": True}}
    store.restore_label(snapshot)
    assert label_tables(store) == before  # same id, position, hotkey, external id, every row
    assert store.delete_label("no such label") is None

    # A label re-created meanwhile (as classifying does) is not overwritten: nothing is restored.
    snapshot = store.delete_label("cat")
    assert snapshot is not None
    store.ensure_labels(["cat"])
    with pytest.raises(StoreError, match="exists again"):
        store.restore_label(snapshot)
    assert store.confirmations() == {ids[0]: {"person": True}}

    # The id went to another label: the rows follow a fresh id.
    store.delete_label("cat")
    cup = store.delete_label("cup")
    assert cup is not None
    store.ensure_labels(["dog", "bird"])
    assert store.labels()[-1].id == cup.label.id  # SQLite hands out the freed id again
    store.restore_label(cup)
    assert set(store.predictions("v1")[ids[0]]) == {"person", "cup"}
    assert store.predictions("v1")[ids[2]]["cup"] == (pytest.approx(float(probs[2, 2])), bool(probs[2, 2] > 0.5))
    assert store.integrity_ok()


def test_rename_label_keeps_its_rows_and_refuses_a_taken_name(sample_folder: Path) -> None:
    from core.errors import StoreError

    store = open_synced(sample_folder)
    image = sorted(store.image_ids_by_relpath().values())[0]
    store.confirm_many([(image, "cat", True), (image, "dog", False)])
    store.rename_label("cat", "feline")
    assert store.confirmations() == {image: {"feline": True, "dog": False}}
    with pytest.raises(StoreError, match="exists already"):
        store.rename_label("feline", "dog")
    with pytest.raises(StoreError, match="no label"):
        store.rename_label("cat", "kitten")
    store.rename_label("feline", "cat")
    assert store.confirmations() == {image: {"cat": True, "dog": False}}


def test_full_disk_gives_a_clear_error_and_keeps_every_earlier_edit(sample_folder: Path) -> None:
    """SQLite's page limit stands in for a full disk: the same SQLITE_FULL error, the same path."""
    store = open_synced(sample_folder)
    ids = sorted(store.image_ids_by_relpath().values())
    store.set_caption(ids[0], "saved before the disk filled", "typed")
    store.confirm(ids[0], "cat", True)
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StoreError, match="disk is full.*earlier work is intact"):
        store.set_captions([(i, "x" * 200_000) for i in ids], "typed")  # needs new pages
    assert store.captions() == {ids[0]: ("saved before the disk filled", "typed")}
    assert store.confirmations() == {ids[0]: {"cat": True}}
    assert store.integrity_ok()
    store.query(f"PRAGMA max_page_count={pages * 1000}")  # space freed: the same edit now lands
    store.set_captions([(i, "x" * 200_000) for i in ids], "typed")
    assert len(store.captions()) == len(ids)


def test_cached_embeddings_reads_only_the_images_asked_for(sample_folder: Path) -> None:
    store = open_synced(sample_folder)
    ids = sorted(store.image_ids_by_relpath().values())
    store.save_embeddings("enc", [(i, f"k{i}", np.full(4, i, np.float32)) for i in ids])
    assert set(store.cached_embeddings("enc")) == set(ids)
    some = store.cached_embeddings("enc", ids[1:3])
    assert set(some) == set(ids[1:3]) and some[ids[1]][0] == f"k{ids[1]}" and some[ids[1]][1][0] == ids[1]
    assert store.cached_embeddings("enc", []) == {} and store.cached_embeddings("other", ids) == {}


def test_images_come_page_by_page_in_natural_order(sample_folder: Path) -> None:
    """2.jpg before 10.jpg, folder by folder, whatever order the files were added or moved in;
    the pages join up with nothing lost or repeated."""
    photo = sample_folder / "chelsea.jpg"
    for name in ("img10.jpg", "img9.jpg", "b/2.jpg", "a/10.jpg", "a/9.jpg", "A b/1.jpg"):
        (sample_folder / name).parent.mkdir(exist_ok=True)
        shutil.copy(photo, sample_folder / name)
    store = open_synced(sample_folder)
    (sample_folder / "img10.jpg").rename(sample_folder / "img1.jpg")  # a move keeps the record, takes the new place
    run_to_end(sync_folder(store))
    expected = ["a/9.jpg", "a/10.jpg", "A b/1.jpg", "astronaut.jpg", "b/2.jpg", "chelsea.jpg", "coffee.jpg",
                "img1.jpg", "img9.jpg", "rocket.jpg"]
    assert [r.relpath for r in store.images()] == expected
    pages, after = [], None
    while True:
        page, after = store.shown_page(after, 3)
        pages.append([r[1] for r in page])
        if after is None:
            break
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert sum(pages, []) == expected


def test_file_rows_are_read_a_chunk_at_a_time_and_all_come(sample_folder) -> None:
    """The rescan reads the known files by id in chunks (the lock is let go between them)."""
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        whole = list(store.file_rows())
        assert len(whole) == 4 and list(store.file_rows(chunk=1)) == whole == sorted(whole)


def test_a_snapshot_holds_the_shown_columns_and_builds_one_record_when_asked(sample_folder: Path) -> None:
    (sample_folder / "sub").mkdir()
    shutil.copy(sample_folder / "chelsea.jpg", sample_folder / "sub" / "2.jpg")
    store = open_synced(sample_folder)
    ids = store.image_ids_by_relpath()
    store.set_reviewed([ids["coffee.jpg"]])
    columns = ImageColumns()
    first, after = store.shown_page(None, 3)
    assert columns.extend(first) == [ids["astronaut.jpg"], ids["chelsea.jpg"], ids["coffee.jpg"]]
    rest, after = store.shown_page(after, 3)
    assert after is None
    assert columns.extend(first + rest) == [ids["rocket.jpg"], ids["sub/2.jpg"]]  # known rows are not appended twice
    assert len(columns) == 5 and columns.ids == [r.id for r in store.images()]
    assert columns.reviewed == {ids["coffee.jpg"]}
    record = {r.relpath: r for r in store.images()}["sub/2.jpg"]
    shown = columns[record.id]
    assert (shown.relpath, shown.size, shown.mtime_ns, shown.raw_path) == ("sub/2.jpg", record.size, record.mtime_ns, None)
    assert shown.stamp == f"{record.size}:{record.mtime_ns}"
    assert store.image_path(shown) == sample_folder / "sub" / "2.jpg"
    assert columns.relpaths([ids["rocket.jpg"], ids["astronaut.jpg"]]) == ["rocket.jpg", "astronaut.jpg"]
    assert ids["rocket.jpg"] in columns and -1 not in columns


def test_a_snapshot_folds_its_names_once_for_text_search(sample_folder: Path) -> None:
    store = open_synced(sample_folder)
    columns = ImageColumns()
    columns.extend(store.shown_page(None, 2)[0])
    assert columns.folded_names(list(columns.ids)) == ["astronaut.jpg", "chelsea.jpg"]
    (sample_folder / "Sub").mkdir()
    shutil.copy(sample_folder / "rocket.jpg", sample_folder / "Sub" / "ROCKET 2.jpg")
    run_to_end(sync_folder(store))
    columns.extend(store.shown_by_relpath(["Sub/ROCKET 2.jpg"]))  # appended after the first fold: folded too
    ids = store.image_ids_by_relpath()
    assert columns.folded_names([ids["Sub/ROCKET 2.jpg"], ids["astronaut.jpg"]]) == ["sub/rocket 2.jpg", "astronaut.jpg"]


def test_a_version_5_store_keeps_decisions_and_labels_and_drops_unkeyed_predictions(sample_folder: Path) -> None:
    """Schema 6 keys predictions by the model's files: version-5 rows (keyed by a version string)
    cannot be told apart and go; labels learn the name models know them by; decisions stay."""
    import sqlite3

    store = open_synced(sample_folder)
    ids = sorted(store.image_ids_by_relpath().values())
    store.ensure_labels(["cat", "dog"], ["17", "18"])
    store.confirm(ids[0], "cat", True)
    store.close()
    path = sample_folder / ".tagline" / "project.db"
    with sqlite3.connect(path) as conn:  # as version 5 left it
        for table in ("predictions", "models", "label_tombstones", "changes"):
            conn.execute(f"DROP TABLE {table}")
        for trigger in [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]:
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("ALTER TABLE labels DROP COLUMN origin")
        conn.execute("CREATE TABLE predictions(image_id INTEGER NOT NULL, label_id INTEGER NOT NULL, "
                     "probability REAL NOT NULL, predicted INTEGER NOT NULL, model_version TEXT NOT NULL, "
                     "inputs_key TEXT NOT NULL DEFAULT '', PRIMARY KEY(image_id, label_id))")
        conn.execute("INSERT INTO predictions VALUES(?, 1, 0.9, 1, 'v1', 'k')", (ids[0],))
        conn.execute("PRAGMA user_version=5")
    conn.close()
    with ProjectStore(sample_folder) as store:
        assert store.query("PRAGMA user_version")[0][0] == 6
        assert [(lab.name, lab.external_id, lab.origin) for lab in store.labels()] == [("cat", "17", "cat"), ("dog", "18", "dog")]
        assert store.confirmations() == {ids[0]: {"cat": True}}
        assert store.query("SELECT COUNT(*) FROM predictions")[0][0] == 0
        store.rename_label("cat", "kitty")
        store.set_caption(ids[1], "after the migration", "typed")  # the change log works on a migrated store
        assert store.changes_since(0) is not None
