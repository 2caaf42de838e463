"""Retraining the default head on the 18,000 cached comp5329 embeddings (the after-corrections path).

Measures loading the cache from the store and training the shipped recipe (`TrainConfig()`,
five heads, as `tagline train --ensemble 5` does), and, side by side in the same run, the
recipe shipped before 2026-12-01 (caption words, weighted BCE, three heads).
Usage: python -m bench.bench_retrain
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.common import COMP
from core.learn.caption_words import build_vocabulary
from core.learn.training import TrainConfig, train_head
from core.models.embedding import Encoders
from core.models.registry import image_spec, text_spec
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.learning import SplitRule, collect_training_data, with_caption_words

BEFORE = TrainConfig(ensemble=3, loss="weighted_bce", caption_words=True, dropout=0.5, second_dropout=None,
                     text_dropout=0.1, standardise_text=False)


def main() -> None:
    store = ProjectStore(COMP / "images")
    start = time.perf_counter()
    data, relpaths = run_to_end(collect_training_data(store, Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"))))
    loaded = time.perf_counter() - start
    part = np.array([SplitRule().part(p) for p in relpaths])
    train, val = np.flatnonzero(part == "train"), np.flatnonzero(part == "validation")
    print(f"{len(relpaths)} cached embeddings loaded in {loaded:.1f} s; {torch.get_num_threads()} threads")
    vocabulary = build_vocabulary(c for c, p in zip(data.captions, part) if c and p == "train")
    for name, config, variant in (("shipped recipe, 5 heads (tagline train --ensemble 5)", TrainConfig(ensemble=5), data),
                                  ("recipe before 2026-12-01, 3 heads", BEFORE, with_caption_words(data, vocabulary))):
        start = time.perf_counter()
        trained = run_to_end(train_head(variant, train, val, config))
        fitted = time.perf_counter() - start
        print(f"{name}: {len(trained.history)} epochs on {len(train)} photos in {fitted:.1f} s "
              f"(with loading {loaded + fitted:.1f} s); validation samples F1 {trained.validation['samples_f1_global']:.4f} "
              f"global, {trained.validation['samples_f1_per_label']:.4f} per label", flush=True)


if __name__ == "__main__":
    main()
