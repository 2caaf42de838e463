"""A rescan that trusts folders whose modification time has not moved (opening a big folder)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder

HOUR_AGO = time.time() - 3600


def make_tree(folder: Path) -> ProjectStore:
    """The sample photos at the root, one in `a`, one in `a/b`, one in `c`, and the project
    (its `.tagline` folder moves the root's time); every folder's time an hour back, so the
    first scan can trust them (a folder changed just now is not)."""
    for sub, photo in (("a", "chelsea.jpg"), ("a/b", "coffee.jpg"), ("c", "rocket.jpg")):
        (folder / sub).mkdir(parents=True)
        shutil.copy(folder / photo, folder / sub / photo)
    store = ProjectStore(folder)
    age_folders(folder)
    return store


def age_folders(folder: Path) -> None:
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir() and ".tagline" not in p.parts)]:
        os.utime(path, (HOUR_AGO, HOUR_AGO))


def present(store: ProjectStore) -> list[str]:
    return [r.relpath for r in store.images()]


def test_a_trusted_rescan_lists_only_folders_whose_time_moved(sample_folder: Path) -> None:
    store = make_tree(sample_folder)
    run_to_end(sync_folder(store))
    stamps = store.folder_stamps()
    assert set(stamps) == {b"", b"a", b"a/b", b"c"} and None not in stamps.values()
    ids = store.image_ids_by_relpath()
    shutil.copy(sample_folder / "astronaut.jpg", sample_folder / "a" / "b" / "new.jpg")  # a/b's time moves
    (sample_folder / "c" / "rocket.jpg").unlink()  # c's time moves
    (sample_folder / "e").mkdir()  # the root's time moves; e is new
    shutil.copy(sample_folder / "astronaut.jpg", sample_folder / "e" / "1.jpg")
    report = run_to_end(sync_folder(store, trust_folders=True))
    assert report.trusted_folders == 1  # a: its own names did not change
    assert sorted(report.added) == ["a/b/new.jpg", "e/1.jpg"] and report.removed == ["c/rocket.jpg"]
    assert present(store) == ["a/b/coffee.jpg", "a/b/new.jpg", "a/chelsea.jpg", "astronaut.jpg", "chelsea.jpg",
                              "coffee.jpg", "e/1.jpg", "rocket.jpg"]
    assert store.image_ids_by_relpath()["a/chelsea.jpg"] == ids["a/chelsea.jpg"]
    # the folders listed just now changed seconds ago: not trusted next time (listed again)
    stamps = store.folder_stamps()
    assert stamps[b"a"] is not None and stamps[b"e"] is None and stamps[b"a/b"] is None
    again = run_to_end(sync_folder(store, trust_folders=True))
    assert (again.added, again.removed, again.changed, again.trusted_folders) == ([], [], [], 1)


def test_a_file_rewritten_in_place_waits_for_the_whole_rescan(sample_folder: Path) -> None:
    store = make_tree(sample_folder)
    run_to_end(sync_folder(store))
    edited = sample_folder / "a" / "chelsea.jpg"
    edited.write_bytes((sample_folder / "rocket.jpg").read_bytes())  # same name, new content
    age_folders(sample_folder)  # as an editor writing in place leaves it: the folder's time unmoved
    quick = run_to_end(sync_folder(store, trust_folders=True))
    assert quick.changed == [] and quick.trusted_folders == 4  # the documented limit of trusting
    whole = run_to_end(sync_folder(store))
    assert whole.changed == ["a/chelsea.jpg"]
    digests = {r.relpath: r.digest for r in store.images()}
    assert digests["a/chelsea.jpg"] == digests["rocket.jpg"]


def test_a_folder_removed_or_renamed_is_seen_by_a_trusted_rescan(sample_folder: Path) -> None:
    store = make_tree(sample_folder)
    run_to_end(sync_folder(store))
    ids = store.image_ids_by_relpath()
    shutil.rmtree(sample_folder / "c")
    (sample_folder / "a").rename(sample_folder / "z")  # a and a/b are gone; z and z/b are new
    report = run_to_end(sync_folder(store, trust_folders=True))
    assert report.removed == ["c/rocket.jpg"]
    assert sorted(report.moved) == [("a/b/coffee.jpg", "z/b/coffee.jpg"), ("a/chelsea.jpg", "z/chelsea.jpg")]
    now = store.image_ids_by_relpath()
    assert now["z/b/coffee.jpg"] == ids["a/b/coffee.jpg"] and now["z/chelsea.jpg"] == ids["a/chelsea.jpg"]
    assert set(store.folder_stamps()) == {b"", b"z", b"z/b"}


def test_a_project_without_folder_times_is_walked_whole(sample_folder: Path) -> None:
    store = make_tree(sample_folder)
    run_to_end(sync_folder(store))
    store.save_folder_stamps({}, replace=True)  # as a store from before schema 4 has it
    (sample_folder / "a" / "chelsea.jpg").write_bytes((sample_folder / "rocket.jpg").read_bytes())
    age_folders(sample_folder)
    report = run_to_end(sync_folder(store, trust_folders=True))
    assert report.changed == ["a/chelsea.jpg"] and report.trusted_folders == 0
    assert set(store.folder_stamps()) == {b"", b"a", b"a/b", b"c"}


def test_an_unreadable_folder_is_listed_again_each_time(sample_folder: Path) -> None:
    store = make_tree(sample_folder)
    locked = sample_folder / "c"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("this user reads unreadable folders (root)")
        first = run_to_end(sync_folder(store))
        assert store.folder_stamps()[b"c"] is None and [p.path for p in first.problems] == [str(locked)]
        again = run_to_end(sync_folder(store, trust_folders=True))
        assert [p.path for p in again.problems] == [str(locked)]
    finally:
        locked.chmod(0o755)
    shown = run_to_end(sync_folder(store, trust_folders=True))
    assert shown.added == ["c/rocket.jpg"]


def test_the_check_of_every_file_runs_in_a_child_process_and_stops_when_cancelled(sample_folder: Path) -> None:
    from core.errors import Cancelled
    from core.jobs.check import check_job
    from core.progress import CancelToken

    store = make_tree(sample_folder)
    run_to_end(sync_folder(store))
    (sample_folder / "a" / "chelsea.jpg").write_bytes((sample_folder / "rocket.jpg").read_bytes())
    (sample_folder / "a" / "b" / "coffee.jpg").unlink()
    report = run_to_end(check_job(store))
    assert report.changed == ["a/chelsea.jpg"] and report.removed == ["a/b/coffee.jpg"]
    assert report.trusted_folders == 0 and isinstance(report.moved, list)
    assert [r.relpath for r in store.images()] == ["a/chelsea.jpg", "astronaut.jpg", "c/rocket.jpg", "chelsea.jpg",
                                                   "coffee.jpg", "rocket.jpg"]  # the child's writes are seen here
    token = CancelToken()
    job = check_job(store, token)
    next(job)  # the child is running
    token.cancel()
    with pytest.raises(Cancelled):
        next(job)
