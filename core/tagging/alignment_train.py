"""Train the image-text alignment (`core.models.alignment`) on a folder's captioned photos.

    python -m core.tagging.alignment_train ../shared/data/comp5329/images --out models/alignment

The folder's project must hold the captions (and, for the scores, confirmed labels): `tagline
import FOLDER --captions CSV --label-map MAP` fills it. Training photos are the project's
`SplitRule` training part; the validation part chooses the settings and the epoch (zero-shot
mean average precision of "a photo of {label}"); the held-out part is scored only with
`--holdout`, once the choice is made. Seeded: the same data and command give the same maps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.models.alignment import DEFAULT_PROMPT, Alignment, save_alignment
from core.models.embedding import Encoders, iter_embedded_batches
from core.models.registry import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER, image_spec, text_spec
from core.store.database import ProjectStore
from core.tagging.learning import SplitRule
from core.tagging.word_search import zero_shot_scores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignConfig:
    epochs: int = 15
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    temperature: float = 0.07  # initial; learnt, as CLIP's
    seed: int = 0


@dataclass
class Captioned:
    """Each row a photo: its features, its caption's vector (zeros without one), its labels."""

    image: np.ndarray
    text: np.ndarray
    has_caption: np.ndarray
    targets: np.ndarray
    part: np.ndarray
    labels: list[str]


def collect(store: ProjectStore, encoders: Encoders, batch_size: int = 64, cached_only: bool = False) -> Captioned:
    """Every photo's features (embedded where not cached) with its human caption, if any;
    `cached_only`: only the photos whose features are cached already (nothing is embedded)."""
    captions = {i: c for i, c in store.captions().items() if c[1] != "generated"}
    records = store.images()
    if cached_only:
        cached = store.cached_embeddings(encoders.image_key)
        records = [r for r in records if r.id in cached and cached[r.id][0] == (r.digest or "")]
        del cached
    labels = [label.name for label in store.labels()]
    confirmed = store.confirmations()
    rule = SplitRule()
    rows: list[tuple[int, np.ndarray, np.ndarray, float]] = []
    relpath = {r.id: r.relpath for r in records}
    for batch in iter_embedded_batches(store, encoders, records, batch_size, None, captions):
        rows.extend(zip(batch.image_ids, batch.image_vectors, batch.text_vectors, batch.has_caption))
        if len(rows) % 2048 < batch_size:
            log.info("embedded %d of %d photos", len(rows), len(records))
    ids = [r[0] for r in rows]
    return Captioned(
        image=np.stack([r[1] for r in rows]).astype(np.float32), text=np.stack([r[2] for r in rows]).astype(np.float32),
        has_caption=np.array([r[3] for r in rows], np.float32),
        targets=np.array([[bool(confirmed.get(i, {}).get(n, False)) for n in labels] for i in ids], bool).reshape(len(ids), len(labels)),
        part=np.array([rule.part(relpath[i]) for i in ids]), labels=labels)


def fit(data: Captioned, prompts: np.ndarray, config: AlignConfig,
        report: Any = None) -> tuple[dict[str, np.ndarray], list[dict[str, float]]]:
    """Train on the captioned training part; keep the epoch with the best validation mAP.

    `prompts` are the label prompts' caption vectors (the validation queries).
    """
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(1)  # on shared cores its OpenMP threads lose far more than they gain (DEVELOPERS.md)
    rng = np.random.default_rng(config.seed)
    train = np.flatnonzero((data.part == "train") & (data.has_caption > 0))
    validation = np.flatnonzero(data.part == "validation")
    mean = data.image[train].mean(0)
    std = data.image[train].std(0) + 1e-6
    image = torch.from_numpy((data.image - mean) / std)
    text = torch.from_numpy(data.text)
    image_map = torch.nn.Linear(image.shape[1], text.shape[1])
    text_map = torch.nn.Linear(text.shape[1], text.shape[1])
    with torch.no_grad():
        text_map.weight.copy_(torch.eye(text.shape[1]))
        text_map.bias.zero_()
    log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / config.temperature))))
    parameters = [*image_map.parameters(), *text_map.parameters(), log_scale]
    optimiser = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = config.epochs * int(np.ceil(len(train) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=steps, pct_start=0.1)
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, np.ndarray]] = (-1.0, {})
    for epoch in range(1, config.epochs + 1):
        started, total = time.perf_counter(), 0.0
        order = rng.permutation(train)
        for start in range(0, len(order), config.batch_size):
            chunk = torch.from_numpy(order[start:start + config.batch_size])
            photos = torch.nn.functional.normalize(image_map(image[chunk]), dim=1)
            words = torch.nn.functional.normalize(text_map(text[chunk]), dim=1)
            logits = log_scale.clamp(max=np.log(100.0)).exp() * photos @ words.T
            target = torch.arange(len(chunk))
            loss = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(chunk)
        tensors = _tensors(image_map, text_map, mean, std)
        scores = _validation_scores(tensors, data, validation, prompts)
        history.append({"epoch": epoch, "train_loss": round(total / len(train), 4), "val_map": scores["map"],
                        "val_p@50": scores["p@50"], "seconds": round(time.perf_counter() - started, 1)})
        if report:
            report(history[-1])
        if scores["map"] > best[0]:
            best = (float(scores["map"]), tensors)
    return best[1], history


def _tensors(image_map: Any, text_map: Any, mean: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
    return {"image_mean": mean.astype(np.float32), "image_std": std.astype(np.float32),
            "image_weight": image_map.weight.detach().numpy().T.copy(), "image_bias": image_map.bias.detach().numpy().copy(),
            "text_weight": text_map.weight.detach().numpy().T.copy(), "text_bias": text_map.bias.detach().numpy().copy()}


def as_alignment(tensors: dict[str, np.ndarray], image_key: str = "", text_key: str = "") -> Alignment:
    """The numpy alignment the app would load from these tensors (standardisation folded)."""
    std, mean = tensors["image_std"], tensors["image_mean"]
    return Alignment("unsaved", image_key, text_key, tensors["image_weight"] / std[:, None],
                     tensors["image_bias"] - (mean / std) @ tensors["image_weight"], tensors["text_weight"], tensors["text_bias"])


def part_scores(alignment: Alignment, data: Captioned, rows: np.ndarray, prompts: np.ndarray) -> dict[str, object]:
    return zero_shot_scores(alignment.project_images(data.image[rows]), alignment.project_texts(prompts),
                            data.targets[rows], data.labels)


def _validation_scores(tensors: dict[str, np.ndarray], data: Captioned, rows: np.ndarray,
                       prompts: np.ndarray) -> dict[str, Any]:
    return part_scores(as_alignment(tensors), data, rows, prompts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.tagging.alignment_train", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a folder whose project holds captions (and confirmed labels)")
    parser.add_argument("--out", type=Path, required=True, help="where to write alignment.json and its weights")
    parser.add_argument("--epochs", type=int, default=AlignConfig.epochs)
    parser.add_argument("--weight-decay", type=float, nargs="+", default=[0.0, 0.1],
                        help="settings tried; the validation part chooses (default 0 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cached-only", action="store_true",
                        help="use only the photos whose features are cached already (a quicker, smaller run)")
    parser.add_argument("--holdout", action="store_true", help="also score the held-out part (once, at the end)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    store = ProjectStore(args.folder)
    encoders = Encoders(image_spec(DEFAULT_IMAGE_ENCODER), text_spec(DEFAULT_TEXT_ENCODER))
    data = collect(store, encoders, cached_only=args.cached_only)
    alignment_prompts = [DEFAULT_PROMPT.format(n.replace("_", " ")) for n in data.labels]
    prompts = np.asarray(encoders.text.encode(alignment_prompts), np.float32)
    trials = []
    for weight_decay in args.weight_decay:
        config = AlignConfig(epochs=args.epochs, weight_decay=weight_decay, seed=args.seed)
        tensors, history = fit(data, prompts, config, report=log.info)
        best = max(history, key=lambda h: h["val_map"])
        trials.append((best["val_map"], config, tensors, history))
        log.info("weight decay %s: best validation mAP %s at epoch %s", weight_decay, best["val_map"], best["epoch"])
    _, config, tensors, history = max(trials, key=lambda t: t[0])
    digest = hashlib.blake2b(b"".join(np.ascontiguousarray(v).tobytes() for v in tensors.values()), digest_size=4).hexdigest()
    version = f"{datetime.now(UTC):%Y%m%d}-{digest}"
    alignment = as_alignment(tensors, encoders.image_key, encoders.text_key)
    counts = {p: int((data.part == p).sum()) for p in ("train", "validation", "holdout")}
    scores: dict[str, Any] = {"validation": _summary(part_scores(alignment, data, np.flatnonzero(data.part == "validation"), prompts))}
    if args.holdout:
        scores["holdout"] = _summary(part_scores(alignment, data, np.flatnonzero(data.part == "holdout"), prompts))
    meta = {
        "version": version, "image_encoder": DEFAULT_IMAGE_ENCODER, "text_encoder": DEFAULT_TEXT_ENCODER,
        "image_key": encoders.image_key, "text_key": encoders.text_key, "prompt": DEFAULT_PROMPT,
        "command": "python -m core.tagging.alignment_train " + " ".join(sys.argv[1:] if argv is None else argv),
        "data": {"folder": args.folder.name, "photos": counts, "captioned_training_photos":
                 int(((data.part == "train") & (data.has_caption > 0)).sum()), "split": asdict(SplitRule())},
        "settings": asdict(config), "tried": [{"weight_decay": t[1].weight_decay, "val_map": t[0]} for t in trials],
        "history": history, "scores": scores, "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    save_alignment(args.out, tensors, meta)
    log.info("wrote %s: %s", args.out, json.dumps({"version": version, "scores": scores}, indent=1))
    return 0


def _summary(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scores.items() if k != "per_label"} | {
        "per_label_ap": {n: v["ap"] for n, v in scores["per_label"].items()}}


if __name__ == "__main__":
    sys.exit(main())
