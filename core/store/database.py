"""The project store: one SQLite database per image folder, the single source of truth.

Every edit a person makes is committed in its own transaction before the call returns
(WAL mode), so a crash or a killed process never loses an acknowledged edit. Batch writes
(imports, predictions) are one transaction each: all of it or none of it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import StoreError, write_failure_message
from core.media.scan import PROJECT_DIRNAME, FolderStamps, FoundFile, disk_relpath, sort_key, stored_name
from core.store.snapshot import SHOWN_COLUMNS, ShownImage, ShownRow

# SQLite's page cache (its default is 2 MiB). The digest index (gone in schema 5) took each new
# digest at a random place, so once it outgrew the cache every hashed photo cost a page read and
# write: the first `tagline scan` of a million photos took 137.5 s against 4.3 s for 100,000 (32x);
# with 64 MiB 53.0 s, 128 MiB 49.5 s (11.9x), 256 MiB 46.9 s (docs/benchmarks.md); without that
# index, 29.0 s against 2.8 s (10.4x). Pages are taken as used.
PAGE_CACHE_KIB = 128 * 1024
SCHEMA_VERSION = 6  # PRAGMA user_version; stores of version 1 kept it in meta only
# Statements that bring a store from version N-1 to N, applied in one transaction on open.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE images ADD COLUMN raw_path BLOB",),  # the bytes of a name that is not UTF-8
    # the natural order (2.jpg before 10.jpg) kept and indexed, so a snapshot is read in order, page by page
    3: ("ALTER TABLE images ADD COLUMN sort_key TEXT", "UPDATE images SET sort_key = tagline_sort_key(relpath)"),
    4: (),  # the folders table (created by _SCHEMA): a rescan trusts folders whose time has not moved
    # no query looked photos up by digest, and that index took each new digest at a random place:
    # a page written a photo, 5.8 GB of writes in a million-photo first scan. The photos still to
    # hash are found through a partial index instead (created by _SCHEMA), filled and emptied in id order.
    5: ("DROP INDEX IF EXISTS images_digest",),
    # Predictions are kept per model, the model named by a digest of its weights and model.json
    # (the version string a folder can repeat kept one model's rows as another's): the old rows
    # cannot be told apart, so they go (they are recomputed from the cached embeddings). A label
    # keeps the name a model knows it by (`origin`) through renames; deleted ones leave a tombstone.
    6: ("DROP TABLE IF EXISTS predictions", "ALTER TABLE labels ADD COLUMN origin TEXT",
        "UPDATE labels SET origin = name"),
}
CAPTION_SOURCES = ("imported", "typed", "generated")
IN_CHUNK = 900  # values per `IN (...)` query: under the 999 host parameters of older SQLite builds
ACTIVE_MODEL_KEY = "active_model"  # meta: the folder of the model the project uses

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images(
    id INTEGER PRIMARY KEY, relpath TEXT UNIQUE NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, digest TEXT, present INTEGER NOT NULL DEFAULT 1,
    error TEXT, added_at REAL NOT NULL, reviewed_at REAL, raw_path BLOB, sort_key TEXT);
CREATE INDEX IF NOT EXISTS images_unhashed ON images(id) WHERE digest IS NULL;
CREATE INDEX IF NOT EXISTS images_order ON images(sort_key);
CREATE TABLE IF NOT EXISTS captions(
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    text TEXT NOT NULL, source TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS labels(
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, hotkey TEXT, position INTEGER NOT NULL,
    external_id TEXT, origin TEXT);
CREATE TABLE IF NOT EXISTS label_tombstones(origin TEXT PRIMARY KEY, deleted_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models(
    id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, name TEXT NOT NULL DEFAULT '', used_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS predictions(
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    probability REAL NOT NULL, predicted INTEGER NOT NULL,
    inputs_key TEXT NOT NULL DEFAULT '', PRIMARY KEY(image_id, model_id, label_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS confirmations(
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    present INTEGER NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY(image_id, label_id));
CREATE TABLE IF NOT EXISTS embeddings(
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    encoder TEXT NOT NULL, source_key TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY(image_id, encoder));
CREATE TABLE IF NOT EXISTS folders(path BLOB PRIMARY KEY, mtime_ns INTEGER);
CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, image_id INTEGER, kind TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS caption_added AFTER INSERT ON captions
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NEW.image_id, 'caption'); END;
CREATE TRIGGER IF NOT EXISTS caption_edited AFTER UPDATE ON captions
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NEW.image_id, 'caption'); END;
CREATE TRIGGER IF NOT EXISTS caption_removed AFTER DELETE ON captions
    BEGIN INSERT INTO changes(image_id, kind) VALUES(OLD.image_id, 'caption'); END;
CREATE TRIGGER IF NOT EXISTS decision_added AFTER INSERT ON confirmations
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NEW.image_id, 'decision'); END;
CREATE TRIGGER IF NOT EXISTS decision_edited AFTER UPDATE ON confirmations
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NEW.image_id, 'decision'); END;
CREATE TRIGGER IF NOT EXISTS decision_removed AFTER DELETE ON confirmations
    BEGIN INSERT INTO changes(image_id, kind) VALUES(OLD.image_id, 'decision'); END;
CREATE TRIGGER IF NOT EXISTS review_marked AFTER UPDATE OF reviewed_at ON images
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NEW.id, 'reviewed'); END;
CREATE TRIGGER IF NOT EXISTS label_added AFTER INSERT ON labels
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NULL, 'labels'); END;
CREATE TRIGGER IF NOT EXISTS label_edited AFTER UPDATE ON labels
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NULL, 'labels'); END;
CREATE TRIGGER IF NOT EXISTS label_removed AFTER DELETE ON labels
    BEGIN INSERT INTO changes(image_id, kind) VALUES(NULL, 'labels'); END;
"""
CHANGES_KEPT = 500_000  # change rows kept for readers that fell behind; further behind, they reload


@dataclass(frozen=True, slots=True)
class ImageRecord:
    id: int
    relpath: str
    size: int
    mtime_ns: int
    digest: str | None
    error: str | None
    reviewed_at: float | None
    raw_path: bytes | None = None  # set when the file's name is not UTF-8 (relpath shows it escaped)


_RECORD_COLUMNS = "id, relpath, size, mtime_ns, digest, error, reviewed_at, raw_path"  # ImageRecord's fields


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    hotkey: str | None
    position: int
    external_id: str | None
    origin: str | None = None  # the name models know it by (its first name): a rename keeps it


_LABEL_COLUMNS = "id, name, hotkey, position, external_id, origin"  # Label's fields


@dataclass(frozen=True)
class LabelSnapshot:
    """A label with every row that refers to it, as `delete_label` removed them.

    Deleting a label cascades to the person's decisions and the model's predictions, so undo
    needs all of them to put the label back exactly (`restore_label`).
    """

    label: Label
    confirmations: tuple[tuple[int, int, float], ...]  # (image id, present, updated_at)
    predictions: tuple[tuple[int, int, float, int, str], ...]  # (image id, model id, probability, predicted, inputs key)


LABEL_SEPARATOR = ";"  # between names in an export's Labels cell


def check_label_name(name: str) -> None:
    """A label's name must read back from an export as itself: not empty or spaces only, no ";"."""
    if not name.strip():
        raise StoreError("a label needs a name that is not only spaces")
    if LABEL_SEPARATOR in name:
        raise StoreError(f"a label name cannot hold {LABEL_SEPARATOR!r} (it separates labels in exports): {name!r}")
    if name != name.strip():
        raise StoreError(f"a label name cannot start or end with spaces: {name!r}")


def _has_column_already(cur: sqlite3.Cursor, statement: str) -> bool:
    """Whether `statement` adds a column the table has (a store whose version was lowered by hand
    or by an older tool): the migration goes on instead of failing on a duplicate column."""
    words = statement.split()
    if [w.upper() for w in words[:2]] != ["ALTER", "TABLE"] or [w.upper() for w in words[3:5]] != ["ADD", "COLUMN"]:
        return False
    table, column = words[2], words[5]
    return any(row[1] == column for row in cur.execute(f"PRAGMA table_info({table})"))


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, a trigger's body kept whole (it holds semicolons)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending.strip()
            pending = ""


def default_store_path(folder: Path) -> Path:
    """`<folder>/.tagline/project.db`, or the user-data folder when `folder` is read-only."""
    folder = Path(folder).resolve()
    local = folder / PROJECT_DIRNAME
    if _writable(local if local.is_dir() else folder):
        return local / "project.db"
    return user_data_store_path(folder)


def user_data_store_path(folder: Path) -> Path:
    from platformdirs import user_data_dir

    key = hashlib.sha1(str(folder).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = folder.name.encode("utf-8", "replace").decode("utf-8")
    return Path(user_data_dir("Tagline", appauthor=False)) / "projects" / f"{name}-{key}" / "project.db"


def _writable(folder: Path) -> bool:
    """Write permission that also holds for root: a folder with no write bit is read-only."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(folder, os.W_OK)


def copy_read_only_project(source: Path, target: Path) -> None:
    """Copy a project database that cannot be written (read-only folder) so work goes on.

    Read-only mode reads it with its write-ahead log; where the folder cannot hold the -shm file
    that needs, `immutable` mode reads the main file alone. The backup API copies it page by page.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        try:  # read-only, with what the write-ahead log still holds, where SQLite can
            src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:  # no -shm file and no way to make one
            src = sqlite3.connect(f"{source.resolve().as_uri()}?immutable=1", uri=True)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(damaged_message(source, exc)) from exc


def damaged_message(path: Path, exc: BaseException) -> str:
    return (f"the project database {path} cannot be read ({exc}). The photos are untouched. To recover, "
            f"move {path.parent} aside to start the project again, or try `sqlite3 {path} .recover` into a new "
            f"file and put that in its place")


class ProjectStore:
    """Thread-safe access to one project database (one connection behind a lock).

    `notice` says, when it is set, something the person should know about where the work is
    kept (a read-only folder's project continued in a copy).
    """

    def __init__(self, folder: Path | str, db_path: Path | None = None) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise StoreError(f"{self.folder} is not a folder")
        self.notice: str | None = None
        self.db_path = Path(db_path) if db_path else self._default_path()
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
            self._conn.create_function("tagline_sort_key", 1, sort_key, deterministic=True)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open project database {self.db_path}: {exc}") from exc
        try:
            self._open_schema()
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(damaged_message(self.db_path, exc)) from exc

    def _default_path(self) -> Path:
        path = default_store_path(self.folder)
        local = self.folder / PROJECT_DIRNAME / "project.db"
        if path != local and local.is_file():  # the folder holds a project Tagline cannot write
            if not path.exists():
                copy_read_only_project(local, path)
            self.notice = (f"{local.parent} is read-only: its project is continued in a copy at {path} "
                           f"(edits are kept there)")
        elif path != local:
            self.notice = f"{self.folder} is read-only: its project is kept at {path}"
        return path

    def _open_schema(self) -> None:
        """Check the version before writing anything, then create or migrate forward."""
        conn = self._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='images'").fetchone()
        if exists and version == 0:
            version = 1  # stores of the first version did not set user_version
        if version > SCHEMA_VERSION:
            raise StoreError(f"the project database {self.db_path} was made by a newer Tagline (schema {version}; "
                             f"this one reads up to {SCHEMA_VERSION}): update Tagline. Nothing was changed")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        with self.transaction() as cur:
            if exists:
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target]:
                        if not _has_column_already(cur, statement):
                            cur.execute(statement)
            for statement in _statements(_SCHEMA):
                cur.execute(statement)
            # readers further behind than this reload everything (Project.apply_changes)
            cur.execute("DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?", (CHANGES_KEPT,))
            cur.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
            cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._check_layout()

    def _check_layout(self) -> None:
        """Every table has the columns this version writes: a store edited by hand is refused."""
        reference = sqlite3.connect(":memory:")
        try:
            reference.executescript(_SCHEMA)
            tables = [row[0] for row in reference.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                wanted = {row[1] for row in reference.execute(f"PRAGMA table_info({table})")}
                have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
                if wanted - have:
                    missing = ", ".join(sorted(f"{table}.{c}" for c in wanted - have))
                    raise StoreError(f"the project database {self.db_path} lacks {missing}: it was changed by "
                                     f"another program. Restore a copy, or move {self.db_path.parent} aside to start again")
        finally:
            reference.close()

    # -- plumbing -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction; rolled back entirely on any error (disk full included).

        Nested calls join the outer transaction, so a batch of store calls can be made atomic.
        """
        with self._lock:
            cur = self._conn.cursor()
            outer = self._depth == 0
            self._depth += 1
            try:
                if outer:
                    cur.execute("BEGIN IMMEDIATE")
                yield cur
                if outer:
                    cur.execute("COMMIT")
            except sqlite3.Error as exc:
                if outer and self._conn.in_transaction:
                    self._conn.rollback()
                raise StoreError(write_failure_message(self.db_path, exc)) from exc
            except BaseException:
                if outer and self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
            finally:
                self._depth -= 1
                cur.close()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(damaged_message(self.db_path, exc)) from exc

    def query_in(self, select: str, column: str, values: Sequence[object] | None, where: str = "",
                 params: Sequence[object] = ()) -> list[tuple]:
        """Rows of `select` (with the condition `where`, whose parameters are `params`) whose
        `column` is one of `values`, asked in chunks under SQLite's parameter limit; every row
        when `values` is None. A job asking for three photos reads three, not the project."""
        conditions = [where] if where else []
        if values is None:
            return self.query(select + (f" WHERE {where}" if where else ""), params)
        items = list(values)
        rows: list[tuple] = []
        for start in range(0, len(items), IN_CHUNK):
            chunk = items[start:start + IN_CHUNK]
            clause = " AND ".join([*conditions, f"{column} IN ({','.join('?' * len(chunk))})"])
            rows += self.query(f"{select} WHERE {clause}", (*params, *chunk))
        return rows

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_ok(self) -> bool:
        return self.query("PRAGMA integrity_check")[0][0] == "ok"

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    def active_model(self) -> Path | None:
        """The model folder this project uses (set by `train` and by the app's model menu)."""
        value = self.get_meta(ACTIVE_MODEL_KEY) or self.get_meta("gui.active_model")  # the app's key before 2026-12-02
        return Path(value) if value else None

    def set_active_model(self, folder: Path | None) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (ACTIVE_MODEL_KEY, str(folder) if folder else ""))
            cur.execute("DELETE FROM meta WHERE key='gui.active_model'")
            cur.execute("INSERT INTO changes(image_id, kind) VALUES(NULL, 'model')")

    # -- images ---------------------------------------------------------------------------
    def images(self, include_missing: bool = False) -> list[ImageRecord]:
        """Every image, in natural order of names."""
        where = "" if include_missing else "WHERE present=1"
        rows = self.query(f"SELECT {_RECORD_COLUMNS} FROM images {where} ORDER BY sort_key, id")
        return [ImageRecord(*row) for row in rows]

    def shown_page(self, after: tuple[str, int] | None, limit: int) -> tuple[list[ShownRow], tuple[str, int] | None]:
        """The next `limit` present photos in natural order after the key `after` (None: from the
        start), as the rows an `ImageColumns` snapshot holds, and the key to ask for the page
        after them (None: that was the last). Read along the index, so a million-photo project
        shows its first page at once; without the hashes, errors and sort keys a view never
        shows (the million read in 1.3 s instead of 2.4 s): the key is read for the last row."""
        where, params = "present=1", list[object]([limit])
        if after is not None:
            where, params = "present=1 AND (sort_key, id) > (?, ?)", [after[0], after[1], limit]
        rows = self.query(f"SELECT {SHOWN_COLUMNS} FROM images WHERE {where} ORDER BY sort_key, id LIMIT ?", params)
        if len(rows) < limit:
            return rows, None
        last = rows[-1][0]
        return rows, (self.query("SELECT sort_key FROM images WHERE id=?", (last,))[0][0], last)

    def shown_by_relpath(self, relpaths: Sequence[str]) -> list[ShownRow]:
        """The snapshot rows of these paths (present ones), for a snapshot that grows while a scan runs."""
        return self.query_in(f"SELECT {SHOWN_COLUMNS} FROM images", "relpath", relpaths, "present=1")

    # -- what a rescan reads and writes (core.store.sync decides, the store keeps the SQL) --------
    def file_rows(self, chunk: int = 50_000) -> Iterator[tuple[int, str, int, int, int]]:
        """(id, relpath, size, mtime_ns, present) of every image ever seen, read by id a chunk at a
        time: one query over a million rows held the store's lock for two seconds, and the app's
        first page of photos waited on it. No digests: a rescan needs only those of the few
        changed or vanished files (`digests`), and a million of them cost 100 MB."""
        after = 0
        while rows := self.query("SELECT id, relpath, size, mtime_ns, present FROM images "
                                 "WHERE id > ? ORDER BY id LIMIT ?", (after, chunk)):
            yield from rows
            after = rows[-1][0]

    def file_rows_in(self, folder: bytes, recursive: bool = False) -> list[tuple[int, str, int, int, int]]:
        """`file_rows` of the files in one folder (relative, as bytes; b"" the root), and with
        `recursive` of those in its sub-folders too: read along the names' index."""
        prefix = stored_name(os.fsdecode(folder))[0] + "/" if folder else ""
        where, params = [], list[object]()
        if prefix:  # every name under "a/b/" sorts from "a/b/" up to (not including) "a/b0"
            where.append("relpath >= ? AND relpath < ?")
            params += [prefix, prefix[:-1] + "0"]
        if not recursive:
            where.append("instr(substr(relpath, ?), '/') = 0")
            params.append(len(prefix) + 1)
        return self.query("SELECT id, relpath, size, mtime_ns, present FROM images"
                          + (" WHERE " + " AND ".join(where) if where else ""), params)

    def folder_stamps(self) -> FolderStamps:
        """Each folder the last finished scan listed, with its time then (None: list it again)."""
        return {bytes(path): mtime for path, mtime in self.query("SELECT path, mtime_ns FROM folders")}

    def save_folder_stamps(self, stamps: FolderStamps, gone: Sequence[bytes] = (), replace: bool = False) -> None:
        """Keep the times of the folders a scan listed (all of them with `replace`: a whole walk)."""
        with self.transaction() as cur:
            if replace:
                cur.execute("DELETE FROM folders")
            cur.executemany("DELETE FROM folders WHERE path=?", [(path,) for path in gone])
            cur.executemany("INSERT OR REPLACE INTO folders(path, mtime_ns) VALUES(?, ?)", list(stamps.items()))

    def digests(self, image_ids: Sequence[int]) -> dict[int, str | None]:
        """The content hash of each of these images (None: not hashed yet)."""
        return dict(self.query_in("SELECT id, digest FROM images", "id", list(image_ids)))

    def add_files(self, files: Sequence[FoundFile]) -> list[FoundFile]:
        """Insert newly found files (one transaction); returns those whose shown name another
        file already has (a non-UTF-8 name whose escaped picture is a real name), not inserted."""
        with self.transaction() as cur:
            cur.executemany(
                "INSERT OR IGNORE INTO images(relpath, size, mtime_ns, digest, added_at, raw_path, sort_key) "
                "VALUES(?,?,?,NULL,?,?,?)",
                [(f.relpath, f.size, f.mtime_ns, time.time(), f.raw_path, sort_key(f.relpath)) for f in files],
            )
            if cur.rowcount == len(files):
                return []
            stored = dict(self.query_in("SELECT relpath, raw_path FROM images", "relpath", [f.relpath for f in files]))
        return [f for f in files if stored.get(f.relpath, f.raw_path) != f.raw_path]

    def move_files(self, moves: Sequence[tuple[int, FoundFile]]) -> None:
        """Give existing records (and so their work) to files found under new names."""
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE images SET relpath=?, raw_path=?, size=?, mtime_ns=?, present=1, sort_key=? WHERE id=?",
                [(f.relpath, f.raw_path, f.size, f.mtime_ns, sort_key(f.relpath), image_id) for image_id, f in moves],
            )

    def mark_rescanned(self, changed: Sequence[tuple[int, FoundFile]], missing: Sequence[int]) -> None:
        """Changed files lose their digest (hashed again), missing ones are marked, work kept."""
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE images SET size=?, mtime_ns=?, digest=NULL, present=1, error=NULL WHERE id=?",
                [(f.size, f.mtime_ns, image_id) for image_id, f in changed],
            )
            cur.executemany("UPDATE images SET present=0 WHERE id=?", [(i,) for i in missing])

    def unhashed(self, after_id: int = 0, limit: int = -1) -> list[tuple[int, str, bytes | None]]:
        """(id, relpath, raw_path) of present files not yet hashed, by id after `after_id`: read
        a batch at a time, a million-photo first open never holds every name twice."""
        return self.query("SELECT id, relpath, raw_path FROM images WHERE present=1 AND digest IS NULL AND id > ? "
                          "ORDER BY id LIMIT ?", (after_id, limit))

    def count_images(self) -> int:
        """How many photos are present (without reading them: a million records took 3 s)."""
        return int(self.query("SELECT COUNT(*) FROM images WHERE present=1")[0][0])

    def count_unhashed(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM images WHERE present=1 AND digest IS NULL")[0][0])

    def set_digests(self, digests: Sequence[tuple[str | None, int]]) -> None:
        with self.transaction() as cur:
            cur.executemany("UPDATE images SET digest=? WHERE id=?", digests)

    def image_ids_by_relpath(self) -> dict[str, int]:
        return dict(self.query("SELECT relpath, id FROM images WHERE present=1"))

    def image_path(self, record: ImageRecord | ShownImage) -> Path:
        return self.folder / disk_relpath(record.relpath, record.raw_path)

    def set_image_error(self, image_id: int, error: str | None) -> None:
        with self.transaction() as cur:
            cur.execute("UPDATE images SET error=? WHERE id=?", (error, image_id))

    def set_reviewed(self, image_ids: Iterable[int], reviewed: bool = True) -> None:
        stamp = time.time() if reviewed else None
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE images SET reviewed_at=? WHERE id=?", [(stamp, i) for i in image_ids]
            )

    def reviewed_among(self, image_ids: Sequence[int]) -> set[int]:
        """Which of these photos are marked reviewed."""
        return {row[0] for row in self.query_in("SELECT id FROM images", "id", image_ids, "reviewed_at IS NOT NULL")}

    # -- captions -------------------------------------------------------------------------
    def set_caption(self, image_id: int, text: str, source: str = "typed") -> None:
        self.set_captions([(image_id, text)], source)

    def set_captions(self, items: Iterable[tuple[int, str]], source: str) -> None:
        if source not in CAPTION_SOURCES:
            raise ValueError(f"caption source must be one of {CAPTION_SOURCES}")
        now = time.time()
        with self.transaction() as cur:
            cur.executemany(
                "INSERT INTO captions(image_id, text, source, updated_at) VALUES(?,?,?,?) "
                "ON CONFLICT(image_id) DO UPDATE SET text=excluded.text, "
                "source=excluded.source, updated_at=excluded.updated_at",
                [(i, t, source, now) for i, t in items],
            )

    def delete_caption(self, image_id: int) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM captions WHERE image_id=?", (image_id,))

    def captions(self, image_ids: Sequence[int] | None = None) -> dict[int, tuple[str, str]]:
        """image id -> (caption, source), of every image or of those asked for."""
        rows = self.query_in("SELECT image_id, text, source FROM captions", "image_id", image_ids)
        return {i: (t, s) for i, t, s in rows}

    def caption(self, image_id: int) -> tuple[str, str] | None:
        rows = self.query("SELECT text, source FROM captions WHERE image_id=?", (image_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    # -- label vocabulary -----------------------------------------------------------------
    def labels(self) -> list[Label]:
        rows = self.query(f"SELECT {_LABEL_COLUMNS} FROM labels ORDER BY position, id")
        return [Label(*row) for row in rows]

    def ensure_labels(self, names: Sequence[str], external_ids: Sequence[str | None] | None = None) -> None:
        """Add missing labels in the given order; fill in ids that existing labels lack. The person
        asks for these names (an import, a label typed in), so a deleted label of that name returns."""
        existing = {label.name: label for label in self.labels()}
        ids = list(external_ids) if external_ids is not None else [None] * len(names)
        with self.transaction() as cur:
            for name, external in zip(names, ids):
                label = existing.get(name)
                if label is None:
                    self._add_label(cur, name, external)
                    cur.execute("DELETE FROM label_tombstones WHERE origin=?", (name,))
                elif label.external_id is None and external is not None:
                    cur.execute("UPDATE labels SET external_id=? WHERE id=?", (external, label.id))

    @staticmethod
    def _add_label(cur: sqlite3.Cursor, name: str, external: str | None = None) -> int:
        """A new label at the end; it is known to models by this name unless another label is."""
        check_label_name(name)
        taken = cur.execute("SELECT 1 FROM labels WHERE origin=?", (name,)).fetchone() is not None
        cur.execute(
            "INSERT INTO labels(name, position, external_id, origin) VALUES(?, (SELECT COUNT(*) FROM labels), ?, ?)",
            (name, external, None if taken else name),
        )
        return int(cur.lastrowid or 0)

    def model_label_ids(self, names: Sequence[str], external_ids: Sequence[str | None] | None = None,
                        ) -> list[int | None]:
        """The project's label for each label of a model, by identity: the label models know by
        that name (renamed or not), else the label of that name; a label the person deleted maps
        to None (its predictions are dropped, the label does not come back); any other is added."""
        ids = list(external_ids) if external_ids is not None else [None] * len(names)
        result: list[int | None] = []
        with self.transaction() as cur:
            for name, external in zip(names, ids):
                row = (cur.execute("SELECT id FROM labels WHERE origin=?", (name,)).fetchone()
                       or cur.execute("SELECT id FROM labels WHERE name=?", (name,)).fetchone())
                if row is not None:
                    result.append(int(row[0]))
                elif cur.execute("SELECT 1 FROM label_tombstones WHERE origin=?", (name,)).fetchone():
                    result.append(None)
                else:
                    result.append(self._add_label(cur, name, external))
        return result

    def deleted_labels(self) -> list[str]:
        """Names of labels the person deleted: no model brings them back."""
        return [row[0] for row in self.query("SELECT origin FROM label_tombstones ORDER BY deleted_at")]

    def rename_label(self, old: str, new: str) -> None:
        """Decisions and predictions refer to the label's id, so they follow the new name; models
        keep finding it under the name they know (`origin`)."""
        new = new.strip()
        check_label_name(new)
        with self.transaction() as cur:
            if not cur.execute("SELECT 1 FROM labels WHERE name=?", (old,)).fetchone():
                raise StoreError(f"there is no label named {old!r}")
            if new != old and cur.execute("SELECT 1 FROM labels WHERE name=?", (new,)).fetchone():
                raise StoreError(f"a label named {new!r} exists already")
            cur.execute("UPDATE labels SET origin=COALESCE(origin, name), name=? WHERE name=?", (new, old))

    def delete_label(self, name: str) -> LabelSnapshot | None:
        """Delete a label with its decisions and predictions; returns them for `restore_label`
        (None when there was no such label). A tombstone keeps models from adding it back."""
        with self.transaction() as cur:
            row = cur.execute(f"SELECT {_LABEL_COLUMNS} FROM labels WHERE name=?", (name,)).fetchone()
            if row is None:
                return None
            label = Label(*row)
            confirmations = cur.execute(
                "SELECT image_id, present, updated_at FROM confirmations WHERE label_id=? ORDER BY image_id",
                (label.id,),
            ).fetchall()
            predictions = cur.execute(
                "SELECT image_id, model_id, probability, predicted, inputs_key FROM predictions "
                "WHERE label_id=? ORDER BY image_id",
                (label.id,),
            ).fetchall()
            cur.execute("DELETE FROM labels WHERE id=?", (label.id,))
            cur.execute("INSERT OR REPLACE INTO label_tombstones(origin, deleted_at) VALUES(?, ?)",
                        (label.origin or label.name, time.time()))
        return LabelSnapshot(label, tuple(confirmations), tuple(predictions))

    def restore_label(self, snapshot: LabelSnapshot) -> None:
        """Put a deleted label back (name, id, hotkey, position, external id, every row), all or nothing.

        The original id is reused when it is still free. Raises `StoreError` when a label of that
        name exists again (an import may have re-created it); rows of images no longer in the
        store are skipped.
        """
        label = snapshot.label
        with self.transaction() as cur:
            if cur.execute("SELECT 1 FROM labels WHERE name=?", (label.name,)).fetchone():
                raise StoreError(f"a label named {label.name!r} exists again")
            id_taken = cur.execute("SELECT 1 FROM labels WHERE id=?", (label.id,)).fetchone() is not None
            cur.execute(
                "INSERT INTO labels(id, name, hotkey, position, external_id, origin) VALUES(?,?,?,?,?,?)",
                (None if id_taken else label.id, label.name, label.hotkey, label.position, label.external_id,
                 label.origin),
            )
            cur.execute("DELETE FROM label_tombstones WHERE origin=?", (label.origin or label.name,))
            label_id = label.id if not id_taken else int(cur.lastrowid or 0)
            cur.executemany(
                "INSERT INTO confirmations(image_id, label_id, present, updated_at) "
                "SELECT id, ?, ?, ? FROM images WHERE id=?",
                [(label_id, present, updated, image_id) for image_id, present, updated in snapshot.confirmations],
            )
            cur.executemany(
                "INSERT OR IGNORE INTO predictions(image_id, model_id, label_id, probability, predicted, inputs_key) "
                "SELECT id, ?, ?, ?, ?, ? FROM images WHERE id=? AND EXISTS (SELECT 1 FROM models WHERE id=?)",
                [(model_id, label_id, prob, predicted, key, image_id, model_id)
                 for image_id, model_id, prob, predicted, key in snapshot.predictions],
            )

    def set_external_id(self, name: str, external_id: str | None) -> None:
        """The id a label is written as in CSVs of ids (`export --label-ids`); None removes it."""
        external_id = external_id.strip() if external_id else None
        with self.transaction() as cur:
            if external_id and cur.execute("SELECT name FROM labels WHERE external_id=? AND name != ?",
                                           (external_id, name)).fetchone():
                raise StoreError(f"another label has the id {external_id!r} already")
            cur.execute("UPDATE labels SET external_id=? WHERE name=?", (external_id or None, name))

    def reorder_labels(self, names: Sequence[str]) -> None:
        """Put the labels in this order (labels not named keep their order, after these): the
        order of the label list, the export's columns and the default keys 1-9."""
        current = [label.name for label in self.labels()]
        order = [n for n in names if n in current] + [n for n in current if n not in names]
        with self.transaction() as cur:
            cur.executemany("UPDATE labels SET position=? WHERE name=?", list(enumerate(order)))

    def set_hotkey(self, name: str, hotkey: str | None) -> None:
        with self.transaction() as cur:
            cur.execute("UPDATE labels SET hotkey=? WHERE name=?", (hotkey, name))

    # -- predictions (per model) and confirmations ----------------------------------------
    def model_id(self, model_key: str) -> int | None:
        """The store's number for a model (by the digest of its files); None: it predicted nothing here."""
        rows = self.query("SELECT id FROM models WHERE key=?", (model_key,))
        return int(rows[0][0]) if rows else None

    def save_predictions(
        self,
        image_ids: Sequence[int],
        probabilities: np.ndarray,
        decisions: np.ndarray,
        label_names: Sequence[str],
        model_key: str,
        inputs_keys: Sequence[str] | None = None,
        model_name: str = "",
        external_ids: Sequence[str | None] | None = None,
    ) -> None:
        """Write one batch of one model's predictions (rows of `probabilities` follow `image_ids`).

        `model_key` is the digest of the model's files (`core.models.model_identity`): each model's
        rows are its own, so another model's run never changes what this one said. Columns of labels
        the person deleted are dropped. `inputs_keys` names what the prediction was made from (file
        content and caption), so a later run redoes exactly the images whose photo or caption changed.
        """
        keys = list(inputs_keys) if inputs_keys is not None else [""] * len(image_ids)
        with self.transaction() as cur:
            label_ids = self.model_label_ids(label_names, external_ids)
            kept = [(j, label_id) for j, label_id in enumerate(label_ids) if label_id is not None]
            cur.execute("INSERT INTO models(key, name, used_at) VALUES(?, ?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET used_at=excluded.used_at, name=excluded.name",
                        (model_key, model_name, time.time()))
            model = int(cur.execute("SELECT id FROM models WHERE key=?", (model_key,)).fetchone()[0])
            cur.executemany(
                "INSERT OR REPLACE INTO predictions(image_id, model_id, label_id, probability, predicted, inputs_key) "
                "VALUES(?,?,?,?,?,?)",
                [(image_id, model, label_id, float(probabilities[r, j]), int(decisions[r, j]), keys[r])
                 for r, image_id in enumerate(image_ids) for j, label_id in kept],
            )
            cur.executemany("INSERT INTO changes(image_id, kind) VALUES(?, 'prediction')",
                            [(image_id,) for image_id in image_ids])

    def prediction_inputs(self, model_key: str) -> dict[int, str]:
        """image id -> inputs key of its current prediction by the model `model_key`."""
        model = self.model_id(model_key)
        if model is None:
            return {}
        rows = self.query(
            "SELECT image_id, MIN(inputs_key) FROM predictions WHERE model_id=? GROUP BY image_id", (model,))
        return dict(rows)

    def predictions(self, model_key: str, image_ids: Sequence[int] | None = None,
                    ) -> dict[int, dict[str, tuple[float, bool]]]:
        """image id -> label name -> (probability, predicted present) by one model (the active one,
        for everything a person sees), of every image or of those asked for."""
        result: dict[int, dict[str, tuple[float, bool]]] = {}
        model = self.model_id(model_key)
        if model is None:
            return result
        for image_id, name, prob, predicted in self.query_in(
            "SELECT p.image_id, l.name, p.probability, p.predicted FROM predictions p JOIN labels l ON l.id = p.label_id",
            "p.image_id", image_ids, "p.model_id=?", (model,),
        ):
            result.setdefault(image_id, {})[name] = (prob, bool(predicted))
        return result

    def guessed_labels(self, model_key: str, image_ids: Sequence[int] | None = None) -> dict[int, set[str]]:
        """image id -> labels the model gave only as its best guess (no label passed its threshold)."""
        result: dict[int, set[str]] = {}
        model = self.model_id(model_key)
        if model is None:
            return result
        for image_id, name in self.query_in("SELECT p.image_id, l.name FROM predictions p JOIN labels l ON l.id = p.label_id",
                                            "p.image_id", image_ids, "p.predicted = 2 AND p.model_id=?", (model,)):
            result.setdefault(image_id, set()).add(name)
        return result

    def forget_models(self, keep: Iterable[str], idle_seconds: float = 3600.0) -> int:
        """Drop the predictions of models other than `keep` that wrote none for `idle_seconds`
        (a retrain every 20 photos would otherwise keep every old model's rows); returns how many
        models went."""
        keep = list(keep)
        marks = ",".join("?" * len(keep)) or "''"
        with self.transaction() as cur:
            gone = [row[0] for row in cur.execute(
                f"SELECT id FROM models WHERE key NOT IN ({marks}) AND used_at < ?", (*keep, time.time() - idle_seconds))]
            for model in gone:
                cur.execute("DELETE FROM predictions WHERE model_id=?", (model,))
                cur.execute("DELETE FROM models WHERE id=?", (model,))
        return len(gone)

    def confirm(self, image_id: int, label: str, present: bool | None) -> None:
        """Record what the person decided for one label; None clears the decision."""
        self.confirm_many([(image_id, label, present)])

    def confirm_many(self, items: Iterable[tuple[int, str, bool | None]]) -> None:
        label_ids = {label.name: label.id for label in self.labels()}
        now = time.time()
        with self.transaction() as cur:
            for image_id, name, present in items:
                if name not in label_ids:
                    label_ids[name] = self._add_label(cur, name)
                    cur.execute("DELETE FROM label_tombstones WHERE origin=?", (name,))
                if present is None:
                    cur.execute(
                        "DELETE FROM confirmations WHERE image_id=? AND label_id=?",
                        (image_id, label_ids[name]),
                    )
                else:
                    cur.execute(
                        "INSERT INTO confirmations(image_id, label_id, present, updated_at) VALUES(?,?,?,?) "
                        "ON CONFLICT(image_id, label_id) DO UPDATE SET present=excluded.present, "
                        "updated_at=excluded.updated_at WHERE present != excluded.present",
                        (image_id, label_ids[name], int(present), now),
                    )

    def confirmations(self, image_ids: Sequence[int] | None = None) -> dict[int, dict[str, bool]]:
        """image id -> label name -> present, for every decision a person made (of the images asked for)."""
        result: dict[int, dict[str, bool]] = {}
        for image_id, name, present in self.query_in(
            "SELECT c.image_id, l.name, c.present FROM confirmations c JOIN labels l ON l.id = c.label_id",
            "c.image_id", image_ids,
        ):
            result.setdefault(image_id, {})[name] = bool(present)
        return result

    # -- what other processes changed -----------------------------------------------------
    def data_version(self) -> int:
        """Moves when another connection commits (SQLite's `PRAGMA data_version`): microseconds to ask."""
        return int(self.query("PRAGMA data_version")[0][0])

    def last_change(self) -> int:
        rows = self.query("SELECT MAX(seq) FROM changes")
        return int(rows[0][0] or 0)

    def changes_since(self, seq: int) -> tuple[int, list[tuple[int | None, str]]] | None:
        """(the newest change, [(image id or None, kind)]) after `seq`; None when the rows in
        between were pruned (the reader then re-reads everything)."""
        oldest = self.query("SELECT MIN(seq) FROM changes")[0][0]
        if seq and oldest is not None and oldest > seq + 1:
            return None
        rows = self.query("SELECT seq, image_id, kind FROM changes WHERE seq > ? ORDER BY seq", (seq,))
        if not rows:
            return seq, []
        return int(rows[-1][0]), [(image_id, kind) for _, image_id, kind in rows]

    # -- embedding cache ------------------------------------------------------------------
    def cached_embeddings(self, encoder: str, image_ids: Sequence[int] | None = None) -> dict[int, tuple[str, np.ndarray]]:
        """image id -> (source key, float32 vector) for one encoder version, of every image or of
        those asked for (three new photos in a 100,000-photo project need not read 1 GB)."""
        rows = self.query_in("SELECT image_id, source_key, vector FROM embeddings", "image_id", image_ids,
                             "encoder=?", (encoder,))
        return {i: (k, np.frombuffer(v, dtype=np.float16).astype(np.float32)) for i, k, v in rows}

    def save_embeddings(self, encoder: str, items: Iterable[tuple[int, str, np.ndarray]]) -> None:
        """Vectors are kept as float16: half the disk, no measurable loss for a linear head."""
        with self.transaction() as cur:
            cur.executemany(
                "INSERT OR REPLACE INTO embeddings(image_id, encoder, source_key, vector) VALUES(?,?,?,?)",
                [(i, encoder, k, np.asarray(v, dtype=np.float16).tobytes()) for i, k, v in items],
            )
