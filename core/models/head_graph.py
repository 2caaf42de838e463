"""A classifier's ensemble of heads as one ONNX graph, so classifying never imports torch.

Importing torch was 3.5 s of a 26.5 s `tagline classify` run on 1,500 photos (py-spy,
docs/benchmarks.md) though the heads are 0.6 s of its work. The first run of a model version
exports its heads (weighted mean of the members' sigmoids, exactly `predict_heads`) to the cache,
keyed by the weights file's content; later runs read that graph with onnxruntime on the CPU.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from core.models.encoders import export_onnx
from core.models.registry import cache_dir


def head_graph_path(weights: Path, info: Path) -> Path:
    """Where the graph of these weights and this model.json lives: changed or damaged files
    never meet an old graph."""
    hasher = hashlib.blake2b(weights.read_bytes(), digest_size=12)
    if info.is_file():
        hasher.update(info.read_bytes())
    digest = hasher.hexdigest()
    return cache_dir() / "heads" / f"head-{digest}.onnx"


def export_head_graph(heads: list[Any], image_dim: int, text_dim: int, path: Path) -> None:
    """Write the ensemble's graph (inputs image, text, has_caption; output probabilities)."""
    import torch

    weights = np.array([float(getattr(h, "ensemble_weight", 1.0)) for h in heads], np.float32)

    class Ensemble(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(heads)
            self.register_buffer("weights", torch.from_numpy(weights / weights.sum()).view(-1, 1, 1))

        def forward(self, image: torch.Tensor, text: torch.Tensor, has_caption: torch.Tensor) -> torch.Tensor:
            stacked = torch.stack([torch.sigmoid(h(image, text, has_caption)) for h in self.members])
            return (stacked * self.get_buffer("weights")).sum(0)

    dummy = (torch.zeros(2, image_dim), torch.zeros(2, text_dim), torch.ones(2))
    export_onnx(Ensemble(), dummy, path, ["image", "text", "has_caption"],
                {"image": {0: "batch"}, "text": {0: "batch"}, "has_caption": {0: "batch"}}, output="probabilities")


class HeadGraph:
    """The exported ensemble, run by onnxruntime on the CPU (a few small matrix products)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # the GPU build warns that CUDA is missing; the CPU is meant
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def predict(self, image: np.ndarray, text: np.ndarray, has_caption: np.ndarray) -> np.ndarray:
        feeds = {"image": np.ascontiguousarray(image, np.float32), "text": np.ascontiguousarray(text, np.float32),
                 "has_caption": np.ascontiguousarray(has_caption, np.float32)}
        return np.asarray(self.session.run(["probabilities"], feeds)[0])
