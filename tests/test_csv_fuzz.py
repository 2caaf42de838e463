"""Fuzzed caption CSVs: a clear error with a line number, or rows read / rejected; never half
an import, and every data row is accounted for."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import CsvImportError
from core.formats.captions_io import import_rows, read_caption_csv
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder

NAMES = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "missing.jpg", "../up.jpg", ""]
cell_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
row = st.tuples(st.sampled_from(NAMES), st.sampled_from(["1", "17", "1 17", "", "99", "person;cat"]), cell_text)
header = st.sampled_from([["ImageID", "Labels", "Caption"], ["image", "caption"], ["Caption", "ImageID"], ["foo", "bar"]])


def render(head: list[str], rows: list[tuple[str, str, str]], newline: str, bom: bool, junk: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(head)
    for name, labels, caption in rows:
        values = {"imageid": name, "image": name, "labels": labels, "caption": caption}
        writer.writerow([values.get(h.lower(), "x") for h in head])
    text = buffer.getvalue() + junk
    return (("\ufeff" if bom else "") + text).encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=header, rows=st.lists(row, max_size=12), newline=st.sampled_from(["\n", "\r\n", "\r"]),
       bom=st.booleans(), junk=st.sampled_from(["", '"unclosed quote,1,', "a,b,c,d,e\n", "\x00\n", ",,\n"]))
def test_fuzzed_csvs_are_read_or_refused_clearly(sample_folder: Path, tmp_path: Path, head, rows, newline, bom, junk) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fuzz.csv"
    path.write_bytes(render(head, rows, newline, bom, junk))
    try:
        read = read_caption_csv(path)
    except CsvImportError as exc:
        assert exc.line is not None or "empty" in str(exc) or exc.reason
        return
    assert all(line >= 2 for line, _ in read.rejected)
    store = ProjectStore(sample_folder, tmp_path / "p.db")
    run_to_end(sync_folder(store))
    before = (store.captions(), store.confirmations())
    try:
        report = import_rows(store, read, {"1": "person", "17": "cat"})
    except Exception:
        assert (store.captions(), store.confirmations()) == before  # one transaction: nothing half-done
        raise
    accepted = len(read.rows) - sum(1 for r in report.rejected if r not in read.rejected)
    assert report.labelled <= accepted
    store.close()


def test_enormous_field_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("ImageID,Caption\na.jpg," + "x" * 2_000_000 + "\n", encoding="utf-8")
    assert len(read_caption_csv(path).rows[0].caption or "") == 2_000_000


def test_non_utf8_file_is_reported_not_crashing(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("ImageID,Caption\na.jpg,caf\xe9\n".encode("latin-1"))
    with pytest.raises(CsvImportError) as refused:
        read_caption_csv(path)
    assert refused.value.line == 2 and "not UTF-8" in str(refused.value)
