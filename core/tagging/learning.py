"""Learning from a project: confirmed labels + cached embeddings -> a new model version.

The split is a pure function of each image's relative path and a seed, so the held-out part
stays the same across runs and is never seen by training or threshold selection.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import TaglineError
from core.learn.caption_words import bag_of_words, build_vocabulary, name_mentions
from core.learn.gate import Comparison
from core.learn.label_prior import LabelPrior
from core.learn.ladder import CV_LIMIT, train_small
from core.learn.metrics import decide, evaluate, thresholds_by_row
from core.learn.refine import refine
from core.learn.training import TrainConfig, TrainingData, predict_heads, train_head
from core.models.embedding import Encoders, iter_embedded_batches
from core.models.model_files import ClassifierInfo, save_classifier
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore
from core.tagging.classifier import classification_captions, generated_trust
from core.tagging.label_guesses import build_label_prior, saved_prompts
from core.tagging.refining import compare_with_current, current_model, refine_base, refined_info, short_digest

MIN_PROJECT_PHOTOS = 50  # fewer photos with a kept vector: the prior is standardised over those trained on
STATISTICS_SAMPLE = 5000  # photos the prior's statistics are read from (a million would be 10 GB of features)


@dataclass(frozen=True)
class SplitRule:
    holdout: float = 0.15  # never used for training or thresholds: the honest score
    validation: float = 0.10  # early stopping and thresholds
    seed: int = 0

    def part(self, relpath: str) -> str:
        digest = hashlib.blake2b(f"{self.seed}:{relpath}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        if u < self.holdout:
            return "holdout"
        return "validation" if u < self.holdout + self.validation else "train"

    def indices(self, relpaths: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices of the train, validation and held-out parts; too few to train is an error."""
        part = np.array([self.part(p) for p in relpaths])
        train, validation, holdout = (np.flatnonzero(part == name) for name in ("train", "validation", "holdout"))
        if len(train) < 2 or len(validation) < 1:
            raise TaglineError(f"too few labelled images to train: {len(relpaths)} labelled, {len(train)} in the training "
                               f"part and {len(validation)} in validation; label some more")
        return train, validation, holdout


@dataclass
class LearnResult:
    model_dir: Path
    info: ClassifierInfo
    failures: list[tuple[str, str]]
    comparison: Comparison | None = None  # the new model against the one in use, on the same confirmed photos


def embed_label_names(encoders: Encoders, names: list[str]) -> np.ndarray:
    """Each label's name as the caption encoder reads it ('traffic_light' as 'traffic light'):
    the linear rung compares captions with these, so a caption that names a label counts."""
    return np.asarray(encoders.text.encode([n.replace("_", " ").replace("-", " ") for n in names]), np.float32)


def collect_training_data(
    store: ProjectStore, encoders: Encoders, labels: list[str] | None = None,
    batch_size: int = 64, cancel: CancelToken | None = None, use_generated: bool = False,
) -> Job[tuple[TrainingData, list[str]]]:
    """Embeddings and targets of every image a person decided on (all-absent counts too); with
    `use_generated`, captions a captioner wrote are read beside the person's."""
    confirmed = store.confirmations()
    names = labels or [lab.name for lab in store.labels()]
    records = [r for r in store.images() if r.id in confirmed]
    if not records:
        raise TaglineError("no image has a confirmed label yet: import labels or confirm some first")
    parts: list[tuple[int, np.ndarray, np.ndarray, float]] = []
    failures = 0
    captions = classification_captions(store, use_generated)
    for batch in iter_embedded_batches(store, encoders, records, batch_size, cancel, captions):
        failures += len(batch.failures)
        parts.extend(zip(batch.image_ids, batch.image_vectors, batch.text_vectors, batch.has_caption))
        yield Progress("embed", len(parts) + failures, len(records), failed=failures)
    relpaths = {r.id: r.relpath for r in records}
    data_captions = [captions[p[0]][0] if p[0] in captions else None for p in parts]
    targets = np.array([[confirmed[i].get(n, False) for n in names] for i, *_ in parts], dtype=bool)
    has_caption = np.array([p[3] for p in parts], np.float32)
    data = TrainingData(
        image=np.stack([p[1] for p in parts]), text=np.stack([p[2] for p in parts]),
        has_caption=has_caption, targets=targets, labels=names, captions=data_captions,
        # names only matter beside captions; photos alone never load the caption encoder for them
        label_text=embed_label_names(encoders, names) if has_caption.any() else None,
    )
    return data, [relpaths[p[0]] for p in parts]


def project_label_prior(store: ProjectStore, encoders: Encoders, names: list[str],
                        image_ids: list[int] | None = None) -> LabelPrior | None:
    """Each label's zero-shot score from its prompts (`core.learn.label_prior`), standardised over
    the project's photos (up to `STATISTICS_SAMPLE` of them): their kept aligned vectors (the
    search and the guesses keep them), else their cached features (classify keeps them), else the
    photos trained on. None without an alignment for these encoders. `image_ids`: the project's
    photos, where the caller has read them already."""
    prior = build_label_prior(names, encoders.text, saved_prompts(store), encoders.image_key, encoders.text_key)
    if prior is None:
        return None
    ids = image_ids if image_ids is not None else [r.id for r in store.images()]
    if len(ids) > STATISTICS_SAMPLE:
        ids = sorted(np.random.default_rng(0).choice(ids, STATISTICS_SAMPLE, replace=False).tolist())
    scores = None
    aligned = store.cached_embeddings(prior.alignment_key, ids)
    if len(aligned) >= MIN_PROJECT_PHOTOS:
        scores = np.stack([vector for _, vector in aligned.values()]) @ prior.prompts.T
    else:
        features = store.cached_embeddings(encoders.image_key, ids)
        if len(features) >= MIN_PROJECT_PHOTOS:
            scores = prior.scores(np.stack([vector for _, vector in features.values()]))
    return prior if scores is None else prior.standardised_by(scores)


def prior_record(prior: LabelPrior | None, labels: list[str], heads: list[dict[str, Any]]) -> dict[str, object]:
    """What model.json says of the zero-shot prior: which alignment, which labels learnt with it
    (none where the rung chosen for them cannot read it: the MLP)."""
    if prior is None or not labels or not any(head.get("prior_dim") for head in heads):
        return {}
    return {"alignment": prior.alignment_key, "labels": labels, "weight": prior.weight, "worth": prior.worth,
            "standardised_over": "project" if prior.mean is not None else "trained photos"}


def learn(
    store: ProjectStore,
    out_dir: Path,
    encoders: Encoders,
    split: SplitRule = SplitRule(),
    config: TrainConfig = TrainConfig(),
    external_ids: dict[str, str] | None = None,
    cancel: CancelToken | None = None,
    image_encoder_name: str | None = None,
    force_split: bool = False,
    current: Path | None = None,
    refine_current: bool = True,
    generated_captions: bool = False,
) -> Job[LearnResult]:
    """Train, choose thresholds, score, save a version. Under `CV_LIMIT` labelled photos, when the
    model in use (`current`, None: the bundled one) or the bundled one knows some of the project's
    labels, that model is refined with the confirmations (`core.learn.refine`); otherwise the
    capacity ladder is cross-validated on all of them and refitted on all (`core.learn.ladder`);
    from `CV_LIMIT` on (or with `force_split`) the fixed split trains, validates and scores a
    held-out part once. The result compares the new model with the one in use
    (`core.learn.gate`); whether it replaces it is the caller's decision.

    `image_encoder_name` overrides the name written to model.json (a fine-tuned backbone is
    named relative to the model folder so the folder can be moved).

    With `generated_captions`, captions a captioner wrote train the caption side too, and the
    model weighs them against the photo alone when it classifies (`generated_trust`).
    """
    data, relpaths = yield from collect_training_data(store, encoders, cancel=cancel, use_generated=generated_captions)
    images = store.images()
    records = {r.relpath: r for r in images}
    sources = store.captions() if generated_captions else {}
    generated = np.array([sources.get(records[p].id, ("", ""))[1] == "generated" for p in relpaths], bool)
    confirmed = store.confirmations()
    decided = np.array([[n in confirmed.get(records[p].id, {}) for n in data.labels] for p in relpaths], bool)
    photo_keys = [short_digest(records[p].digest or p) for p in relpaths]
    now = current_model(current)
    few = len(relpaths) < CV_LIMIT and not force_split
    base = refine_base(now, encoders, data.labels) if few and refine_current else None
    # only the ladder reads the prior: under CV_LIMIT photos, and beside a kept model for its new labels alone
    if few and (base is None or set(data.labels) - set(base[0].labels)):
        data = replace(data, label_prior=project_label_prior(store, encoders, data.labels, [r.id for r in images]))
    if base is not None:
        refined = yield from refine(data, base[0], decided, seed=split.seed, cancel=cancel, generated=generated)
        tensors, _ = ensemble_tensors([refined.head])
        version = _version(tensors)
        folds = refined.fold_of
        info = refined_info(refined, base[0], base[1], data, decided, encoders, image_encoder_name, external_ids,
                            sorted(set(photo_keys)), split.seed, version, folds, int(generated.sum()))
        rows = np.flatnonzero(np.isfinite(refined.oof).any(axis=1))  # cells never decided are NaN and count neither way
        predicted = decide(np.nan_to_num(refined.oof[rows]), refined.thresholds, refined.top1_fallback)
        comparison = compare_with_current(now, data, decided, rows, predicted, refined.labels, folds[rows], photo_keys,
                                          generated)
        info.metrics["comparison"] = comparison.as_dict()  # the app says why it was or was not taken
        info.training["label_prior"] = prior_record(data.label_prior, refined.labels[len(base[0].labels):],
                                                    [member["head"] for member in refined.head.config.extra])
        save_classifier(out_dir, info, tensors)
        yield Progress("save", 1, 1, message=f"saved model {version} to {out_dir}")
        return LearnResult(out_dir, info, [], comparison)
    original = data
    vocabulary: list[str] = []
    metrics: dict[str, object]
    top1_fallback = True
    mentions = False
    if few:  # few labels: every photo trains, folds score
        mentions = data.label_text is not None  # beside captions, a caption that names a label counts
        if mentions:
            data = with_name_mentions(data)
        trained, ladder = yield from train_small(data, seed=split.seed, cancel=cancel)
        train_idx, val_idx, hold_idx = np.arange(len(relpaths)), np.zeros(0, int), np.zeros(0, int)
        metrics = {"validation": trained.validation, "cross_validation": ladder.as_dict()}
        top1_fallback = ladder.top1_fallback
        split_record: dict[str, object] = {"cross_validation_folds": ladder.folds, "seed": split.seed}
        config_record: dict[str, object] = {"ladder": ladder.chosen, "seed": split.seed}
        assert ladder.oof is not None and ladder.fold_of is not None
        rows, folds = np.arange(len(relpaths)), ladder.fold_of
        predicted = decide(ladder.oof, ladder.threshold, ladder.top1_fallback)
    else:
        train_idx, val_idx, hold_idx = split.indices(relpaths)
        if config.caption_words:
            vocabulary = build_vocabulary(c for c in (data.captions[i] for i in train_idx) if c)
            data = with_caption_words(data, vocabulary)
        trained = yield from train_head(data, train_idx, val_idx, config, cancel)
        metrics = {"validation": trained.validation}
        if len(hold_idx):
            metrics["holdout"] = _holdout_metrics(trained, data, hold_idx)
        split_record = dict(split.__dict__)
        config_record = dict(config.__dict__)
        rows, folds = hold_idx, np.zeros(len(hold_idx), np.int64)  # the held-out part: scored, never trained on
        predicted = _holdout_decisions(trained, data, hold_idx)
    tensors, members = ensemble_tensors(trained.heads)
    version = _version(tensors)
    info = ClassifierInfo(
        version=version, labels=data.labels, thresholds=[float(t) for t in trained.thresholds],
        global_threshold=trained.global_threshold, threshold_mode=trained.threshold_mode,
        top1_fallback=top1_fallback, image_encoder=image_encoder_name or encoders.image_spec.name, text_encoder=encoders.text_spec.name,
        image_key=encoders.image_spec.key, text_key=encoders.text_spec.key, head=trained.config.as_dict(),
        external_ids=dict(external_ids or {}), metrics=metrics, ensemble=len(trained.heads), vocabulary=vocabulary,
        members=members, name_mentions=mentions,
        no_caption_thresholds=[] if trained.no_caption_thresholds is None else [float(t) for t in trained.no_caption_thresholds],
        training={
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "images": len(relpaths), "train": len(train_idx), "validation": len(val_idx),
            "holdout": len(hold_idx), "split": split_record, "config": config_record,
            "label_counts": {n: int(c) for n, c in zip(data.labels, data.targets.sum(axis=0))},
            "with_caption": int(data.has_caption.sum()), "history": trained.history,
            "photos": sorted({photo_keys[i] for i in train_idx} | {photo_keys[i] for i in val_idx}),
        },
    )
    if generated.any():
        info.generated_captions = generated_trust(info.decision_thresholds(), int(generated.sum()))
    comparison = compare_with_current(now, original, decided, rows, predicted, data.labels, folds, photo_keys, generated)
    info.metrics["comparison"] = comparison.as_dict()
    info.training["label_prior"] = prior_record(data.label_prior, data.labels,
                                                [head.config.as_dict() for head in trained.heads])
    save_classifier(out_dir, info, tensors)
    yield Progress("save", 1, 1, message=f"saved model {version} to {out_dir}")
    return LearnResult(out_dir, info, [], comparison)


def ensemble_tensors(heads: list[object]) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The weights of every member under `m{i}.`, and the per-member head configs and weights
    (`ClassifierInfo.members`) when the members differ, as a blend of rungs does."""
    tensors = {f"m{m}.{k}": v for m, head in enumerate(heads) for k, v in head.state_dict().items()}  # type: ignore[attr-defined]
    if not any(hasattr(h, "ensemble_weight") for h in heads):
        return tensors, []
    return tensors, [{"head": h.config.as_dict(), "weight": float(getattr(h, "ensemble_weight", 1.0))}  # type: ignore[attr-defined]
                     for h in heads]


def with_name_mentions(data: TrainingData) -> TrainingData:
    """The caption side widened by one column per label: 1 where the caption says its name
    (`core.learn.caption_words.name_mentions`), placed right after the sentence embedding."""
    if data.words_dim or data.mention_dim:
        raise ValueError("name mentions go right after the sentence embedding, before any other caption columns")
    mentions = name_mentions(data.captions, data.labels)
    return replace(data, text=np.concatenate([data.text, mentions], axis=1), mention_dim=len(data.labels))


def with_caption_words(data: TrainingData, vocabulary: list[str]) -> TrainingData:
    """The caption side widened by the bag of caption words (zero rows where no caption)."""
    bag = bag_of_words(data.captions, vocabulary)
    return replace(data, text=np.concatenate([data.text, bag], axis=1), words_dim=data.words_dim + len(vocabulary))


def _holdout_metrics(trained: object, data: TrainingData, idx: np.ndarray) -> dict[str, object]:
    """Fused, image-alone and caption-alone scores on the held-out part."""
    heads = trained.heads  # type: ignore[attr-defined]
    thresholds = (trained.thresholds if trained.threshold_mode == "per_label"  # type: ignore[attr-defined]
                  else np.full(len(data.labels), trained.global_threshold, np.float32))  # type: ignore[attr-defined]
    truth = data.targets[idx]
    image, text, flag = data.image[idx], data.text[idx], data.has_caption[idx]
    result: dict[str, object] = {}
    no_caption = trained.no_caption_thresholds  # type: ignore[attr-defined]
    for name, (t, f) in {"fused": (text, flag), "image_only": (np.zeros_like(text), np.zeros_like(flag))}.items():
        probs = predict_heads(heads, image, t, f)
        rows = thresholds_by_row(thresholds, no_caption, f)
        result[name] = evaluate(truth, decide(probs, rows), data.labels).as_dict()
    return result


def _holdout_decisions(trained: object, data: TrainingData, idx: np.ndarray) -> np.ndarray:
    """The split-trained model's decisions on the held-out rows, as the classifier makes them."""
    heads = trained.heads  # type: ignore[attr-defined]
    thresholds = (trained.thresholds if trained.threshold_mode == "per_label"  # type: ignore[attr-defined]
                  else np.full(len(data.labels), trained.global_threshold, np.float32))  # type: ignore[attr-defined]
    rows = thresholds_by_row(thresholds, trained.no_caption_thresholds, data.has_caption[idx])  # type: ignore[attr-defined]
    return decide(predict_heads(heads, data.image[idx], data.text[idx], data.has_caption[idx]), rows)


def _version(tensors: dict[str, object]) -> str:
    digest = hashlib.blake2b(digest_size=4)
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(tensors[key].numpy().tobytes())  # type: ignore[attr-defined]
    return time.strftime("%Y%m%d") + "-" + digest.hexdigest()

