"""Head recipes for the default model compared on the validation split only (the held-out part
is never read here). Each variant trains on the cached comp5329 embeddings with `train_head`.

Usage: python -m bench.bench_head_variants [NAME ...]   (no name: every variant)
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np

from bench.common import load_comp_embeddings
from core.caption_words import build_vocabulary
from core.learn import with_caption_words
from core.progress import run_to_end
from core.training import TrainConfig, train_head

OLD = TrainConfig(ensemble=1, loss="weighted_bce", caption_words=True, dropout=0.5, second_dropout=None, text_dropout=0.1,
                  standardise_text=False)  # the recipe of the model shipped on 2026-11-24
STRONG = TrainConfig(ensemble=1, loss="weighted_bce", caption_words=False, standardise_text=True, image_dropout=0.2,
                     text_dropout=0.2, dropout=0.4, second_dropout=0.4, weight_decay=0.05)
VARIANTS: dict[str, TrainConfig] = {
    "shipped-1": OLD,
    "strong-1": STRONG,
    "strong-second0.2": replace(STRONG, second_dropout=0.2),
    "strong-hidden768": replace(STRONG, hidden=768),
    "strong-wd0.2": replace(STRONG, weight_decay=0.2),
    "strong-words": replace(STRONG, caption_words=True, text_dropout=0.3),
    "strong-5": replace(STRONG, ensemble=5),
    "strong-words-5": replace(STRONG, caption_words=True, text_dropout=0.3, ensemble=5),
    "strong-lr1e-3": replace(STRONG, learning_rate=1e-3),
    "strong-asl": replace(STRONG, loss="asymmetric"),
    "strong-capdrop0.25": replace(STRONG, caption_dropout=0.25),
    "words-asl": replace(STRONG, caption_words=True, text_dropout=0.3, loss="asymmetric"),
    "words-asl-25ep": replace(STRONG, caption_words=True, text_dropout=0.3, loss="asymmetric", max_epochs=25),
    "words-asl-5": replace(STRONG, caption_words=True, text_dropout=0.3, loss="asymmetric", ensemble=5),
    "asl-5": replace(STRONG, loss="asymmetric", ensemble=5),
    "bce-5": replace(STRONG, ensemble=5),
    "words-5": replace(STRONG, caption_words=True, text_dropout=0.3, ensemble=5),
}


def main(names: list[str]) -> None:
    data, part = load_comp_embeddings()
    train, val = np.flatnonzero(part == "train"), np.flatnonzero(part == "validation")
    vocabulary = build_vocabulary(c for c, p in zip(data.captions, part) if c and p == "train")
    for name in names or list(VARIANTS):
        config = VARIANTS[name]
        variant = with_caption_words(data, vocabulary) if config.caption_words else data
        start = time.perf_counter()
        trained = run_to_end(train_head(variant, train, val, config))
        seconds = time.perf_counter() - start
        v = trained.validation
        print(f"{name}: validation samples F1 global {v['samples_f1_global']:.4f} per-label {v['samples_f1_per_label']:.4f} "
              f"photo alone {v['photo_alone_samples_f1']:.4f}; {len(trained.history)} epochs in {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
