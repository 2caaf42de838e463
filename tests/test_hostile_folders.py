"""Folders, names and databases a hostile or unlucky disk holds (issue 15, items 1, 3, 7, 8, 10)."""

from __future__ import annotations

import csv
import gc
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from core.cli import main
from core.errors import ImageDecodeError, StoreError
from core.media.images import load_rgb
from core.media.scan import file_digest
from core.progress import run_to_end
from core.store.database import SCHEMA_VERSION, ProjectStore
from core.store.sync import sync_folder
from tests.conftest import ROOT

CAPTIONS = ROOT / "resources" / "sample" / "captions.csv"
ODD = b"caf\xe9 \xff.jpg"  # Latin-1 bytes: not UTF-8


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["ImageID"]: row for row in csv.DictReader(handle)}


def test_a_name_that_is_not_utf8_is_stored_shown_classified_and_exported(sample_folder: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    odd = os.path.join(os.fsencode(sample_folder), ODD)
    shutil.copyfile(sample_folder / "rocket.jpg", odd)
    out = tmp_path / "pred.csv"
    assert main(["classify", str(sample_folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("not UTF-8") == 1 and "caf\\xe9 \\xff.jpg" in err
    rows = read_csv(out)
    assert set(rows) == {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "caf\\xe9 \\xff.jpg"}
    assert rows["caf\\xe9 \\xff.jpg"]["Labels"] == rows["rocket.jpg"]["Labels"]  # the same photo, decoded
    with ProjectStore(sample_folder) as store:
        record = next(r for r in store.images() if r.raw_path)
        assert record.raw_path == ODD and os.fsencode(store.image_path(record)) == odd
        assert record.digest == file_digest(sample_folder / "rocket.jpg")
    assert main(["scan", str(sample_folder)]) == 0
    assert "not UTF-8" not in capsys.readouterr().err  # reported once, when the file is new
    assert main(["-q", "export", str(sample_folder), "--out", str(tmp_path / "all.csv")]) == 0
    assert "caf\\xe9 \\xff.jpg" in read_csv(tmp_path / "all.csv")


def test_a_file_showing_the_same_name_as_an_odd_one_is_reported_not_fatal(sample_folder: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copyfile(sample_folder / "rocket.jpg", os.path.join(os.fsencode(sample_folder), b"a\xe9.jpg"))
    shutil.copyfile(sample_folder / "coffee.jpg", sample_folder / "a\\xe9.jpg")  # its picture, literally
    assert main(["scan", str(sample_folder)]) == 1
    assert "another file shows the same name" in capsys.readouterr().err
    with ProjectStore(sample_folder) as store:
        assert len(store.images()) == 5


def test_a_read_only_folder_continues_its_project_in_a_copy(sample_folder: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "import", str(sample_folder), "--captions", str(CAPTIONS)]) == 0
    gc.collect()  # the command's store closes, as at the end of a process
    original = sample_folder / ".tagline" / "project.db"
    before = original.read_bytes()
    for folder in (sample_folder / ".tagline", sample_folder):
        folder.chmod(0o555)
    try:
        out = tmp_path / "labels.csv"
        assert main(["export", str(sample_folder), "--out", str(out)]) == 0
        assert "read-only: its project is continued in a copy" in capsys.readouterr().err
        rows = read_csv(out)
        assert rows["chelsea.jpg"]["Labels"] == "cat" and rows["chelsea.jpg"]["Caption"].startswith("A tabby cat")
        with ProjectStore(sample_folder) as store:  # edits go to the copy, which later opens keep
            assert store.db_path != original and store.notice
            store.set_caption(store.image_ids_by_relpath()["rocket.jpg"], "typed in the copy", "typed")
        with ProjectStore(sample_folder) as store:
            assert store.caption(store.image_ids_by_relpath()["rocket.jpg"]) == ("typed in the copy", "typed")
        assert original.read_bytes() == before
    finally:
        for folder in (sample_folder, sample_folder / ".tagline"):
            folder.chmod(0o755)


def test_photos_sharing_a_stem_get_one_sidecar_each(sample_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.open(sample_folder / "rocket.jpg").save(sample_folder / "rocket.png")
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        ids = store.image_ids_by_relpath()
        store.set_caption(ids["rocket.jpg"], "the jpeg", "typed")
        store.set_caption(ids["rocket.png"], "the png", "typed")
        store.set_caption(ids["coffee.jpg"], "a cup", "typed")
    assert main(["export", str(sample_folder), "--format", "sidecars"]) == 0
    assert "2 photos share a name" in capsys.readouterr().err
    assert (sample_folder / "rocket.jpg.txt").read_text() == "the jpeg\n"
    assert (sample_folder / "rocket.png.txt").read_text() == "the png\n"
    assert (sample_folder / "coffee.txt").read_text() == "a cup\n" and not (sample_folder / "rocket.txt").exists()
    # and read back to the right photos in a fresh project
    shutil.rmtree(sample_folder / ".tagline")
    assert main(["-q", "import", str(sample_folder)]) == 0
    with ProjectStore(sample_folder) as store:
        ids = store.image_ids_by_relpath()
        assert store.caption(ids["rocket.png"]) == ("the png", "imported")
        assert store.caption(ids["rocket.jpg"]) == ("the jpeg", "imported")


def test_a_store_from_a_newer_tagline_is_refused_untouched(sample_folder: Path) -> None:
    ProjectStore(sample_folder).close()
    path = sample_folder / ".tagline" / "project.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer Tagline .schema 99; this one reads up to"):
        ProjectStore(sample_folder)
    assert path.read_bytes() == before


def test_a_first_version_store_is_migrated_and_keeps_its_work(sample_folder: Path) -> None:
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        store.set_caption(store.image_ids_by_relpath()["chelsea.jpg"], "a cat", "typed")
    path = sample_folder / ".tagline" / "project.db"
    with sqlite3.connect(path) as conn:  # as version 1 left it: no raw_path, no sort_key, user_version unset
        conn.execute("DROP INDEX images_order")
        conn.execute("ALTER TABLE images DROP COLUMN sort_key")
        conn.execute("ALTER TABLE images DROP COLUMN raw_path")
        conn.execute("PRAGMA user_version=0")
    conn.close()
    with ProjectStore(sample_folder) as store:
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert store.caption(store.image_ids_by_relpath()["chelsea.jpg"]) == ("a cat", "typed")
        assert all(r.raw_path is None for r in store.images())
        # version 3 keeps the natural order: the migration fills it for the rows already there
        assert store.query("SELECT COUNT(*) FROM images WHERE sort_key IS NULL")[0][0] == 0
        page, after = store.shown_page(None, 3)
        assert [r[1] for r in page] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"] and after is not None
        assert [r[1] for r in store.shown_page(after, 3)[0]] == ["rocket.jpg"]


def test_a_version_4_store_loses_its_digest_index_and_finds_unhashed_photos_through_a_partial_one(
        sample_folder: Path) -> None:
    """The digest index served no query and cost a random page write a hashed photo (5.8 GB of
    writes in a million-photo first scan); the photos still to hash have a partial index."""
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
    path = sample_folder / ".tagline" / "project.db"
    with sqlite3.connect(path) as conn:  # as version 4 left it
        conn.execute("DROP INDEX images_unhashed")
        conn.execute("CREATE INDEX images_digest ON images(digest)")
        conn.execute("UPDATE images SET digest=NULL WHERE relpath='rocket.jpg'")
        conn.execute("PRAGMA user_version=4")
    conn.close()
    with ProjectStore(sample_folder) as store:
        indexes = {row[0] for row in store.query("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "images_digest" not in indexes and "images_unhashed" in indexes
        plan = store.query("EXPLAIN QUERY PLAN SELECT id, relpath, raw_path FROM images WHERE present=1 AND "
                           "digest IS NULL AND id > ? ORDER BY id LIMIT ?", (0, 10))
        assert "images_unhashed" in plan[0][-1]
        assert store.count_unhashed() == 1 and [row[1] for row in store.unhashed()] == ["rocket.jpg"]
        run_to_end(sync_folder(store))
        assert store.count_unhashed() == 0 and store.query("SELECT COUNT(*) FROM images WHERE digest IS NULL")[0][0] == 0


def test_a_renamed_column_or_damaged_file_is_a_clear_error(sample_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
    path = sample_folder / ".tagline" / "project.db"
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE captions RENAME COLUMN text TO body")
    conn.close()
    with pytest.raises(StoreError, match="lacks captions.text: it was changed by another program"):
        ProjectStore(sample_folder)
    assert main(["scan", str(sample_folder)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    for name in ("project.db-wal", "project.db-shm"):
        (path.parent / name).unlink(missing_ok=True)
    path.write_bytes(b"this is not a database, it was overwritten" * 200)
    with pytest.raises(StoreError, match="cannot be read .file is not a database.*move .* aside"):
        ProjectStore(sample_folder)


def test_a_damaged_page_gives_a_message_not_a_traceback(sample_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        store.save_embeddings("x", [(i, "k", [0.0] * 4000) for i in store.image_ids_by_relpath().values()])
        store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    path = sample_folder / ".tagline" / "project.db"
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data) - page, page):  # every page but the first: the schema still reads
        data[start + 8 : start + page] = os.urandom(page - 8)
    path.write_bytes(bytes(data))
    code = main(["-q", "export", str(sample_folder), "--out", str(sample_folder.parent / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and ("damaged" in err or "cannot be read" in err), err


def test_a_fifo_put_where_a_photo_was_is_refused_without_blocking(sample_folder: Path) -> None:
    target = sample_folder / "rocket.jpg"
    target.unlink()
    os.mkfifo(target)
    result: list[BaseException] = []

    def decode() -> None:
        for call in (lambda: load_rgb(target), lambda: file_digest(target)):
            try:
                call()
            except BaseException as exc:  # noqa: B036 - the test reports whatever happened
                result.append(exc)

    worker = threading.Thread(target=decode, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "decoding a FIFO blocked"
    assert isinstance(result[0], ImageDecodeError) and "not a regular file" in str(result[0])
    assert isinstance(result[1], OSError)
