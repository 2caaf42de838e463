"""A person's own labels learnt from few photos with human captions, with generated captions, and
from the photo alone: what decides whether a person's own model reads captions by default, and how
far it trusts generated ones.

Only comp5329's validation part is read (the photos the bundled classifier and the captioner never
trained on; the held-out part is never looked at): it is cut in two by a fixed hash, n confirmed
photos are drawn from the first half and every model is scored on the second. Generated captions are
the bundled captioner's, written by the product (`tagline caption FOLDER --out CSV`) on a folder of
links to those photos. Label sets: (a) four groups of the COCO labels, (b) six scene words read off
the human captions (so the human-caption run is left out: its captions name the answer), (c) the
18 labels. Training is `core.learn.ladder.train_small`, exactly what `tagline train` runs on few
photos of labels the model in use does not know, with the label-name features it adds beside
captions. A model trained with generated captions is also scored blended with its own photo-alone
prediction, p = w * p(photo + generated caption) + (1 - w) * p(photo alone), for each weight w.

Usage: python -m bench.bench_own_captions --work /tmp/t34 [--sets a,b,c] [--sizes 10,25,50,100,200]
       [--draws 3] [--json out.json]
(--work holds val/ with the links, val-truth.csv and val-generated.csv; bench.common.holdout_folder
makes the first two with part="validation".)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.bench_learning_curve import _label_set
from bench.common import ROOT, default_encoders, label_names_embedded
from core.learn.ladder import train_small
from core.learn.metrics import decide, samples_f1
from core.learn.training import TrainingData, predict_heads
from core.models.embedding import iter_embedded_batches
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.learning import with_name_mentions

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
CONDITIONS = ("photo", "human", "generated")


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["ImageID"]: row for row in csv.DictReader(handle)}


def embed(work: Path) -> dict[str, TrainingData]:
    """The validation photos' embeddings with human captions, with generated captions, and alone
    (18 labels), in one row order; cached in WORK/embeddings.npz."""
    cache = work / "embeddings.npz"
    names = list(json.loads((ROOT / "resources" / "label_maps" / "comp5329.json").read_text()).values())
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        image, targets = z["image"], z["targets"]
        texts = {"human": (z["human"], list(z["human_captions"])), "generated": (z["generated"], list(z["generated_captions"]))}
    else:
        truth, generated = read_csv(work / "val-truth.csv"), read_csv(work / "val-generated.csv")
        store = ProjectStore(work / "val")
        records = [r for r in store.images() if r.relpath in truth and generated.get(r.relpath, {}).get("Caption")]
        encoders = default_encoders()
        image_rows: dict[int, np.ndarray] = {}
        texts = {}
        for source, rows in (("human", truth), ("generated", generated)):
            captions = {r.id: (rows[r.relpath]["Caption"], source) for r in records}
            vectors: dict[int, np.ndarray] = {}
            for batch in iter_embedded_batches(store, encoders, records, 64, None, captions):
                image_rows.update(zip(batch.image_ids, batch.image_vectors))
                vectors.update(zip(batch.image_ids, batch.text_vectors))
            if len(vectors) != len(records):
                raise SystemExit(f"{len(records) - len(vectors)} photos could not be read")
            texts[source] = (np.stack([vectors[r.id] for r in records]), [captions[r.id][0] for r in records])
        image = np.stack([image_rows[r.id] for r in records])
        by_id = {v: k for k, v in json.loads((ROOT / "resources" / "label_maps" / "comp5329.json").read_text()).items()}
        targets = np.array([[by_id[n] in truth[r.relpath]["Labels"].split() for n in names] for r in records])
        np.savez(cache, image=image, targets=targets, human=texts["human"][0], generated=texts["generated"][0],
                 human_captions=np.array(texts["human"][1], dtype=object),
                 generated_captions=np.array(texts["generated"][1], dtype=object))
    ones = np.ones(len(image), np.float32)
    human = TrainingData(image, texts["human"][0], ones, targets, names, texts["human"][1])
    return {"photo": replace(human, text=np.zeros_like(human.text), has_caption=np.zeros_like(ones), captions=[None] * len(ones)),
            "human": human, "generated": replace(human, text=texts["generated"][0], captions=texts["generated"][1])}


def condition_data(data: dict[str, TrainingData], name: str, condition: str) -> tuple[TrainingData, np.ndarray]:
    """One label set under one condition, as `tagline train` would see it (label names embedded
    and their mentions beside captions; the photo alone without either)."""
    human, rows = _label_set(data["human"], name, names=True)  # set b's targets come from the human captions
    subset = replace(data[condition], targets=human.targets, labels=human.labels,
                     label_text=None if condition == "photo" else human.label_text)
    if name == "b" and condition != "photo":  # _label_set hides set b's captions, and its names with them
        subset = replace(subset, label_text=label_names_embedded(human.labels))
    return (subset if condition == "photo" else with_name_mentions(subset)), rows


def halves(n: int) -> np.ndarray:
    """A fixed half of the rows for drawing, the other for scoring."""
    return np.array([hashlib.blake2b(f"own-captions:{i}".encode(), digest_size=4).digest()[0] < 128 for i in range(n)])


def run(data: dict[str, TrainingData], sets: list[str], sizes: list[int], draws: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    pool_mask = halves(len(data["human"].targets))
    for name in sets:
        variants = {c: condition_data(data, name, c) for c in CONDITIONS if not (name == "b" and c == "human")}
        rows = next(iter(variants.values()))[1]
        pool, test = rows[pool_mask[rows]], rows[~pool_mask[rows]]
        for n in sizes:
            for draw in range(draws):
                train = np.random.default_rng(1000 * draw + n).choice(pool, n, replace=False)
                row: dict[str, object] = {"set": name, "n": n, "draw": draw, "test": len(test)}
                for condition, (subset, _) in variants.items():
                    truth = subset.targets[test].astype(bool)
                    sub = replace(subset, image=subset.image[train], text=subset.text[train],
                                  has_caption=subset.has_caption[train], targets=subset.targets[train],
                                  captions=[subset.captions[i] for i in train])
                    start = time.perf_counter()
                    trained, report = run_to_end(train_small(sub))
                    row[f"{condition} seconds"] = round(time.perf_counter() - start, 2)
                    probs = predict_heads(trained.heads, subset.image[test], subset.text[test], subset.has_caption[test])
                    row[condition] = samples_f1(truth, decide(probs, report.threshold, report.top1_fallback))
                    if condition == "generated":
                        alone = predict_heads(trained.heads, subset.image[test], np.zeros_like(subset.text[test]),
                                              np.zeros(len(test), np.float32))
                        for w in WEIGHTS:
                            blend = decide(w * probs + (1 - w) * alone, report.threshold, report.top1_fallback)
                            row[f"generated w={w}"] = samples_f1(truth, blend)
                results.append(row)
                print(json.dumps(row), flush=True)
    return results


def summarise(results: list[dict[str, object]]) -> str:
    columns = ["photo", "human", "generated", *(f"generated w={w}" for w in WEIGHTS)]
    lines = ["| set | n | scored photos | " + " | ".join(columns) + " |", "|---" * (len(columns) + 3) + "|"]
    for name, n in sorted({(str(r["set"]), int(r["n"])) for r in results}):  # type: ignore[call-overload]
        rows = [r for r in results if r["set"] == name and r["n"] == n]
        cells = [f"{np.mean([float(r[c]) for r in rows]):.3f}" if c in rows[0] else "n/a" for c in columns]  # type: ignore[arg-type]
        lines.append(f"| {name} | {n} | {rows[0]['test']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--sets", default="a,b,c")
    parser.add_argument("--sizes", default="10,25,50,100,200")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = embed(args.work)
    results = run(data, args.sets.split(","), [int(s) for s in args.sizes.split(",")], args.draws)
    print(summarise(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
