"""`classify`: predict every photo whose photo or caption changed, with the project's model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.formats.exporting import check_output_path, collect_rows, export_csv
from core.jobs.importing import ImportOutcome, ImportRequest, import_job
from core.jobs.project import Notes, active_model_key, project_model
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore
from core.tagging.classifier import Classifier, ClassifyReport, classify_project


@dataclass(frozen=True)
class ClassifyRequest:
    model: Path | None = None  # None: the project's model, else the bundled one
    captions: Path | None = None  # captions to import first (their labels are not imported)
    label_map: Path | None = None
    out: Path | None = None  # also write the predictions as CSV
    label_ids: bool = False
    probabilities: bool = False
    batch_size: int = 32
    redo: bool = False  # decide every photo again (embeddings are cached: cheap)
    top1_fallback: bool | None = None  # None: the model's choice
    caption_missing: bool = False  # caption photos without one first, and read those captions
    captioner: Path | None = None
    use_generated_captions: bool = False
    prefer_gpu: bool = True
    ray: str | None = None  # run on Ray: "" starts a local instance, else the cluster's address
    ray_workers: int | None = None  # actors (default: one per CPU of the cluster)
    source: str | None = None  # with ray: where workers read the photos (an s3:// or gs:// prefix)


@dataclass
class ClassifyOutcome:
    report: ClassifyReport | Any  # a RayClassifyReport on a cluster (the same fields)
    model_version: str
    imported: ImportOutcome | None = None
    captioned: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # every skipped file once
    rows_written: int = 0
    notes: Notes = field(default_factory=Notes)


def classify_job(store: ProjectStore, request: ClassifyRequest, cancel: CancelToken | None = None) -> Job[ClassifyOutcome]:
    notes = Notes()
    yield Progress("classify", 0, 0, message="loading the model")
    classifier = Classifier(project_model(store, request.model, notes), top1_fallback=request.top1_fallback)
    if request.out:  # before minutes of work: never over the truth file, the database or a photo
        check_output_path(store, request.out, [request.captions] if request.captions else [])
    imported = None
    if request.captions is not None:
        imported = yield from import_job(store, ImportRequest(request.captions, request.label_map, labels=False), cancel)
    caption_failures: list[tuple[str, str]] = []
    captioned = 0
    if request.caption_missing:
        from core.captions.caption_job import caption_project
        from core.captions.captioning import load_captioner

        captioning = yield from caption_project(store, load_captioner(request.captioner, prefer_gpu=request.prefer_gpu),
                                                cancel=cancel, batch_size=request.batch_size)
        caption_failures, captioned = captioning.failures, captioning.captioned
        notes.info.append(f"captioned {captioned} images without a caption")
    encoders = classifier.encoders(prefer_gpu=request.prefer_gpu)
    report: Any
    if request.ray is not None:
        from core.cluster.ray_jobs import classify_on_ray

        report = yield from classify_on_ray(store, classifier, request.ray or None, request.ray_workers,
                                            request.source, request.redo, request.prefer_gpu, cancel)
    else:
        report = yield from classify_project(store, classifier, encoders, request.batch_size, request.redo, cancel,
                                             use_generated_captions=request.use_generated_captions or request.caption_missing)
    outcome = ClassifyOutcome(report, classifier.version, imported, captioned,
                              list(dict(caption_failures + report.failures).items()), notes=notes)
    rate = report.classified / report.seconds if report.seconds else 0.0
    notes.info.append(f"classified {report.classified} images ({rate:.1f}/s on {report.provider or 'no device'}), "
                      f"{report.already_done} already done, {len(report.failures)} failed; model {classifier.version}")
    store.forget_models(keep=[classifier.key, active_model_key(store)])
    if request.out:  # what `export` writes when this model is the active one: decisions first
        rows = collect_rows(store, classifier.key)
        export_csv(store, request.out, rows, label_ids=request.label_ids, probabilities=request.probabilities)
        outcome.rows_written = len(rows)
        notes.info.append(f"wrote {len(rows)} rows to {request.out}")
    return outcome
