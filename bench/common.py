"""Helpers for benchmarks: the shared data location and held-out photo folders of symlinks."""

from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

import numpy as np

from core.learn.training import TrainingData
from core.models.embedding import Encoders
from core.models.registry import image_spec, text_spec
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.learning import SplitRule, collect_training_data

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAGLINE_SHARED_DATA", ROOT.parent / "shared" / "data"))
COMP = SHARED / "comp5329"
CACHE = Path(os.environ.get("TAGLINE_BENCH_CACHE", "/tmp/tagline-comp5329-embeddings.npz"))


def comp_rows() -> list[dict[str, str]]:
    """comp5329's rows as the product reads them (stray quotes in a few captions made
    csv.DictReader give those rows an extra, unnamed field)."""
    from core.formats.captions_io import read_caption_csv

    return [{"ImageID": r.image_id, "Labels": r.labels[0] if r.labels else "", "Caption": r.caption or ""}
            for r in read_caption_csv(COMP / "train.csv").rows]


def holdout_folder(target: Path, limit: int | None = None, part: str = "holdout") -> tuple[Path, Path]:
    """Symlink the chosen part's photos into `target` and write their truth CSV beside it."""
    target.mkdir(parents=True, exist_ok=True)
    rule = SplitRule()
    rows = [r for r in comp_rows() if rule.part(r["ImageID"]) == part][:limit]
    for row in rows:
        link = target / row["ImageID"]
        if not link.exists():
            link.symlink_to(COMP / "images" / row["ImageID"])
    truth = target.parent / f"{target.name}-truth.csv"
    with open(truth, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ImageID", "Labels", "Caption"])
        writer.writeheader()
        writer.writerows(rows)
    return target, truth


@functools.cache
def default_encoders() -> Encoders:
    """One pair of default encoders per run (each label set embeds its names with it)."""
    return Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"))


def label_names_embedded(names: list[str]) -> np.ndarray:
    """The label names through the default caption encoder, as `tagline train` embeds them."""
    from core.tagging.learning import embed_label_names

    return embed_label_names(default_encoders(), names)


def load_comp_embeddings() -> tuple[TrainingData, np.ndarray]:
    """The cached comp5329 embeddings (from the project store a `tagline train` on comp5329 filled)
    and each row's part of the split; kept in a temporary .npz between runs."""
    if CACHE.exists():
        z = np.load(CACHE, allow_pickle=True)
        data = TrainingData(z["image"], z["text"], z["has_caption"], z["targets"], list(z["labels"]), list(z["captions"]))
        return data, z["part"]
    store = ProjectStore(COMP / "images")
    data, relpaths = run_to_end(collect_training_data(store, default_encoders()))
    part = np.array([SplitRule().part(p) for p in relpaths])
    np.savez(CACHE, image=data.image, text=data.text, has_caption=data.has_caption, targets=data.targets,
             labels=np.array(data.labels), captions=np.array(data.captions, dtype=object), part=part,
             relpaths=np.array(relpaths))
    return data, part


def comp_relpaths() -> list[str]:
    """The photo of each row of `load_comp_embeddings` (relative to comp5329/images)."""
    if not CACHE.exists():
        load_comp_embeddings()
    z = np.load(CACHE, allow_pickle=True)  # lazy: only the names are read
    if "relpaths" not in z:
        raise SystemExit(f"{CACHE} predates its photo names: delete it and run again")
    return [str(p) for p in z["relpaths"]]
