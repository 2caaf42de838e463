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


SAFETENSORS_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"  # its words on a full tmpfs


def test_model_save_maps_the_weights_librarys_full_disk_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """safetensors raises its own SafetensorError (no OSError) when the disk fills: the "disk is
    full" message, not an internal error."""
    import safetensors.torch
    from safetensors import SafetensorError

    folder = tmp_path / "model"
    shutil.copytree(default_model_dir(), folder)
    info = read_info(folder)
    weights = load_head_weights(folder, info)

    def full(*_args: object, **_kwargs: object) -> None:
        raise SafetensorError(SAFETENSORS_FULL)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(ModelError, match="the disk is full: free some space"):
        save_classifier(folder, replace(info, version="new-version"), weights)
    assert read_info(folder).version == info.version
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in default_model_dir().iterdir())


def _mount_tiny_disk(where: Path, size: str) -> bool:
    """A real small file system (tmpfs), where the machine lets this process mount one (root in
    a container usually may); tests needing it skip elsewhere."""
    import subprocess

    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.mark.slow  # two trainings of the sample: about 2 minutes on 2 shared cores
def test_train_out_on_a_really_full_disk_says_so_and_keeps_the_previous_model(
        sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    from core.formats.temp_files import plain_file_mode

    disk = tmp_path / "disk"
    if not _mount_tiny_disk(disk, "64m"):  # room for a refined model (it carries the base weights, 29 MB) once freed
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        out = disk / "model"
        out.mkdir()
        previous = {"model.json": b'{"previous": true}', "model-old.safetensors": b"old weights"}
        for name, data in previous.items():
            (out / name).write_bytes(data)
        with open(disk / "filler", "wb") as filler:  # leave about 64 KB: model.json fits, the weights do not
            with pytest.raises(OSError):
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
        with open(disk / "filler", "r+b") as filler:
            filler.truncate(os.path.getsize(disk / "filler") - 65536)
        captions = Path(__file__).resolve().parents[1] / "resources" / "sample" / "captions.csv"
        code = main(["-q", "train", str(sample_folder), "--captions", str(captions), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == EXIT_ERROR and "the disk is full: free some space" in err and "internal error" not in err, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == previous  # no temporary file left either
        (disk / "filler").unlink()
        assert main(["-q", "train", str(sample_folder), "--captions", str(captions), "--out", str(out)]) == 0
        saved = read_info(out)
        mode = (out / saved.weights).stat().st_mode & 0o777
        assert mode == (out / "model.json").stat().st_mode & 0o777 == plain_file_mode()  # readable as model.json
    finally:
        subprocess.run(["umount", str(disk)], check=False)
