"""How far the classifier should trust captions a captioner wrote, measured on validation.

A generated caption restates what the captioner saw in the photo; read as if a person had
typed it, its mistakes mislead the caption side of the classifier. So for photos whose
caption is generated, the classifier blends its fused prediction with the photo alone:

    p = weight * p(photo + generated caption) + (1 - weight) * p(photo alone)

The weight (0, 0.25, ..., 1) and the thresholds are chosen on the validation photos of the
classifier's own split, with captions the captioner writes for them (never the human ones);
the held-out photos are scored once, for the record. Both go into the classifier's
`model.json` (`generated_captions`); the weights file is untouched.

    python -m core.captions.caption_trust --model models/default --folder ../shared/data/comp5329/images
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.captions.caption_job import iter_feature_batches
from core.captions.captioning import Captioner, FrozenImageFeatures, load_captioner
from core.captions.region_cache import FeatureRows, region_rows
from core.errors import TaglineError
from core.learn.metrics import decide, samples_f1
from core.learn.training import choose_thresholds
from core.models.model_files import load_head_weights, save_classifier
from core.progress import run_to_end
from core.store.database import ImageRecord, ProjectStore
from core.tagging.classifier import Classifier
from core.tagging.learning import SplitRule, collect_training_data

log = logging.getLogger(__name__)
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class TrustChoice:
    weight: float
    thresholds: np.ndarray
    validation_f1: float
    table: list[dict[str, float]]  # validation samples F1 of every weight tried


def choose_weight(truth: np.ndarray, with_caption: np.ndarray, alone: np.ndarray,
                  weights: Sequence[float] = WEIGHTS) -> TrustChoice:
    """The blend weight and thresholds (global or per label, whichever wins) with the best
    validation samples F1."""
    best: TrustChoice | None = None
    table = []
    for weight in weights:
        probs = weight * with_caption + (1 - weight) * alone
        global_t, global_f1, per_label, per_label_f1 = choose_thresholds(truth, probs)
        f1 = max(global_f1, per_label_f1)
        thresholds = per_label if per_label_f1 > global_f1 else np.full(truth.shape[1], global_t, np.float32)
        table.append({"weight": weight, "validation_f1": round(f1, 4)})
        if best is None or f1 > best.validation_f1:
            best = TrustChoice(weight, np.asarray(thresholds, np.float32), f1, table)
    assert best is not None
    return best


def captioner_features(store: ProjectStore, captioner: FrozenImageFeatures,
                       records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], FeatureRows]:
    """The captioner's input for these photos (region maps read from their disk cache)."""
    if captioner.regions:
        return region_rows(store, captioner, records)
    kept: list[ImageRecord] = []
    rows: list[np.ndarray] = []
    for batch in iter_feature_batches(store, captioner, records):
        kept += batch.records
        rows.append(batch.features)
    return kept, FeatureRows.of(np.concatenate(rows) if rows else np.zeros((0, 0), np.float32))


def calibrate(model_dir: Path, store: ProjectStore, captioner: Captioner, split: SplitRule = SplitRule(),
              batch_size: int = 64) -> dict[str, Any]:
    """Choose the weight on validation, score it on the held-out part, write it into model.json."""
    classifier = Classifier(model_dir)
    encoders = classifier.encoders(prefer_gpu=True)
    data, relpaths = run_to_end(collect_training_data(store, encoders, labels=classifier.labels))
    _, validation, holdout = split.indices(relpaths)
    by_path = {r.relpath: r for r in store.images()}
    parts = {"validation": validation, "holdout": holdout}
    scores: dict[str, dict[str, float]] = {}
    choice: TrustChoice | None = None
    for part, idx in parts.items():
        if not len(idx):
            continue
        kept, features = captioner_features(store, captioner, [by_path[relpaths[i]] for i in idx])
        row_of = {r.relpath: n for n, r in enumerate(kept)}
        idx = np.array([i for i in idx if relpaths[i] in row_of])
        positions = np.array([row_of[relpaths[i]] for i in idx], np.int64)
        texts = [t for start in range(0, len(positions), batch_size)
                 for t in captioner.generate(features.take(positions[start : start + batch_size]).astype(np.float32))]
        text = encoders.text.encode(texts)
        image, truth, ones = data.image[idx], data.targets[idx], np.ones(len(idx), np.float32)
        with_caption = classifier.predict(image, text, ones, texts)
        alone = classifier.predict(image, np.zeros_like(text), np.zeros(len(idx), np.float32), None)
        if part == "validation":
            choice = choose_weight(truth, with_caption, alone)
            log.info("validation: %s -> weight %.2f", choice.table, choice.weight)
        if choice is None:
            raise TaglineError("no validation photos with confirmed labels to choose the weight on")
        photo_only = classifier.decide(alone, np.zeros(len(idx), np.float32))
        as_typed = classifier.decide(with_caption, ones)
        blended = decide(choice.weight * with_caption + (1 - choice.weight) * alone, choice.thresholds,
                         classifier.info.top1_fallback)
        scores[part] = {"photos": len(idx), "photo_alone": round(samples_f1(truth, photo_only), 4),
                        "generated_as_typed": round(samples_f1(truth, as_typed), 4),
                        "generated_blended": round(samples_f1(truth, blended), 4)}
        log.info("%s samples F1: %s", part, scores[part])
    assert choice is not None
    setting = {"weight": choice.weight, "thresholds": [round(float(t), 4) for t in choice.thresholds],
               "captioner": captioner.info.version, "validation_table": choice.table, "samples_f1": scores}
    info = classifier.info
    info.generated_captions = setting
    # the same version, so the same weights under the same name: only model.json changes
    save_classifier(Path(model_dir), info, load_head_weights(Path(model_dir), info))
    return setting


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.captions.caption_trust", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="classifier folder (model.json is updated)")
    parser.add_argument("--folder", type=Path, required=True, help="the labelled project folder it was trained on")
    parser.add_argument("--captioner", help="captioner folder (default: the bundled one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    captioner = load_captioner(args.captioner)
    if not isinstance(captioner, Captioner):
        parser.error("calibrate with a Tagline captioner folder")
    setting = calibrate(args.model, ProjectStore(args.folder), captioner)
    log.info("chose weight %s: %s", setting["weight"], setting["samples_f1"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
