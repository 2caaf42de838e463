"""Incremental rescan: bring the store's image table in line with the folder on disk."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.progress import CancelToken, Job, Progress
from core.scan import ScanProblem, file_digest, walk_images
from core.store import ProjectStore


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    problems: list[ScanProblem] = field(default_factory=list)


def sync_folder(store: ProjectStore, cancel: CancelToken | None = None) -> Job[SyncReport]:
    """Add new files, re-hash changed ones, mark missing ones (their work is kept).

    A missing file whose content reappears under another name is treated as a move, so
    captions and confirmed labels follow a renamed photo.
    """
    report = SyncReport()
    found = list(walk_images(store.folder, report.problems))
    known = {row[1]: row for row in store.query(
        "SELECT id, relpath, size, mtime_ns, digest, present FROM images")}
    on_disk = {f.relpath for f in found}
    now = time.time()
    total = len(found)
    new_rows: list[tuple[str, int, int, str | None]] = []
    updates: list[tuple[int, int, str | None, int]] = []
    for done, item in enumerate(found, 1):
        row = known.get(item.relpath)
        if row is not None and row[2] == item.size and row[3] == item.mtime_ns and row[5] == 1:
            report.unchanged += 1
        else:
            digest = _digest_or_none(store, item.relpath, report)
            if row is None:
                new_rows.append((item.relpath, item.size, item.mtime_ns, digest))
            else:
                updates.append((item.size, item.mtime_ns, digest, row[0]))
                if row[4] != digest:
                    report.changed.append(item.relpath)
        if done % 500 == 0 or done == total:
            if cancel is not None:
                cancel.raise_if_cancelled()
            yield Progress("scan", done, total, message=item.relpath)
    vanished = {rel: row for rel, row in known.items() if rel not in on_disk and row[5] == 1}
    by_digest = {row[4]: rel for rel, row in vanished.items() if row[4]}
    with store.transaction() as cur:
        for relpath, size, mtime_ns, digest in new_rows:
            old_rel = by_digest.pop(digest, None) if digest else None
            if old_rel is not None:
                cur.execute(
                    "UPDATE images SET relpath=?, size=?, mtime_ns=?, present=1 WHERE id=?",
                    (relpath, size, mtime_ns, vanished.pop(old_rel)[0]),
                )
                report.moved.append((old_rel, relpath))
            else:
                cur.execute(
                    "INSERT INTO images(relpath, size, mtime_ns, digest, added_at) VALUES(?,?,?,?,?)",
                    (relpath, size, mtime_ns, digest, now),
                )
                report.added.append(relpath)
        cur.executemany(
            "UPDATE images SET size=?, mtime_ns=?, digest=?, present=1, error=NULL WHERE id=?", updates
        )
        cur.executemany("UPDATE images SET present=0 WHERE id=?", [(row[0],) for row in vanished.values()])
        cur.executemany(
            "DELETE FROM embeddings WHERE image_id=? AND encoder LIKE 'image:%'",
            [(u[3],) for u in updates],
        )
    report.removed = sorted(vanished)
    return report


def _digest_or_none(store: ProjectStore, relpath: str, report: SyncReport) -> str | None:
    try:
        return file_digest(store.folder / relpath)
    except OSError as exc:
        report.problems.append(ScanProblem(relpath, exc.strerror or str(exc)))
        return None
