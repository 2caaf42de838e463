"""The classifier's heads as one ONNX graph: the same probabilities as the torch heads, and a
classify run that finds the graph cached never imports torch (3.5 s of a 26 s run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.learn.training import predict_heads
from core.models.model_files import head_config
from core.tagging.classifier import Classifier


def test_the_head_graph_gives_the_torch_heads_probabilities() -> None:
    first = Classifier()  # exports the graph if this cache has none
    config = head_config(first.info, 0)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(40, config.image_dim)).astype(np.float32)
    text = rng.normal(size=(40, config.text_dim)).astype(np.float32)
    has_caption = (rng.random(40) > 0.3).astype(np.float32)
    expected = predict_heads(first.heads, image, text, has_caption)
    second = Classifier()
    assert second._graph is not None and second._heads is None  # read from the cache, no torch modules built
    got = second._predict_heads(image, text, has_caption)
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-5
    assert np.abs(predict_heads(second.heads, image, text, has_caption) - got).max() < 1e-5  # built on first use


def test_a_damaged_cached_graph_is_exported_again(tmp_path: Path, monkeypatch) -> None:
    from core.models.head_graph import head_graph_path

    monkeypatch.setenv("TAGLINE_CACHE_DIR", str(tmp_path))
    first = Classifier()
    graph = head_graph_path(first.folder / Path(first.info.weights).name, first.folder / "model.json")
    assert graph.is_file()
    graph.write_bytes(b"not a graph")
    again = Classifier()  # warns, falls back to the torch heads, writes a sound graph
    assert again._graph is None and again._heads is not None
    assert Classifier()._graph is not None


def test_classifying_with_the_graph_cached_never_imports_torch(sample_folder: Path, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "core.cli", "-q", "classify", str(sample_folder), "--out", str(tmp_path / "a.csv")]
    env = dict(os.environ)
    subprocess.run(args, check=True, env=env, capture_output=True, timeout=300)  # exports what is missing
    code = ("import sys, runpy; sys.argv = " + repr(["tagline", *args[3:-1], str(tmp_path / "b.csv")]) + "\n"
            "try:\n    runpy.run_module('core.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
