"""Caption CSV import: quirks of real files, rejected rows with line numbers, one transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import CsvImportError
from core.formats.captions_io import import_rows, load_label_map, read_caption_csv, safe_relpath, split_labels
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder
from tests.conftest import COMP, ROOT, needs_shared

QUIRKY = (
    'ImageID,Labels,Caption\n'
    '0.jpg,1,"Woman in swim suit holding parasol."\n'
    '1.jpg,1 19,"A caption that spans\ntwo lines inside quotes."\n'
    '2.jpg,10,"A sign with caution" tape around it."\n'
    '3.jpg,1,"dup first"\n'
    '3.jpg,1,"dup second"\n'
    '../escape.jpg,1,"outside"\n'
    '4.jpg\n'
)


def test_quirky_rows_are_read_or_reported_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(QUIRKY, encoding="utf-8")
    result = read_caption_csv(path)
    by_id = {row.image_id: row for row in result.rows}
    assert by_id["1.jpg"].caption == "A caption that spans\ntwo lines inside quotes."
    assert by_id["1.jpg"].labels == ("1 19",)
    assert by_id["2.jpg"].caption is not None and "caution" in by_id["2.jpg"].caption
    assert by_id["3.jpg"].caption == "dup first"
    rejected = dict(result.rejected)
    assert "duplicate" in rejected[7]
    assert "outside the folder" in rejected[8]
    assert "columns" in rejected[9]
    assert len(result.rows) + len(result.rejected) == 7


def test_bad_header_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(CsvImportError, match="line 1"):
        read_caption_csv(path)


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffImageID,Caption\r\na.jpg,hello\r\n".encode())
    assert [(r.image_id, r.caption) for r in read_caption_csv(path).rows] == [("a.jpg", "hello")]


@pytest.mark.parametrize("raw", ["../x.jpg", "/etc/passwd", "a/../../b.jpg", "C:\\win.jpg", " "])
def test_paths_cannot_escape_the_folder(raw: str) -> None:
    assert safe_relpath(raw) is None


def test_label_cells_split_names_with_spaces() -> None:
    assert split_labels("person;traffic light") == ["person", "traffic light"]
    assert split_labels("traffic light", {"traffic light"}) == ["traffic light"]
    assert split_labels("1 10 3") == ["1", "10", "3"]


def test_import_writes_captions_labels_and_negatives(sample_folder: Path, tmp_path: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    report = import_rows(store, read_caption_csv(ROOT / "resources" / "sample" / "captions.csv"))
    assert report.captions == 4 and report.rejected == []
    ids = store.image_ids_by_relpath()
    confirmed = store.confirmations()
    assert confirmed[ids["chelsea.jpg"]] == {"person": False, "cat": True}
    assert store.caption(ids["rocket.jpg"]) == ("A rocket standing on the launch pad under a clear sky.", "imported")


@needs_shared
def test_the_real_comp5329_file_loses_no_row() -> None:
    result = read_caption_csv(COMP / "train.csv")
    assert len(result.rows) == 18000 and result.rejected == []
    label_map = load_label_map(ROOT / "resources" / "label_maps" / "comp5329.json")
    assert all(t in label_map for row in result.rows for t in split_labels(row.labels[0]))


def test_sidecars_are_read_only_from_regular_files_inside_the_folder(sample_folder: Path, tmp_path: Path) -> None:
    """A `photo.txt` that links outside the folder, to /dev/zero, or is a FIFO, or is huge, is
    not read (no leak into exports, no memory blow-up, no hang); a plain one is."""
    import os

    from core.formats.captions_io import SIDECAR_MAX_BYTES, read_sidecar_captions
    from core.progress import run_to_end
    from core.store.database import ProjectStore
    from core.store.sync import sync_folder

    secret = tmp_path / "secret.txt"
    secret.write_text("the neighbour's diary", encoding="utf-8")
    (sample_folder / "astronaut.txt").symlink_to(secret)
    (sample_folder / "rocket.txt").symlink_to("/dev/zero")
    os.mkfifo(sample_folder / "coffee.txt")
    (sample_folder / "chelsea.txt").write_text("a cat on a floor\n", encoding="utf-8")
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    ids = store.image_ids_by_relpath()
    assert read_sidecar_captions(store) == {ids["chelsea.jpg"]: "a cat on a floor"}
    (sample_folder / "chelsea.txt").write_bytes(b"x" * (SIDECAR_MAX_BYTES + 1))
    assert read_sidecar_captions(store) == {}


def test_a_row_rejected_for_its_labels_imports_nothing_not_even_its_caption(sample_folder: Path, tmp_path: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    csv_path = tmp_path / "mixed.csv"
    csv_path.write_text('ImageID,Labels,Caption\nrocket.jpg,99,"not a rocket at all"\ncoffee.jpg,1,"a cup"\n', encoding="utf-8")
    report = import_rows(store, read_caption_csv(csv_path), label_map={"1": "person"})
    ids = store.image_ids_by_relpath()
    assert [line for line, _ in report.rejected] == [2] and "unknown label" in report.rejected[0][1]
    assert store.caption(ids["rocket.jpg"]) is None and ids["rocket.jpg"] not in store.confirmations()
    assert store.caption(ids["coffee.jpg"]) == ("a cup", "imported") and report.captions == 1


def _project_with(sample_folder: Path, tmp_path: Path, text: str | bytes, name: str = "in.csv") -> tuple[ProjectStore, Path]:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return store, path


def test_label_names_with_spaces_survive_and_separators_split(sample_folder: Path, tmp_path: Path) -> None:
    assert split_labels("street furniture") == ["street furniture"]
    assert split_labels("street furniture|people") == ["street furniture", "people"]
    assert split_labels("1 17") == ["1", "17"] and split_labels("cat, dog") == ["cat", "dog"]
    store, path = _project_with(sample_folder, tmp_path,
                                "ImageID,Labels,Caption\nrocket.jpg,street furniture,a bench\ncoffee.jpg,people;cup,x\n")
    import_rows(store, read_caption_csv(path))
    assert [lab.name for lab in store.labels()] == ["street furniture", "people", "cup"]


def test_ids_without_a_label_map_are_refused_or_mapped_through_the_project(sample_folder: Path, tmp_path: Path) -> None:
    store, path = _project_with(sample_folder, tmp_path, "ImageID,Labels,Caption\nrocket.jpg,1 6,x\ncoffee.jpg,8,y\n")
    with pytest.raises(CsvImportError, match=r"holds ids \(1, 6, 8\).*--label-map"):
        import_rows(store, read_caption_csv(path))
    assert store.labels() == [] and store.captions() == {}  # nothing imported
    store.ensure_labels(["person", "bus", "truck"], ["1", "6", "8"])  # as a seed import leaves them
    report = import_rows(store, read_caption_csv(path))
    ids = store.image_ids_by_relpath()
    assert report.rejected == [] and store.confirmations()[ids["coffee.jpg"]] == {"person": False, "bus": False, "truck": True}


def test_an_empty_labels_cell_is_a_decision_of_none(sample_folder: Path, tmp_path: Path) -> None:
    store, path = _project_with(sample_folder, tmp_path, "ImageID,Labels,Caption\nrocket.jpg,cat,x\ncoffee.jpg,,a cup\n")
    import_rows(store, read_caption_csv(path))
    ids = store.image_ids_by_relpath()
    assert store.confirmations()[ids["coffee.jpg"]] == {"cat": False}


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_spreadsheet_delimiters_are_sniffed(sample_folder: Path, tmp_path: Path, delimiter: str) -> None:
    text = f"ImageID{delimiter}Labels{delimiter}Caption\nrocket.jpg{delimiter}cat{delimiter}\"a, b; c\"\n"
    store, path = _project_with(sample_folder, tmp_path, text)
    read = read_caption_csv(path)
    assert [(r.image_id, r.labels, r.caption) for r in read.rows] == [("rocket.jpg", ("cat",), "a, b; c")]


def test_utf16_is_read_and_latin1_named_with_its_line(sample_folder: Path, tmp_path: Path) -> None:
    text = "ImageID,Labels,Caption\nrocket.jpg,cat,café au lait\n"
    store, path = _project_with(sample_folder, tmp_path, text.encode("utf-16"))
    assert read_caption_csv(path).rows[0].caption == "café au lait"
    path.write_bytes(("ImageID,Caption\nrocket.jpg,fine\n" + "coffee.jpg,café\n").encode("latin-1"))
    with pytest.raises(CsvImportError, match=r"line 3: the file is not UTF-8 \(byte 0xe9; it looks like Latin-1"):
        read_caption_csv(path)
