"""A full disk while exporting or saving a model: a clear message, the previous file intact,
no temporary file left behind. ENOSPC is raised where a real full disk reports it (fsync)."""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from core.cli import EXIT_ERROR, main
from core.errors import ModelError, TaglineError
from core.formats.exporting import collect_rows, export_csv
from core.models.model_files import default_model_dir, load_head_weights, read_info, save_classifier
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder


def fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


def test_export_on_a_full_disk_keeps_the_previous_export(sample_folder: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    out = tmp_path / "labels.csv"
    export_csv(store, out, collect_rows(store, "no model"))
    before = out.read_bytes()
    store.set_caption(store.images()[0].id, "a newer caption", "typed")
    fail_fsync(monkeypatch)
    with pytest.raises(TaglineError, match="disk is full"):
        export_csv(store, out, collect_rows(store, "no model"))
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "photos"]


def test_cli_export_on_a_full_disk_says_so_and_fails(sample_folder: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
    fail_fsync(monkeypatch)
    assert main(["export", str(sample_folder), "--out", str(tmp_path / "out.csv")]) == EXIT_ERROR
    assert "disk is full" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_model_save_on_a_full_disk_leaves_the_old_model_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    shutil.copytree(default_model_dir(), folder)
    info = read_info(folder)
    weights = load_head_weights(folder, info)
    fail_fsync(monkeypatch)
    with pytest.raises(ModelError, match="disk is full"):
        save_classifier(folder, replace(info, version="new-version"), weights)
    assert read_info(folder).version == info.version
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in default_model_dir().iterdir())
    monkeypatch.undo()
    save_classifier(folder, replace(info, version="new-version"), weights)  # space freed: it saves
    saved = read_info(folder)
    assert saved.version == "new-version" and load_head_weights(folder, saved).keys() == weights.keys()
    assert [p.name for p in folder.glob("model*.safetensors")] == ["model-new-version.safetensors"]
