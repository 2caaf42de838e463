"""Folder scanning over odd names, links and hidden folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.media.scan import ScanProblem, walk_images


def test_odd_names_links_and_hidden_folders(sample_folder: Path) -> None:
    photo = sample_folder / "chelsea.jpg"
    nested = sample_folder / "a b" / "ünï cødé"
    nested.mkdir(parents=True)
    shutil.copy(photo, nested / "cat with spaces.JPG")
    shutil.copy(photo, sample_folder / "new\nline.jpg")
    hidden = sample_folder / ".cache" / "deep"
    hidden.mkdir(parents=True)
    shutil.copy(photo, hidden / "hidden.jpg")
    (sample_folder / "dangling.jpg").symlink_to(sample_folder / "nowhere.jpg")
    (sample_folder / "loop").symlink_to(sample_folder, target_is_directory=True)
    (sample_folder / "notes.txt").write_text("not an image")
    problems: list[ScanProblem] = []
    found = sorted(f.relpath for f in walk_images(sample_folder, problems))
    assert found == sorted([
        "a b/ünï cødé/cat with spaces.JPG", "astronaut.jpg", "chelsea.jpg", "coffee.jpg",
        "new\nline.jpg", "rocket.jpg",
    ])
    assert [p.path.endswith("dangling.jpg") for p in problems] == [True]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_folder_is_reported(sample_folder: Path) -> None:
    locked = sample_folder / "locked"
    locked.mkdir()
    shutil.copy(sample_folder / "chelsea.jpg", locked / "x.jpg")
    locked.chmod(0)
    try:
        problems: list[ScanProblem] = []
        list(walk_images(sample_folder, problems))
        assert any("locked" in p.path for p in problems)
    finally:
        locked.chmod(0o755)


def test_natural_order_of_names() -> None:
    from core.media.scan import natural_key

    names = ["img10.jpg", "img9.jpg", "1010.jpg", "102.jpg", "1005.jpg", "B/2.jpg", "a/10.jpg", "a/9.jpg", "a b/1.jpg"]
    assert sorted(names, key=natural_key) == ["102.jpg", "1005.jpg", "1010.jpg", "a/9.jpg", "a/10.jpg", "a b/1.jpg",
                                              "B/2.jpg", "img9.jpg", "img10.jpg"]


def test_the_walk_yields_the_natural_order_the_store_shows(sample_folder: Path) -> None:
    """A first open appends the walk's batches to the grid as they land and never re-reads the
    snapshot, so the walk must already be in the store's order (files and folders interleaved)."""
    from core.media.scan import natural_key
    from core.progress import run_to_end
    from core.store.database import ProjectStore
    from core.store.sync import sync_folder

    photo = sample_folder / "rocket.jpg"
    for name in ("10.jpg", "9.jpg", "B.jpg", "b/1.jpg", "a10/x.jpg", "a9/x.jpg", "a9/y/z.jpg", "a9.jpg", "A/2.jpg"):
        (sample_folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, sample_folder / name)
    walked = [f.relpath for f in walk_images(sample_folder)]
    assert walked == sorted(walked, key=natural_key) and walked.index("9.jpg") < walked.index("10.jpg")
    with ProjectStore(sample_folder) as store:
        report = run_to_end(sync_folder(store))
        assert report.appended_in_order and report.added == walked
        assert [r.relpath for r in store.images()] == walked
