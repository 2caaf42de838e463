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
