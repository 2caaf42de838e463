"""Job factories for the worker: plain inputs in, a `core.jobs` generator out.

The app runs the same verbs as the command line (`core.jobs`), each on a worker thread; heavy
libraries (torch, onnxruntime) are imported inside the jobs, so they load on the worker thread
the first time they are needed and never at startup.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.jobs.export import ExportOutcome, ExportRequest, export_job  # an export handle carries an ExportOutcome
from core.jobs.project import scan_job
from core.progress import CancelToken, Progress
from core.store.database import ProjectStore

__all__ = ["ExportOutcome", "ExportRequest", "caption_job", "check_job", "classify_job", "device_job", "export_job",
           "model_summary", "sync_job", "train_job"]


def check_job(store: ProjectStore, cancel: CancelToken) -> Generator[Progress, None, Any]:
    """The whole rescan in a child process (`core.jobs.check`), after a trusted open."""
    from core.jobs.check import check_job as run

    return (yield from run(store, cancel))


def sync_job(store: ProjectStore, cancel: CancelToken, trust_folders: bool = False) -> Generator[Progress, None, Any]:
    return (yield from scan_job(store, cancel, trust_folders))


def classify_job(store: ProjectStore, model_dir: Path | None, batch_size: int, prefer_gpu: bool,
                 cancel: CancelToken, top1_fallback: bool = True, redo: bool = False) -> Generator[Progress, None, Any]:
    """`redo` decides every photo again (cheap: embeddings are cached), e.g. after the fallback changed."""
    from core.jobs.classify import ClassifyRequest
    from core.jobs.classify import classify_job as run

    request = ClassifyRequest(model=model_dir, batch_size=batch_size, redo=redo, top1_fallback=top1_fallback,
                              prefer_gpu=prefer_gpu)
    return (yield from run(store, request, cancel)).report


def caption_job(store: ProjectStore, batch_size: int, prefer_gpu: bool,
                cancel: CancelToken) -> Generator[Progress, None, Any]:
    """Write captions for photos that have none (never replaces a person's caption)."""
    from core.jobs.caption import CaptionRequest
    from core.jobs.caption import caption_job as run

    return (yield from run(store, CaptionRequest(batch_size=batch_size, prefer_gpu=prefer_gpu), cancel)).report


def train_job(store: ProjectStore, out_dir: Path, epochs: int, prefer_gpu: bool,
              cancel: CancelToken, image_encoder: str | None = None,
              generated_captions: bool = True) -> Generator[Progress, None, Any]:
    """Learn from confirmed labels with the bundled model's encoders and label ids (or the image
    encoder chosen in the Model menu); `generated_captions`: the folder's switch."""
    from core.jobs.train import TrainRequest
    from core.jobs.train import train_job as run
    from core.learn.training import TrainConfig
    from core.models.retention import KEEP_NEWEST

    request = TrainRequest(out=out_dir, config=TrainConfig(max_epochs=epochs), prefer_gpu=prefer_gpu,
                           image_encoder=image_encoder or None, keep_models=KEEP_NEWEST,
                           generated_captions=generated_captions)
    outcome = yield from run(store, request, cancel)
    removed = len(outcome.removed)
    if outcome.activated:
        return TakenModel(outcome.result.model_dir, outcome.result.info, removed)
    # kept as a candidate (core.learn.gate): hand back the model still in use, so the window keeps it
    return KeptModel(outcome.current, model_summary(outcome.current), outcome.result.model_dir, outcome.verdict,
                     removed)


def device_job(prefer_gpu: bool, cancel: CancelToken) -> Generator[Progress, None, str]:
    """Which device the encoders will use (imports onnxruntime, so it runs in the background)."""
    from core.models.encoders import cuda_fallback_reason, select_providers
    from core.models.runtimes import choose_runtime

    yield Progress("device", 0, 1)
    providers = select_providers(prefer_gpu)
    if providers and providers[0] == "CUDAExecutionProvider":
        return "CUDA"
    runtime = choose_runtime(None, gpu=False)
    engine = f"OpenVINO {runtime.precision}" if runtime.engine == "openvino" else ""
    reason = cuda_fallback_reason()
    details = ", ".join(x for x in (engine, f"CUDA failed: {reason}" if reason else "") if x)
    return f"CPU ({details})" if details else "CPU"


@dataclass
class KeptModel:
    """A retrain whose model was not taken: the model still in use (None: the bundled one) and
    its metadata, where the new one was saved, and why it was not taken."""

    model_dir: Path | None
    info: Any
    candidate: Path
    verdict: str
    removed: int = 0  # older models removed (core.models.retention)


@dataclass
class TakenModel:
    """A retrain whose model is now the project's: where it is, its metadata, and how many older
    models were removed to make room (core.models.retention)."""

    model_dir: Path
    info: Any
    removed: int = 0


def model_summary(model_dir: Path | None) -> Any:
    """Read a model's metadata only (no weights, no torch)."""
    from core.models.model_files import default_model_dir, read_info

    return read_info(model_dir or default_model_dir())
