"""Train the captioner's decoder on captioned folders over frozen, store-cached image features.

    python -m core.captions.caption_training --out models/captioner \\
        --comp5329 ../shared/data/comp5329 --flickr8k ../shared/data/flickr8k

Splits: comp5329 and plain folders use core.tagging.learning.SplitRule (the classifier's held-out photos
stay held out here too); flickr8k uses its official split (train / dev / test). The epoch with
the best validation BLEU-4 (greedy) is kept; the held-out BLEU (beam search) goes in the metadata.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.captions.caption_job import iter_feature_batches
from core.captions.captioning import (
    END,
    SPECIALS,
    START,
    UNK,
    CaptionerInfo,
    DecoderConfig,
    FrozenImageFeatures,
    beam_decode,
    captioner_weights,
    create_decoder,
    detokenize,
    greedy_decode,
    read_captioner_info,
    save_captioner,
    start_id,
    style_token,
    tokenize,
)
from core.captions.region_cache import FeatureRows, region_rows
from core.models.registry import DEFAULT_IMAGE_ENCODER, ImageEncoderSpec, image_spec
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder
from core.tagging.learning import SplitRule

log = logging.getLogger(__name__)


@dataclass
class CaptionSet:
    """Photos of one source with their features, reference captions and split part."""

    name: str
    features: FeatureRows  # (feature dim) or, for attention, (regions, channels) float16, read on demand
    captions: list[list[str]]  # references per photo
    parts: list[str]  # "train", "validation" or "holdout"
    relpaths: list[str]

    def take(self, part: str) -> tuple[np.ndarray, list[list[str]]]:
        """Positions (rows of `features`) of the part's photos, and their references."""
        idx = np.array([i for i, p in enumerate(self.parts) if p == part], np.int64)
        return idx, [self.captions[i] for i in idx]


def load_set(name: str, folder: Path, captions: dict[str, list[str]], parts: dict[str, str],
             features: FrozenImageFeatures) -> CaptionSet:
    """Features from the folder's project store (computed and cached there when missing)."""
    store = ProjectStore(folder)
    run_to_end(sync_folder(store))
    records = [r for r in store.images() if captions.get(r.relpath) and parts.get(r.relpath)]
    if features.regions:  # too large for the store or for memory: a cache file of their own
        kept, table = region_rows(store, features, records)
        paths = [r.relpath for r in kept]
    else:
        rows: list[tuple[str, np.ndarray]] = []
        for batch in iter_feature_batches(store, features, records, batch_size=64):
            rows.extend((r.relpath, v) for r, v in zip(batch.records, batch.features))
        paths, table = [p for p, _ in rows], FeatureRows.of(np.stack([v for _, v in rows]))
    log.info("%s: %d captioned photos with features", name, len(paths))
    return CaptionSet(name, table, [captions[p] for p in paths], [parts[p] for p in paths], paths)


def comp5329_set(root: Path, features: FrozenImageFeatures) -> CaptionSet:
    with open(root / "train.csv", newline="", encoding="utf-8") as handle:
        captions = {row["ImageID"]: [row["Caption"]] for row in csv.DictReader(handle)}
    return load_set("comp5329", root / "images", captions, {p: SplitRule().part(p) for p in captions}, features)


def flickr8k_set(root: Path, features: FrozenImageFeatures) -> CaptionSet:
    captions: dict[str, list[str]] = {}
    with open(root / "captions.txt", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            captions.setdefault(row["image"], []).append(row["caption"])
    names = {"train": "train", "dev": "validation", "test": "holdout"}
    with open(root / "split.csv", newline="", encoding="utf-8") as handle:
        parts = {row["image"]: names[row["split"]] for row in csv.DictReader(handle) if row["split"] in names}
    return load_set("flickr8k", root / "images", captions, parts, features)


def folder_set(folder: Path, features: FrozenImageFeatures) -> CaptionSet:
    """A user's own folder: the captions in its project store (imported or typed, not generated)."""
    store = ProjectStore(folder)
    run_to_end(sync_folder(store))
    by_id = {r.id: r.relpath for r in store.images()}
    captions = {by_id[i]: [t] for i, (t, source) in store.captions().items() if i in by_id and source != "generated"}
    return load_set(folder.name, folder, captions, {p: SplitRule().part(p) for p in captions}, features)


def build_vocabulary(sentences: Sequence[str], min_count: int = 3) -> list[str]:
    counts = Counter(word for text in sentences for word in tokenize(text))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return list(SPECIALS) + words


def encode_caption(text: str, index: dict[str, int], max_len: int) -> list[int]:
    ids = [index.get(word, SPECIALS.index(UNK)) for word in tokenize(text)][:max_len]
    return [SPECIALS.index(START), *ids, SPECIALS.index(END)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4) -> list[float]:
    """BLEU-1..max_n (Papineni et al. 2002): clipped n-gram precision over the corpus, geometric
    mean, brevity penalty against the closest reference length; lowercased word tokens."""
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        words, ref_words = tokenize(hyp), [tokenize(r) for r in refs]
        hyp_len += len(words)
        ref_len += min((abs(len(r) - len(words)), len(r)) for r in ref_words)[1]
        for n in range(1, max_n + 1):
            grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
            best: Counter[tuple[str, ...]] = Counter()
            for r in ref_words:
                best |= Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, best[g]) for g, c in grams.items())
            totals[n - 1] += max(len(words) - n + 1, 0)
    penalty = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    scores, log_sum = [], 0.0
    for n in range(max_n):
        if matches[n] == 0 or totals[n] == 0:
            scores.extend([0.0] * (max_n - n))
            break
        log_sum += math.log(matches[n] / totals[n])
        scores.append(penalty * math.exp(log_sum / (n + 1)))
    return scores


@dataclass
class TrainSettings:
    epochs: int = 12
    patience: int = 2
    batch_size: int = 128
    lr: float = 5e-4  # chosen on validation: 1e-3 overfits within 6 epochs (docs/captioning.md)
    seed: int = 0
    min_count: int = 3
    label_smoothing: float = 0.1
    flickr_repeat: int = 3  # flickr8k captions are seen this often per epoch: its style is what we score
    styles: bool = False  # each source's captions start with its own style token
    config: DecoderConfig = field(default_factory=DecoderConfig)


def train(sets: list[CaptionSet], settings: TrainSettings, init: Path | None = None) -> tuple[Any, list[str], dict[str, Any]]:
    """Teacher-forced cross-entropy with Adam; keeps the epoch with the best validation BLEU-4."""
    import torch

    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    if init is not None:
        vocabulary = read_captioner_info(init).vocabulary
    else:
        train_texts = [text for s in sets for refs in s.take("train")[1] for text in refs]
        vocabulary = build_vocabulary(train_texts, settings.min_count)
    if settings.styles:
        vocabulary += [style_token(s.name) for s in sets if style_token(s.name) not in vocabulary]
    index = {w: i for i, w in enumerate(vocabulary)}
    where: list[tuple[int, int]] = []  # (set, position) of each training photo
    examples = []
    for number, s in enumerate(sets):
        positions, caps = s.take("train")
        repeat = settings.flickr_repeat if s.name == "flickr8k" else 1
        start = start_id(vocabulary, s.name)
        examples += [(len(where) + i, [start, *encode_caption(c, index, settings.config.max_len)[1:]])
                     for i, cs in enumerate(caps) for c in cs] * repeat
        where += [(number, int(p)) for p in positions]

    def batch_features(photos: list[int]) -> Any:
        """The batch's features, read from each set's rows (a memory map for regions)."""
        out: np.ndarray | None = None
        for number, s in enumerate(sets):
            slots = [k for k, i in enumerate(photos) if where[i][0] == number]
            if slots:
                rows = s.features.take([where[photos[k]][1] for k in slots])
                if out is None:
                    out = np.empty((len(photos), *rows.shape[1:]), np.float32)
                out[slots] = rows
        return torch.from_numpy(out)

    decoder = create_decoder(settings.config, len(vocabulary))
    if init is not None:
        from core.models.torch_encoders import load_state_dict

        decoder.load_state_dict(load_state_dict(captioner_weights(init, read_captioner_info(init))))
    optimiser = torch.optim.Adam(decoder.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="max", factor=0.5, patience=1)
    history: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    best_epoch = 0
    for epoch in range(settings.epochs):
        started = time.perf_counter()
        decoder.train()
        total_loss = 0.0
        for chunk in length_buckets(examples, settings.batch_size, rng):
            width = max(len(t) for _, t in chunk)
            tokens = torch.tensor([t + [0] * (width - len(t)) for _, t in chunk])
            logits = decoder(batch_features([i for i, _ in chunk]), tokens[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                                                     ignore_index=0, label_smoothing=settings.label_smoothing)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), 5.0)
            optimiser.step()
            total_loss += loss.item() * len(chunk)
        decoder.eval()
        scores = {s.name: score_part(decoder, vocabulary, s, "validation", beam=1, max_len=settings.config.max_len)
                  for s in sets if "validation" in s.parts}
        mean_bleu4 = float(np.mean([v[3] for v in scores.values()]))
        history.append({"epoch": epoch + 1, "train_loss": round(total_loss / len(examples), 4), "val_bleu4": round(mean_bleu4, 4),
                        "seconds": round(time.perf_counter() - started, 1)})
        log.info("epoch %d: %s %s", epoch + 1, history[-1], {k: [round(x, 3) for x in v] for k, v in scores.items()})
        scheduler.step(mean_bleu4)
        if mean_bleu4 > best[0]:
            best, best_epoch = (mean_bleu4, {k: v.detach().clone() for k, v in decoder.state_dict().items()}), epoch
        elif epoch - best_epoch >= settings.patience:
            break
    decoder.load_state_dict(best[1])
    return decoder.eval(), vocabulary, {"history": history, "best_epoch": best_epoch + 1, "best_val_bleu4": round(best[0], 4)}


def length_buckets(examples: list[tuple[int, list[int]]], batch_size: int, rng: random.Random) -> list[list[tuple[int, list[int]]]]:
    """Shuffled batches of similar caption length: padding, and so CPU time, drops by a third."""
    rng.shuffle(examples)
    span = batch_size * 50
    batches = []
    for start in range(0, len(examples), span):
        group = sorted(examples[start : start + span], key=lambda e: len(e[1]))
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def score_part(decoder: Any, vocabulary: list[str], data: CaptionSet, part: str, beam: int, max_len: int,
               length_penalty: float = 0.7) -> list[float]:
    positions, refs = data.take(part)
    start = start_id(vocabulary, data.name)
    ids: list[list[int]] = []
    for first in range(0, len(positions), 256):
        chunk = data.features.take(positions[first : first + 256])
        ids += greedy_decode(decoder, chunk, max_len, start) if beam <= 1 else \
            beam_decode(decoder, chunk, beam, max_len, length_penalty, start)
    hyps = [detokenize(vocabulary, row) for row in ids]
    return corpus_bleu(hyps, refs)


DECODING_GRID = [(beam, penalty) for beam in (3, 5) for penalty in (0.7, 1.0, 1.5)]


def choose_decoding(decoder: Any, vocabulary: list[str], sets: list[CaptionSet], max_len: int
                    ) -> tuple[int, float, list[dict[str, float]]]:
    """Beam size and length penalty with the best mean validation BLEU-4 over the sets (BLEU-4
    is sensitive to caption length, and the penalty that suits one model does not suit all)."""
    table = []
    for beam, penalty in DECODING_GRID:
        scores = [score_part(decoder, vocabulary, s, "validation", beam, max_len, penalty)[3]
                  for s in sets if "validation" in s.parts]
        table.append({"beam": beam, "length_penalty": penalty, "val_bleu4": round(float(np.mean(scores)), 4)})
        log.info("decoding beam %d, length penalty %.1f: mean validation BLEU-4 %.4f", beam, penalty, table[-1]["val_bleu4"])
    best = max(table, key=lambda row: row["val_bleu4"])
    return int(best["beam"]), float(best["length_penalty"]), table


def finish(folder: Path, info: CaptionerInfo, decoder: Any, sets: list[CaptionSet], tensors: dict[str, Any]) -> None:
    """Choose the decoding on validation, score the held-out parts once with it, save."""
    max_len = int(info.decoder["max_len"])
    info.beam_size, info.length_penalty, table = choose_decoding(decoder, info.vocabulary, sets, max_len)
    holdout = {s.name: [round(x, 4) for x in score_part(decoder, info.vocabulary, s, "holdout", info.beam_size, max_len,
                                                         info.length_penalty)]
               for s in sets if "holdout" in s.parts}
    log.info("held-out BLEU-1..4 (beam %d, length penalty %.1f): %s", info.beam_size, info.length_penalty, holdout)
    info.metrics = {**{k: v for k, v in info.metrics.items() if not k.startswith("holdout_bleu")},
                    "decoding_validation": table, "holdout_bleu_1_4": holdout}
    save_captioner(folder, info, tensors)
    log.info("saved captioner %s to %s", info.version, folder)


def decoder_config(kind: str, spec: ImageEncoderSpec) -> DecoderConfig:
    """Attention reads each region's channels; the pooled decoder the [mean, max] embedding."""
    return DecoderConfig(kind=kind, feature_dim=spec.pooled_dim if kind == "attention" else spec.dim)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.captions.caption_training", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the captioner's weights + captioner.json")
    parser.add_argument("--comp5329", type=Path, help="comp5329 folder (train.csv, images/)")
    parser.add_argument("--flickr8k", type=Path, help="flickr8k folder (captions.txt, split.csv, images/)")
    parser.add_argument("--folder", type=Path, action="append", default=[], help="a captioned project folder (repeatable)")
    parser.add_argument("--init", type=Path, help="fine-tune this captioner (keeps its vocabulary)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=TrainSettings.lr)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--styles", action="store_true",
                        help="a style token per source: captions can be asked for in any source's style")
    parser.add_argument("--decoder", choices=("attention", "pooled"), default="attention",
                        help="attention over the feature map's regions, or the pooled embedding (show and tell)")
    parser.add_argument("--retune", action="store_true",
                        help="do not train: choose the decoding of the captioner in --out on validation and re-score it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    spec = image_spec(DEFAULT_IMAGE_ENCODER)
    existing = args.out if args.retune else args.init  # its decoder decides which features to read
    config = DecoderConfig(**read_captioner_info(existing).decoder) if existing else decoder_config(args.decoder, spec)
    features = FrozenImageFeatures(spec, regions=config.kind == "attention")
    sets = ([comp5329_set(args.comp5329, features)] if args.comp5329 else []) + \
           ([flickr8k_set(args.flickr8k, features)] if args.flickr8k else []) + [folder_set(f, features) for f in args.folder]
    if not sets:
        parser.error("give at least one of --comp5329, --flickr8k, --folder")
    if args.retune:  # an existing captioner: only choose its decoding again and re-score it
        from core.models.torch_encoders import load_state_dict

        info = read_captioner_info(args.out)
        tensors = load_state_dict(captioner_weights(args.out, info))
        decoder = create_decoder(config, len(info.vocabulary))
        decoder.load_state_dict(tensors)
        finish(args.out, info, decoder.eval(), sets, tensors)
        return 0
    settings = TrainSettings(epochs=args.epochs, seed=args.seed, lr=args.lr, config=config, styles=args.styles)
    decoder, vocabulary, summary = train(sets, settings, args.init)
    tensors = {k: v.detach().cpu() for k, v in decoder.state_dict().items()}
    digest = hashlib.blake2b(b"".join(t.numpy().tobytes() for _, t in sorted(tensors.items())), digest_size=4)
    info = CaptionerInfo(
        version=time.strftime("%Y%m%d") + "-" + digest.hexdigest(), vocabulary=vocabulary,
        image_encoder=features.spec.name, image_key=features.key, decoder=settings.config.as_dict(),
        style=sets[0].name if style_token(sets[0].name) in vocabulary else None,
        metrics=summary,
        training={"created": datetime.now(UTC).isoformat(timespec="seconds"), "settings": {
            k: v for k, v in settings.__dict__.items() if k != "config"}, "init": str(args.init) if args.init else None,
            "sets": {s.name: {p: s.parts.count(p) for p in ("train", "validation", "holdout")} for s in sets}},
    )
    finish(args.out, info, decoder.eval(), sets, tensors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
