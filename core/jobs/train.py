"""`train`: learn a model from the project's confirmed labels; it becomes the project's model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.formats.captions_io import load_label_map
from core.jobs.importing import ImportOutcome, ImportRequest, import_job
from core.learn.training import TrainConfig
from core.models.embedding import Encoders
from core.models.registry import DEFAULT_TEXT_ENCODER, image_spec, text_spec
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore
from core.tagging.learning import LearnResult, SplitRule, learn


@dataclass(frozen=True)
class TrainRequest:
    out: Path
    captions: Path | None = None  # captions and confirmed labels to import first
    label_map: Path | None = None
    image_encoder: str | None = None  # registry name or timm:MODEL[@WEIGHTS]; None: the bundled model's
    text_encoder: str = DEFAULT_TEXT_ENCODER
    config: TrainConfig = field(default_factory=TrainConfig)
    split: SplitRule = field(default_factory=SplitRule)
    force_split: bool = False  # the fixed split even with few labelled photos
    finetune: bool = False  # fine-tune the image backbone end to end first (for a GPU)
    finetune_epochs: int = 4
    prefer_gpu: bool = True


@dataclass
class TrainOutcome:
    result: LearnResult
    imported: ImportOutcome | None = None


def train_job(store: ProjectStore, request: TrainRequest, cancel: CancelToken | None = None) -> Job[TrainOutcome]:
    yield Progress("embed", 0, 0, message="loading the encoders")
    imported = None
    if request.captions is not None:
        imported = yield from import_job(store, ImportRequest(request.captions, request.label_map), cancel)
    external = {v: k for k, v in load_label_map(request.label_map).items()} if request.label_map else None
    if request.image_encoder is None:  # the bundled model's encoders and label ids
        from core.tagging.classifier import Classifier

        base = Classifier()
        encoders = base.encoders(prefer_gpu=request.prefer_gpu)
        external = external or base.info.external_ids
    else:
        encoders = Encoders(image_spec(request.image_encoder), text_spec(request.text_encoder), request.prefer_gpu)
    if request.finetune:
        from core.tagging.finetune import FinetuneConfig, finetune

        tune = FinetuneConfig(epochs=request.finetune_epochs, device="auto" if request.prefer_gpu else "cpu")
        result = yield from finetune(store, request.out, encoders, request.split, tune, request.config, external, cancel)
    else:
        result = yield from learn(store, request.out, encoders, request.split, request.config, external, cancel,
                                  force_split=request.force_split)
    store.set_active_model(Path(result.model_dir).resolve())
    return TrainOutcome(result, imported)
