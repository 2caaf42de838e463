"""Torch versions of the encoders: the reference for ONNX export, golden tests and fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ModelError
from core.models.registry import ImageEncoderSpec, TextEncoderSpec


def load_state_dict(path: Path) -> dict[str, Any]:
    """Load weights without ever unpickling code: safetensors, or torch's weights_only mode."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix not in (".pth", ".pt", ".bin"):
        raise ModelError(f"refusing to load {path}: only .safetensors, .pth, .pt or .bin weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError subclasses and RuntimeError here
        raise ModelError(f"refusing to load {path}: not a plain tensor file ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{path} does not hold a state dict")
    return state


def match_state_dict(model_state: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    """Match by name; failing that, by order when every shape lines up (other naming schemes)."""
    if set(model_state) <= set(loaded):
        return {k: loaded[k] for k in model_state}
    if len(loaded) == len(model_state) and all(
        tuple(a.shape) == tuple(b.shape) for a, b in zip(loaded.values(), model_state.values())
    ):
        return dict(zip(model_state, loaded.values()))
    missing = sorted(set(model_state) - set(loaded))[:5]
    raise ModelError(f"weights do not fit the model (missing e.g. {missing})")


def build_timm_backbone(spec: ImageEncoderSpec) -> Any:
    """The classifier network with its ImageNet head, weights loaded, in eval mode."""
    import timm

    weights = spec.weights()
    if weights is None:
        return timm.create_model(spec.timm_name, pretrained=True, exportable=True).eval()
    model = timm.create_model(spec.timm_name, pretrained=False, exportable=True)
    loaded = load_state_dict(weights)
    model_state = model.state_dict()
    if not set(model_state) <= set(loaded):  # e.g. a headless checkpoint: keep our head
        headless = {k: v for k, v in model_state.items() if not k.startswith(_head_prefix(model))}
        if set(headless) <= set(loaded) or len(loaded) == len(headless):
            model_state = headless
    model.load_state_dict(match_state_dict(model_state, loaded), strict=False)
    return model.eval()


def _head_prefix(model: Any) -> str:
    name = model.default_cfg.get("classifier", "classifier") if hasattr(model, "default_cfg") else "classifier"
    return str(name)


def _feature_module(spec: ImageEncoderSpec, regions: bool) -> Any:
    import torch

    backbone = build_timm_backbone(spec)

    class _Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            fmap = self.backbone.forward_features(pixels)
            if regions:
                return fmap.flatten(2).transpose(1, 2)
            return torch.cat([fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3))], dim=1)

    return _Features().eval()


class PooledFeatures:
    """Builds the `nn.Module` whose output is the image embedding: [avg pool, max pool]."""

    @staticmethod
    def create(spec: ImageEncoderSpec) -> Any:
        return _feature_module(spec, regions=False)


class RegionFeatures:
    """Builds the `nn.Module` whose output is the feature map as regions: (B, H*W, channels).

    The captioner's attention reads these; their [mean, max] over regions is exactly the
    pooled embedding `PooledFeatures` gives, so one encoder run can feed both."""

    @staticmethod
    def create(spec: ImageEncoderSpec) -> Any:
        return _feature_module(spec, regions=True)


def create_text_module(spec: TextEncoderSpec) -> Any:
    """MiniLM with mean pooling and L2 normalisation, as sentence-transformers computes it."""
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(spec.model_dir()), local_files_only=True).eval()

    class _Sentence(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    return _Sentence().eval()
