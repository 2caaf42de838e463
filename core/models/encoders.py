"""ONNX Runtime encoders: batched inference on CUDA when it works, else the CPU.

Graphs are exported once from the torch reference (core.models.torch_encoders) into the user cache
folder, keyed by the spec, and reused afterwards.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import ModelError
from core.formats.temp_files import writing_beside
from core.models.oom import OomGuard
from core.models.registry import ImageEncoderSpec, TextEncoderSpec, cache_dir
from core.models.runtimes import OpenVinoSession, Runtime, image_batch

log = logging.getLogger(__name__)

PAD_TOKENS_TO = 8


def preprocess_image(image: Image.Image, spec: ImageEncoderSpec) -> np.ndarray:
    """Whole photo squashed to the input square (no crop keeps objects near the border)."""
    side = spec.input_size
    resized = np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)
    # ((x / 255) - mean) / std as one multiply-add per channel straight from the bytes: the
    # float divisions, subtractions and the transposed copy cost more than decoding the JPEG
    # (py-spy of a whole classify run, docs/benchmarks.md); the values agree to 1e-6.
    scale = 1.0 / (255.0 * np.asarray(spec.std, np.float64))
    offset = -np.asarray(spec.mean, np.float64) / np.asarray(spec.std, np.float64)
    out = np.empty((3, side, side), np.float32)
    for channel in range(3):
        np.multiply(resized[:, :, channel], np.float32(scale[channel]), out=out[channel], dtype=np.float32)
        out[channel] += np.float32(offset[channel])
    return out


def preprocess_bytes(image: Image.Image, spec: ImageEncoderSpec) -> np.ndarray:
    """The photo squashed to the input square as (side, side, 3) bytes, for an encoder that
    normalises inside its graph (`ImageEncoder.takes_bytes`); `normalise_bytes` gives the
    floats `preprocess_image` would have."""
    side = spec.input_size
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)


def normalise_bytes(pixels: np.ndarray, spec: ImageEncoderSpec) -> np.ndarray:
    """(n, side, side, 3) bytes to the (n, 3, side, side) floats the plain graph reads."""
    scale = (1.0 / (255.0 * np.asarray(spec.std, np.float64))).astype(np.float32)
    offset = (-np.asarray(spec.mean, np.float64) / np.asarray(spec.std, np.float64)).astype(np.float32)
    out = np.empty((len(pixels), 3, *pixels.shape[1:3]), np.float32)
    for channel in range(3):
        np.multiply(pixels[..., channel], scale[channel], out=out[:, channel], dtype=np.float32)
        out[:, channel] += offset[channel]
    return out


def _export_path(key: str) -> Path:
    """A graph shipped with the application (frozen builds), else the user cache."""
    name = key.replace(":", "_").replace("@", "_").replace("/", "_") + ".onnx"
    from core.models.model_files import default_model_dir

    bundled = default_model_dir().parent / "encoders" / name
    return bundled if bundled.is_file() else cache_dir() / "onnx" / name


def _export_needs_torch_models(key: str) -> None:
    """Exporting a graph builds the encoder in torch with timm or transformers, which the CPU
    build does not carry: it runs the graphs `make dist` shipped, and names the build that exports."""
    from core.build_kind import require_gpu_build

    require_gpu_build(f"The encoder {key} (its ONNX graph is not among those shipped, and exporting it needs timm or transformers)")


def export_encoders(destination: Path) -> list[Path]:
    """Write the default encoders' ONNX graphs into `destination` (used by `make dist`)."""
    from core.models.registry import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER, image_spec, text_spec

    destination.mkdir(parents=True, exist_ok=True)
    written = []
    image = image_spec(DEFAULT_IMAGE_ENCODER)
    for source in (image_onnx_path(image), region_onnx_path(image), text_onnx_path(text_spec(DEFAULT_TEXT_ENCODER))):
        target = destination / source.name
        if source.resolve() != target.resolve():
            target.write_bytes(source.read_bytes())
        written.append(target)
    return written


def export_onnx(module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], dynamic: dict[str, dict[int, str]],
                output: str = "embedding") -> None:
    """Export `module` to `path` (batch axis dynamic on the inputs named in `dynamic` and on the
    one output), written beside and renamed, so a killed export never leaves half a graph."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), writing_beside(path) as tmp:
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), args, str(tmp), input_names=inputs, output_names=[output],
            dynamic_axes={**dynamic, output: {0: "batch"}}, opset_version=17, dynamo=False,
        )
        os.replace(tmp, path)  # atomic: a killed export never leaves a half graph behind


def image_onnx_path(spec: ImageEncoderSpec) -> Path:
    path = _export_path(spec.key)
    if not path.exists():
        _export_needs_torch_models(spec.key)
        import torch

        from core.models.torch_encoders import PooledFeatures

        log.info("exporting %s to %s", spec.key, path)
        dummy = torch.zeros(1, 3, spec.input_size, spec.input_size)
        export_onnx(PooledFeatures.create(spec), (dummy,), path, ["pixels"], {"pixels": {0: "batch"}})
    return path


def region_key(spec: ImageEncoderSpec) -> str:
    """Key of the encoder's region-map output (the captioner's attention input)."""
    return "regions" + spec.key[len("image"):]


def region_onnx_path(spec: ImageEncoderSpec) -> Path:
    path = _export_path(region_key(spec))
    if not path.exists():
        _export_needs_torch_models(region_key(spec))
        import torch

        from core.models.torch_encoders import RegionFeatures

        log.info("exporting %s to %s", region_key(spec), path)
        dummy = torch.zeros(1, 3, spec.input_size, spec.input_size)
        export_onnx(RegionFeatures.create(spec), (dummy,), path, ["pixels"], {"pixels": {0: "batch"}})
    return path


def text_onnx_path(spec: TextEncoderSpec) -> Path:
    path = _export_path(spec.key)
    if not path.exists():
        _export_needs_torch_models(spec.key)
        import torch

        from core.models.torch_encoders import create_text_module

        ids = torch.ones(2, 8, dtype=torch.int64)
        export_onnx(
            create_text_module(spec), (ids, torch.ones_like(ids)), path,
            ["input_ids", "attention_mask"],
            {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
        )
    return path


_FALLBACK: list[str] = []  # why CUDA was not used although a GPU is present, if it failed


def cuda_fallback_reason() -> str | None:
    """The last reason a present GPU could not be used (shown in the GUI's status bar)."""
    return _FALLBACK[-1] if _FALLBACK else None


def select_providers(prefer_gpu: bool = True) -> list[str]:
    """CUDA first when onnxruntime has it and its libraries load, else the CPU alone."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if prefer_gpu and "CUDAExecutionProvider" in available and _cuda_device_present():
        try:
            ort.preload_dlls()
        except Exception as exc:  # missing CUDA/cuDNN libraries: fall back visibly
            log.warning("CUDA libraries failed to load (%s); using the CPU", exc)
            _FALLBACK.append(f"libraries failed to load: {exc}")
            return ["CPUExecutionProvider"]
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _cuda_device_present() -> bool:
    return Path("/dev/nvidiactl").exists() or os.name == "nt"


def make_session(path: Path, runtime: Runtime, prefer_gpu: bool = True,
                 byte_pixels: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> Any:
    """A session for one graph on the chosen runtime (`core.models.runtimes`); `byte_pixels`
    (mean, std) lets an OpenVINO image graph take photos as bytes (`preprocess_bytes`)."""
    if runtime.engine == "openvino":
        return OpenVinoSession(path, runtime.precision, byte_pixels)
    return _session(path, select_providers(prefer_gpu))


def gpu_in_use(prefer_gpu: bool = True) -> bool:
    return prefer_gpu and select_providers(prefer_gpu)[0] == "CUDAExecutionProvider"


def _session(path: Path, providers: list[str]) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        if providers != ["CPUExecutionProvider"]:
            log.warning("GPU session failed (%s); falling back to the CPU", exc)
            _FALLBACK.append(f"session failed: {exc}")
            return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc


class _GraphEncoder:
    """One ONNX graph in a session on the chosen runtime, moved to the CPU when the GPU runs out."""

    def _open(self, path: Path, runtime: Runtime | None, prefer_gpu: bool,
              byte_pixels: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> None:
        self.path = path
        self.runtime = runtime or Runtime("onnxruntime")
        self.session = make_session(path, self.runtime, prefer_gpu, byte_pixels)
        self.guard = OomGuard(self._to_cpu)

    def _to_cpu(self) -> bool:
        return _move_to_cpu(self)

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])


class ImageEncoder(_GraphEncoder):
    """Pixels in, pooled embeddings out (or with `regions`, the feature map's regions), in batches."""

    def __init__(self, spec: ImageEncoderSpec, prefer_gpu: bool = True, regions: bool = False,
                 runtime: Runtime | None = None) -> None:
        self.spec = spec
        self._buffer: np.ndarray | None = None  # `stack`'s batch, reused
        byte_pixels = None if regions else (tuple(spec.mean), tuple(spec.std))
        self._open(region_onnx_path(spec) if regions else image_onnx_path(spec), runtime, prefer_gpu, byte_pixels)

    @property
    def takes_bytes(self) -> bool:
        """Photos may come as bytes (`preprocess_bytes`), normalised inside the graph (OpenVINO)."""
        return bool(getattr(self.session, "takes_bytes", False))

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return preprocess_image(image, self.spec)

    def stack(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """Preprocessed photos as one batch, in a buffer reused from batch to batch: a fresh
        25 MB array for each batch of 32 cost up to 70 ms of page faults on the thread that
        runs the encoder. The batch is valid until the next call."""
        shape = (len(photos), *photos[0].shape)
        if (self._buffer is None or self._buffer.shape[1:] != shape[1:] or self._buffer.dtype != photos[0].dtype
                or len(self._buffer) < len(photos)):
            self._buffer = np.empty(shape, photos[0].dtype)
        batch = self._buffer[: len(photos)]
        np.stack(photos, out=batch)
        return batch

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """Floats (n, 3, side, side) from `preprocess_image`, or bytes (n, side, side, 3) from
        `preprocess_bytes` (normalised here when the graph does not take them)."""
        if pixels.dtype == np.uint8:
            if not self.takes_bytes:
                pixels = normalise_bytes(pixels, self.spec)
            return self.guard(self._run, np.ascontiguousarray(pixels))
        return self.guard(self._run, np.ascontiguousarray(pixels, dtype=np.float32))  # no copy when it is one already

    @functools.cached_property
    def cpu_batch(self) -> int:
        """Photos a CPU graph takes at once. In f32 a convnet runs fastest one photo at a time
        (activations stay in cache): Lite0 10.0 ms a photo alone against 13.4 ms in a batch of 32
        on onnxruntime, 4.3 against 5.5 ms on OpenVINO; bf16 with AMX the other way round (2.0 ms
        in batches of 8, 2.8 alone). OpenVINO's choice is timed on this machine."""
        return image_batch(self.runtime, self.path)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        if "CUDA" in self.provider or len(pixels) <= 1:
            return np.asarray(self.session.run(None, {"pixels": pixels})[0])
        step = self.cpu_batch
        return np.concatenate([self.session.run(None, {"pixels": pixels[i : i + step]})[0] for i in range(0, len(pixels), step)])


class TextEncoder(_GraphEncoder):
    """Captions in, L2-normalised sentence embeddings out."""

    def __init__(self, spec: TextEncoderSpec, prefer_gpu: bool = True, runtime: Runtime | None = None) -> None:
        from tokenizers import Tokenizer

        self.spec = spec
        self.tokenizer = Tokenizer.from_file(str(spec.model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(spec.max_tokens)
        # padded to a multiple of 8 tokens: OpenVINO prepares its kernels anew for each input
        # shape (40-80 ms the first time), and captions padded to the longest of each batch
        # made a dozen lengths in a 1,500-photo run; the masked padding changes no number
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", pad_to_multiple_of=PAD_TOKENS_TO)
        self._open(text_onnx_path(spec), runtime, prefer_gpu)

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.spec.dim), np.float32)
        return self.guard(self._run, texts)

    def _run(self, texts: list[str]) -> np.ndarray:
        ids, mask = self.tokenize(texts)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.asarray(out, dtype=np.float32)


def _move_to_cpu(encoder: _GraphEncoder) -> bool:
    """Rebuild the encoder's session on the CPU after the GPU ran out of memory (reported in
    the status bar like any other reason the GPU is not used). False if it is on the CPU."""
    if "CUDA" not in encoder.provider:
        return False
    _FALLBACK.append("out of GPU memory even one item at a time")
    encoder.session = _session(encoder.path, ["CPUExecutionProvider"])
    return True
