"""A new label's learning curve through the real trainer, with and without its zero-shot prior (issue 36).

`bench_label_guesses` showed what a prior could give with a stand-in model; this one runs the
ladder `tagline train` runs for a label no model knows (`core.learn.ladder.train_small`, as
`core.learn.refine` calls it for a new label), on the photo alone (the labels are read off the
captions, so the captions stay out), with:

- `none`: no prior (the trainer before: below 100 photos the blend of the linear and MLP rungs);
- `prior`: the zero-shot score as an input of the linear rung (`core.learn.label_prior`), its
  shared scale started at `--weight` and worth `--worth` photos, the linear rung alone below 100;
- `prior+blend`: the same, still blended with the MLP (which cannot read the prior).

Photos: comp5329's validation part (photos 0-14999 only; `--part holdout` once, for what validation chose),
embedded here once and kept in /tmp. Each draw halves the part; the person confirms k photos
of one half, picked as the app picks them (`guesses`: best guesses until five photos showing
the label are confirmed, then at random) or at `random`; the other half scores the label by
average precision.

    python -m bench.bench_label_prior [--draws 3] [--sizes 5,10,25,50,100,200] [--variants none,prior]
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from bench.bench_label_guesses import LABELS, MIN_POSITIVES, picks
from bench.common import COMP, default_encoders
from core.learn import ladder
from core.learn.label_prior import PRIOR_WEIGHT, PRIOR_WORTH, LabelPrior
from core.learn.training import TrainingData, predict_heads
from core.progress import run_to_end
from core.tagging.label_guesses import build_label_prior
from core.tagging.learning import SplitRule
from core.tagging.word_search import average_precision


def part_photos(part: str = "validation") -> tuple[np.ndarray, list[str]]:
    """Lite0 features and captions of a part (validation: below photo 15000), embedded once.
    `holdout` is read once, for the configuration chosen on validation, never to choose."""
    cache = Path(f"/tmp/tagline-comp5329-{part}-lite0.npz")
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        return z["image"], [str(c) for c in z["captions"]]
    with open(COMP / "train.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if SplitRule().part(r["ImageID"]) == part
                and (part != "validation" or int(Path(r["ImageID"]).stem) < 15000)]
    encoder = default_encoders().image
    features = []
    for start in range(0, len(rows), 32):
        batch = [encoder.preprocess(Image.open(COMP / "images" / r["ImageID"]).convert("RGB")) for r in rows[start:start + 32]]
        features.append(encoder.encode(encoder.stack(batch)).copy())
    image = np.concatenate(features).astype(np.float32)
    captions = [r["Caption"] for r in rows]
    np.savez(cache, image=image, captions=np.array(captions, dtype=object))
    return image, captions


def fit_and_score(features: np.ndarray, truth: np.ndarray, chosen: np.ndarray, test: np.ndarray,
                  prior: LabelPrior | None, linear_only: bool) -> tuple[float, float, float]:
    """Average precision of the label on the test photos, and the F1 and share of photos of its
    decisions at the threshold the trainer chose (what the grid would show)."""
    y = truth[chosen]
    data = TrainingData(image=features[chosen], text=np.zeros((len(chosen), 384), np.float32),
                        has_caption=np.zeros(len(chosen), np.float32), targets=y[:, None], labels=["new"],
                        label_prior=prior)
    ladder.PRIOR_LINEAR_ONLY = linear_only
    trained, report = run_to_end(ladder.train_small(data))
    scores = predict_heads(trained.heads, features[test], np.zeros((len(test), 384), np.float32),
                           np.zeros(len(test), np.float32))[:, 0]
    decided = scores >= report.threshold
    f1 = 2 * float((decided & truth[test]).sum()) / max(int(decided.sum() + truth[test].sum()), 1)
    return average_precision(scores + 1e-9 * np.arange(len(test)), truth[test]), f1, float(decided.mean())


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--part", default="validation", choices=["validation", "holdout"])
    parser.add_argument("--sizes", default="5,10,25,50,100,200")
    parser.add_argument("--variants", default="none,prior,prior+blend")
    parser.add_argument("--strategies", default="guesses,random")
    parser.add_argument("--weight", type=float, default=PRIOR_WEIGHT)
    parser.add_argument("--worth", default=str(PRIOR_WORTH), help="comma-separated: each is a variant of `prior`")
    parser.add_argument("--strengths", default=",".join(f"{v:g}" for v in ladder.PRIOR_STRENGTHS),
                        help="the strong linear rungs with a prior ('' for none)")
    parser.add_argument("--standardise", default="project", choices=["project", "trained"],
                        help="the prior's statistics: over the part's photos (as the app: the project's) or the k trained on")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ladder.PRIOR_STRENGTHS = tuple(float(v) for v in args.strengths.split(",") if v)
    sizes = [int(s) for s in args.sizes.split(",")]
    features, captions = part_photos(args.part)
    encoders = default_encoders()
    started = time.perf_counter()
    results: dict[str, dict[str, dict[int, list[float]]]] = {}
    zero_shot: dict[str, float] = {}
    decisions: dict[str, dict[str, dict[int, list[tuple[float, float]]]]] = {}
    for name, pattern in LABELS.items():
        truth = np.array([bool(re.search(pattern, c.lower())) for c in captions])
        if truth.sum() < MIN_POSITIVES:
            continue
        built = build_label_prior([name], encoders.text, image_key=None)
        assert built is not None, "no alignment"
        if args.standardise == "project":
            built = built.with_statistics(features)
        guess = built.scores(features)[:, 0]
        zero_shot[name] = average_precision(guess, truth)
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            shuffled = rng.permutation(len(truth))
            pool, test = np.sort(shuffled[: len(truth) // 2]), np.sort(shuffled[len(truth) // 2:])
            for strategy in args.strategies.split(","):
                for k in sizes:
                    chosen = picks(strategy, k, pool, guess, truth, np.random.default_rng(100 + draw))
                    for variant in args.variants.split(","):
                        worths = [float(w) for w in args.worth.split(",")] if variant != "none" else [0.0]
                        for worth in worths:
                            prior = None if variant == "none" else replace(built, weight=args.weight, worth=worth)
                            key = f"{strategy} / {variant}" + (f" worth {worth:g}" if len(worths) > 1 else "")
                            ap, f1, share = fit_and_score(features, truth, chosen, test, prior, variant == "prior")
                            results.setdefault(key, {}).setdefault(name, {}).setdefault(k, []).append(ap)
                            decisions.setdefault(key, {}).setdefault(name, {}).setdefault(k, []).append((f1, share))
        print(f"{name}: prevalence {truth.mean():.3f}, zero-shot AP {zero_shot[name]:.3f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\nmean average precision over {len(zero_shot)} labels x {args.draws} draws, {args.part} "
          f"({len(captions)} photos; zero-shot alone {np.mean(list(zero_shot.values())):.3f}; "
          f"weight {args.weight:g}; strong rungs {args.strengths}; standardised over the {args.standardise} photos; "
          f"{time.perf_counter() - started:.0f} s)")
    print("k:" + " " * 30 + " ".join(f"{k:>6}" for k in sizes))
    for key, per_label in results.items():
        means = [float(np.mean([np.mean(by_k[k]) for by_k in per_label.values()])) for k in sizes]
        print(f"{key:<32}" + " ".join(f"{m:6.3f}" for m in means))
    print("\nthe decisions at the trainer's threshold: F1 / share of the test photos decided to show the label")
    for key, label_decisions in decisions.items():
        cells = [np.mean([np.mean(by_k[k], axis=0) for by_k in label_decisions.values()], axis=0) for k in sizes]
        print(f"{key:<32}" + " ".join(f"{f1:.3f}/{share:.3f}" for f1, share in cells))


if __name__ == "__main__":
    main()
