"""Incremental rescan: bring the store's image table in line with the folder on disk.

Two phases, so a first open of a large folder shows photos at once: (1) a stat-only walk
inserts new files in batches (progress `extra["added"]` names them); (2) content hashes are
computed in batches afterwards. Only a new file whose size matches a missing one is hashed
in phase 1, to tell a move (work follows the photo) from a new photo.

A whole walk stats every file (a million took 14 s here, most of it in `stat`). With
`trust_folders`, a rescan lists again only the folders whose modification time moved since
the last scan (a name added, removed or renamed in a folder moves its time) and trusts the
rest: a million photos in 1,000 folders cost 1,000 `stat`s. A file rewritten in place does not
move its folder's time, so the app follows such a rescan with a whole one in the background.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from core.media.scan import FolderStamps, FoundFile, ScanProblem, disk_relpath, file_digest, walk_images
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore

INSERT_BATCH = 2000
WALK_STEP = 5000  # files compared between two progress steps (and cancel checks)
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
    trusted_folders: int = 0  # folders not listed again: their time had not moved (`trust_folders`)

    def as_dict(self) -> dict:
        """For a scan run in another process (`core.jobs.check`): JSON types only."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SyncReport:
        report = cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})
        report.problems = [ScanProblem(**p) for p in report.problems]  # type: ignore[arg-type]
        report.moved = [tuple(m) for m in report.moved]  # type: ignore[misc]
        return report


@dataclass
class _Diff:
    """What a walk found against what the store knew."""

    new: list[FoundFile] = field(default_factory=list)
    changed: list[tuple[FoundFile, tuple]] = field(default_factory=list)
    vanished: dict[str, tuple] = field(default_factory=dict)
    stamps: FolderStamps = field(default_factory=dict)  # the folders listed, with their times
    gone: list[bytes] = field(default_factory=list)  # folders known before, not there now

    def compare(self, found: Iterable[FoundFile], known: dict[str, tuple], report: SyncReport,
                cancel: CancelToken | None) -> Iterator[Progress]:
        """Each file found takes its row out of `known`, so what is left was not found; no list
        of every file on disk is kept (a million of them cost hundreds of megabytes). Progress
        every few thousand files, so a walk of a million stops soon when cancelled."""
        for count, item in enumerate(found, 1):
            if count % WALK_STEP == 0:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                yield Progress("check", count, 0)
            row = known.pop(item.relpath, None)
            if row is None:
                self.new.append(item)
            elif row[2] == item.size and row[3] == item.mtime_ns and row[4] == 1:
                report.unchanged += 1
            else:
                self.changed.append((item, row))
        self.vanished.update((rel, row) for rel, row in known.items() if row[4] == 1)


def sync_folder(store: ProjectStore, cancel: CancelToken | None = None, trust_folders: bool = False) -> Job[SyncReport]:
    """Add new files, re-hash changed ones, mark missing ones (their work is kept)."""
    report = SyncReport()
    stamps = store.folder_stamps() if trust_folders else {}
    diff = _Diff()
    if stamps:
        yield from _compare_moved_folders(store, stamps, diff, report, cancel)
    else:
        known = {row[1]: row for row in store.file_rows()}
        if not known:  # first open: nothing can have moved, so insert while the walk goes on
            yield from _insert_new(store, walk_images(store.folder, report.problems, diff.stamps), report, cancel)
            store.save_folder_stamps(diff.stamps, replace=True)
            yield from _hash_missing(store, report, {}, cancel)
            report.appended_in_order = True
            return report
        yield from diff.compare(walk_images(store.folder, report.problems, diff.stamps), known, report, cancel)
        del known
    new = _apply_moves(store, diff.new, diff.vanished, report)
    yield from _insert_new(store, iter(new), report, cancel, total=len(new))
    store.mark_rescanned([(row[0], f) for f, row in diff.changed], [row[0] for row in diff.vanished.values()])
    # kept once the store matches the folder (a cancelled scan keeps the old times: listed again)
    store.save_folder_stamps(diff.stamps, diff.gone, replace=not stamps)
    report.removed = sorted(diff.vanished)
    old_digests = store.digests([row[0] for _, row in diff.changed])
    yield from _hash_missing(store, report, old_digests, cancel)
    return report


def _compare_moved_folders(store: ProjectStore, stamps: FolderStamps, diff: _Diff, report: SyncReport,
                           cancel: CancelToken | None) -> Iterator[Progress]:
    """List again the folders whose time moved (and new folders in them); trust the others."""
    root = os.fspath(store.folder)
    moved: list[bytes] = []
    for folder, mtime in stamps.items():
        try:
            info = os.stat(os.path.join(root, os.fsdecode(folder)) if folder else root)
        except OSError:
            diff.gone.append(folder)
            continue
        if not stat.S_ISDIR(info.st_mode):
            diff.gone.append(folder)
        elif mtime is None or info.st_mtime_ns != mtime:
            moved.append(folder)
        else:
            report.trusted_folders += 1
    for folder in diff.gone:  # its files (and its sub-folders', also gone) are missing
        diff.vanished.update((row[1], row) for row in store.file_rows_in(folder, recursive=True) if row[4] == 1)
    for folder in moved:
        known = {row[1]: row for row in store.file_rows_in(folder)}
        found = walk_images(store.folder, report.problems, diff.stamps, skip=stamps, start=folder)
        yield from diff.compare(found, known, report, cancel)


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
