"""Helpers for benchmarks: the shared data location and held-out photo folders of symlinks."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from core.learn import SplitRule

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAGLINE_SHARED_DATA", ROOT.parent / "shared" / "data"))
COMP = SHARED / "comp5329"


def comp_rows() -> list[dict[str, str]]:
    with open(COMP / "train.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def holdout_folder(target: Path, limit: int | None = None, part: str = "holdout") -> tuple[Path, Path]:
    """Symlink the chosen part's photos into `target` and write their truth CSV beside it."""
    target.mkdir(parents=True, exist_ok=True)
    rule = SplitRule()
    rows = [r for r in comp_rows() if rule.part(r["ImageID"]) == part][:limit]
    for row in rows:
        link = target / row["ImageID"]
        if not link.exists():
            link.symlink_to(COMP / "images" / row["ImageID"])
    truth = target.parent / f"{target.name}-truth.csv"
    with open(truth, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ImageID", "Labels", "Caption"])
        writer.writeheader()
        writer.writerows(rows)
    return target, truth
