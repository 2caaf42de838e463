"""Out of GPU memory: smaller batches first, then the CPU, with the same results.

No GPU here, so the out-of-memory errors are raised by stand-ins that fail the way
onnxruntime and torch do (same exception types and texts); the recovery code is the real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from core.models.oom import OomGuard, is_out_of_memory
from core.models.registry import image_spec, text_spec
from core.progress import run_to_end

ORT_OOM = RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running "
                       "Conv node. Name:'/conv_stem/Conv' Status Message: /onnxruntime_src/onnxruntime/core/framework/"
                       "bfc_arena.cc:376 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, "
                       "onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) Failed to allocate memory for "
                       "requested buffer of size 1073741824")


def test_errors_are_told_apart() -> None:
    import torch

    assert is_out_of_memory(ORT_OOM)
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("invalid input"))


def test_guard_halves_until_the_batch_fits_and_remembers_the_size() -> None:
    calls: list[int] = []

    def run(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        if len(batch) > 3:
            raise ORT_OOM
        return batch * 2

    guard = OomGuard()
    items = np.arange(10.0)
    assert np.array_equal(guard(run, items), items * 2)
    assert guard.chunk == 2 and calls[:3] == [10, 5, 2]
    calls.clear()
    assert np.array_equal(guard(run, items[:4]), items[:4] * 2)
    assert calls == [2, 2]  # the next batch starts at the size that fitted


def test_guard_moves_to_the_cpu_when_one_item_does_not_fit_and_fails_clearly_there() -> None:
    state = {"device": "cuda"}

    def run(batch: list[str]) -> np.ndarray:
        if state["device"] == "cuda":
            raise ORT_OOM
        return np.array([len(t) for t in batch], np.float32)

    def to_cpu() -> bool:
        if state["device"] == "cpu":
            return False
        state["device"] = "cpu"
        return True

    guard = OomGuard(to_cpu)
    assert guard(run, ["a", "bb", "ccc"]).tolist() == [1, 2, 3]
    assert guard.on_cpu and state["device"] == "cpu" and guard.chunk is None

    def always(batch: list[str]) -> np.ndarray:
        raise ORT_OOM

    with pytest.raises(ModelError, match="out of memory even for one item"):
        OomGuard(to_cpu)(always, ["a"])
    with pytest.raises(RuntimeError, match="shape"):  # anything else is not swallowed
        OomGuard(to_cpu)(lambda b: (_ for _ in ()).throw(RuntimeError("shape")), ["a"])


class GreedySession:
    """Stands for a CUDA session on a small GPU: batches above `fits` run out of memory."""

    def __init__(self, real: object, fits: int) -> None:
        self.real, self.fits = real, fits

    def get_providers(self) -> list[str]:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def run(self, outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if len(next(iter(feeds.values()))) > self.fits:
            raise ORT_OOM
        return self.real.run(outputs, feeds)  # type: ignore[attr-defined]


def test_encoders_give_the_same_vectors_after_splitting_or_moving_to_the_cpu() -> None:
    from core.models.encoders import ImageEncoder, TextEncoder, cuda_fallback_reason

    image = ImageEncoder(image_spec("efficientnet_lite0"), prefer_gpu=False)
    pixels = np.random.default_rng(0).normal(size=(5, 3, 256, 256)).astype(np.float32)
    expected = image.encode(pixels)
    image.session = GreedySession(image.session, fits=2)
    assert np.allclose(image.encode(pixels), expected, atol=1e-4) and image.guard.chunk == 2

    text = TextEncoder(text_spec("minilm_l6"), prefer_gpu=False)
    captions = ["a dog on a beach", "two people riding bicycles", "a red bus"]
    expected_text = text.encode(captions)
    text.session = GreedySession(text.session, fits=0)  # not even one caption fits: the CPU takes over
    assert np.allclose(text.encode(captions), expected_text, atol=1e-5)
    assert text.provider == "CPUExecutionProvider" and "out of GPU memory" in (cuda_fallback_reason() or "")


def test_finetuning_splits_batches_when_memory_runs_out(sample_folder: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from core.learn.training import TrainConfig
    from core.models.torch_encoders import PooledFeatures
    from core.tagging.finetune import FinetuneConfig, finetune
    from tests.test_training import tiny_finetune_project

    create = PooledFeatures.create
    seen: list[int] = []
    limit = {"fits": 1}

    def small_gpu(module: object, args: tuple[torch.Tensor]) -> None:
        seen.append(len(args[0]))
        if len(args[0]) > limit["fits"]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    def create_on_small_gpu(spec: object) -> object:
        module = create(spec)  # type: ignore[arg-type]
        module.register_forward_pre_hook(small_gpu)
        return module

    monkeypatch.setattr(PooledFeatures, "create", staticmethod(create_on_small_gpu))
    store, encoders, split = tiny_finetune_project(sample_folder)
    events = []
    job = finetune(store, tmp_path / "tuned", encoders, split,  # type: ignore[arg-type]
                   FinetuneConfig(epochs=1, batch_size=2, device="cpu"), TrainConfig(max_epochs=2))
    try:
        while True:
            events.append(next(job))
    except StopIteration as stop:
        result = stop.value
    steps = [e.extra for e in events if e.stage == "finetune" and "micro_batch" in e.extra]
    assert steps and all(s["micro_batch"] == 1 for s in steps) and 2 in seen
    assert result.info.image_encoder.endswith("backbone.safetensors")

    limit["fits"] = 0  # not even one image: on the CPU already, so a clear error
    with pytest.raises(ModelError, match="even one image at a time"):
        run_to_end(finetune(store, tmp_path / "again", encoders, split,  # type: ignore[arg-type]
                            FinetuneConfig(epochs=1, batch_size=2, device="cpu"), TrainConfig(max_epochs=2)))
