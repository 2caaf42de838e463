"""Incremental rescan: bring the store's image table in line with the folder on disk.

Two phases, so a first open of a large folder shows photos at once: (1) a stat-only walk
inserts new files in batches (progress `extra["added"]` names them); (2) content hashes are
computed in batches afterwards. Only a new file whose size matches a missing one is hashed
in phase 1, to tell a move (work follows the photo) from a new photo.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.progress import CancelToken, Job, Progress
from core.scan import FoundFile, ScanProblem, disk_relpath, file_digest, walk_images
from core.store import ProjectStore

INSERT_BATCH = 2000
HASH_BATCH = 500


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    problems: list[ScanProblem] = field(default_factory=list)
    odd_names: list[str] = field(default_factory=list)  # added files whose names are not UTF-8, as shown


def sync_folder(store: ProjectStore, cancel: CancelToken | None = None) -> Job[SyncReport]:
    """Add new files, re-hash changed ones, mark missing ones (their work is kept)."""
    report = SyncReport()
    known = {row[1]: row for row in store.query("SELECT id, relpath, size, mtime_ns, digest, present, raw_path FROM images")}
    if not known:  # first open: nothing can have moved, so insert while the walk goes on
        yield from _insert_new(store, walk_images(store.folder, report.problems), report, cancel)
        yield from _hash_missing(store, report, {}, cancel)
        return report
    found = list(walk_images(store.folder, report.problems))
    on_disk = {f.relpath for f in found}
    vanished = {rel: row for rel, row in known.items() if rel not in on_disk and row[5] == 1}
    new: list[FoundFile] = []
    changed: list[tuple[FoundFile, tuple]] = []
    for item in found:
        row = known.get(item.relpath)
        if row is None:
            new.append(item)
        elif row[2] == item.size and row[3] == item.mtime_ns and row[5] == 1:
            report.unchanged += 1
        else:
            changed.append((item, row))
    new = _apply_moves(store, new, vanished, report)
    yield from _insert_new(store, iter(new), report, cancel, total=len(new))
    with store.transaction() as cur:
        cur.executemany(
            "UPDATE images SET size=?, mtime_ns=?, digest=NULL, present=1, error=NULL WHERE id=?",
            [(f.size, f.mtime_ns, row[0]) for f, row in changed],
        )
        cur.executemany("UPDATE images SET present=0 WHERE id=?", [(row[0],) for row in vanished.values()])
    report.removed = sorted(vanished)
    old_digests = {row[0]: row[4] for _, row in changed}
    yield from _hash_missing(store, report, old_digests, cancel)
    return report


def _insert_new(store: ProjectStore, files: Iterator[FoundFile], report: SyncReport,
                cancel: CancelToken | None, total: int = 0) -> Iterator[Progress]:
    """Insert in batches; each batch is committed and announced (`extra["added"]`) at once."""
    now = time.time()
    while True:
        batch = list(itertools.islice(files, INSERT_BATCH))
        if not batch:
            return
        if cancel is not None:
            cancel.raise_if_cancelled()
        with store.transaction() as cur:
            cur.executemany(
                "INSERT OR IGNORE INTO images(relpath, size, mtime_ns, digest, added_at, raw_path) VALUES(?,?,?,NULL,?,?)",
                [(f.relpath, f.size, f.mtime_ns, now, f.raw_path) for f in batch],
            )
            if cur.rowcount != len(batch):  # a non-UTF-8 name whose escaped picture is another file's name
                batch = _drop_clashes(cur, batch, report)
        report.added.extend(f.relpath for f in batch)
        report.odd_names.extend(f.relpath for f in batch if f.raw_path is not None)
        yield Progress("scan", len(report.added), total, extra={"added": [f.relpath for f in batch]})


def _drop_clashes(cur: sqlite3.Cursor, batch: list[FoundFile], report: SyncReport) -> list[FoundFile]:
    stored = dict(cur.execute(
        f"SELECT relpath, raw_path FROM images WHERE relpath IN ({','.join('?' * len(batch))})",
        [f.relpath for f in batch]).fetchall())
    kept = []
    for item in batch:
        if stored.get(item.relpath, item.raw_path) == item.raw_path:
            kept.append(item)
        else:
            report.problems.append(ScanProblem(item.relpath, "another file shows the same name; rename one of them"))
    return kept


def _apply_moves(store: ProjectStore, new: list[FoundFile], vanished: dict[str, tuple], report: SyncReport) -> list[FoundFile]:
    """Give a missing photo's record to a new file with the same content; return the rest."""
    sizes = {row[2] for row in vanished.values()}
    by_digest = {row[4]: rel for rel, row in vanished.items() if row[4]}
    remaining = []
    # hashed before the transaction: reading files must not hold the lock the app's reads wait on
    digests = [_digest_or_none(store, item.relpath, item.raw_path, report) if item.size in sizes else None
               for item in new]
    with store.transaction() as cur:
        for item, digest in zip(new, digests):
            old_rel = by_digest.pop(digest, None) if digest else None
            if old_rel is None:
                remaining.append(item)
                continue
            cur.execute(
                "UPDATE images SET relpath=?, raw_path=?, size=?, mtime_ns=?, present=1 WHERE id=?",
                (item.relpath, item.raw_path, item.size, item.mtime_ns, vanished.pop(old_rel)[0]),
            )
            report.moved.append((old_rel, item.relpath))
    return remaining


def _hash_missing(store: ProjectStore, report: SyncReport, old_digests: dict[int, str | None],
                  cancel: CancelToken | None) -> Iterator[Progress]:
    rows = store.query("SELECT id, relpath, raw_path FROM images WHERE present=1 AND digest IS NULL")
    for start in range(0, len(rows), HASH_BATCH):
        if cancel is not None:
            cancel.raise_if_cancelled()
        batch = rows[start : start + HASH_BATCH]
        digests = [(_digest_or_none(store, rel, raw, report), image_id) for image_id, rel, raw in batch]
        with store.transaction() as cur:
            cur.executemany("UPDATE images SET digest=? WHERE id=?", digests)
        report.changed.extend(rel for (image_id, rel, _raw), (digest, _) in zip(batch, digests)
                              if image_id in old_digests and old_digests[image_id] != digest)
        yield Progress("hash", start + len(batch), len(rows))


def _digest_or_none(store: ProjectStore, relpath: str, raw_path: bytes | None, report: SyncReport) -> str | None:
    try:
        return file_digest(store.folder / disk_relpath(relpath, raw_path))
    except OSError as exc:
        report.problems.append(ScanProblem(relpath, exc.strerror or str(exc)))
        return None
