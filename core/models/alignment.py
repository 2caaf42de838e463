"""The image-text alignment: photos and words in one space, so words can find photos.

Both encoders stay frozen; the alignment is two linear maps trained contrastively (CLIP's
loss) on captioned photos (`core.models.alignment_train`): the standardised 2,560-d photo
features into the 384-d caption space, and a map on the caption side. Inference is numpy only
(a matrix product each side), so the app needs no torch to search. The maps are tied to the
exact encoder versions they were trained on: other features are refused, never silently
compared.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError

FORMAT_VERSION = 1
DEFAULT_PROMPT = "a photo of {}"


@dataclass(frozen=True)
class Alignment:
    version: str
    image_key: str  # the photo features it reads (an embeddings-table key)
    text_key: str
    image_weight: np.ndarray  # (image dim, joint dim); the standardisation is folded in
    image_bias: np.ndarray  # (joint dim,)
    text_weight: np.ndarray  # (text dim, joint dim)
    text_bias: np.ndarray
    prompt: str = DEFAULT_PROMPT  # how a label's name becomes a query ("a photo of {}")
    info: dict[str, Any] = field(default_factory=dict)
    features_precision: str = ""  # "+bf16" where the features read are of reduced precision (`require_encoders`)

    @property
    def key(self) -> str:
        """The embeddings-table key of the projected photo vectors (float16, unit length); vectors
        projected from reduced-precision features are kept apart (`features_precision`)."""
        return f"align:{self.version}{self.features_precision}"

    @property
    def dim(self) -> int:
        return int(self.image_weight.shape[1])

    def require_encoders(self, image_key: str, text_key: str) -> Alignment:
        """This alignment for features with these cache keys. The same encoders at a reduced
        precision (OpenVINO bf16, the default on CPUs that have it: cosine 0.9988 to f32 on
        average, docs/benchmarks.md) are the same space, so they are read, their projected vectors
        kept under a key of their own; another encoder version is refused: its space is not ours."""
        (image_base, _, image_precision), (text_base, _, text_precision) = image_key.partition("+"), text_key.partition("+")
        if (image_base, text_base) != (self.image_key, self.text_key):
            raise ModelError(
                f"the alignment {self.version} was trained on {self.image_key} and {self.text_key}, but these features "
                f"come from {image_key} and {text_key}; retrain it (python -m core.models.alignment_train) or use "
                f"the encoders it names (the default runtime)")
        precision = image_precision or text_precision
        return replace(self, features_precision=f"+{precision}" if precision else "")

    def project_images(self, vectors: np.ndarray) -> np.ndarray:
        return _unit(np.asarray(vectors, np.float32) @ self.image_weight + self.image_bias)

    def project_texts(self, vectors: np.ndarray) -> np.ndarray:
        return _unit(np.asarray(vectors, np.float32) @ self.text_weight + self.text_bias)

    def mean_text(self, encoded: np.ndarray) -> np.ndarray:
        """One query for several encoded texts (a label's phrasings): the mean of their aligned
        vectors, unit length (one text: its vector)."""
        mean = self.project_texts(encoded).mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    def prompts(self, names: list[str]) -> list[str]:
        return [self.prompt.format(n.replace("_", " ").replace("-", " ")) for n in names]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)).astype(np.float32)


def default_alignment_dir() -> Path:
    """The alignment shipped with Tagline (`models/alignment` beside the packages, read-only)."""
    override = os.environ.get("TAGLINE_ALIGNMENT")
    if override:
        return Path(override)
    import core

    return Path(str(resources.files(core))).parent / "models" / "alignment"


def load_alignment(folder: Path | None = None) -> Alignment:
    folder = Path(folder) if folder is not None else default_alignment_dir()
    meta_path = folder / "alignment.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no image-text alignment in {folder} (alignment.json is missing); train one with "
                         f"python -m core.models.alignment_train") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {meta_path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise ModelError(f"{meta_path} is not an alignment of format {FORMAT_VERSION}; update Tagline or retrain it")
    try:
        from safetensors.numpy import load_file

        tensors = load_file(str(folder / str(meta["weights"])))
        mean, std = tensors["image_mean"], tensors["image_std"]
        image_weight = tensors["image_weight"] / std[:, None]  # (x - mean) / std @ W, folded
        image_bias = tensors["image_bias"] - (mean / std) @ tensors["image_weight"]
        alignment = Alignment(
            version=str(meta["version"]), image_key=str(meta["image_key"]), text_key=str(meta["text_key"]),
            image_weight=image_weight.astype(np.float32), image_bias=image_bias.astype(np.float32),
            text_weight=tensors["text_weight"].astype(np.float32), text_bias=tensors["text_bias"].astype(np.float32),
            prompt=str(meta.get("prompt", DEFAULT_PROMPT)), info=meta)
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise ModelError(f"the alignment in {folder} is damaged ({type(exc).__name__}: {exc}); reinstall or retrain it") from exc
    if alignment.image_weight.shape[1] != alignment.text_weight.shape[1]:
        raise ModelError(f"the alignment in {folder} is damaged: its two sides differ in size")
    return alignment


def save_alignment(folder: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Weights under a versioned name, then `alignment.json` (the commit point)."""
    import torch

    from core.models.model_files import save_weights_and_metadata

    weights = f"alignment-{meta['version']}.safetensors"
    document = json.dumps({"format": FORMAT_VERSION, **meta, "weights": weights}, indent=1, sort_keys=True)
    save_weights_and_metadata(Path(folder), "alignment", weights,
                              {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in tensors.items()},
                              document)
