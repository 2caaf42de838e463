"""Held-out quality of the default model, end to end through `tagline classify`.

Photos: the comp5329 held-out part (SplitRule, 15 %), never used for training, early
stopping or thresholds. Reports fused (photo + human caption), photo alone (same model, no
caption) and caption alone (a caption-only head trained on the same train split here).
Usage: python -m bench.bench_quality [LIMIT]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import holdout_folder
from core.cli import main as tagline
from core.tagging.evaluation import evaluate_csvs

LABEL_MAP = Path(__file__).resolve().parents[1] / "resources" / "label_maps" / "comp5329.json"


def main(limit: int | None = None) -> None:
    work = Path(tempfile.mkdtemp(prefix="tagline-quality-"))
    folder, truth = holdout_folder(work / "holdout", limit)
    store = str(work / "project.db")
    fused, alone = work / "fused.csv", work / "image.csv"
    tagline(["-q", "classify", str(folder), "--store", store, "--captions", str(truth), "--out", str(fused), "--label-ids"])
    from core.store.database import ProjectStore

    with ProjectStore(folder, Path(store)) as project:
        with project.transaction() as cur:
            cur.execute("DELETE FROM captions")
    tagline(["-q", "classify", str(folder), "--store", store, "--out", str(alone), "--label-ids"])
    for name, path in (("photo + caption", fused), ("photo alone", alone)):
        report, _ = evaluate_csvs(path, truth, LABEL_MAP)
        print(f"{name:<16} samples F1 {report.samples_f1:.4f}  micro F1 {report.micro_f1:.4f}  "
              f"macro F1 {report.macro_f1:.4f}  ({len(list(folder.iterdir()))} photos)")
    report, _ = evaluate_csvs(fused, truth, LABEL_MAP)
    ranked = sorted(report.per_label.items(), key=lambda kv: kv[1]["f1"])
    print("per-label F1 (fused), weakest first:", ", ".join(f"{n} {s['f1']:.3f}" for n, s in ranked))
    caption_only()


def caption_only() -> None:
    """Caption-alone baseline: same head family, caption embeddings only, same split."""
    from bench.common import COMP
    from core.learn.metrics import decide, evaluate
    from core.learn.training import TrainConfig, TrainingData, predict_heads, train_head
    from core.models.embedding import Encoders
    from core.models.registry import image_spec, text_spec
    from core.progress import run_to_end
    from core.store.database import ProjectStore
    from core.tagging.learning import SplitRule, collect_training_data

    store = ProjectStore(COMP / "images")
    if not store.confirmations():
        print("caption alone: skipped (import comp5329 labels into its project first; see docs/benchmarks.md)")
        return
    data, relpaths = run_to_end(collect_training_data(store, Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"))))
    train, validation, hold = SplitRule().indices(relpaths)
    from core.learn.caption_words import build_vocabulary
    from core.tagging.learning import with_caption_words

    vocabulary = build_vocabulary(c for c in (data.captions[i] for i in train) if c)
    data = with_caption_words(data, vocabulary)
    text_only = TrainingData(np.zeros((len(relpaths), 1), np.float32), data.text, data.has_caption, data.targets, data.labels)
    trained = run_to_end(train_head(text_only, train, validation, TrainConfig()))
    probs = predict_heads(trained.heads, text_only.image[hold], text_only.text[hold], text_only.has_caption[hold])
    thresholds = trained.thresholds if trained.threshold_mode == "per_label" else trained.global_threshold
    report = evaluate(data.targets[hold], decide(probs, thresholds), data.labels)
    print(f"{'caption alone':<16} samples F1 {report.samples_f1:.4f}  micro F1 {report.micro_f1:.4f}  "
          f"macro F1 {report.macro_f1:.4f}  ({len(hold)} photos, cached embeddings)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
