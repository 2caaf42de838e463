"""The command line's contract with scripts: exit codes, bad arguments, crashes, leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import cli
from core.formats.exporting import atomic_write_text
from core.formats.temp_files import sweep_stale, temp_path
from tests.conftest import ROOT


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_a_batch_size_below_one_is_a_usage_error(sample_folder: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["classify", str(sample_folder), "--batch-size", value])
    assert stop.value.code == cli.EXIT_ERROR == 2
    err = capsys.readouterr().err
    assert "--batch-size" in err and ("1 or more" in err or "whole number" in err)
    assert not (sample_folder / ".tagline").exists()  # refused before any work


def test_a_bug_exits_3_with_one_line_and_a_crash_report(sample_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_scan", broken)
    assert cli.main(["scan", str(sample_folder)]) == cli.EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    assert "internal error (ZeroDivisionError: a bug)" in err and "Traceback" not in err
    report = Path(err.rsplit("with ", 1)[1].strip())
    assert "ZeroDivisionError" in report.read_text(encoding="utf-8") and "Traceback" in report.read_text(encoding="utf-8")


def test_exit_codes_are_distinct() -> None:
    codes = (cli.EXIT_OK, cli.EXIT_PARTIAL, cli.EXIT_ERROR, cli.EXIT_INTERNAL, cli.EXIT_INTERRUPTED)
    assert codes == (0, 1, 2, 3, 130)


def test_temporary_files_of_a_killed_writer_are_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.csv.{int(dead.stdout)}.tmp"
    stale.write_text("half a file")
    live = tmp_path / f".out.csv.{os.getppid()}.tmp"  # the process that started the tests runs
    live.write_text("being written")
    other = tmp_path / f".other.csv.{int(dead.stdout)}.tmp"
    other.write_text("another target's")
    atomic_write_text(target, "a,b\n")
    assert target.read_text() == "a,b\n"
    assert not stale.exists() and live.exists() and other.exists()
    assert sweep_stale(tmp_path / "other.csv") == [other]
    assert temp_path(target).name == f".out.csv.{os.getpid()}.tmp"


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "previous" and list(tmp_path.iterdir()) == [target]


def test_onnxruntime_keeps_no_device_id_or_telemetry_in_the_users_cache(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    code = "import core, onnxruntime; onnxruntime.InferenceSession"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True)
    assert not list(tmp_path.rglob("deviceid")) and not list(tmp_path.rglob("onnxruntime.db"))


def test_evaluate_of_ids_against_names_is_an_error_not_a_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("ImageID,Labels\na.jpg,1 17\nb.jpg,1\n", encoding="utf-8")
    predictions = tmp_path / "pred.csv"
    predictions.write_text("ImageID,Labels\na.jpg,person;cat\nb.jpg,person\n", encoding="utf-8")
    assert cli.main(["evaluate", str(predictions), str(truth)]) == 2
    assert "share no label" in capsys.readouterr().err
    label_map = tmp_path / "map.json"
    label_map.write_text('{"1": "person", "17": "cat"}', encoding="utf-8")
    assert cli.main(["evaluate", str(predictions), str(truth), "--label-map", str(label_map)]) == 0
    assert "samples F1 1.0000" in capsys.readouterr().out


def test_evaluate_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("ImageID,Labels\n" + "".join(f"{i}.jpg,person\n" for i in range(50)), encoding="utf-8")
    command = f"{sys.executable} -m core.cli evaluate {truth} {truth} | head -1"
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.startswith("samples F1 1.0000") and "Traceback" not in done.stderr and "Broken" not in done.stderr


def test_info_says_how_many_photos_trained_the_model_and_where_training_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "trained on 13,483 of 18,000 labelled photos" in out and "2,751 held out" in out
    assert "GPU: " in out and "CPU" in out
