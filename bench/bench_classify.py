"""Classify throughput, side by side in one run on the same photos.

1. bare: the two ONNX encoders on pre-decoded, pre-tokenised batches (the ceiling);
2. pipeline: `classify_project` on a fresh project (decode, encode, head, store writes);
3. naive: one photo at a time in torch (decode, encoder, sentence encoder, head).
4. with a second model folder: the same pipeline with that model, on a fresh project (how a
   new head changes throughput, side by side).
Usage: python -m bench.bench_classify [N] [OTHER_MODEL_DIR]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import holdout_folder
from core.media.images import load_rgb
from core.models.encoders import preprocess_image
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder
from core.tagging.classifier import Classifier, classify_project


def main(count: int = 512, other: Path | None = None) -> None:
    work = Path(tempfile.mkdtemp(prefix="tagline-bench-"))
    folder, truth = holdout_folder(work / "photos", count)
    import csv

    with open(truth, newline="", encoding="utf-8") as handle:
        captions = {r["ImageID"]: r["Caption"] for r in csv.DictReader(handle)}
    classifier = Classifier()
    encoders = classifier.encoders(prefer_gpu=True)
    names = sorted(captions)
    pixels = np.stack([preprocess_image(load_rgb(folder / n), encoders.image_spec) for n in names])
    texts = [captions[n] for n in names]
    encoders.image.encode(pixels[:4])
    encoders.text.encode(texts[:4])

    start = time.perf_counter()
    for i in range(0, len(names), 32):
        image = encoders.image.encode(pixels[i : i + 32])
        text = encoders.text.encode(texts[i : i + 32])
    bare = len(names) / (time.perf_counter() - start)
    del image, text

    store = ProjectStore(folder, work / "project.db")
    run_to_end(sync_folder(store))
    store.set_captions([(i, captions[r]) for r, i in store.image_ids_by_relpath().items()], "imported")
    start = time.perf_counter()
    report = run_to_end(classify_project(store, classifier, encoders, batch_size=32))
    pipeline = report.classified / (time.perf_counter() - start)

    other_rate = None
    if other is not None:
        other_store = ProjectStore(folder, work / "other.db")
        run_to_end(sync_folder(other_store))
        other_store.set_captions([(i, captions[r]) for r, i in other_store.image_ids_by_relpath().items()], "imported")
        start = time.perf_counter()
        other_report = run_to_end(classify_project(other_store, Classifier(other), encoders, batch_size=32))
        other_rate = other_report.classified / (time.perf_counter() - start)
    naive_n = min(64, len(names))
    naive = naive_loop(folder, names[:naive_n], texts[:naive_n], classifier)
    print(f"photos: {len(names)} (naive loop: {naive_n}); provider {encoders.image.provider}")
    print(f"bare onnxruntime encoders: {bare:7.1f} img/s")
    print(f"tagline classify pipeline: {pipeline:7.1f} img/s  = {pipeline / bare:.2f}x bare")
    print(f"naive torch, one by one:   {naive:7.1f} img/s  -> pipeline is {pipeline / naive:.1f}x naive")
    if other_rate is not None:
        print(f"pipeline with {other}: {other_rate:7.1f} img/s -> the default model runs at {pipeline / other_rate:.2f}x its speed")
    shutil.rmtree(work, ignore_errors=True)


def naive_loop(folder: Path, names: list[str], texts: list[str], classifier: Classifier) -> float:
    import torch
    from sentence_transformers import SentenceTransformer

    from core.models.registry import image_spec, text_spec
    from core.models.torch_encoders import PooledFeatures

    spec = image_spec(classifier.info.image_encoder)
    model = PooledFeatures.create(spec)
    sentence = SentenceTransformer(str(text_spec(classifier.info.text_encoder).model_dir()), device="cpu")
    start = time.perf_counter()
    with torch.inference_mode():
        for name, text in zip(names, texts):
            x = torch.from_numpy(preprocess_image(load_rgb(folder / name), spec))[None]
            image = model(x).numpy()
            caption = sentence.encode([text], normalize_embeddings=True)
            classifier.predict(image, caption, np.ones(1, np.float32))
    return len(names) / (time.perf_counter() - start)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512, Path(sys.argv[2]) if len(sys.argv) > 2 else None)
