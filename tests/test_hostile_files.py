"""A corpus of 20+ kinds of hostile and odd files through scan, classify, captioning, export
and the gallery's thumbnails."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from core.cli import main
from tests.badfiles import hostile_corpus


def test_every_good_file_is_classified_and_every_bad_one_reported_once(
    sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    good, bad = hostile_corpus(sample_folder / "chelsea.jpg", folder)
    assert len(good) + len(bad) + 2 >= 20  # plus the dangling link and the link loop
    out = tmp_path / "out.csv"
    assert main(["classify", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    for name in bad:
        assert err.count(f"skipped {name}:") == 1, name
    assert "dangling.jpg" in err
    assert "pipe.jpg: not a regular file (a pipe); skipped" in err  # a FIFO named like a photo
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {row["ImageID"]: row for row in csv.DictReader(handle)}
    labelled = {name for name, row in rows.items() if row["Labels"]}
    assert good <= labelled  # top-1 fallback: every decoded photo gets a label
    assert not any(name.startswith(".hidden") for name in rows)
    exported = tmp_path / "export.json"
    # the export met the dangling link too: it says so in its status (1), as scan and classify do
    assert main(["-q", "export", str(folder), "--format", "json", "--out", str(exported)]) == 1
    assert exported.stat().st_size > 0


def test_captioning_goes_through_the_corpus(sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    good, bad = hostile_corpus(sample_folder / "chelsea.jpg", folder)
    out = tmp_path / "captions.csv"
    assert main(["caption", str(folder), "--out", str(out), "--cpu"]) == 1  # partial: the bad files
    err = capsys.readouterr().err
    for name in bad:
        assert err.count(f"skipped {name}:") == 1, name
    with open(out, newline="", encoding="utf-8") as handle:
        captioned = {row["ImageID"] for row in csv.DictReader(handle) if row["Caption"].strip()}
    assert captioned == good


def test_thumbnails_go_through_the_corpus(sample_folder: Path, tmp_path: Path, qapp: object) -> None:
    """The gallery's loader (the code its worker threads run): a thumbnail for every good file,
    None (a placeholder marked failed) for every bad one, no exception."""
    from gui.thumbnails import ThumbnailLoader

    folder = tmp_path / "hostile"
    folder.mkdir()
    good, bad = hostile_corpus(sample_folder / "chelsea.jpg", folder)
    loader = ThumbnailLoader(size=96, disk_dir=tmp_path / "thumbs")
    for name in sorted(good | bad):
        image = loader._load(folder / name, "stamp")
        if name in good:
            assert image is not None and not image.isNull() and max(image.width(), image.height()) <= 96, name
        else:
            assert image is None, name
    assert loader._load(folder / "dangling.jpg", "stamp") is None
