"""How many of a project's own models the app keeps: every retrain saves a model, and a refined
one carries the bundled model's networks (28 MB), so automatic retraining every few confirmations
would fill the disk. The newest few stay (the candidates a person may still take), the one in use
always; the rest are removed and the removal is said."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

KEEP_NEWEST = 5  # models the Training tab offers besides the one in use


def model_folders(folder: Path) -> list[Path]:
    """The models saved in `folder`, newest first (by when their model.json was written)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and (p / "model.json").is_file()]
    return sorted(found, key=lambda p: ((p / "model.json").stat().st_mtime, p.name), reverse=True)


def prune_models(folder: Path, keep: Iterable[Path | None], newest: int = KEEP_NEWEST) -> list[Path]:
    """Remove the models in `folder` beyond the `newest` most recent, except those in `keep`; the
    ones removed (a folder that cannot be removed is left as it is)."""
    kept = {p.resolve() for p in keep if p is not None}
    removed = []
    for old in model_folders(folder)[newest:]:
        if old.resolve() in kept:
            continue
        try:
            shutil.rmtree(old)
        except OSError:
            continue
        removed.append(old)
    return removed
