"""Classifier files: `model-VERSION.safetensors` plus `model.json`, never pickles.

The JSON carries everything needed to use the weights correctly: label names, thresholds,
the exact encoder versions, metrics and a summary of the training data.
"""

from __future__ import annotations

import json
import os
import types
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError, disk_full, write_failure_message
from core.formats.temp_files import plain_file_mode, writing_beside
from core.learn.fusion_head import HEAD_KINDS, HeadConfig
from core.learn.metrics import thresholds_by_row

FORMAT_VERSION = 1


@dataclass
class ClassifierInfo:
    version: str
    labels: list[str]
    thresholds: list[float]
    global_threshold: float
    threshold_mode: str  # "global" or "per_label": whichever won on validation
    top1_fallback: bool
    image_encoder: str  # registry name
    text_encoder: str
    image_key: str  # embedding cache keys: the exact preprocessing + weights revision
    text_key: str
    head: dict[str, Any]
    external_ids: dict[str, str] = field(default_factory=dict)  # label -> id used in CSVs
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    ensemble: int = 1
    vocabulary: list[str] = field(default_factory=list)  # caption words; empty: not used
    weights: str = "model.safetensors"  # the weights file this metadata belongs to
    no_caption_thresholds: list[float] = field(default_factory=list)  # empty: the ones above
    # how to read machine-written captions, chosen on validation (core.captions.caption_trust): weight of
    # the fused prediction against the photo alone, thresholds, scores; empty: read as typed ones
    generated_captions: dict[str, Any] = field(default_factory=dict)
    # per ensemble member {"head": config, "weight": w} when members differ (a blend of rungs);
    # empty: every member is built from `head` and weighs the same
    members: list[dict[str, Any]] = field(default_factory=list)
    # the caption side gets, right after the sentence embedding, one column per label: 1 where the
    # caption says the label's name (core.learn.caption_words.name_mentions)
    name_mentions: bool = False

    def quality(self) -> tuple[str, dict[str, Any]]:
        """The score to show the person: ("held-out", report) when a held-out part was scored,
        ("cross-validated", report) when the labels were few and every photo trained; the
        report holds samples/micro/macro F1 and per-label figures (core.learn.metrics.Report)."""
        holdout, cross = (self.metrics.get(k) for k in ("holdout", "cross_validation"))
        if isinstance(holdout, dict) and isinstance(holdout.get("fused"), dict) and _scores(holdout["fused"]):
            return "held-out", dict(holdout["fused"])
        if isinstance(cross, dict) and isinstance(cross.get("fused"), dict) and _scores(cross["fused"]):
            spread = cross.get("cv_spread", 0.0)
            return "cross-validated", {**cross["fused"], "samples_f1_spread": spread if _number(spread) else 0.0}
        return "", {}

    def trained_on(self) -> str:
        """How many photos trained it, in words: with a held-out part, not every labelled photo did."""
        training = self.training if isinstance(self.training, dict) else {}
        images, train = training.get("images"), training.get("train")
        if not isinstance(images, int):
            return "trained on an unknown number of photos"
        if isinstance(train, int) and train < images:
            return (f"trained on {train:,} of {images:,} labelled photos ({training.get('validation', 0):,} chose when "
                    f"to stop and the thresholds, {training.get('holdout', 0):,} held out to score it)")
        return f"trained on all {images:,} labelled photos"

    def decision_thresholds(self) -> np.ndarray:
        if self.threshold_mode == "per_label":
            return np.asarray(self.thresholds, np.float32)
        return np.full(len(self.labels), self.global_threshold, np.float32)

    def row_thresholds(self, has_caption: np.ndarray, generated: np.ndarray | None = None) -> np.ndarray:
        """(photos, labels): photos without a caption, and photos whose caption a captioner
        wrote (`generated`), use the thresholds chosen for them."""
        rows = thresholds_by_row(self.decision_thresholds(), self.no_caption_thresholds, has_caption)
        if generated is not None and self.generated_captions:
            rows[np.asarray(generated, bool)] = np.asarray(self.generated_captions["thresholds"], np.float32)
        return rows


def _scores(report: dict[str, Any]) -> bool:
    return all(_number(report.get(k)) for k in ("samples_f1", "micro_f1", "macro_f1"))


def save_classifier(folder: Path, info: ClassifierInfo, tensors: dict[str, Any]) -> None:
    info.weights = f"model-{info.version}.safetensors"
    meta = json.dumps({"format": FORMAT_VERSION, **info.__dict__}, indent=1, sort_keys=True)
    save_weights_and_metadata(Path(folder), "model", info.weights, tensors, meta)


def save_weights_and_metadata(folder: Path, stem: str, weights_name: str, tensors: dict[str, Any], meta: str) -> None:
    """Write the weights under a name of their own, then switch `STEM.json` to them.

    Renaming the JSON is the single commit point: a crash (or a full disk) at any moment leaves
    either the old pair or the new pair, never new weights under old metadata. Used for
    classifiers (`model`) and captioners (`captioner`).
    """
    from safetensors.torch import save_file

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with writing_beside(folder / weights_name) as weights_tmp, writing_beside(folder / f"{stem}.json") as meta_tmp:
            try:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(weights_tmp))
            except Exception as exc:  # SafetensorError is no OSError: a full disk said in its own words
                if not disk_full(exc):
                    raise
                raise ModelError(write_failure_message(folder, exc)) from exc
            _fsync(weights_tmp)
            os.chmod(weights_tmp, plain_file_mode())  # as model.json gets: a copied folder stays readable
            os.replace(weights_tmp, folder / weights_name)
            with open(meta_tmp, "w", encoding="utf-8") as handle:
                handle.write(meta)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(meta_tmp, folder / f"{stem}.json")
    except OSError as exc:
        raise ModelError(write_failure_message(folder, exc)) from exc
    for stale in folder.glob(f"{stem}*.safetensors"):
        if stale.name != weights_name:
            stale.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def read_info(folder: Path) -> ClassifierInfo:
    path = Path(folder) / "model.json"
    if not path.exists():
        found = sorted(p.name for p in Path(folder).glob("*")) if Path(folder).is_dir() else []
        hint = " (pickled models are refused; use safetensors)" if any(
            n.endswith((".pkl", ".pickle", ".pt", ".pth", ".ckpt")) for n in found) else ""
        raise ModelError(f"no Tagline model in {folder}: model.json is missing{hint}")
    meta = read_json_document(path, ModelError)
    if meta.pop("format", None) != FORMAT_VERSION:
        raise ModelError(f"{path} has an unknown format; this Tagline reads format {FORMAT_VERSION}")
    try:
        info = ClassifierInfo(**meta)
    except TypeError as exc:
        raise ModelError(f"{path} is incomplete: {exc}") from exc
    problem = _inconsistency(info)
    if problem:
        raise ModelError(f"{path} is not a valid Tagline model: {problem}")
    return info


MAX_JSON_BYTES = 16 << 20  # the shipped model.json is 20 KB; a vocabulary of 100,000 words is 2 MB
MAX_JSON_DEPTH = 32  # the deepest a Tagline model.json goes is 6


def read_json_document(path: Path, error: type[Exception]) -> dict[str, Any]:
    """A JSON object from a model folder's file, read with bounds: a regular file of at most 16 MB,
    nested at most 32 deep, an object at the top. `[]`, a document nested 100,000 deep or
    /dev/zero each used to end in an internal error (or in memory running out)."""
    from core.formats.bounded_read import read_bounded

    data = read_bounded(path, MAX_JSON_BYTES, lambda reason: error(f"{path}: {reason}"), what="model file")
    try:
        meta = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise error(f"{path} is nested too deeply to be a Tagline model file (at most {MAX_JSON_DEPTH} levels)") from None
    except ValueError as exc:  # UnicodeDecodeError is one
        raise error(f"{path} is not valid JSON: {exc}") from exc
    if _depth(meta) > MAX_JSON_DEPTH:
        raise error(f"{path} nests lists or objects more than {MAX_JSON_DEPTH} levels deep; a Tagline model file "
                    f"has at most {MAX_JSON_DEPTH}")
    if not isinstance(meta, dict):
        raise error(f"{path} must hold a JSON object ({{...}}), not {type(meta).__name__ if meta is not None else 'null'}")
    return meta


def _depth(value: Any) -> int:
    """How deep lists and objects nest, counted without recursion (a hostile file may go deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0


def type_problem(record: Any) -> str:
    """The first field of a dataclass whose value is not of its declared type, in words.

    Checks the outer type and the items of lists and dicts one level down, as JSON would give
    them (a whole number is a fine float; a bool is not a number).
    """
    import dataclasses
    import math
    import typing

    def fits(value: Any, kind: Any) -> bool:
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if kind is Any:
            return True
        if origin in (typing.Union, types.UnionType):
            return any(fits(value, a) for a in args)
        if kind is type(None):
            return value is None
        if kind is float:
            return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if origin is list:
            return isinstance(value, list) and all(fits(v, args[0]) for v in value)
        if origin is dict:
            return isinstance(value, dict) and all(fits(k, args[0]) and fits(v, args[1]) for k, v in value.items())
        return isinstance(value, kind)

    hints = typing.get_type_hints(type(record))
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if not fits(value, hints[item.name]):
            shown = json.dumps(value)[:60] if _jsonable(value) else repr(value)[:60]
            return f"{item.name} must be {_describe(hints[item.name])}, not {shown}"
    return ""


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _describe(kind: Any) -> str:
    import typing

    origin = typing.get_origin(kind)
    if origin is list:
        return f"a list of {_describe(typing.get_args(kind)[0])}s"
    if origin is dict:
        return "an object"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(kind))
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false",
            type(None): "null"}.get(kind, getattr(kind, "__name__", str(kind)))


def _inconsistency(info: ClassifierInfo) -> str:
    """What makes this metadata unusable, in words (empty when it is sound): model.json may
    come from anyone, and each of these used to end in a traceback."""
    problem = type_problem(info)
    if problem:
        return problem
    labels = info.labels
    if not isinstance(labels, list) or not labels or not all(isinstance(n, str) and n for n in labels):
        return "labels must be a non-empty list of names"
    if len(set(labels)) != len(labels):
        return "label names repeat"
    if not isinstance(info.ensemble, int) or isinstance(info.ensemble, bool) or not 1 <= info.ensemble <= 64:
        return f"ensemble must be a whole number from 1 to 64, not {info.ensemble!r}"
    if not isinstance(info.thresholds, list) or len(info.thresholds) != len(labels) or not all(map(_number, info.thresholds)):
        return f"thresholds must be {len(labels)} numbers between 0 and 1"
    if not _number(info.global_threshold):
        return f"global_threshold must be a number between 0 and 1, not {info.global_threshold!r}"
    if info.no_caption_thresholds and (len(info.no_caption_thresholds) != len(labels)
                                       or not all(map(_number, info.no_caption_thresholds))):
        return f"no_caption_thresholds must be empty or {len(labels)} numbers between 0 and 1"
    if info.threshold_mode not in ("global", "per_label"):
        return f"threshold_mode must be global or per_label, not {info.threshold_mode!r}"
    if info.members and len(info.members) != info.ensemble:
        return f"members lists {len(info.members)} heads but ensemble is {info.ensemble}"
    if any(not isinstance(m.get("head"), dict) or not _number(m.get("weight")) for m in info.members):
        return "each of members must hold a head object and a weight between 0 and 1"
    if info.generated_captions and (not _number(info.generated_captions.get("weight"))
                                    or not isinstance(info.generated_captions.get("thresholds"), list)
                                    or len(info.generated_captions["thresholds"]) != len(labels)
                                    or not all(map(_number, info.generated_captions["thresholds"]))):
        return f"generated_captions must hold a weight and {len(labels)} thresholds between 0 and 1"
    for head in [info.head, *(m["head"] for m in info.members)]:
        try:
            config = HeadConfig(**head)
        except TypeError as exc:
            return f"head: {exc}"
        problem = type_problem(config)
        if problem:
            return f"head: {problem}"
        if config.kind not in HEAD_KINDS:
            return f"head kind must be one of {', '.join(HEAD_KINDS)}, not {config.kind!r}"
        if config.num_labels != len(labels):
            return f"the head predicts {config.num_labels} labels but {len(labels)} are named"
        if not all(0 < v <= 1 << 16 for v in (config.image_dim, config.text_dim, config.hidden)) or config.words_dim < 0:
            return "head sizes must be whole numbers from 1 to 65536"
        if config.mention_dim != (len(labels) if info.name_mentions else 0) or config.sentence_dim() < 1:
            return "the head's mention_dim must equal the number of labels when name_mentions is set, else 0"
        if not all(0.0 <= p < 1.0 for p in (config.dropout, config.caption_dropout, config.image_dropout,
                                             config.text_dropout, config.second_dropout or 0.0)):
            return "head dropouts must be at least 0 and below 1"
    return ""


MAX_HEAD_PARAMETERS = 64_000_000  # 256 MB of float32 for the whole ensemble; the shipped one holds 7.2 million


def load_head_weights(folder: Path, info: ClassifierInfo) -> dict[str, Any]:
    """The ensemble's tensors, after their names and shapes are compared with the heads model.json
    describes (built on torch's meta device: nothing allocated) and their count bounded; a head
    size of 65,536 used to allocate 34 GB before the weights were looked at. Weights that are
    not finite (NaN or infinite) are refused here, naming the file."""
    path = Path(folder) / Path(info.weights).name
    if not path.is_file():
        raise ModelError(f"{path} is missing; the model folder is incomplete")
    from safetensors import safe_open
    from safetensors.torch import load_file

    expected = _expected_shapes(info)
    total = sum(int(np.prod(shape)) for shape in expected.values())
    if total > MAX_HEAD_PARAMETERS:
        raise ModelError(f"{path.parent / 'model.json'} describes heads of {total:,} numbers; Tagline loads at most "
                         f"{MAX_HEAD_PARAMETERS:,} (is its head's size right?)")
    try:
        with safe_open(str(path), framework="pt") as handle:  # reads the header only
            found = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelError(f"{path} is damaged: {exc}") from exc
    problem = _shape_problem(expected, found)
    if problem:
        raise ModelError(f"the weights in {path} do not match its model.json: {problem}")
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise ModelError(f"{path} is damaged: {exc}") from exc
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ModelError(f"{path} holds weights that are not numbers (NaN or infinite) in {key}: the model is "
                             f"damaged; train it again or use another model")
    return tensors


def _expected_shapes(info: ClassifierInfo) -> dict[str, tuple[int, ...]]:
    """Each member's state names and shapes as `m{member}.{name}`, from heads built on the meta device."""
    import torch

    from core.learn.fusion_head import create_head

    shapes: dict[str, tuple[int, ...]] = {}
    with torch.device("meta"):
        for member in range(info.ensemble):
            for name, tensor in create_head(head_config(info, member)).state_dict().items():
                shapes[f"m{member}.{name}"] = tuple(tensor.shape)
    return shapes


def _shape_problem(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> str:
    """Every tensor the heads need, of its shape, and nothing else (an extra tensor of any name
    would be loaded too: a hostile file could carry gigabytes beside the heads)."""
    missing = sorted(set(expected) - set(found))
    if missing:
        return f"{len(missing)} tensors missing (first {missing[0]})"
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        return f"{len(unexpected)} tensors not in the head it describes (first {unexpected[0]})"
    for key, shape in expected.items():
        if found[key] != shape:
            return f"{key} is {list(found[key])} in the file but the head needs {list(shape)}"
    return ""


def head_config(info: ClassifierInfo, member: int = 0) -> HeadConfig:
    if info.members:
        return HeadConfig(**info.members[member]["head"])
    return HeadConfig(**info.head)


def default_model_dir() -> Path:
    """The model shipped with Tagline: `models/default` beside the packages, read-only."""
    override = os.environ.get("TAGLINE_DEFAULT_MODEL")
    if override:
        return Path(override)
    import core

    return Path(str(resources.files(core))).parent / "models" / "default"
