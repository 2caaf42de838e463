"""Batch classification and captioning on Ray (PyPI `ray[data]`): Ray Data reads the photos
(local paths, or `s3://` / `gs://` URIs through the same reader), batches them and runs them
through actors that load the model once per worker; results stream back to this process and
are committed to the project store batch by batch, so a killed run redoes nothing finished.

Without an address a local Ray instance is started and stopped (`ray.init`), which also makes
the tests possible on one machine (127.0.0.1 only).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import TaglineError
from core.progress import CancelToken, Job, Progress
from core.store.database import ImageRecord, ProjectStore

if TYPE_CHECKING:
    from core.tagging.classifier import Classifier

RAY_BATCH = 32
READ_CPUS = 0.1  # Ray's logical CPUs per file-reading task (reading waits on the disk, not the CPU)


def require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise TaglineError("running on a cluster needs Ray: pip install 'tagline[cluster]'") from exc
    return ray


@contextmanager
def ray_session(address: str | None, workers: int | None = None) -> Iterator[Any]:
    """Connect to a cluster at `address`, or start a local instance for this run (stopped after)."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        env = {k: v for k, v in os.environ.items() if k.startswith(("TAGLINE_", "ORT_", "XDG_"))}
        options: dict[str, Any] = {"runtime_env": {"env_vars": env}, "include_dashboard": False,
                                   "logging_level": "ERROR", "log_to_driver": False}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=max(workers or 1, os.cpu_count() or 1), **options)
        started = True
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # Tagline draws its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _actor_batches(ray: Any, uris: list[str], actor: type, arguments: dict[str, Any],
                   workers: int | None) -> Iterator[dict[str, Any]]:
    """The photos at `uris` read by Ray Data and passed through a pool of `actor`s (one per CPU
    of the cluster unless `workers` says), batch by batch as they finish."""
    cpus = float(ray.available_resources().get("CPU", 1))
    count = workers or max(1, int(cpus))
    dataset = ray.data.read_binary_files(uris, include_paths=True, ray_remote_args={"num_cpus": READ_CPUS})
    results = dataset.map_batches(  # actors leave a little CPU to the readers, or both wait for ever
        actor, batch_size=RAY_BATCH, compute=ray.data.ActorPoolStrategy(size=count), batch_format="numpy",
        num_cpus=max(0.05, min(1.0, (cpus - 2 * READ_CPUS) / count)), fn_constructor_kwargs=arguments)
    yield from results.iter_batches(batch_size=RAY_BATCH, batch_format="numpy")


class ClassifyActor:
    """One per worker: the classifier and its encoders, loaded once; a batch of file bytes in,
    embeddings, probabilities and decisions out (failures named, never raised)."""

    def __init__(self, model: str | None, captions: dict[str, tuple[str, bool]], prefer_gpu: bool,
                 top1_fallback: bool | None = None) -> None:
        from core.tagging.classifier import Classifier

        self.classifier = Classifier(Path(model) if model else None, top1_fallback=top1_fallback)
        self.encoders = self.classifier.encoders(prefer_gpu=prefer_gpu)
        self.captions = captions  # path -> (caption, generated)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from core.errors import ImageDecodeError
        from core.media.images import decode_bytes
        from core.models.encoders import preprocess_image

        spec = self.encoders.image_spec
        paths = [str(p) for p in batch["path"]]
        pixels, kept, failed = [], [], []
        for path, data in zip(paths, batch["bytes"]):
            try:
                pixels.append(preprocess_image(decode_bytes(bytes(data), path, max_side=2 * spec.input_size), spec))
                kept.append(path)
            except ImageDecodeError as exc:
                failed.append((path, exc.reason))
        labels = len(self.classifier.labels)
        if kept:
            image = self.encoders.image.encode(np.stack(pixels))
            texts = [self.captions.get(p, ("", False))[0] or None for p in kept]
            text = np.zeros((len(kept), self.encoders.text_spec.dim), np.float32)
            rows = [i for i, t in enumerate(texts) if t]
            if rows:
                text[rows] = self.encoders.text.encode([texts[i] or "" for i in rows])
            has_caption = np.array([1.0 if t else 0.0 for t in texts], np.float32)
            generated = np.array([self.captions.get(p, ("", False))[1] for p in kept])
            probs = self.classifier.predict(image, text, has_caption, texts, generated)
            codes = self.classifier.decision_codes(probs, has_caption, generated)
        else:
            image = np.zeros((0, spec.dim), np.float32)
            text = np.zeros((0, self.encoders.text_spec.dim), np.float32)
            probs = np.zeros((0, labels), np.float32)
            codes = np.zeros((0, labels), np.int8)
        return {"path": np.array(kept + [p for p, _ in failed], dtype=object),
                "error": np.array([""] * len(kept) + [r for _, r in failed], dtype=object),
                "image": list(image) + [np.zeros(spec.dim, np.float32)] * len(failed),
                "text": list(text) + [np.zeros(self.encoders.text_spec.dim, np.float32)] * len(failed),
                "probs": list(probs) + [np.zeros(labels, np.float32)] * len(failed),
                "codes": list(codes) + [np.zeros(labels, np.int8)] * len(failed)}


@dataclass
class RayClassifyReport:
    classified: int = 0
    already_done: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    provider: str = "ray"


def photo_uri(store: ProjectStore, record: ImageRecord, base: str | None) -> str:
    """Where a worker reads the photo: beside the project (one machine, shared disk), or under
    `base` (an `s3://` / `gs://` prefix holding the same relative paths)."""
    if base:
        return base.rstrip("/") + "/" + record.relpath
    return str(store.image_path(record).resolve())


def classify_on_ray(store: ProjectStore, classifier: Classifier | None = None, address: str | None = None,
                    workers: int | None = None, source: str | None = None, redo: bool = False,
                    prefer_gpu: bool = True, cancel: CancelToken | None = None) -> Job[RayClassifyReport]:
    """`tagline classify --ray`: the photos the store says still need a prediction, through
    `workers` actors (default: one per CPU the cluster has) that load `classifier`'s folder
    (the bundled model when None) with its fallback setting; committed as batches arrive."""
    from core.models.embedding import caption_key
    from core.tagging.classifier import (
        Classifier,
        classification_captions,
        reads_generated,
        records_to_classify,
        save_predictions,
    )

    started = time.perf_counter()
    classifier = classifier or Classifier()
    encoders = classifier.encoders(prefer_gpu=prefer_gpu)
    captions = classification_captions(store, reads_generated(classifier.info))
    records, current = records_to_classify(store, classifier, captions, redo)
    report = RayClassifyReport(already_done=len(current) - len(records))
    yield Progress("classify", 0, len(records), message="starting Ray")
    if not records:
        return report
    by_uri = {photo_uri(store, r, source): r for r in records}
    caption_of = {uri: (captions[r.id][0], captions[r.id][1] == "generated") for uri, r in by_uri.items() if r.id in captions}
    with ray_session(address, workers) as ray:
        arguments = {"model": str(classifier.folder), "captions": caption_of, "prefer_gpu": prefer_gpu,
                     "top1_fallback": classifier.info.top1_fallback}
        for batch in _actor_batches(ray, list(by_uri), ClassifyActor, arguments, workers):
            if cancel is not None:
                cancel.raise_if_cancelled()
            ok = [i for i, error in enumerate(batch["error"]) if not error]
            records_ok = [by_uri[_local(str(batch["path"][i]), by_uri)] for i in ok]
            for i, error in enumerate(batch["error"]):
                if error:
                    record = by_uri[_local(str(batch["path"][i]), by_uri)]
                    report.failures.append((record.relpath, str(error)))
                    store.set_image_error(record.id, str(error))
            if records_ok:
                ids = [r.id for r in records_ok]
                with store.transaction():  # the cache a later local run or training reads, as the local path fills it
                    store.save_embeddings(encoders.image_key, [(r.id, r.digest or "", batch["image"][i])
                                                               for r, i in zip(records_ok, ok)])
                    store.save_embeddings(encoders.text_key, [(r.id, caption_key(captions[r.id][0]), batch["text"][i])
                                                              for r, i in zip(records_ok, ok) if r.id in captions])
                    save_predictions(store, classifier, ids, np.stack([batch["probs"][i] for i in ok]),
                                     np.stack([batch["codes"][i] for i in ok]), [current[i] for i in ids])
            report.classified += len(records_ok)
            yield Progress("classify", report.classified + len(report.failures), len(records),
                           failed=len(report.failures), extra={"image_ids": [r.id for r in records_ok]})
    report.seconds = time.perf_counter() - started
    return report


def _local(path: str, by_uri: dict[str, ImageRecord]) -> str:
    """Ray's readers give local paths without a scheme; match them to the URIs asked for."""
    if path in by_uri:
        return path
    for uri in (f"file://{path}", "/" + path.lstrip("/")):
        if uri in by_uri:
            return uri
    raise TaglineError(f"Ray returned a photo that was not asked for: {path}")


class CaptionActor:
    """One per worker: the captioner, loaded once; file bytes in, captions out."""

    def __init__(self, model: str | None, prefer_gpu: bool, style: str | None = None) -> None:
        from core.captions.captioning import load_captioner

        self.captioner = load_captioner(model, prefer_gpu=prefer_gpu, style=style)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from core.errors import ImageDecodeError
        from core.media.images import decode_bytes

        images, kept, failed = [], [], []
        side = getattr(self.captioner, "max_side", None)
        for path, data in zip([str(p) for p in batch["path"]], batch["bytes"]):
            try:
                images.append(decode_bytes(bytes(data), path, max_side=side))
                kept.append(path)
            except ImageDecodeError as exc:
                failed.append((path, exc.reason))
        captioner = self.captioner
        texts = list(captioner.generate(captioner.encode(np.stack([captioner.preprocess(im) for im in images])))) if images else []
        return {"path": np.array(kept + [p for p, _ in failed], dtype=object),
                "caption": np.array(texts + [""] * len(failed), dtype=object),
                "error": np.array([""] * len(kept) + [r for _, r in failed], dtype=object)}


@dataclass
class RayCaptionReport:
    captioned: int = 0
    kept: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def caption_on_ray(store: ProjectStore, model: Path | None = None, address: str | None = None,
                   workers: int | None = None, source: str | None = None, overwrite: bool = False,
                   style: str | None = None, prefer_gpu: bool = True,
                   cancel: CancelToken | None = None) -> Job[RayCaptionReport]:
    """`tagline caption --ray`: captions for the photos without one (all with `overwrite`),
    written as "generated" batch by batch; a person's caption is never replaced unless asked."""
    started = time.perf_counter()
    existing = store.captions()
    images = store.images()
    records = [r for r in images if overwrite or r.id not in existing]
    report = RayCaptionReport(kept=len(images) - len(records))
    yield Progress("caption", 0, len(records), message="starting Ray")
    if not records:
        return report
    by_uri = {photo_uri(store, r, source): r for r in records}
    with ray_session(address, workers) as ray:
        arguments = {"model": str(model) if model else None, "prefer_gpu": prefer_gpu, "style": style}
        for batch in _actor_batches(ray, list(by_uri), CaptionActor, arguments, workers):
            if cancel is not None:
                cancel.raise_if_cancelled()
            written = []
            for path, text, error in zip(batch["path"], batch["caption"], batch["error"]):
                record = by_uri[_local(str(path), by_uri)]
                if error:
                    report.failures.append((record.relpath, str(error)))
                    store.set_image_error(record.id, str(error))
                else:
                    written.append((record.id, str(text)))
            store.set_captions(written, "generated")
            report.captioned += len(written)
            yield Progress("caption", report.captioned + len(report.failures), len(records),
                           failed=len(report.failures), extra={"image_ids": [i for i, _ in written]})
    report.seconds = time.perf_counter() - started
    return report
