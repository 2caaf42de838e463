"""A trained classifier loaded from its folder, and the classify job that runs it on a project."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError
from core.learn.caption_words import bag_of_words, name_mentions
from core.learn.fusion_head import create_head
from core.learn.metrics import decide
from core.models.embedding import EmbeddedBatch, Encoders, caption_key, iter_embedded_batches
from core.models.head_graph import HeadGraph, export_head_graph, head_graph_path
from core.models.model_files import ClassifierInfo, default_model_dir, head_config, load_head_weights, read_info
from core.models.model_identity import model_key
from core.models.registry import image_spec, text_spec
from core.progress import CancelToken, Job, Progress
from core.store.database import ImageRecord, ProjectStore
from core.store.decisions import FALLBACK

log = logging.getLogger(__name__)


class Classifier:
    """Label names, thresholds and the ensemble of fused heads of one model version."""

    def __init__(self, folder: Path | str | None = None, top1_fallback: bool | None = None) -> None:
        """`top1_fallback` overrides the model's choice of giving the most likely label to a
        photo where none passes its threshold (right when every photo shows one of the labels,
        wrong for folders with photos of other things)."""
        self.folder = Path(folder) if folder is not None else default_model_dir()
        self.info: ClassifierInfo = read_info(self.folder)
        # its identity in the store: a digest of the files as loaded (`core.models.model_identity`)
        self.key = model_key(self.folder)
        if top1_fallback is not None:
            self.info.top1_fallback = top1_fallback
        self._graph: HeadGraph | None = None
        self._heads: list[Any] | None = None
        weights_file = self.folder / Path(self.info.weights).name
        graph = head_graph_path(weights_file, self.folder / "model.json") if weights_file.is_file() else None
        if graph is not None and graph.is_file():
            try:
                self._graph = HeadGraph(graph)
                return
            except Exception as exc:  # a damaged cache only costs the export again
                log.warning("the cached head graph %s cannot be read (%s); exporting it again", graph, exc)
        self._heads = self._load_heads()
        if graph is not None:
            try:
                config = head_config(self.info, 0)
                export_head_graph(self._heads, config.image_dim, config.text_dim, graph)
            except Exception as exc:  # torch heads still work; the next run tries again
                log.warning("the heads could not be exported to %s (%s); classifying with torch", graph, exc)

    @property
    def heads(self) -> list[Any]:
        """The ensemble's torch modules (training and evaluation use them; built on first use)."""
        if self._heads is None:
            self._heads = self._load_heads()
        return self._heads

    def _load_heads(self) -> list[Any]:
        weights = load_head_weights(self.folder, self.info)
        heads: list[Any] = []
        for member in range(self.info.ensemble):
            head = create_head(head_config(self.info, member))
            prefix = f"m{member}."
            try:
                head.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"the weights in {self.folder} do not match its model.json (head {member + 1} of "
                                 f"{self.info.ensemble}): {str(exc).splitlines()[0]}") from exc
            if self.info.members:
                head.ensemble_weight = float(self.info.members[member]["weight"])
            heads.append(head.eval())
        return heads

    def _predict_heads(self, image: np.ndarray, text: np.ndarray, has_caption: np.ndarray) -> np.ndarray:
        if self._graph is not None:
            return self._graph.predict(image, text, has_caption)
        from core.learn.training import predict_heads

        return predict_heads(self.heads, image, text, has_caption)

    @property
    def version(self) -> str:
        return self.info.version


    @property
    def labels(self) -> list[str]:
        return self.info.labels

    def encoders(self, prefer_gpu: bool = True) -> Encoders:
        return Encoders(image_spec(self.info.image_encoder, self.folder), text_spec(self.info.text_encoder), prefer_gpu)

    def predict(
        self, image: np.ndarray, text: np.ndarray, has_caption: np.ndarray,
        captions: Sequence[str | None] | None = None, generated: np.ndarray | None = None,
    ) -> np.ndarray:
        """Probabilities per label; `captions` (raw text) feed the caption-words part. Rows
        marked `generated` (a captioner wrote the caption) blend the fused prediction with the
        photo alone, by the weight chosen on validation, when the model has one."""
        texts = captions if captions is not None else [None] * len(image)
        if self.info.name_mentions:  # right after the sentence embedding, as trained
            text = np.concatenate([text, name_mentions(texts, self.info.labels)], axis=1)
        if self.info.vocabulary:
            bag = bag_of_words(texts, self.info.vocabulary)
            text = np.concatenate([text, bag], axis=1)
        probabilities = self._predict_heads(image, text, has_caption)
        rows = np.asarray(generated, bool) if generated is not None else np.zeros(len(image), bool)
        if self.info.generated_captions and rows.any():
            weight = float(self.info.generated_captions["weight"])
            alone = self._predict_heads(image[rows], np.zeros_like(text[rows]), np.zeros(int(rows.sum()), np.float32))
            probabilities[rows] = weight * probabilities[rows] + (1 - weight) * alone
        if not np.isfinite(probabilities).all():  # finite but huge weights overflow; the store would blame itself
            raise ModelError(f"the model in {self.folder} gives probabilities that are not numbers (its weights "
                             f"overflow): the model is damaged; train it again or use another model")
        return probabilities

    def decide(self, probabilities: np.ndarray, has_caption: np.ndarray | None = None,
               generated: np.ndarray | None = None) -> np.ndarray:
        thresholds = self.info.decision_thresholds() if has_caption is None else \
            self.info.row_thresholds(has_caption, generated)
        return decide(probabilities, thresholds, self.info.top1_fallback)

    def decision_codes(self, probabilities: np.ndarray, has_caption: np.ndarray,
                       generated: np.ndarray | None = None) -> np.ndarray:
        """What `decide` chose, as stored: 0 absent, 1 past its threshold, `FALLBACK` for the most
        likely label given to a photo where none passed (shown as a guess, not a confident call)."""
        thresholds = self.info.row_thresholds(has_caption, generated)
        chosen = decide(probabilities, thresholds, self.info.top1_fallback)
        guessed = chosen & (probabilities < thresholds)
        return np.where(guessed, FALLBACK, chosen.astype(np.int8))


@dataclass
class ClassifyReport:
    classified: int = 0
    already_done: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)
    seconds: float = 0.0
    provider: str = ""


def classification_captions(store: ProjectStore, use_generated: bool = False) -> dict[int, tuple[str, str]]:
    """Captions the classifier reads. Generated captions are left out unless asked for, or unless
    the model learnt from them (`reads_generated`): read like a person's caption they lower the
    bundled model's held-out samples F1 below the photo alone, and even weighed against the photo
    alone (`Classifier.predict`, `generated`) they add only 0.3 points (docs/captioning.md)."""
    captions = store.captions()
    if use_generated:
        return captions
    return {i: c for i, c in captions.items() if c[1] != "generated"}


def reads_generated(info: ClassifierInfo) -> bool:
    """A model trained on generated captions reads them when it classifies (weighed against the
    photo alone as its `generated_captions` says): it was chosen for a folder that has them."""
    return bool(info.generated_captions.get("learnt"))


# How far a person's own model trusts a generated caption against the photo alone when it classifies:
# p = w * p(photo + generated caption) + (1 - w) * p(photo alone). The bundled model, trained on human
# captions, trusts them 0.25 (core.captions.caption_trust); a model trained on the generated captions
# themselves already learnt how far to trust them: on comp5329's validation part, own labels from 10-200
# photos scored best fully trusting them, every weight below 1 lower (bench/bench_own_captions.py,
# docs/benchmarks.md "Own labels with captions").
OWN_GENERATED_WEIGHT = 1.0


def generated_trust(thresholds: np.ndarray, photos: int, weight: float = OWN_GENERATED_WEIGHT) -> dict[str, object]:
    """model.json's `generated_captions` for a model that learnt from generated captions: it reads
    them when it classifies (`learnt`), weighed by `weight`, at its own thresholds."""
    return {"weight": weight, "thresholds": [round(float(t), 4) for t in thresholds], "learnt": True,
            "photos": photos, "chosen": "bench/bench_own_captions.py on comp5329 validation (docs/benchmarks.md)"}


def inputs_key(digest: str | None, caption: str | None) -> str:
    return f"{digest or ''}/{caption_key(caption) if caption else ''}"


def records_to_classify(store: ProjectStore, classifier: Classifier, captions: dict[int, tuple[str, str]],
                        redo: bool = False) -> tuple[list[ImageRecord], dict[int, str]]:
    """The photos whose picture or caption changed since their last prediction by this model
    (all with `redo`), and every photo's current inputs key."""
    images = store.images()
    current = {r.id: inputs_key(r.digest, captions.get(r.id, (None,))[0]) for r in images}
    done = {} if redo else store.prediction_inputs(classifier.key)
    return [r for r in images if done.get(r.id) != current[r.id]], current


def save_predictions(store: ProjectStore, classifier: Classifier, image_ids: Sequence[int], probabilities: np.ndarray,
                     codes: np.ndarray, inputs_keys: Sequence[str]) -> None:
    """One batch into the store under the model's identity, its labels matched to the project's."""
    labels = classifier.labels
    store.save_predictions(image_ids, probabilities, codes, labels, classifier.key, inputs_keys,
                           model_name=classifier.version, external_ids=[classifier.info.external_ids.get(n) for n in labels])


def classify_project(
    store: ProjectStore,
    classifier: Classifier,
    encoders: Encoders | None = None,
    batch_size: int = 32,
    redo: bool = False,
    cancel: CancelToken | None = None,
    use_generated_captions: bool = False,
) -> Job[ClassifyReport]:
    """Predict every image whose photo or caption changed since its last prediction.

    Each batch is committed as it finishes (progress `extra["image_ids"]` names it), so an
    interrupted run resumes without redoing finished images.
    """
    started = time.perf_counter()
    encoders = encoders or classifier.encoders()
    captions = classification_captions(store, use_generated_captions or reads_generated(classifier.info))
    records, current = records_to_classify(store, classifier, captions, redo)
    report = ClassifyReport(already_done=len(current) - len(records))
    total = len(records)
    yield Progress("classify", 0, total, message="loading models")
    batch: EmbeddedBatch
    for batch in iter_embedded_batches(store, encoders, records, batch_size, cancel, captions):
        report.failures.extend((r.relpath, reason) for r, reason in batch.failures)
        if batch.image_ids:
            texts = [captions[i][0] if i in captions else None for i in batch.image_ids]
            generated = np.array([i in captions and captions[i][1] == "generated" for i in batch.image_ids])
            probs = classifier.predict(batch.image_vectors, batch.text_vectors, batch.has_caption, texts, generated)
            save_predictions(store, classifier, batch.image_ids, probs,
                             classifier.decision_codes(probs, batch.has_caption, generated),
                             [current[i] for i in batch.image_ids])
        report.classified += len(batch.image_ids)
        yield Progress(
            "classify", report.classified + len(report.failures), total, failed=len(report.failures),
            extra={"image_ids": batch.image_ids},
        )
    report.seconds = time.perf_counter() - started
    report.provider = encoders.image.provider if total else ""
    return report
