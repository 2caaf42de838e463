"""Someone else's model folder, made hostile: a model.json that is not an object, nested
100,000 deep, huge, a pipe; head sizes that would allocate tens of GB; weights that are NaN.
Each ends in one ModelError naming the file and exit 2 from the command line, with memory
bounded (measured in a child process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.cli import EXIT_ERROR, main
from core.errors import ModelError
from core.models.model_files import MAX_JSON_BYTES, default_model_dir, load_head_weights, read_info
from core.tagging.classifier import Classifier

ROOT = Path(__file__).resolve().parents[1]


def model_copy(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], Any] | None = None) -> Path:
    folder = tmp_path / name
    shutil.copytree(default_model_dir(), folder)
    if change is not None:
        meta = json.loads((folder / "model.json").read_text())
        change(meta)
        (folder / "model.json").write_text(json.dumps(meta))
    return folder


def refused(folder: Path, match: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(ModelError, match=match):
        Classifier(folder)
    assert main(["-q", "info", "--model", str(folder)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err and str(folder) in err
    return err


@pytest.mark.parametrize(("text", "match"), [
    ("[]", "must hold a JSON object"), ("null", "must hold a JSON object"), ('"model"', "must hold a JSON object"),
    ("7", "must hold a JSON object"), ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"format": 1, "metrics": ' + "[" * 40 + "]" * 40 + "}", "more than 32 levels deep"),
    ('{"format": 1, "labels": ["a"]', "not valid JSON"), ("\xff\xfe{}", "not valid JSON"),
])
def test_a_model_json_that_is_not_a_model_is_refused(tmp_path: Path, text: str, match: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = model_copy(tmp_path, "m")
    (folder / "model.json").write_bytes(text.encode("utf-8", "surrogateescape") if text[0] != "\xff"
                                        else b"\xff\xfe{}")
    refused(folder, match, capsys)


def test_a_model_json_that_is_a_pipe_a_folder_or_huge_is_refused_without_reading_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = model_copy(tmp_path, "pipe")
    (folder / "model.json").unlink()
    os.mkfifo(folder / "model.json")
    refused(folder, "is a pipe, not a regular file", capsys)  # not hung
    folder = model_copy(tmp_path, "zero")
    (folder / "model.json").unlink()
    (folder / "model.json").symlink_to("/dev/zero")
    refused(folder, "is a device", capsys)
    folder = model_copy(tmp_path, "huge")
    with open(folder / "model.json", "ab") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)
    refused(folder, "reads at most 16 MB", capsys)


def test_head_sizes_that_do_not_match_the_weights_are_refused_before_allocating(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = model_copy(tmp_path, "wide", lambda m: m["head"].update(image_dim=16384))
    refused(folder, r"do not match its model.json: m0.image_mean is \[2560\] in the file but the head needs \[16384\]",
            capsys)
    folder = model_copy(tmp_path, "huge", lambda m: m["head"].update(image_dim=65536, text_dim=65536, hidden=65536))
    refused(folder, "describes heads of .* numbers; Tagline loads at most 64,000,000", capsys)


def test_a_huge_head_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """In a child, so its peak memory is its own: 65,536-wide heads once allocated 34 GB. The
    peak is measured after importing torch (about 590 MB of it on this machine, whatever the
    input) and after the refusal: the hostile file may add at most 100 MB."""
    folder = model_copy(tmp_path, "wide", lambda m: m["head"].update(image_dim=65536, hidden=32768))
    script = ("import resource, sys, torch\nfrom core.cli import main\n"
              "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "code = main(['-q', 'info', '--model', sys.argv[1]])\n"
              "print(code, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    run = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    code, base_kib, peak_kib = run.stdout.strip().splitlines()[-1].split()  # info may print its build first
    assert code == "2" and "at most 64,000,000" in run.stderr, run.stderr
    added = (int(peak_kib) - int(base_kib)) // 1024
    assert added < 100, f"the refusal took {added} MB above torch's import"


def test_nan_or_infinite_weights_are_a_model_error_naming_the_file(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import load_file, save_file

    for bad in ("nan", "inf"):
        folder = model_copy(tmp_path, bad)
        info = read_info(folder)
        weights_path = folder / info.weights
        tensors = load_file(str(weights_path))
        key = sorted(k for k in tensors if tensors[k].is_floating_point() and tensors[k].numel() > 1)[0]
        tensors[key][0] = float(bad)
        save_file(tensors, str(weights_path))
        with pytest.raises(ModelError, match=f"{weights_path.name} holds weights that are not numbers"):
            load_head_weights(folder, info)
        err = refused(folder, "not numbers", capsys)
        assert key in err


def test_weights_carrying_an_extra_tensor_are_refused_before_loading_it(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    folder = model_copy(tmp_path, "extra")
    info = read_info(folder)
    tensors = load_file(str(folder / info.weights))
    tensors["payload"] = torch.zeros(1000)
    save_file(tensors, str(folder / info.weights))
    refused(folder, "1 tensors not in the head it describes \\(first payload\\)", capsys)


def test_finite_weights_that_overflow_are_a_model_error_not_a_database_error(tmp_path: Path) -> None:
    """Weights of 1e38 pass the NaN check but give NaN probabilities (inf - inf), which SQLite
    stored as NULL: "NOT NULL constraint failed". The classifier says what is wrong instead."""
    import numpy as np
    from safetensors.torch import load_file, save_file

    folder = model_copy(tmp_path, "overflow")
    info = read_info(folder)
    tensors = load_file(str(folder / info.weights))
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and key.endswith("weight") and tensor.dim() == 2:
            tensor.fill_(3e38)
    save_file(tensors, str(folder / info.weights))
    classifier = Classifier(folder)
    config_dims = (classifier.info.head["image_dim"], classifier.info.head["text_dim"])
    image = np.ones((2, config_dims[0]), np.float32)
    text = np.ones((2, config_dims[1]), np.float32)
    with pytest.raises(ModelError, match="probabilities that are not numbers"):
        classifier.predict(image, text, np.ones(2, np.float32), ["a cat", None])
