"""`audit-captions`: how often generated captions name the other gender, age or number of
people than the human captions of the same photos (`core.captions.audit`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.captions.audit import AttributeAudit, audit
from core.captions.caption_job import iter_feature_batches
from core.captions.captioning import load_captioner
from core.errors import TaglineError
from core.formats.captions_io import read_reference_captions
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore


@dataclass(frozen=True)
class AuditRequest:
    captions: Path | None = None  # human captions (several rows a photo allowed); None: the project's own
    model: Path | None = None  # captioner folder; None: the bundled one
    batch_size: int = 32
    prefer_gpu: bool = True
    examples: int = 20


@dataclass
class AuditOutcome:
    results: list[AttributeAudit]
    photos: int
    captioner: str


def audit_job(store: ProjectStore, request: AuditRequest, cancel: CancelToken | None = None) -> Job[AuditOutcome]:
    if request.captions is not None:
        references = read_reference_captions(request.captions)
    else:  # the captions people gave, never the generated ones
        references = {}
        by_id = {r.id: r.relpath for r in store.images()}
        for image_id, (text, source) in store.captions().items():
            if source != "generated" and image_id in by_id:
                references[by_id[image_id]] = [text]
    records = [r for r in store.images() if r.relpath in references]
    if not records:
        raise TaglineError("no photo of the folder has a human caption to compare with: give --captions CSV")
    captioner = load_captioner(request.model, prefer_gpu=request.prefer_gpu)
    generated: dict[str, str] = {}
    done = 0
    for batch in iter_feature_batches(store, captioner, records, request.batch_size, cancel):
        texts = captioner.generate(batch.features) if batch.records else []
        generated.update((r.relpath, t) for r, t in zip(batch.records, texts))
        done += len(batch.records) + len(batch.failures)
        yield Progress("caption", done, len(records), failed=len(batch.failures))
    photos = [(name, references[name], text) for name, text in sorted(generated.items())]
    return AuditOutcome(audit(photos, request.examples), len(photos), captioner.name)
