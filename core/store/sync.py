"""Incremental rescan: bring the store's image table in line with the folder on disk.

Two phases, so a first open of a large folder shows photos at once: (1) a stat-only walk
inserts new files in batches (progress `extra["added"]` names them); (2) content hashes are
computed in batches afterwards. Only a new file whose size matches a missing one is hashed
in phase 1, to tell a move (work follows the photo) from a new photo.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.media.scan import FoundFile, ScanProblem, disk_relpath, file_digest, walk_images
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore

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
    # every added file came after every known one, in natural order (a first open): a snapshot
    # that appended the batches as they landed is already in order and need not be re-read
    appended_in_order: bool = False


def sync_folder(store: ProjectStore, cancel: CancelToken | None = None) -> Job[SyncReport]:
    """Add new files, re-hash changed ones, mark missing ones (their work is kept)."""
    report = SyncReport()
    known = {row[1]: row for row in store.file_rows()}
    if not known:  # first open: nothing can have moved, so insert while the walk goes on
        yield from _insert_new(store, walk_images(store.folder, report.problems), report, cancel)
        yield from _hash_missing(store, report, {}, cancel)
        report.appended_in_order = True
        return report
    # Each file found takes its row out of `known`, so what is left was not found; no list of
    # every file on disk is kept (a million of them cost hundreds of megabytes on a re-open).
    new: list[FoundFile] = []
    changed: list[tuple[FoundFile, tuple]] = []
    for item in walk_images(store.folder, report.problems):
        row = known.pop(item.relpath, None)
        if row is None:
            new.append(item)
        elif row[2] == item.size and row[3] == item.mtime_ns and row[4] == 1:
            report.unchanged += 1
        else:
            changed.append((item, row))
    vanished = {rel: row for rel, row in known.items() if row[4] == 1}
    del known
    new = _apply_moves(store, new, vanished, report)
    yield from _insert_new(store, iter(new), report, cancel, total=len(new))
    store.mark_rescanned([(row[0], f) for f, row in changed], [row[0] for row in vanished.values()])
    report.removed = sorted(vanished)
    old_digests = store.digests([row[0] for _, row in changed])
    yield from _hash_missing(store, report, old_digests, cancel)
    return report


def _insert_new(store: ProjectStore, files: Iterator[FoundFile], report: SyncReport,
                cancel: CancelToken | None, total: int = 0) -> Iterator[Progress]:
    """Insert in batches; each batch is committed and announced (`extra["added"]`) at once."""
    while True:
        batch = list(itertools.islice(files, INSERT_BATCH))
        if not batch:
            return
        if cancel is not None:
            cancel.raise_if_cancelled()
        clashes = store.add_files(batch)
        if clashes:
            report.problems.extend(ScanProblem(f.relpath, "another file shows the same name; rename one of them")
                                   for f in clashes)
            batch = [f for f in batch if f not in clashes]
        report.added.extend(f.relpath for f in batch)
        report.odd_names.extend(f.relpath for f in batch if f.raw_path is not None)
        yield Progress("scan", len(report.added), total, extra={"added": [f.relpath for f in batch]})


def _apply_moves(store: ProjectStore, new: list[FoundFile], vanished: dict[str, tuple], report: SyncReport) -> list[FoundFile]:
    """Give a missing photo's record to a new file with the same content; return the rest."""
    if not new or not vanished:
        return new
    sizes = {row[2] for row in vanished.values()}
    digests = store.digests([row[0] for row in vanished.values()])
    by_digest = {digest: rel for rel, row in vanished.items() if (digest := digests.get(row[0]))}
    remaining, moves = [], []
    # hashed before any transaction: reading files must not hold the lock the app's reads wait on
    for item in new:
        digest = _digest_or_none(store, item.relpath, item.raw_path, report) if item.size in sizes else None
        old_rel = by_digest.pop(digest, None) if digest else None
        if old_rel is None:
            remaining.append(item)
            continue
        moves.append((vanished.pop(old_rel)[0], item))
        report.moved.append((old_rel, item.relpath))
    store.move_files(moves)
    return remaining


def _hash_missing(store: ProjectStore, report: SyncReport, old_digests: dict[int, str | None],
                  cancel: CancelToken | None) -> Iterator[Progress]:
    total, done, after = store.count_unhashed(), 0, 0
    while batch := store.unhashed(after, HASH_BATCH):
        if cancel is not None:
            cancel.raise_if_cancelled()
        after = batch[-1][0]
        digests = [(_digest_or_none(store, rel, raw, report), image_id) for image_id, rel, raw in batch]
        store.set_digests(digests)
        report.changed.extend(rel for (image_id, rel, _raw), (digest, _) in zip(batch, digests)
                              if image_id in old_digests and old_digests[image_id] != digest)
        done += len(batch)
        yield Progress("hash", done, max(total, done))


def _digest_or_none(store: ProjectStore, relpath: str, raw_path: bytes | None, report: SyncReport) -> str | None:
    try:
        return file_digest(store.folder / disk_relpath(relpath, raw_path))
    except OSError as exc:
        report.problems.append(ScanProblem(relpath, exc.strerror or str(exc)))
        return None
