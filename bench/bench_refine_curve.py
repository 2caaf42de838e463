"""The learning curve of corrections (issue 32): samples F1 of the model in use after a person
confirms k photos of the bundled labels and `tagline train` refines the bundled model, then of a
19th label of their own learnt from 60 more photos (a third showing it), against the bundled
model alone, on photos never confirmed. Several draws.

Photos come from parts of comp5329 the bundled model never trained on: `--part validation`
(its validation part, photos 0-14999 only) to choose the recipe, `--part holdout` (its held-out
part) once, at the end. Each draw sets aside up to 560 photos to confirm; the rest of the part
scores every k of that draw. The new model goes through the same gate as in the app
(`core.learn.gate`): the "in use" columns are the bundled model's where the gate kept it.

Usage: python -m bench.bench_refine_curve [--part validation|holdout] [--sizes 0,10,25,50,100,200,500]
       [--draws 3] [--candidates] [--margin 0.0] [--plot docs/learning-curve-corrections.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import comp_relpaths, label_names_embedded, load_comp_embeddings
from core.learn.caption_words import name_mentions
from core.learn.gate import decide_activation
from core.learn.metrics import decide, evaluate, samples_f1, thresholds_by_row
from core.learn.refine import CORRECTIONS, KEEP, BaseModel, Correction, Refined, refine
from core.learn.training import TrainingData, predict_heads
from core.progress import run_to_end
from core.tagging.classifier import Classifier
from core.tagging.refining import base_of, compare_with_current

NEW_LABEL = ("snow", r"\b(snow\w*|ski|skis|skier\w*|skiing|snowboard\w*)\b")  # the issue's own example
CONFIRM_POOL = 560  # the most photos one draw confirms: 500 of the 18 labels, 60 with the 19th
NEW_PHOTOS, NEW_SHOWING = 60, 20


def part_rows(part: np.ndarray, name: str) -> np.ndarray:
    """Rows of the part; validation only below photo 15000 (the brief's held-out photos are never read)."""
    index = np.array([int(Path(p).stem) for p in comp_relpaths()])
    rows = np.flatnonzero(part == name)
    return rows[index[rows] < 15000] if name == "validation" else rows


def with_new_label(data: TrainingData, order: list[str]) -> TrainingData:
    """The 18 labels in the bundled model's order, then the new one read off the captions."""
    name, pattern = NEW_LABEL
    column = np.array([bool(re.search(pattern, (c or "").lower())) for c in data.captions])
    targets = data.targets[:, [data.labels.index(n) for n in order]]
    labels = [*order, name]
    return replace(data, targets=np.concatenate([targets, column[:, None]], axis=1), labels=labels,
                   label_text=label_names_embedded(labels))


def subset(data: TrainingData, rows: np.ndarray) -> TrainingData:
    return replace(data, image=data.image[rows], text=data.text[rows], has_caption=data.has_caption[rows],
                   targets=data.targets[rows], captions=[data.captions[i] for i in rows])


def refined_decisions(refined: Refined, data: TrainingData, rows: np.ndarray) -> np.ndarray:
    """What the classifier decides with the refined model (its name columns found as it finds them)."""
    text = data.text[rows]
    if refined.mentions:
        text = np.concatenate([text, name_mentions([data.captions[i] for i in rows], refined.labels)], axis=1)
    probabilities = predict_heads([refined.head], data.image[rows], text, data.has_caption[rows])
    thresholds = thresholds_by_row(refined.thresholds, refined.no_caption, data.has_caption[rows])
    return decide(probabilities, thresholds, refined.top1_fallback)


def one_step(data: TrainingData, base: BaseModel, bundled: Classifier, confirmed: np.ndarray, decided: np.ndarray,
             test: np.ndarray, candidates: tuple[Correction, ...], margin: float, seed: int) -> dict[str, object]:
    """Refine on the confirmed rows, pass the gate against the bundled model, score on `test`."""
    sub = subset(data, confirmed)
    start = time.perf_counter()
    refined = run_to_end(refine(sub, base, decided, seed=seed, candidates=candidates, margin=margin))
    seconds = time.perf_counter() - start
    rows = np.flatnonzero(np.isfinite(refined.oof).any(axis=1))  # cells never decided are NaN and count neither way
    predicted = decide(np.nan_to_num(refined.oof[rows]), refined.thresholds, refined.top1_fallback)
    keys = [str(i) for i in confirmed]  # the bundled model never trained on any of them
    comparison = compare_with_current(bundled, sub, decided, rows, predicted, refined.labels, refined.fold_of[rows], keys)
    verdict = decide_activation(comparison)
    truth = data.targets[test]
    new = refined_decisions(refined, data, test)
    n_base = len(base.labels)
    old = decide(base.probabilities(data.image[test], data.text[test], data.has_caption[test]),
                 base.row_thresholds(data.has_caption[test]), base.top1_fallback)
    in_use = new if verdict.activate else np.concatenate([old, np.zeros((len(test), new.shape[1] - n_base), bool)], 1)
    row: dict[str, object] = {
        "photos": int(len(confirmed)), "test": int(len(test)), "correction": refined.report["correction"],
        "seconds": round(seconds, 2), "activated": verdict.activate, "verdict": verdict.sentence,
        "bundled18": samples_f1(truth[:, :n_base], old), "new18": samples_f1(truth[:, :n_base], new[:, :n_base]),
        "in_use18": samples_f1(truth[:, :n_base], in_use[:, :n_base]),
        "cv_new": comparison.new_score, "cv_current": comparison.current_score, "cv_scores": refined.report["scores"],
    }
    if new.shape[1] > n_base:
        labels = refined.labels
        row["new_label_f1"] = evaluate(truth[:, n_base:], new[:, n_base:], labels[n_base:]).per_label[labels[-1]]["f1"]
        row["in_use_label_f1"] = evaluate(truth[:, n_base:], in_use[:, n_base:], labels[n_base:]).per_label[labels[-1]]["f1"]
        row["bundled_all"] = samples_f1(truth, np.concatenate([old, np.zeros((len(test), 1), bool)], 1))
        row["in_use_all"] = samples_f1(truth, in_use)
    return row


def from_scratch(data: TrainingData, confirmed: np.ndarray, test: np.ndarray, n18: int) -> float:
    """Samples F1 (18 labels) of what `tagline train --from-scratch` learns from the confirmed photos
    alone (the ladder, with the label names as it reads them): what a retrain did before issue 32."""
    from core.learn.ladder import train_small
    from core.tagging.learning import with_name_mentions

    labels = data.labels[:n18]
    sub = replace(subset(data, confirmed), targets=data.targets[confirmed, :n18], labels=labels,
                  label_text=None if data.label_text is None else data.label_text[:n18])
    trained, report = run_to_end(train_small(with_name_mentions(sub)))
    text = np.concatenate([data.text[test], name_mentions([data.captions[i] for i in test], labels)], axis=1)
    probabilities = predict_heads(trained.heads, data.image[test], text, data.has_caption[test])
    return samples_f1(data.targets[test, :n18], decide(probabilities, report.threshold, report.top1_fallback))


def draw_rows(data: TrainingData, rows: np.ndarray, draw: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photos of the 18 labels in confirming order, the 60 photos of the new label, test photos)."""
    rng = np.random.default_rng(9100 + draw)
    order = rng.permutation(rows)
    showing = order[data.targets[order, -1]]
    new_photos = np.concatenate([showing[:NEW_SHOWING], order[~data.targets[order, -1]][:NEW_PHOTOS - NEW_SHOWING]])
    rest = order[~np.isin(order, new_photos)]
    return rest[: CONFIRM_POOL - NEW_PHOTOS], new_photos, rest[CONFIRM_POOL - NEW_PHOTOS:]


def run(data: TrainingData, rows: np.ndarray, sizes: list[int], draws: int, candidates: tuple[Correction, ...],
        margin: float, new_label: bool, scratch: bool = False) -> list[dict[str, object]]:
    bundled = Classifier()
    base = base_of(bundled)
    assert base is not None
    results: list[dict[str, object]] = []
    n18 = len(base.labels)
    for draw in range(draws):
        first, new_photos, test = draw_rows(data, rows, draw)
        for k in sizes:
            confirmed = first[:k]
            if k < 2:
                old = decide(base.probabilities(data.image[test], data.text[test], data.has_caption[test]),
                             base.row_thresholds(data.has_caption[test]), base.top1_fallback)
                f1 = samples_f1(data.targets[test, :n18], old)
                results.append({"draw": draw, "k": k, "step": "18 labels", "photos": k, "test": int(len(test)),
                                "correction": "none", "seconds": 0.0, "activated": False, "bundled18": f1,
                                "new18": f1, "in_use18": f1})
            else:
                decided = np.zeros((k, n18 + 1), bool)
                decided[:, :n18] = True  # the 19th label did not exist yet
                row = one_step(data, base, bundled, confirmed, decided, test, candidates, margin, draw)
                if scratch:
                    row["scratch18"] = from_scratch(data, confirmed, test, n18)
                results.append({"draw": draw, "k": k, "step": "18 labels", **row})
                print(json.dumps(results[-1]), flush=True)
            if new_label:
                both = np.concatenate([confirmed, new_photos])
                decided = np.ones((len(both), n18 + 1), bool)
                decided[:k, n18] = False
                row = one_step(data, base, bundled, both, decided, test, candidates, margin, draw)
                results.append({"draw": draw, "k": k, "step": "+60 with snow", **row})
                print(json.dumps(results[-1]), flush=True)
    return results


def summarise(results: list[dict[str, object]]) -> str:
    lines = ["| step | k | draws | bundled (18) | new model (18) | in use (18) | min in use - bundled | in use: snow F1 | "
             "kept / taken | correction chosen | seconds (max) |", "|---" * 11 + "|"]
    for step in ("18 labels", "+60 with snow"):
        for k in sorted({int(r["k"]) for r in results if r["step"] == step}):  # type: ignore[call-overload]
            rows = [r for r in results if r["step"] == step and r["k"] == k]
            mean = {c: float(np.mean([float(r[c]) for r in rows])) for c in ("bundled18", "new18", "in_use18")}  # type: ignore[arg-type]
            worst = min(float(r["in_use18"]) - float(r["bundled18"]) for r in rows)  # type: ignore[arg-type]
            snow = f"{np.mean([float(r['in_use_label_f1']) for r in rows]):.3f}" if "in_use_label_f1" in rows[0] else ""  # type: ignore[arg-type]
            taken = sum(bool(r["activated"]) for r in rows)
            chosen = ", ".join(sorted({str(r["correction"]) for r in rows}))
            seconds = max(float(r["seconds"]) for r in rows)  # type: ignore[arg-type]
            lines.append(f"| {step} | {k} | {len(rows)} | {mean['bundled18']:.4f} | {mean['new18']:.4f} | "
                         f"{mean['in_use18']:.4f} | {worst * 100:+.2f} pt | {snow} | {len(rows) - taken} / {taken} | "
                         f"{chosen} | {seconds:.1f} |")
    return "\n".join(lines)


def plot(results: list[dict[str, object]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, step in zip(axes, ("18 labels", "+60 with snow")):
        rows = [r for r in results if r["step"] == step]
        sizes = sorted({int(r["k"]) for r in rows})  # type: ignore[call-overload]
        shown = [max(k, 1) for k in sizes]
        for column, label in (("bundled18", "bundled model alone"), ("new18", "new model (18 labels)"),
                              ("in_use18", "model in use after the gate"), ("scratch18", "learnt from the photos alone")):
            have = [k for k in sizes if any(r["k"] == k and column in r for r in rows)]
            if not have:
                continue
            means = [np.mean([float(r[column]) for r in rows if r["k"] == k and column in r]) for k in have]  # type: ignore[arg-type]
            axis.plot([max(k, 1) for k in have], means, marker="o", label=label, linestyle="--" if column == "new18" else "-")
        axis.set_ylim(0.70, 0.92)
        if step != "18 labels":
            means = [np.mean([float(r["in_use_label_f1"]) for r in rows if r["k"] == k]) for k in sizes]  # type: ignore[arg-type]
            twin = axis.twinx()
            twin.plot(shown, means, marker="s", color="tab:red", linestyle="--", label="snow F1 (right)")
            twin.set_ylim(0, 1)
            twin.legend(loc="lower right")
        axis.set_xscale("log")
        axis.set_xlabel("photos confirmed of the 18 labels (0 shown at 1)")
        axis.set_ylabel("samples F1, 18 bundled labels")
        axis.set_title(f"{title}: {step}")
        axis.grid(True, alpha=0.3)
        axis.legend(loc="lower left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("validation", "holdout"), default="validation")
    parser.add_argument("--sizes", default="0,10,25,50,100,200,500")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--candidates", action="store_true", help="also score each correction alone (no choice)")
    parser.add_argument("--margin", type=float, default=None, help="how far a correction must beat keep out of fold")
    parser.add_argument("--no-new-label", action="store_true")
    parser.add_argument("--scratch", action="store_true", help="also learn from the confirmed photos alone (before issue 32)")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data, part = load_comp_embeddings()
    data = with_new_label(data, Classifier().labels)
    rows = part_rows(part, args.part)
    print(f"{args.part}: {len(rows)} photos, {int(data.targets[rows, -1].sum())} showing {NEW_LABEL[0]}", flush=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    from core.learn import refine as refine_module

    margin = refine_module.MARGIN if args.margin is None else args.margin
    results = run(data, rows, sizes, args.draws, CORRECTIONS, margin, not args.no_new_label, args.scratch)
    print(summarise(results))
    if args.candidates:
        for candidate in CORRECTIONS:
            if candidate is KEEP:
                continue
            alone = run(data, rows, [k for k in sizes if k >= 10], args.draws, (candidate,), 0.0, False)
            for r in alone:
                r["step"] = "18 labels"
            print(f"only {candidate.name}:")
            print(summarise(alone))
            results += [{**r, "candidate": candidate.name} for r in alone]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot([r for r in results if "candidate" not in r], args.plot, args.part)


if __name__ == "__main__":
    main()
