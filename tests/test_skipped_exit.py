"""Every verb that met a file it could not read says so and exits 1 (it used to be only
`scan`: classify and export printed "cannot read" and exited 0), and a FIFO or a device
named like a photo is reported as skipped instead of passed over without a word."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.cli import EXIT_OK, EXIT_PARTIAL, main


@pytest.fixture
def folder_with_bad_entries(sample_folder: Path) -> Path:
    (sample_folder / "gone.jpg").symlink_to(sample_folder / "nowhere.jpg")
    os.mkfifo(sample_folder / "pipe.jpg")
    return sample_folder


@pytest.mark.parametrize("verb", [["scan"], ["export", "--out", "{tmp}/out.csv"], ["export", "--format", "json",
                                  "--out", "{tmp}/out.json"], ["suggest", "-n", "2"], ["classify"],
                                  ["search", "a", "cat"]])
def test_every_verb_that_skipped_a_file_exits_1_and_names_it(verb: list[str], folder_with_bad_entries: Path,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in verb]
    assert main([args[0], str(folder_with_bad_entries), *args[1:]]) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "pipe.jpg: not a regular file (a pipe); skipped" in err
    assert "gone.jpg" in err


def test_a_clean_folder_still_exits_0(sample_folder: Path, tmp_path: Path) -> None:
    assert main(["-q", "export", str(sample_folder), "--out", str(tmp_path / "out.csv")]) == EXIT_OK
