"""Head recipes for the default model compared on the validation split only (the held-out part
is never read here). Each variant trains on the cached comp5329 embeddings with `train_head`.

Usage: python -m bench.bench_head_variants [NAME ...]   (no name: every variant)
       python -m bench.bench_head_variants --late-fusion  (the fused ensemble averaged with a
       caption-alone head with caption words and a photo-alone head, weights chosen on validation)
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np

from bench.common import load_comp_embeddings
from core.learn.caption_words import build_vocabulary
from core.learn.training import TrainConfig, train_head
from core.progress import run_to_end
from core.tagging.learning import with_caption_words

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


def late_fusion() -> None:
    """Rung: late fusion of differently built heads, weights on a grid, all on validation."""
    import itertools

    from core.learn.metrics import best_global_threshold
    from core.learn.training import predict_heads

    data, part = load_comp_embeddings()
    train, val = np.flatnonzero(part == "train"), np.flatnonzero(part == "validation")
    vocabulary = build_vocabulary(c for c, p in zip(data.captions, part) if c and p == "train")
    words = with_caption_words(data, vocabulary)
    truth = data.targets[val].astype(bool)
    fused = run_to_end(train_head(data, train, val, TrainConfig(ensemble=5)))
    p_fused = predict_heads(fused.heads, data.image[val], data.text[val], data.has_caption[val])
    caption_only = replace(words, image=np.zeros((len(data.targets), 1), np.float32))
    caption = run_to_end(train_head(caption_only, train, val, TrainConfig(ensemble=3, caption_words=True, text_dropout=0.3)))
    p_caption = predict_heads(caption.heads, caption_only.image[val], caption_only.text[val], caption_only.has_caption[val])
    photo_only = replace(data, text=np.zeros_like(data.text), has_caption=np.zeros_like(data.has_caption))
    photo = run_to_end(train_head(photo_only, train, val, TrainConfig(ensemble=3, caption_dropout=0.0)))
    p_photo = predict_heads(photo.heads, photo_only.image[val], photo_only.text[val], photo_only.has_caption[val])
    for name, probs in (("fused", p_fused), ("caption alone", p_caption), ("photo alone", p_photo)):
        print(f"{name}: validation samples F1 {best_global_threshold(truth, probs)[1]:.4f}")
    grid = np.round(np.arange(0, 1.01, 0.1), 2)
    best = max(((best_global_threshold(truth, (1 - a - b) * p_fused + a * p_caption + b * p_photo)[1], a, b)
                for a, b in itertools.product(grid, grid) if a + b <= 1), key=lambda t: t[0])
    print(f"late fusion: validation samples F1 {best[0]:.4f} at caption weight {best[1]}, photo weight {best[2]} "
          f"(the threshold and both weights chosen on validation itself: optimistic)")


def main(names: list[str]) -> None:
    if names == ["--late-fusion"]:
        late_fusion()
        return
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
