"""Choosing a backbone, with the numbers beside it: the same fused head trained over each
available image encoder, one table and one plot (F1 against milliseconds a photo).

Photos: comp5329, the first TRAIN photos of the training part and VAL of the validation part
(SplitRule; the held-out part is not touched). Each encoder: parameters, ONNX size, encode ms a
photo on the active runtime (one photo at a time, pre-decoded, as `tagline classify` runs on a
CPU), head training time, validation samples/micro/macro F1 (fused, the threshold chosen on the
same validation part as early stopping, identically for every encoder) and photo-alone F1.
Extra backbones: `timm:NAME@WEIGHTS` arguments (a local weights file; nothing is downloaded).
Usage: python -m bench.bench_backbones [TRAIN] [VAL] [timm:NAME@WEIGHTS ...]
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import holdout_folder
from core.errors import ModelError
from core.formats.captions_io import load_label_map, split_labels
from core.learn.metrics import decide, evaluate
from core.learn.training import TrainConfig, TrainingData, predict_heads, train_head
from core.media.images import load_rgb
from core.models.embedding import Encoders
from core.models.encoders import ImageEncoder, TextEncoder, image_onnx_path, preprocess_image
from core.models.registry import image_spec, text_spec
from core.progress import run_to_end

ROOT = Path(__file__).resolve().parents[1]
LABEL_MAP = ROOT / "resources" / "label_maps" / "comp5329.json"
BACKBONES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


def rows_of(truth: Path) -> list[dict[str, str]]:
    with open(truth, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def parameters(name: str) -> int:
    from core.models.torch_encoders import PooledFeatures

    return sum(p.numel() for p in PooledFeatures.create(image_spec(name)).parameters())


def main(train_n: int = 3000, val_n: int = 1000, extra: list[str] | None = None) -> None:
    work = Path(tempfile.mkdtemp(prefix="tagline-backbones-"))
    train_folder, train_truth = holdout_folder(work / "train", train_n, part="train")
    val_folder, val_truth = holdout_folder(work / "val", val_n, part="validation")
    rows = [(train_folder / r["ImageID"], r) for r in rows_of(train_truth)] + \
           [(val_folder / r["ImageID"], r) for r in rows_of(val_truth)]
    mapping = load_label_map(LABEL_MAP)
    labels = list(dict.fromkeys(mapping.values()))
    named = [{mapping.get(t, t) for t in split_labels(r["Labels"])} for _, r in rows]
    targets = np.array([[name in row for name in labels] for row in named], bool)
    captions = [r["Caption"] for _, r in rows]
    train_idx, val_idx = np.arange(train_n), np.arange(train_n, len(rows))
    runtime_encoders = Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), prefer_gpu=False)
    text = TextEncoder(text_spec("minilm_l6"), prefer_gpu=False, runtime=runtime_encoders.runtime)
    sentences = np.concatenate([text.encode(captions[i : i + 64]) for i in range(0, len(captions), 64)])
    has_caption = np.ones(len(rows), np.float32)
    table = []
    for name in BACKBONES + (extra or []):
        try:
            spec = image_spec(name)
            encoder = ImageEncoder(spec, prefer_gpu=False, runtime=runtime_encoders.runtime)
        except ModelError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        pixels = np.stack([preprocess_image(load_rgb(path, max_side=2 * spec.input_size), spec) for path, _ in rows])
        encoder.encode(pixels[:4])
        start = time.perf_counter()
        sample = pixels[:200]
        for i in range(len(sample)):
            encoder.encode(sample[i : i + 1])
        ms = 1000 * (time.perf_counter() - start) / len(sample)
        image = np.concatenate([encoder.encode(pixels[i : i + 32]) for i in range(0, len(pixels), 32)])
        data = TrainingData(image, sentences, has_caption, targets, labels, captions)
        start = time.perf_counter()
        trained = run_to_end(train_head(data, train_idx, val_idx, TrainConfig()))
        seconds = time.perf_counter() - start
        probs = predict_heads(trained.heads, image[val_idx], sentences[val_idx], has_caption[val_idx])
        fused = evaluate(targets[val_idx], decide(probs, trained.global_threshold), labels)
        alone_probs = predict_heads(trained.heads, image[val_idx], np.zeros_like(sentences[val_idx]),
                                    np.zeros(len(val_idx), np.float32))
        no_caption = trained.no_caption_thresholds if trained.no_caption_thresholds is not None else trained.global_threshold
        alone = evaluate(targets[val_idx], decide(alone_probs, no_caption), labels)
        mb = image_onnx_path(spec).stat().st_size / 2**20
        table.append((name, parameters(name), mb, spec.input_size, ms, seconds, fused.samples_f1, fused.micro_f1,
                      fused.macro_f1, alone.samples_f1))
        print(f"{name}: {table[-1][1] / 1e6:.1f} M parameters, {mb:.1f} MB, {spec.input_size} px, {ms:.1f} ms a photo "
              f"({runtime_encoders.runtime.name}), head {seconds:.1f} s; validation samples F1 {fused.samples_f1:.4f}, "
              f"micro {fused.micro_f1:.4f}, macro {fused.macro_f1:.4f}; photo alone {alone.samples_f1:.4f}", flush=True)
    print("\n| encoder | parameters | ONNX MB | input | encode ms a photo | head training s | val samples F1 | micro F1 "
          "| macro F1 | photo alone samples F1 |\n|---|---|---|---|---|---|---|---|---|---|")
    for name, params, mb, size, ms, seconds, samples, micro, macro, alone_f1 in table:
        print(f"| {name} | {params / 1e6:.1f} M | {mb:.1f} | {size} px | {ms:.1f} | {seconds:.1f} | {samples:.4f} | "
              f"{micro:.4f} | {macro:.4f} | {alone_f1:.4f} |")
    plot(table, ROOT / "docs" / "backbones.png")
    import json

    keys = ("name", "parameters", "mb", "input", "ms", "head_s", "samples_f1", "micro_f1", "macro_f1", "photo_alone_f1")
    figures = {"measured": f"python -m bench.bench_backbones {train_n} {val_n} ({time.strftime('%Y-%m-%d')}, comp5329, "
                           f"runtime {runtime_encoders.runtime.name})",
               "encoders": [dict(zip(keys, (row[0], int(row[1]), round(float(row[2]), 4), int(row[3]),
                                                 *(round(float(v), 4) for v in row[4:])))) for row in table]}
    (ROOT / "resources" / "backbones.json").write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


def plot(table: list[tuple], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, _, mb, _, ms, _, samples, _, _, alone in table:
        axes.scatter([ms], [samples], s=40 + 4 * mb, color="tab:blue")
        axes.scatter([ms], [alone], s=40 + 4 * mb, color="tab:orange")
        axes.annotate(name.replace("efficientnet_", ""), (ms, samples), textcoords="offset points", xytext=(6, 4))
    axes.scatter([], [], color="tab:blue", label="photo + caption")
    axes.scatter([], [], color="tab:orange", label="photo alone")
    axes.set_xlabel("encode ms a photo (this CPU, 2 cores)")
    axes.set_ylabel("validation samples F1")
    axes.set_title("Backbones: the same head, comp5329 (marker size: MB)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    others = [a for a in sys.argv[1:] if a.startswith("timm:")]
    main(int(numbers[0]) if numbers else 3000, int(numbers[1]) if len(numbers) > 1 else 1000, others)
