"""Encoder runtimes side by side in one run: speed, agreement with onnxruntime f32, whole-process
throughput against the bare encoders and the naive torch loop, and held-out quality.

1. bare encoders per runtime on N pre-decoded, pre-tokenised photos (Lite0 one photo at a time,
   MiniLM in batches of 32), and the cosine of their features to onnxruntime f32;
2. the whole `tagline classify FOLDER --captions CSV --out CSV` process per runtime (a fresh
   project each, graphs already exported), against that runtime's bare encoders and against the
   naive loop (one photo at a time through torch, as a person would write it);
3. with --quality: held-out samples F1 (fused and photo alone) per runtime, all 2,751 photos.
Usage: python -m bench.bench_runtimes [N] [--quality]
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_classify import naive_loop
from bench.common import holdout_folder
from core.media.images import load_rgb
from core.models.encoders import ImageEncoder, TextEncoder, preprocess_image
from core.models.runtimes import Runtime, cpu_has_bf16, openvino_available
from core.tagging.classifier import Classifier

LABEL_MAP = Path(__file__).resolve().parents[1] / "resources" / "label_maps" / "comp5329.json"
TAGLINE = [sys.executable, "-m", "core.cli"]


def runtimes() -> list[Runtime]:
    found = [Runtime("onnxruntime")]
    if openvino_available():
        found.append(Runtime("openvino"))
        if cpu_has_bf16():
            found.append(Runtime("openvino", "bf16"))
    return found


def bare(runtime: Runtime, pixels: np.ndarray, texts: list[str], classifier: Classifier) -> tuple[float, np.ndarray, np.ndarray]:
    encoders = classifier.encoders(prefer_gpu=False)
    image = ImageEncoder(encoders.image_spec, prefer_gpu=False, runtime=runtime)
    text = TextEncoder(encoders.text_spec, prefer_gpu=False, runtime=runtime)
    image.encode(pixels[:32])  # a whole batch: its shapes are the ones timed (OpenVINO prepares each shape once)
    text.encode(texts[:32])
    start = time.perf_counter()
    features, sentences = [], []
    for i in range(0, len(pixels), 32):
        features.append(image.encode(pixels[i : i + 32]))
        sentences.append(text.encode(texts[i : i + 32]))
    rate = len(pixels) / (time.perf_counter() - start)
    return rate, np.concatenate(features), np.concatenate(sentences)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def whole_process(runtime: Runtime, folder: Path, truth: Path, work: Path) -> float:
    env = {**os.environ, "TAGLINE_RUNTIME": runtime.name}
    out = work / f"{runtime.name}.csv"
    store = work / f"{runtime.name}.db"
    start = time.perf_counter()
    subprocess.run([*TAGLINE, "-q", "classify", str(folder), "--store", str(store), "--captions", str(truth),
                    "--out", str(out)], check=True, env=env)
    seconds = time.perf_counter() - start
    return len(list(folder.iterdir())) / seconds


def quality(runtime: Runtime, work: Path) -> tuple[float, float]:
    from core.store.database import ProjectStore
    from core.tagging.evaluation import evaluate_csvs

    folder, truth = holdout_folder(work / "holdout")
    env = {**os.environ, "TAGLINE_RUNTIME": runtime.name}
    store = work / f"quality-{runtime.name}.db"
    fused, alone = work / f"q-fused-{runtime.name}.csv", work / f"q-alone-{runtime.name}.csv"
    subprocess.run([*TAGLINE, "-q", "classify", str(folder), "--store", str(store), "--captions", str(truth),
                    "--out", str(fused), "--label-ids"], check=True, env=env)
    with ProjectStore(folder, store) as project, project.transaction() as cur:
        cur.execute("DELETE FROM captions")
    subprocess.run([*TAGLINE, "-q", "classify", str(folder), "--store", str(store), "--out", str(alone), "--label-ids"],
                   check=True, env=env)
    return (evaluate_csvs(fused, truth, LABEL_MAP)[0].samples_f1, evaluate_csvs(alone, truth, LABEL_MAP)[0].samples_f1)


def main(count: int = 512, with_quality: bool = False) -> None:
    work = Path(tempfile.mkdtemp(prefix="tagline-runtimes-"))
    folder, truth = holdout_folder(work / "photos", count)
    with open(truth, newline="", encoding="utf-8") as handle:
        captions = {r["ImageID"]: r["Caption"] for r in csv.DictReader(handle)}
    classifier = Classifier()
    spec = classifier.encoders(prefer_gpu=False).image_spec
    names = sorted(captions)
    pixels = np.stack([preprocess_image(load_rgb(folder / n), spec) for n in names])
    texts = [captions[n] for n in names]
    found = runtimes()
    results = {}
    for runtime in found:
        results[runtime.name] = bare(runtime, pixels, texts, classifier)
    reference = results["onnxruntime"]
    print(f"photos: {len(names)}; runtimes: {', '.join(r.name for r in found)}")
    for name, (rate, image, text) in results.items():
        image_cos, text_cos = cosine(image, reference[1]), cosine(text, reference[2])
        print(f"bare {name:<14} {rate:7.1f} img/s ({rate / reference[0]:.2f}x onnxruntime); cosine to onnxruntime "
              f"f32: image mean {image_cos.mean():.5f} min {image_cos.min():.5f}, caption mean {text_cos.mean():.5f} "
              f"min {text_cos.min():.5f}; max |diff| image {np.abs(image - reference[1]).max():.4f}")
    naive_n = min(300, len(names))  # 64 photos (before 12-03) made the ratio swing by a tenth between runs
    naive = naive_loop(folder, names[:naive_n], texts[:naive_n], classifier)
    print(f"naive torch loop, one photo at a time: {naive:.1f} img/s ({naive_n} photos)")
    for runtime in found:
        rate = whole_process(runtime, folder, truth, work)
        print(f"whole `tagline classify` process, {runtime.name:<14} {rate:7.1f} img/s = "
              f"{rate / results[runtime.name][0]:.2f}x its bare encoders, {rate / naive:.2f}x the naive loop")
    if with_quality:
        for runtime in found:
            fused, alone = quality(runtime, work)
            print(f"held-out {runtime.name:<14} samples F1 fused {fused:.4f}, photo alone {alone:.4f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 512, "--quality" in sys.argv)
