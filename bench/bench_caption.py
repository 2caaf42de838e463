"""Captioner quality and speed: BLEU-1..4, example captions, captions/s, and classify F1 fed
with generated captions instead of human ones.

BLEU is sacrebleu's corpus BLEU (13a tokenizer, lowercased, no smoothing; BLEU-n is sacrebleu's
score with max n-gram order n), shown as a fraction; the last column repeats BLEU-4 with our own
implementation (core.captions.caption_training.corpus_bleu: word tokens, closest-reference brevity
penalty, as in the COCO/NLTK scripts). Speed is `caption_project` on a fresh project: decode,
encode, beam search and store writes, nothing cached.

Usage: python -m bench.bench_caption [--comp N] [--classify] [--model DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED, holdout_folder
from core.captions.caption_job import caption_project, iter_feature_batches, write_caption_csv
from core.captions.caption_training import corpus_bleu
from core.captions.captioning import Captioner
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder

FLICKR = SHARED / "flickr8k"
LABEL_MAP = Path(__file__).resolve().parents[1] / "resources" / "label_maps" / "comp5329.json"


def sacre_bleu(hypotheses: list[str], references: list[list[str]]) -> list[float]:
    from sacrebleu.metrics import BLEU

    streams = [list(refs) for refs in zip(*references)]  # sacrebleu wants one stream per reference slot
    return [BLEU(max_ngram_order=n, lowercase=True).corpus_score(hypotheses, streams).score / 100 for n in range(1, 5)]


def flickr_test(folder: Path) -> dict[str, list[str]]:
    with open(FLICKR / "split.csv", newline="", encoding="utf-8") as handle:
        names = [r["image"] for r in csv.DictReader(handle) if r["split"] == "test"]
    refs: dict[str, list[str]] = {n: [] for n in names}
    with open(FLICKR / "captions.txt", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["image"] in refs:
                refs[row["image"]].append(row["caption"])
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).symlink_to(FLICKR / "images" / name)
    return refs


def features_of(store: ProjectStore, captioner: Captioner, image_ids: list[int]) -> np.ndarray:
    """The captioner's features for these images, in this order (from the store's cache, or
    encoded again when they are region maps, which the store does not keep)."""
    records = {r.id: r for r in store.images()}
    rows: dict[int, np.ndarray] = {}
    for batch in iter_feature_batches(store, captioner, [records[i] for i in image_ids]):
        rows.update((r.id, v) for r, v in zip(batch.records, batch.features))
    return np.stack([rows[i] for i in image_ids])


def run(name: str, folder: Path, refs: dict[str, list[str]], captioner: Captioner, show: int = 4) -> Path:
    """Caption a fresh project of `folder`, time it, score beam and greedy, print examples."""
    store = ProjectStore(folder, folder.parent / f"{folder.name}.db")
    run_to_end(sync_folder(store))
    started = time.perf_counter()
    report = run_to_end(caption_project(store, captioner, batch_size=32))
    seconds = time.perf_counter() - started
    by_path = {r.relpath: r.id for r in store.images()}
    names = sorted(refs)
    captions = store.captions()
    beam = [captions[by_path[n]][0] for n in names]
    greedy = captioner.generate(features_of(store, captioner, [by_path[n] for n in names]), beam_size=1)
    truth = [refs[n] for n in names]
    print(f"\n== {name}: {len(names)} photos, {len(truth[0])} reference(s) each")
    print(f"speed: {report.captioned} captions in {seconds:.1f} s = {report.captioned / seconds:.1f} captions/s "
          f"(decode + encode + beam {captioner.beam_size} + store writes, fresh project)")
    print(f"{'decoding':<10}{'BLEU-1':>8}{'BLEU-2':>8}{'BLEU-3':>8}{'BLEU-4':>8}{'ours-4':>8}")
    for label, hyps in ((f"beam {captioner.beam_size}", beam), ("greedy", greedy)):
        scores = sacre_bleu(hyps, truth)
        print(f"{label:<10}" + "".join(f"{s:>8.4f}" for s in scores) + f"{corpus_bleu(hyps, truth)[3]:>8.4f}")
    for n, hyp, ref in list(zip(names, beam, truth))[:show]:
        print(f"  {n}\n    generated: {hyp}\n    reference: {ref[0]}")
    out = folder.parent / f"{folder.name}-generated.csv"
    write_caption_csv(store, out)
    store.close()
    return out


def classify_f1(folder: Path, truth: Path, generated: Path, captioner: str | None) -> None:
    """Samples F1 of the default classifier given human captions, generated ones (as the product
    reads them: `classify --caption-missing`, blended with the photo alone when the model has a
    `generated_captions` setting; and imported as if a person wrote them), and none."""
    from core.cli import main as tagline
    from core.tagging.evaluation import evaluate_csvs

    print("\n== classify on the comp5329 held-out slice (default model)")
    chosen = ["--captioner", captioner] if captioner else []
    runs = (("human captions", ["--captions", str(truth)]), ("generated, product", ["--caption-missing", *chosen]),
            ("generated, as typed", ["--captions", str(generated)]), ("no captions", []))
    for label, extra in runs:
        name = label.replace(" ", "").replace(",", "")
        db, out = folder.parent / f"classify-{name}.db", folder.parent / f"pred-{name}.csv"
        tagline(["-q", "classify", str(folder), "--store", str(db), "--out", str(out), *extra])
        report, _ = evaluate_csvs(out, truth, LABEL_MAP)
        print(f"{label:<20} samples F1 {report.samples_f1:.4f}  micro F1 {report.micro_f1:.4f}  macro F1 {report.macro_f1:.4f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--comp", type=int, default=500, help="comp5329 held-out photos to score")
    parser.add_argument("--classify", action="store_true", help="also run classify with generated captions")
    parser.add_argument("--model", help="captioner folder (default: the shipped one)")
    args = parser.parse_args(argv)
    if not FLICKR.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    work = Path(tempfile.mkdtemp(prefix="tagline-caption-bench-"))
    captioner = Captioner(args.model, prefer_gpu=True)
    print(f"captioner {captioner.info.version}, beam {captioner.beam_size}, encoder {captioner.spec.key}")
    run("flickr8k test", work / "flickr", flickr_test(work / "flickr"), captioner)
    folder, truth = holdout_folder(work / "comp", args.comp)
    with open(truth, newline="", encoding="utf-8") as handle:
        comp_refs = {r["ImageID"]: [r["Caption"]] for r in csv.DictReader(handle)}
    generated = run("comp5329 holdout", folder, comp_refs, captioner)
    if args.classify:
        classify_f1(folder, truth, generated, args.model)
    print(f"\n(work folder: {work})")


if __name__ == "__main__":
    main()
