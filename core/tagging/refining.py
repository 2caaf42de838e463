"""Which model a retrain refines, the refined model's metadata, and how it compares with the
model in use (core.learn.refine does the learning, core.learn.gate the deciding)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.errors import TaglineError
from core.learn.gate import MIN_PHOTOS, Comparison, masked_scores
from core.learn.metrics import decide, evaluate
from core.learn.refine import BaseModel, Refined, refinable, refined_parts
from core.learn.training import TrainingData
from core.models.embedding import Encoders
from core.models.model_files import ClassifierInfo, default_model_dir
from core.tagging.classifier import OWN_GENERATED_WEIGHT, Classifier, generated_trust, reads_generated


def short_digest(key: str) -> str:
    """A photo's name in a model's record of what trained it (8 hex digits of its content digest)."""
    return hashlib.blake2b(key.encode(), digest_size=4).hexdigest()


def current_model(folder: Path | None) -> Classifier | None:
    """The model in use (None: the bundled one); None when it cannot be read."""
    try:
        return Classifier(folder)
    except TaglineError:
        return None


def is_bundled(classifier: Classifier) -> bool:
    return classifier.folder.resolve() == default_model_dir().resolve()


def base_of(classifier: Classifier) -> BaseModel | None:
    """The model inside `classifier` that a retrain refines: a refined model's own base (so every
    retrain refines it again with all the confirmations), else the model itself when its members
    can be carried inside another (`core.learn.refine.refinable`)."""
    info = classifier.info
    record = info.metrics.get("refined") if isinstance(info.metrics, dict) else None
    if info.head.get("kind") == "refined":
        if not isinstance(record, dict):
            return None
        parts = refined_parts(classifier.heads[0])
        if parts is None:
            return None
        heads, members = parts
        count = len(record["base_labels"])
        return BaseModel(heads, members, list(record["base_labels"]), np.asarray(info.thresholds[:count], np.float32),
                         np.asarray(record["base_no_caption"], np.float32), bool(record["base_fallback"]),
                         str(record["base_loss"]), str(record["base"]), trust_of(info))
    members = info.members or [{"head": info.head, "weight": 1.0}] * info.ensemble
    if not refinable([m["head"] for m in members]):
        return None
    config = info.training.get("config", {}) if isinstance(info.training, dict) else {}
    no_caption = info.no_caption_thresholds or list(info.decision_thresholds())
    return BaseModel(classifier.heads, [dict(m) for m in members], list(info.labels), info.decision_thresholds(),
                     np.asarray(no_caption, np.float32), info.top1_fallback,
                     str(config.get("loss", "asymmetric")) if isinstance(config, dict) else "asymmetric", info.version,
                     trust_of(info))


def trust_of(info: ClassifierInfo) -> float:
    """The weight a model gives a generated caption against the photo alone (1: read as typed)."""
    return float(info.generated_captions["weight"]) if info.generated_captions else 1.0


def refine_base(current: Classifier | None, encoders: Encoders, labels: list[str]) -> tuple[BaseModel, ClassifierInfo] | None:
    """The model a retrain starts from: the one in use, else the bundled one, when it reads the
    same embeddings and knows some of the project's labels; None: learn from the photos alone."""
    candidates = [c for c in (current, None if current is not None and is_bundled(current) else current_model(None))
                  if c is not None]
    for classifier in candidates:
        info = classifier.info
        if (info.image_key, info.text_key) != (encoders.image_spec.key, encoders.text_spec.key):
            continue
        base = base_of(classifier)
        if base is not None and set(base.labels) & set(labels):
            return base, info
    return None


def refined_info(refined: Refined, base: BaseModel, base_info: ClassifierInfo, data: TrainingData,
                 decided: np.ndarray, encoders: Encoders, image_encoder_name: str | None,
                 external_ids: dict[str, str] | None, photos: list[str], seed: int, version: str,
                 folds: np.ndarray, generated_photos: int = 0) -> ClassifierInfo:
    """model.json of a refined model: the old model's thresholds for its labels, the ladder's for
    the new ones, and the out-of-fold report the person sees."""
    truth, known, rows = aligned_truth(data, decided, refined.labels)
    scored = rows[np.isfinite(refined.oof[rows]).any(axis=1)]  # undecided cells are NaN: masked below
    thresholds = np.tile(refined.thresholds, (len(scored), 1))
    predicted = decide(np.nan_to_num(refined.oof[scored]), thresholds, refined.top1_fallback)
    score, spread = masked_scores(truth[scored], predicted, known[scored], folds[scored])
    report = evaluate(truth[scored] & known[scored], predicted & known[scored], refined.labels).as_dict()
    counts = (truth & known).sum(axis=0)
    new_labels = refined.labels[len(base.labels):]
    ladder = refined.report.get("new_labels", {})
    correction = refined.report["correction"]
    kept = f"model {base.version} {'as it was' if correction == 'keep' else 'corrected: ' + correction}"
    cross = {"chosen": kept + (f", and {ladder.get('chosen')} for {', '.join(new_labels)}" if new_labels else ""),
             "folds": int(len(np.unique(folds[scored]))) if len(scored) else 0, "cv_samples_f1": score,
             "cv_spread": spread, "threshold": float(base_info.global_threshold), "top1_fallback": refined.top1_fallback,
             "scores": refined.report["scores"], "fused": report,
             "rare_labels": [n for n, c in zip(new_labels, counts[len(base.labels):]) if c < 3]}
    generated = dict(base_info.generated_captions)
    if generated:
        # the base's own labels come first in both (a refined model's base: its first labels), then the new ones
        generated["thresholds"] = (list(generated["thresholds"])[:len(base.labels)]
                                   + [float(t) for t in refined.thresholds[len(base.labels):]])
    # it learnt from generated captions: it reads them, weighed as the old model weighs them (one weight a
    # model: the new labels' heads, which learnt from them, get the old model's too)
    if generated_photos:
        weight = trust_of(base_info) if base_info.generated_captions else OWN_GENERATED_WEIGHT
        generated = {**generated_trust(refined.thresholds, generated_photos, weight), **generated,
                     "learnt": True, "photos": generated_photos}
    external = {**base_info.external_ids, **(external_ids or {})}
    return ClassifierInfo(
        version=version, labels=refined.labels, thresholds=[float(t) for t in refined.thresholds],
        global_threshold=float(base_info.global_threshold), threshold_mode="per_label", top1_fallback=refined.top1_fallback,
        image_encoder=image_encoder_name or encoders.image_spec.name, text_encoder=encoders.text_spec.name,
        image_key=encoders.image_spec.key, text_key=encoders.text_spec.key, head=refined.head.config.as_dict(),
        external_ids={k: v for k, v in external.items() if k in refined.labels}, ensemble=1,
        no_caption_thresholds=[float(t) for t in refined.no_caption], generated_captions=generated,
        name_mentions=refined.mentions,
        metrics={"cross_validation": cross,
                 "refined": {**{k: v for k, v in refined.report.items() if k != "new_labels"},
                             "base_labels": list(base.labels), "base_no_caption": [float(t) for t in base.no_caption],
                             "base_fallback": base.top1_fallback, "base_loss": base.loss}},
        training={"created": datetime.now(UTC).isoformat(timespec="seconds"), "images": len(data.targets),
                  "train": len(data.targets), "validation": 0, "holdout": 0,
                  "split": {"cross_validation_folds": cross["folds"], "seed": seed},
                  "config": {"refined": base.version, "correction": refined.report["correction"], "seed": seed},
                  "label_counts": {n: int(c) for n, c in zip(refined.labels, counts)},
                  "with_caption": int(data.has_caption.sum()), "photos": photos},
    )


def aligned_truth(data: TrainingData, decided: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The project's targets and decided cells laid out in `labels` order (a label the project
    lacks: undecided), and the rows with any decided cell."""
    column = {name: j for j, name in enumerate(data.labels)}
    truth = np.zeros((len(data.targets), len(labels)), bool)
    known = np.zeros_like(truth)
    for j, name in enumerate(labels):
        if name in column:
            truth[:, j] = data.targets[:, column[name]]
            known[:, j] = decided[:, column[name]]
    return truth, known, np.flatnonzero(known.any(axis=1))


def compare_with_current(current: Classifier | None, data: TrainingData, decided: np.ndarray, rows: np.ndarray,
                         predicted: np.ndarray, labels: list[str], folds: np.ndarray,
                         photo_keys: list[str], generated: np.ndarray | None = None) -> Comparison:
    """The new model's out-of-fold decisions on `rows` (in `labels`) against the model in use on
    the same photos, those it never trained on; both over the project's decided labels. The model
    in use reads the captions it would read when classifying (`generated`: the rows whose caption a
    captioner wrote, hidden from a model that never learnt from them)."""
    truth, known, _ = aligned_truth(data, decided, data.labels)
    new = np.zeros((len(rows), len(data.labels)), bool)
    where = {name: j for j, name in enumerate(labels)}
    for j, name in enumerate(data.labels):
        if name in where:
            new[:, j] = predicted[:, where[name]]
    if current is None:
        score, spread = masked_scores(truth[rows], new, known[rows], folds)
        return Comparison(score, spread, None, 0.0, len(rows), "could not be read")
    training = current.info.training if isinstance(current.info.training, dict) else {}
    seen = set(training.get("photos", []))
    unseen = np.array([photo_keys[r] not in seen for r in rows], bool)
    if not is_bundled(current) and ("photos" not in training or unseen.sum() < MIN_PHOTOS):
        # it trained on (nearly) every photo it could be scored on, or it predates recording them:
        # its own score, taken as the new one's (out of fold or held out), stands in
        kind, scores = current.info.quality()
        score, spread = masked_scores(truth[rows], new, known[rows], folds)
        why = "it predates recording its photos" if "photos" not in training else (
            f"it trained on all but {int(unseen.sum())} of them" if unseen.any() else "it trained on all of them")
        return Comparison(score, spread, float(scores["samples_f1"]) if kind else None,
                          float(scores.get("samples_f1_spread", 0.0)), len(rows),
                          f"as its own {kind or 'unknown'} score: {why}")
    rows, new, folds = rows[unseen], new[unseen], folds[unseen]
    score, spread = masked_scores(truth[rows], new, known[rows], folds)
    if not len(rows):
        return Comparison(score, spread, None, 0.0, 0)
    # `data.text` is the sentence embedding as collected: the model adds its own caption columns
    text, flag = data.text[rows].copy(), data.has_caption[rows].copy()
    captions: list[str | None] = [data.captions[r] for r in rows]
    machine = np.zeros(len(rows), bool) if generated is None else np.asarray(generated, bool)[rows]
    if not reads_generated(current.info):
        text[machine], flag[machine] = 0.0, 0.0
        captions = [None if m else c for m, c in zip(machine, captions)]
        machine = np.zeros(len(rows), bool)
    probabilities = current.predict(data.image[rows], text, flag, captions, machine)
    chosen = current.decide(probabilities, flag, machine)
    old = np.zeros_like(new)
    where = {name: j for j, name in enumerate(current.labels)}
    for j, name in enumerate(data.labels):
        if name in where:
            old[:, j] = chosen[:, where[name]]
    current_score, current_spread = masked_scores(truth[rows], old, known[rows], folds)
    return Comparison(score, spread, current_score, current_spread, len(rows))
