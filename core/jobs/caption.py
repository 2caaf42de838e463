"""`caption`: write a caption for every photo without one (source "generated")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.captions.caption_job import CaptionReport, caption_project, write_caption_csv
from core.captions.captioning import load_captioner
from core.formats.exporting import check_output_path
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore


@dataclass(frozen=True)
class CaptionRequest:
    model: Path | None = None  # captioner folder or a Hugging Face BLIP folder; None: the bundled one
    out: Path | None = None  # also write ImageID,Caption,Source as CSV
    overwrite: bool = False  # also replace imported and typed captions
    style: str | None = None
    batch_size: int = 32
    prefer_gpu: bool = True
    ray: str | None = None  # run on Ray: "" starts a local instance, else the cluster's address
    ray_workers: int | None = None
    source: str | None = None  # with ray: an s3:// or gs:// prefix holding the folder's relative paths


@dataclass
class CaptionOutcome:
    report: CaptionReport | Any  # a RayCaptionReport on a cluster (the same fields)
    captioner: str
    rows_written: int = 0

    def summary(self) -> str:
        rate = self.report.captioned / self.report.seconds if self.report.seconds else 0.0
        return (f"captioned {self.report.captioned} images ({rate:.1f}/s), {self.report.kept} already had a caption, "
                f"{len(self.report.failures)} failed; {self.captioner}")


def caption_job(store: ProjectStore, request: CaptionRequest, cancel: CancelToken | None = None) -> Job[CaptionOutcome]:
    if request.out:
        check_output_path(store, request.out)
    report: Any
    if request.ray is not None:
        from core.captions.captioning import read_captioner_info
        from core.cluster.ray_jobs import caption_on_ray

        report = yield from caption_on_ray(store, request.model, request.ray or None, request.ray_workers, request.source,
                                           request.overwrite, request.style, request.prefer_gpu, cancel)
        name = f"tagline-captioner {read_captioner_info(request.model).version}" if request.model else "the bundled captioner"
    else:
        yield Progress("caption", 0, 0, message="loading the captioner")
        captioner = load_captioner(request.model, prefer_gpu=request.prefer_gpu, style=request.style)
        report = yield from caption_project(store, captioner, request.overwrite, cancel, request.batch_size)
        name = captioner.name
    outcome = CaptionOutcome(report, name)
    if request.out:
        outcome.rows_written = write_caption_csv(store, request.out)
    return outcome
