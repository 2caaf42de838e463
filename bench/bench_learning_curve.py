"""Learning a person's own labels from few confirmed photos: our training against a plain linear
probe, side by side, at n = 25 ... 2,000 confirmed photos, three draws each.

Label sets: (a) four groups of the COCO labels with captions, (b) six scene labels of our own
read off the captions' words, learnt and scored on the photo alone, (c) the 18 labels with
captions. Photos are scored on the default model's held-out part (photos it never saw, so its
probabilities can be used as features without leaking answers); training photos are drawn from
the rest. The probe is scikit-learn's L2 logistic regression on the standardised Lite0 pooled
features with a fixed 0.5 threshold, as the issue measured it.

Usage: python -m bench.bench_learning_curve [--sets a,b,c] [--sizes 25,50,...] [--draws 3]
       [--knowledge] [--plot docs/learning-curve.png] [--json out.json]
       python -m bench.bench_learning_curve --active [--sets ...] [--draws 2]   (what to label next)
"""

from __future__ import annotations

import argparse
import json
import re
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import label_names_embedded, load_comp_embeddings
from core.learn.ladder import train_small
from core.learn.metrics import decide, samples_f1
from core.learn.training import TrainingData, predict_heads
from core.progress import run_to_end
from core.tagging.learning import with_name_mentions
from core.tagging.suggest import STRATEGIES, choose

GROUPS = {
    "animal": ["bird", "cat", "dog", "horse"],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "street furniture": ["traffic light", "fire hydrant", "stop sign", "parking meter", "bench"],
    "people": ["person"],
}
SCENES = {  # our own six (the were snow, water, food, indoor, street, sport)
    "beach": r"\b(beach|sand|sandy|ocean|surf\w*|waves?|shore)\b",
    "grass": r"\b(grass|grassy|field|lawn|pasture)\b",
    "trees": r"\b(trees?|forest|woods)\b",
    "sky": r"\b(sky|kite|flying|air)\b",
    "city": r"\b(city|buildings?|downtown)\b",
    "tracks": r"\b(tracks?|station|platform)\b",
}


def label_set(data: TrainingData, name: str, names: bool = True, mentions: bool = True) -> tuple[TrainingData, np.ndarray]:
    """The label set's data and the rows it uses, with the label-name features `tagline train`
    gives a few photos beside captions (the names embedded, the captions that say them)."""
    subset, rows = _label_set(data, name, names)
    return (with_name_mentions(subset) if mentions and subset.label_text is not None else subset), rows


def _label_set(data: TrainingData, name: str, names: bool = True) -> tuple[TrainingData, np.ndarray]:
    """The label set's data and the rows it uses (set b: photos with a scene label, no captions).
    With `names`, the label names embedded as `tagline train` gives them (beside captions only)."""
    if name == "a":
        columns = [[data.labels.index(label) for label in group] for group in GROUPS.values()]
        targets = np.stack([data.targets[:, c].any(axis=1) for c in columns], axis=1)
        labels = list(GROUPS)
        return replace(data, targets=targets, labels=labels,
                       label_text=label_names_embedded(labels) if names else None), np.arange(len(targets))
    if name == "b":
        captions = [(c or "").lower() for c in data.captions]
        targets = np.array([[bool(re.search(p, c)) for p in SCENES.values()] for c in captions])
        rows = np.flatnonzero(targets.any(axis=1))
        hidden = replace(data, text=np.zeros_like(data.text), has_caption=np.zeros_like(data.has_caption))
        return replace(hidden, targets=targets, labels=list(SCENES)), rows
    return replace(data, label_text=label_names_embedded(data.labels) if names else None), np.arange(len(data.targets))


def default_model_logits(data: TrainingData) -> np.ndarray:
    """What the bundled model already knows: its 18 label logits for each row (photo and
    caption as given; zero text rows are read as photos alone)."""
    from core.tagging.classifier import Classifier

    classifier = Classifier()
    probs = classifier.predict(data.image, data.text, data.has_caption, data.captions)
    return np.log(np.clip(probs, 1e-4, 1 - 1e-4) / np.clip(1 - probs, 1e-4, 1)).astype(np.float32)


def linear_probe(data: TrainingData, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    pooled = data.image
    scaler = StandardScaler().fit(pooled[train])
    x_train, x_test = scaler.transform(pooled[train]), scaler.transform(pooled[test])
    predicted = np.zeros((len(test), data.targets.shape[1]), bool)
    for j in range(data.targets.shape[1]):
        y = data.targets[train, j]
        if y.all() or not y.any():
            predicted[:, j] = bool(y.all())
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LogisticRegression(C=1.0, max_iter=1000).fit(x_train, y)
        predicted[:, j] = model.predict_proba(x_test)[:, 1] >= 0.5
    return predicted


def ours(data: TrainingData, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, float, str]:
    predicted, seconds, chosen, _ = fit_and_predict(data, train, test)
    return predicted, seconds, chosen


def fit_and_predict(data: TrainingData, train: np.ndarray, test: np.ndarray,
                    pool: np.ndarray | None = None) -> tuple[np.ndarray, float, str, tuple[np.ndarray, float] | None]:
    """Our decisions on `test` (and, when `pool` is given, probabilities there with the threshold)."""
    sub = replace(data, image=data.image[train], text=data.text[train], has_caption=data.has_caption[train],
                  targets=data.targets[train], captions=[data.captions[i] for i in train])
    start = time.perf_counter()
    trained, report = run_to_end(train_small(sub))
    seconds = time.perf_counter() - start
    probs = predict_heads(trained.heads, data.image[test], data.text[test], data.has_caption[test])
    on_pool = None
    if pool is not None:
        on_pool = (predict_heads(trained.heads, data.image[pool], data.text[pool], data.has_caption[pool]), report.threshold)
    return decide(probs, report.threshold, report.top1_fallback), seconds, report.chosen, on_pool


def active(data: TrainingData, name: str, pool: np.ndarray, test: np.ndarray, draws: int,
           sizes: tuple[int, ...] = (25, 50, 100, 200)) -> list[dict[str, object]]:
    """A simulated person labelling in rounds: the same 25 random photos first, then each
    strategy picks the next photos from the pool until the next size; F1 at equal n."""
    rows: list[dict[str, object]] = []
    truth = data.targets[test].astype(bool)
    for draw in range(draws):
        start = np.random.default_rng(7000 + draw).choice(len(pool), sizes[0], replace=False)
        for strategy in STRATEGIES:
            labelled = np.zeros(len(pool), bool)
            labelled[start] = True
            for number, n in enumerate(sizes):
                predicted, seconds, _, on_pool = fit_and_predict(data, pool[labelled], test, pool)
                rows.append({"set": name, "strategy": strategy, "draw": draw, "n": int(labelled.sum()),
                             "f1": samples_f1(truth, predicted), "seconds": round(seconds, 2)})
                print(json.dumps(rows[-1]), flush=True)
                if number + 1 == len(sizes):
                    break
                assert on_pool is not None
                picked = choose(strategy, sizes[number + 1] - n, labelled, on_pool[0], on_pool[1], data.image[pool],
                                seed=draw * 100 + number)
                labelled[picked] = True
    return rows


def summarise_active(rows: list[dict[str, object]]) -> str:
    lines = ["| set | n | " + " | ".join(STRATEGIES) + " |", "|---" * (len(STRATEGIES) + 2) + "|"]
    for name, n in sorted({(str(r["set"]), int(r["n"])) for r in rows}):  # type: ignore[call-overload]
        means = [np.mean([float(r["f1"]) for r in rows if r["set"] == name and r["n"] == n and r["strategy"] == s])  # type: ignore[arg-type]
                 for s in STRATEGIES]
        lines.append(f"| {name} | {n} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", default="a,b,c")
    parser.add_argument("--sizes", default="25,50,100,200,500,2000")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--knowledge", action="store_true", help="also: the default model's 18 logits as features")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--active", action="store_true", help="compare ways of choosing what to label next")
    parser.add_argument("--score-on", choices=("holdout", "validation"), default="holdout",
                        help="validation: draw from the training part, score on the validation part (for choosing "
                             "changes without reading the held-out part)")
    parser.add_argument("--no-names", action="store_true", help="train without the label-name prior")
    parser.add_argument("--no-mentions", action="store_true", help="train without the captions that say a label's name")
    args = parser.parse_args()
    data, part = load_comp_embeddings()
    if args.active:
        found: list[dict[str, object]] = []
        for name in args.sets.split(","):
            subset, rows = label_set(data, name, not args.no_names, not args.no_mentions)
            found += active(subset, name, rows[part[rows] != "holdout"], rows[part[rows] == "holdout"], args.draws)
        print(summarise_active(found))
        if args.json:
            args.json.write_text(json.dumps(found, indent=1))
        return
    results: list[dict[str, object]] = []
    for name in args.sets.split(","):
        subset, rows = label_set(data, name, not args.no_names, not args.no_mentions)
        test = rows[part[rows] == args.score_on]
        pool = rows[part[rows] == "train"] if args.score_on == "validation" else rows[part[rows] != "holdout"]
        variants = {"ours": subset}
        if args.knowledge:
            variants["ours+knowledge"] = replace(subset, image=np.concatenate([subset.image, default_model_logits(subset)], 1))
        for n in (int(s) for s in args.sizes.split(",")):
            if n > len(pool):
                continue
            for draw in range(args.draws):
                train = np.random.default_rng(1000 * draw + n).choice(pool, n, replace=False)
                truth = subset.targets[test].astype(bool)
                row: dict[str, object] = {"set": name, "n": n, "draw": draw, "test": len(test),
                                          "probe": samples_f1(truth, linear_probe(subset, train, test))}
                for label, variant in variants.items():
                    predicted, seconds, chosen = ours(variant, train, test)
                    row[label] = samples_f1(truth, predicted)
                    row[f"{label} seconds"] = round(seconds, 2)
                    row[f"{label} rung"] = chosen
                results.append(row)
                print(json.dumps(row), flush=True)
    summary = summarise(results, ["probe", *(["ours", "ours+knowledge"] if args.knowledge else ["ours"])])
    print(summary)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.plot, args.knowledge)


def summarise(results: list[dict[str, object]], columns: list[str]) -> str:
    lines = ["| set | n | test photos | " + " | ".join(columns) + " | ours - probe | ours seconds (max) |",
             "|---" * (len(columns) + 5) + "|"]
    keys = sorted({(str(r["set"]), int(r["n"])) for r in results})  # type: ignore[call-overload]
    for name, n in keys:
        rows = [r for r in results if r["set"] == name and r["n"] == n]
        means = [float(np.mean([float(r[c]) for r in rows])) for c in columns]  # type: ignore[arg-type]
        gain = float(np.mean([float(r["ours"]) - float(r["probe"]) for r in rows]))  # type: ignore[arg-type]
        seconds = max(float(r["ours seconds"]) for r in rows)  # type: ignore[arg-type]
        lines.append(f"| {name} | {n} | {rows[0]['test']} | " + " | ".join(f"{m:.3f}" for m in means)
                     + f" | {gain:+.3f} | {seconds:.1f} |")
    return "\n".join(lines)


def plot(results: list[dict[str, object]], path: Path, knowledge: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted({str(r["set"]) for r in results})
    figure, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), squeeze=False)
    titles = {"a": "(a) four groups, with captions", "b": "(b) six scenes, photo alone", "c": "(c) 18 labels, with captions"}
    for axis, name in zip(axes[0], sets):
        rows = [r for r in results if r["set"] == name]
        sizes = sorted({int(r["n"]) for r in rows})  # type: ignore[call-overload]
        for column in ["probe", "ours", *(["ours+knowledge"] if knowledge else [])]:
            means = [np.mean([float(r[column]) for r in rows if r["n"] == n]) for n in sizes]  # type: ignore[arg-type]
            axis.plot(sizes, means, marker="o", label="linear probe (0.5)" if column == "probe" else column)
        axis.set_xscale("log")
        axis.set_xlabel("confirmed photos")
        axis.set_ylabel("samples F1")
        axis.set_title(titles.get(name, name))
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
