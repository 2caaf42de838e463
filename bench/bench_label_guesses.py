"""A new label's learning curve with and without its first guesses from its name (issue 36).

Labels that are not the shipped 18, read off comp5329's captions (scene words and COCO objects
the 18 leave out); photos of the default model's validation part (photos 0-14999 only: the
held-out part is never read). Each draw splits the part in two: the person confirms k photos of
one half, the other half scores the label (average precision; the photo alone, no caption, since
the captions are the truth). How the k photos are chosen:

- `random`: what the app did before: a label no model knows gets no suggestion;
- `guesses`: `core.tagging.label_guesses.first_round_picks`: best guesses from the label's
  prompts (`label_prompts`: its name in five phrasings) until `FIRST_ROUNDS_POSITIVES` photos
  showing it are confirmed, then at random.

What scores the label after k confirmations:

- `model`: a logistic regression on the k photos' standardised Lite0 features (scikit-learn,
  C=1, balanced classes: the ladder's linear rung in spirit), chance when they hold one class;
- `model+prior`: that model's standardised score plus the standardised zero-shot score, equal
  weights, nothing tuned: what a trainer prior could give (not built into `tagline train`).

    python -m bench.bench_label_guesses [--draws 5] [--sizes 0,5,10,25,50,100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import time

import numpy as np

from bench.bench_refine_curve import part_rows
from bench.common import default_encoders, load_comp_embeddings
from core.models.alignment import load_alignment
from core.tagging.label_guesses import FIRST_ROUNDS_POSITIVES, first_round_picks, label_prompts
from core.tagging.word_search import average_precision

LABELS = {  # name: what a caption says when the photo shows it
    "snow": r"\b(snow\w*|ski|skis|skier\w*|skiing|snowboard\w*)\b",
    "water": r"\b(water|ocean|sea|lake|river|beach|waves?|surf\w*)\b",
    "food": r"\b(food|pizza\w*|sandwich\w*|cake\w*|donuts?|doughnuts?|meal|vegetables?|fruits?|broccoli|bananas?)\b",
    "street": r"\b(streets?|road|intersection|sidewalk|city)\b",
    "kitchen": r"\b(kitchen)\b",
    "giraffe": r"\b(giraffes?)\b",
    "elephant": r"\b(elephants?)\b",
    "kite": r"\b(kites?)\b",
    "umbrella": r"\b(umbrellas?)\b",
    "clock": r"\b(clocks?)\b",
    "tennis": r"\b(tennis)\b",
    "skateboard": r"\b(skateboard\w*)\b",
    "frisbee": r"\b(frisbees?)\b",
    "pizza": r"\b(pizzas?)\b",
    "sheep": r"\b(sheep)\b",
}
MIN_POSITIVES = 20  # fewer photos showing a label in the part: a half could hold none, its score is noise


def standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def picks(strategy: str, k: int, pool: np.ndarray, guess: np.ndarray, truth: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Rows of the pool a simulated person confirms (truth read as they confirm)."""
    order = rng.permutation(pool)
    if strategy == "random" or k == 0:
        return order[:k]
    chosen: list[int] = []
    confirmed: dict[int, dict[str, bool]] = {}
    while len(chosen) < k:
        first = first_round_picks({"new": (pool, guess[pool])}, confirmed, 1)
        row = first[0][0] if first else next(int(r) for r in order if int(r) not in confirmed)
        confirmed[row] = {"new": bool(truth[row])}
        chosen.append(row)
    return np.array(chosen, np.int64)


def scores_after(chosen: np.ndarray, test: np.ndarray, features: np.ndarray, truth: np.ndarray,
                 guess: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    prior = standardise(guess[test])
    y = truth[chosen]
    if len(chosen) and 0 < y.sum() < len(y):
        mean, std = features[chosen].mean(0), features[chosen].std(0) + 1e-6
        fit = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500).fit((features[chosen] - mean) / std, y)
        model = standardise(fit.decision_function((features[test] - mean) / std))
    else:
        model = np.zeros(len(test))  # one class confirmed: no model yet, every photo alike
    return {"model": average_precision(model + 1e-9 * np.arange(len(test)), truth[test]),
            "model+prior": average_precision(model + prior, truth[test])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--sizes", default="0,5,10,25,50,100")
    parser.add_argument("--json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    data, part = load_comp_embeddings()
    rows = part_rows(part, "validation")
    features = data.image[rows]
    captions = [(data.captions[r] or "").lower() for r in rows]
    alignment, encoders = load_alignment(), default_encoders()
    photos = alignment.project_images(features)
    results: dict[str, dict[str, dict[int, list[float]]]] = {}
    positives_found: dict[str, dict[int, list[int]]] = {"random": {}, "guesses": {}}
    zero_shot: dict[str, float] = {}
    started = time.perf_counter()
    for name, pattern in LABELS.items():
        truth = np.array([bool(re.search(pattern, c)) for c in captions])
        if truth.sum() < MIN_POSITIVES:
            print(f"{name}: {truth.sum()} photos show it, fewer than {MIN_POSITIVES}: left out", flush=True)
            continue
        query = alignment.project_texts(np.asarray(encoders.text.encode(label_prompts(name)), np.float32)).mean(0)
        guess = photos @ query
        zero_shot[name] = round(average_precision(guess, truth), 4)
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            shuffled = rng.permutation(len(rows))
            pool, test = np.sort(shuffled[: len(rows) // 2]), np.sort(shuffled[len(rows) // 2:])
            for strategy in ("random", "guesses"):
                for k in sizes:
                    chosen = picks(strategy, k, pool, guess, truth, np.random.default_rng(100 + draw))
                    positives_found[strategy].setdefault(k, []).append(int(truth[chosen].sum()))
                    for scorer, ap in scores_after(chosen, test, features, truth, guess).items():
                        results.setdefault(f"{strategy} / {scorer}", {}).setdefault(name, {}).setdefault(k, []).append(ap)
        print(f"{name}: prevalence {truth.mean():.3f}, zero-shot AP {zero_shot[name]:.3f}", flush=True)
    table = {combo: {k: round(float(np.mean([np.mean(by_k[k]) for by_k in per_label.values()])), 4) for k in sizes}
             for combo, per_label in results.items()}
    print(f"\nmean average precision over {len(zero_shot)} labels x {args.draws} draws "
          f"(zero-shot alone: {np.mean(list(zero_shot.values())):.3f}), "
          f"validation ({len(rows)} photos; {time.perf_counter() - started:.0f} s)")
    print("k: " + " ".join(f"{k:>7}" for k in sizes))
    for combo, by_k in table.items():
        print(f"{combo:<24}" + " ".join(f"{by_k[k]:7.3f}" for k in sizes))
    for strategy, by_k in positives_found.items():
        print(f"photos showing the label among the k confirmed ({strategy}): "
              + ", ".join(f"k={k}: {np.mean(v):.1f}" for k, v in by_k.items()))
    print(f"(first rounds: best guesses until {FIRST_ROUNDS_POSITIVES} photos showing the label are confirmed)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"table": table, "zero_shot": zero_shot, "positives_found": {
                s: {k: float(np.mean(v)) for k, v in by_k.items()} for s, by_k in positives_found.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
