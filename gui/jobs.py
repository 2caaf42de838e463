"""Job factories for the worker: plain inputs in, a core generator job out.

Heavy libraries (torch, onnxruntime) are imported here, inside the jobs, so they load on the
worker thread the first time they are needed and never at startup.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.progress import CancelToken, Progress
from core.store.database import ProjectStore


def sync_job(store: ProjectStore, cancel: CancelToken) -> Generator[Progress, None, Any]:
    from core.store.sync import sync_folder

    return (yield from sync_folder(store, cancel))


def classify_job(store: ProjectStore, model_dir: Path | None, batch_size: int, prefer_gpu: bool,
                 cancel: CancelToken, top1_fallback: bool = True, redo: bool = False) -> Generator[Progress, None, Any]:
    """`redo` decides every photo again (cheap: embeddings are cached), e.g. after the fallback changed."""
    yield Progress("classify", 0, 0, message="loading the model")
    from core.tagging.classifier import Classifier, classify_project

    classifier = Classifier(model_dir, top1_fallback=top1_fallback)
    encoders = classifier.encoders(prefer_gpu=prefer_gpu)
    return (yield from classify_project(store, classifier, encoders, batch_size, redo=redo, cancel=cancel))


def caption_job(store: ProjectStore, batch_size: int, prefer_gpu: bool,
                cancel: CancelToken) -> Generator[Progress, None, Any]:
    """Write captions for photos that have none (never replaces a person's caption)."""
    yield Progress("caption", 0, 0, message="loading the captioner")
    from core.captions.caption_job import caption_project
    from core.captions.captioning import load_captioner

    captioner = load_captioner(prefer_gpu=prefer_gpu)
    return (yield from caption_project(store, captioner, cancel=cancel, batch_size=batch_size))


def train_job(store: ProjectStore, out_dir: Path, epochs: int, prefer_gpu: bool,
              cancel: CancelToken) -> Generator[Progress, None, Any]:
    """Fine-tune from confirmed labels with the bundled model's encoders and label ids."""
    yield Progress("embed", 0, 0, message="loading the encoders")
    from core.learn.training import TrainConfig
    from core.tagging.classifier import Classifier
    from core.tagging.learning import learn

    base = Classifier()
    config = TrainConfig(max_epochs=epochs)
    return (yield from learn(store, out_dir, base.encoders(prefer_gpu=prefer_gpu), config=config,
                             external_ids=base.info.external_ids, cancel=cancel))


@dataclass(frozen=True)
class ExportRequest:
    path: Path
    fmt: str  # "csv", "json" or "sidecars"
    image_ids: list[int] | None  # None: all images
    label_ids: bool = False
    probabilities: bool = False
    overwrite_sidecars: bool = False
    threshold: float | None = None  # the threshold the person chose in the app (None: the model's)


def export_job(store: ProjectStore, request: ExportRequest, cancel: CancelToken) -> Generator[Progress, None, int]:
    from core.formats.exporting import collect_rows, export_csv, export_json, export_sidecars

    yield Progress("export", 0, 1, message="collecting rows")
    rows = collect_rows(store, request.image_ids, threshold=request.threshold)
    cancel.raise_if_cancelled()
    if request.fmt == "csv":
        count = export_csv(store, request.path, rows, request.label_ids, request.probabilities)
    elif request.fmt == "json":
        count = export_json(store, request.path, rows)
    else:
        report = export_sidecars(store, rows, request.overwrite_sidecars)
        yield Progress("export", 1, 1, message=report.summary())
        return report.written
    yield Progress("export", 1, 1, message=f"wrote {count}")
    return count


def device_job(prefer_gpu: bool, cancel: CancelToken) -> Generator[Progress, None, str]:
    """Which device the encoders will use (imports onnxruntime, so it runs in the background)."""
    from core.models.encoders import cuda_fallback_reason, select_providers

    yield Progress("device", 0, 1)
    providers = select_providers(prefer_gpu)
    if providers and providers[0] == "CUDAExecutionProvider":
        return "CUDA"
    reason = cuda_fallback_reason()
    return f"CPU (CUDA failed: {reason})" if reason else "CPU"


def model_summary(model_dir: Path | None) -> Any:
    """Read a model's metadata only (no weights, no torch)."""
    from core.models.model_files import default_model_dir, read_info

    return read_info(model_dir or default_model_dir())
