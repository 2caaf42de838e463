"""Files a person names as input (--captions, --label-map) are read as regular files with a
size bound: /dev/zero, a FIFO, a folder or a 200 MB file end in a message naming the limit,
at once; UTF-16 and UTF-32 without a byte order mark are read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.cli import EXIT_ERROR, main
from core.errors import CsvImportError
from core.formats.captions_io import CSV_LIMIT, LABEL_MAP_LIMIT, load_label_map, read_caption_csv

CSV = "ImageID,Labels,Caption\nastronaut.jpg,person,A woman in an orange suit. Ünïcödé ✓\nchelsea.jpg,cat,A cat\n"


@pytest.mark.parametrize("kind", ["zero", "fifo", "folder", "huge"])
def test_captions_that_are_not_a_bounded_regular_file_are_refused_at_once(
        kind: str, sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "captions.csv"
    if kind == "zero":
        path.symlink_to("/dev/zero")
        expected = "is a device, not a regular file"
    elif kind == "fifo":
        os.mkfifo(path)
        expected = "is a pipe, not a regular file"
    elif kind == "folder":
        path.mkdir()
        expected = "is a folder, not a regular file"
    else:
        with open(path, "wb") as handle:
            handle.truncate(CSV_LIMIT + 1)  # sparse: no disk used
        expected = "Tagline reads at most 48 MB from a captions CSV"
    started = time.monotonic()
    with pytest.raises(CsvImportError, match=expected):
        read_caption_csv(path)
    assert main(["-q", "import", str(sample_folder), "--captions", str(path)]) == EXIT_ERROR
    assert time.monotonic() - started < 30  # never read to the end, never hung
    err = capsys.readouterr().err
    assert expected in err and str(path) in err and "internal error" not in err


@pytest.mark.parametrize("kind", ["zero", "fifo", "huge"])
def test_a_label_map_that_is_not_a_bounded_regular_file_is_refused(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    if kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        with open(path, "wb") as handle:
            handle.truncate(LABEL_MAP_LIMIT + 1)
    with pytest.raises(CsvImportError, match="not a regular file|reads at most 4 MB from a label map"):
        load_label_map(path)
    path.unlink()
    path.write_text("[" * 100_000)
    with pytest.raises(CsvImportError, match="cannot read label map"):
        load_label_map(path)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16", "utf-32"])
def test_utf16_and_utf32_with_or_without_a_bom_are_read(encoding: str, tmp_path: Path) -> None:
    path = tmp_path / "captions.csv"
    path.write_bytes(CSV.encode(encoding))  # "utf-16" and "utf-32" write a BOM, the others none
    read = read_caption_csv(path)
    assert [(r.image_id, r.labels, r.caption) for r in read.rows] == [
        ("astronaut.jpg", ("person",), "A woman in an orange suit. Ünïcödé ✓"), ("chelsea.jpg", ("cat",), "A cat")]
    assert not read.rejected


def test_binary_junk_with_nul_bytes_gets_a_readable_message(tmp_path: Path) -> None:
    path = tmp_path / "captions.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)  # what an .xlsx starts with
    with pytest.raises(CsvImportError, match=r"is it a spreadsheet \(.xlsx\) rather than a CSV") as caught:
        read_caption_csv(path)
    assert "\\x00" not in str(caught.value)
    path.write_bytes("ImageID,Labels\n".encode("utf-16-le")[:-1] + b"\xd8")  # a UTF-16 file cut inside a character
    with pytest.raises(CsvImportError, match="looks like UTF-16-LE but is damaged"):
        read_caption_csv(path)


_CAPTION_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).map(str.strip).filter(bool)


@settings(max_examples=60, deadline=None)
@given(captions=st.lists(_CAPTION_TEXT, min_size=1, max_size=20),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                                 "utf-32-be"]))
def test_any_captions_in_any_unicode_encoding_read_back_exactly_or_are_refused_never_garbled(
        captions: list[str], encoding: str) -> None:
    """A CSV of any captions, in any of the eight Unicode encodings with or without a BOM: its
    captions come back exactly, or the file is refused with a CsvImportError; never text read
    in the wrong encoding. Latin-script files (what spreadsheets write) are always read."""
    import csv
    import io
    import tempfile

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["ImageID", "Labels", "Caption"])
    writer.writerows([f"p{i}.jpg", "", caption] for i, caption in enumerate(captions))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "captions.csv"
        path.write_bytes(buffer.getvalue().encode(encoding))
        try:
            read = read_caption_csv(path)
        except CsvImportError:
            assert not all(c.isascii() for c in captions), "a Latin-script file was refused"
            return
    assert [r.caption for r in read.rows] == captions


def test_the_csv_limit_can_be_raised_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "captions.csv"
    path.write_text(CSV + "x" * 2000 + ".jpg,,long name\n", encoding="utf-8")
    monkeypatch.setenv("TAGLINE_MAX_CSV_MB", "0.001")
    with pytest.raises(CsvImportError, match="split it into smaller files and import each, or raise the limit with "
                                             "TAGLINE_MAX_CSV_MB"):
        read_caption_csv(path)
    monkeypatch.setenv("TAGLINE_MAX_CSV_MB", "1")
    assert len(read_caption_csv(path).rows) == 3
    monkeypatch.setenv("TAGLINE_MAX_CSV_MB", "lots")
    with pytest.raises(CsvImportError, match="must be a number of MB"):
        read_caption_csv(path)
