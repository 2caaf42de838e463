"""`train`: learn a model from the project's confirmed labels; it becomes the project's model when
it is at least as good as the one in use on the person's photos (core.learn.gate), or when asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import TaglineError
from core.formats.captions_io import load_label_map
from core.jobs.importing import ImportOutcome, ImportRequest, import_job
from core.learn.gate import POLICIES, Verdict, decide_activation
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
    activate: str = "better"  # core.learn.gate.POLICIES: when at least as good, always, never
    refine: bool = True  # refine the model in use (or the bundled one) where it knows the project's labels
    keep_models: int | None = None  # the app's models folder: keep this many of the newest (None: keep all)
    # captions a captioner wrote train the caption side too, and the model weighs them against the photo
    # alone when it classifies (measured: docs/benchmarks.md, "Own labels with captions")
    generated_captions: bool = True


@dataclass
class TrainOutcome:
    result: LearnResult
    imported: ImportOutcome | None = None
    activated: bool = True  # the new model is now the project's
    verdict: str = ""  # why it was or was not taken, in words
    current: Path | None = None  # the model in use before (None: the bundled one)
    removed: list[Path] = field(default_factory=list)  # older models removed (`keep_models`)


def train_job(store: ProjectStore, request: TrainRequest, cancel: CancelToken | None = None) -> Job[TrainOutcome]:
    if request.activate not in POLICIES:
        raise TaglineError(f"unknown --activate {request.activate!r}; use one of {', '.join(POLICIES)}")
    current = store.active_model()
    if current is not None and not (current / "model.json").is_file():
        current = None  # gone: the bundled model is in use (core.jobs.project.project_model)
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
                                  force_split=request.force_split, current=current, refine_current=request.refine,
                                  generated_captions=request.generated_captions)
    if result.comparison is None:  # nothing to compare with (a fine-tuned backbone): taken unless asked not to
        verdict = Verdict(request.activate != "never", "the new model is now in use" if request.activate != "never"
                          else "kept the current model as asked")
    else:
        verdict = decide_activation(result.comparison, request.activate)
    if verdict.activate:
        store.set_active_model(Path(result.model_dir).resolve())
    removed = []
    if request.keep_models is not None:
        from core.models.retention import prune_models

        removed = prune_models(Path(result.model_dir).parent, [Path(result.model_dir), current, store.active_model()],
                               request.keep_models)
    return TrainOutcome(result, imported, verdict.activate, verdict.sentence, current, removed)
