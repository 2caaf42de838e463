"""Retraining the head on the 18,000 cached comp5329 embeddings (the after-corrections path).

Measures loading the cache from the store and training with the default TrainConfig, the
same work `tagline train` does once embeddings exist. Usage: python -m bench.bench_retrain
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from bench.common import COMP
from core.caption_words import build_vocabulary
from core.embedding import Encoders
from core.learn import SplitRule, collect_training_data, with_caption_words
from core.progress import run_to_end
from core.registry import image_spec, text_spec
from core.store import ProjectStore
from core.training import TrainConfig, train_head


def main() -> None:
    store = ProjectStore(COMP / "images")
    start = time.perf_counter()
    data, relpaths = run_to_end(collect_training_data(store, Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"))))
    loaded = time.perf_counter() - start
    part = np.array([SplitRule().part(p) for p in relpaths])
    train, val = np.flatnonzero(part != "validation"), np.flatnonzero(part == "validation")
    vocabulary = build_vocabulary(c for c, p in zip(data.captions, part) if c and p != "validation")
    print(f"{len(relpaths)} cached embeddings loaded in {loaded:.1f} s")
    words = with_caption_words(data, vocabulary)
    for name, variant in (("with caption words (default: words as indices)", words),
                          ("with caption words as a dense bag (before)", replace(words, words_dim=0)),
                          ("--no-caption-words", data)):
        start = time.perf_counter()
        trained = run_to_end(train_head(variant, train, val, TrainConfig()))
        fitted = time.perf_counter() - start
        print(f"{name}: head trained on {len(train)} ({len(trained.history)} epochs, "
              f"{torch.get_num_threads()} threads) in {fitted:.1f} s; total with loading {loaded + fitted:.1f} s; "
              f"validation samples F1 {trained.validation['samples_f1_global']:.4f}; per epoch at 0.5: "
              f"{' '.join(format(h['val_samples_f1'], '.4f') for h in trained.history)}", flush=True)


if __name__ == "__main__":
    main()
