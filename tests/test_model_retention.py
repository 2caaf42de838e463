"""The app keeps the newest few of a project's models and the one in use (core.models.retention)."""

from __future__ import annotations

import os
from pathlib import Path

from core.models.retention import model_folders, prune_models


def saved_models(folder: Path, count: int) -> list[Path]:
    """`count` model folders, the first the oldest (model.json times one minute apart)."""
    made = []
    for i in range(count):
        model = folder / f"20261205-0900{i:02d}"
        model.mkdir(parents=True)
        (model / "model.json").write_text("{}")
        (model / "model-v.safetensors").write_bytes(b"0" * 10)
        os.utime(model / "model.json", (1_700_000_000 + 60 * i, 1_700_000_000 + 60 * i))
        made.append(model)
    return made


def test_the_newest_and_the_one_in_use_stay(tmp_path: Path) -> None:
    models = saved_models(tmp_path / "models", 8)
    (tmp_path / "models" / "notes").mkdir()  # not a model: never touched
    active = models[1]
    removed = prune_models(tmp_path / "models", [active, None], newest=5)
    assert sorted(removed) == sorted([models[0], models[2]])
    assert model_folders(tmp_path / "models") == [*reversed(models[3:]), active]
    assert (tmp_path / "models" / "notes").is_dir()
    assert prune_models(tmp_path / "models", [active], newest=5) == []  # nothing more to remove


def test_no_folder_nothing_removed(tmp_path: Path) -> None:
    assert prune_models(tmp_path / "missing", []) == []
