"""Refining a model the project already has with the person's confirmations, instead of
replacing it.

A model trained on 13,483 photos is not beaten by one trained on the person's 25 (issue 32
measured -15 points), so the new model keeps the old one inside it: its probabilities, turned
back into logits, get a per-label correction (a scale and a shift, and optionally a linear term
over the inputs) that is pulled towards "no change" and fitted with the loss the old model was
trained with, so its thresholds keep their meaning. Which correction (if any) is chosen by
cross-validation on the confirmed photos; "no change" wins ties. Labels the old model does not
know are learnt from the photos confirmed for them by the capacity ladder (`core.learn.ladder`)
and carried beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.errors import TaglineError
from core.learn.caption_words import name_mentions
from core.learn.fusion_head import HeadConfig, create_head, create_linear_head
from core.learn.ladder import assign_folds, train_small
from core.learn.metrics import decide, samples_f1, thresholds_by_row
from core.learn.training import TrainingData, input_statistics, predict_heads
from core.progress import CancelToken, Job, Progress


@dataclass(frozen=True)
class Correction:
    """How the old model's logits are corrected: `prior` is how many photos "no change" is worth
    against the person's (inf: kept as it is); `residual` > 0 adds a linear term over the inputs
    with that L2 strength."""

    name: str
    prior: float
    residual: float = 0.0


KEEP = Correction("keep", math.inf)
# The shifts measured on validation (docs/benchmarks.md); a linear term over the inputs as well ("shift 25 +
# linear", 0.3) scored below "keep" out of fold at 500 photos and is left out (Correction supports it).
CORRECTIONS = (KEEP, Correction("shift 100", 100.0), Correction("shift 25", 25.0), Correction("shift 5", 5.0))
# A correction must beat "keep" out of fold by more than a point: on validation the folds' gains of up to half a
# point were noise (every correction chosen by them lost 0.1-0.4 points on unseen photos), while a person who
# labels differently from the old model shows gains of several points (tests/test_refine.py).
MARGIN = 0.01


@dataclass
class BaseModel:
    """The model refined: its members and how it decides."""

    heads: list[Any]
    members: list[dict[str, Any]]  # {"head": config, "weight": w} per member, saved inside the new model
    labels: list[str]
    thresholds: np.ndarray  # per label, photos with a caption
    no_caption: np.ndarray  # per label, photos without one
    top1_fallback: bool
    loss: str = "asymmetric"  # the loss it was trained with
    version: str = ""
    generated_weight: float = 1.0  # how far it trusts a generated caption against the photo alone (1: as typed)

    def probabilities(self, image: np.ndarray, text: np.ndarray, has_caption: np.ndarray,
                      generated: np.ndarray | None = None) -> np.ndarray:
        """The old model's probabilities; `text` may carry columns after the sentence embedding.
        Rows whose caption a captioner wrote are weighed against the photo alone, as the old
        model does when it classifies them (`core.tagging.classifier.Classifier.predict`)."""
        sentence = HeadConfig(**self.members[0]["head"]).sentence_dim()
        probabilities = predict_heads(self.heads, image, text[:, :sentence], has_caption)
        rows = np.zeros(len(image), bool) if generated is None else np.asarray(generated, bool)
        if rows.any() and self.generated_weight < 1:
            alone = predict_heads(self.heads, image[rows], np.zeros_like(text[rows, :sentence]),
                                  np.zeros(int(rows.sum()), np.float32))
            probabilities[rows] = self.generated_weight * probabilities[rows] + (1 - self.generated_weight) * alone
        return probabilities

    def row_thresholds(self, has_caption: np.ndarray) -> np.ndarray:
        return thresholds_by_row(self.thresholds, self.no_caption, has_caption)


def refinable(configs: list[dict[str, Any]]) -> bool:
    """Members that read the photo and the sentence embedding alone can be carried inside a new
    model (caption words or name mentions would need columns the new model lays out otherwise)."""
    try:
        heads = [HeadConfig(**c) for c in configs]
    except TypeError:
        return False
    return bool(heads) and all(h.kind in ("mlp", "linear") and not h.words_dim and not h.mention_dim for h in heads)


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p) - np.log1p(-p), np.float32)


def cell_loss(kind: str, logits: Any, y: Any) -> Any:
    """The old model's training loss per photo and label (`core.learn.training.make_loss`'s formulas)."""
    import torch

    if kind == "asymmetric":
        p = torch.sigmoid(logits)
        p_neg = (p - 0.05).clamp(min=0)
        return -(y * torch.log(p.clamp(min=1e-8)) + (1 - y) * p_neg**4 * torch.log((1 - p_neg).clamp(min=1e-8)))
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")


@dataclass
class FittedCorrection:
    scale: np.ndarray
    shift: np.ndarray
    residual: Any | None = None  # a linear head (core.learn.fusion_head) over the inputs, or None

    def apply(self, z: np.ndarray, image: np.ndarray, sentence: np.ndarray, has_caption: np.ndarray) -> np.ndarray:
        out = z * self.scale + self.shift
        if self.residual is not None:
            import torch

            with torch.inference_mode():
                extra = self.residual(*(torch.from_numpy(np.ascontiguousarray(a, np.float32))
                                        for a in (image, sentence, has_caption)))
            out = out + extra.numpy()
        return np.asarray(out, np.float32)


def fit_correction(z: np.ndarray, y: np.ndarray, known: np.ndarray, loss: str, correction: Correction,
                   image: np.ndarray | None = None, sentence: np.ndarray | None = None,
                   has_caption: np.ndarray | None = None) -> FittedCorrection:
    """Fit the correction on these rows (full-batch L-BFGS; `known` masks undecided cells)."""
    labels = z.shape[1]
    if math.isinf(correction.prior) or not known.any():
        return FittedCorrection(np.ones(labels, np.float32), np.zeros(labels, np.float32))
    import torch

    zt, yt, mt = (torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in (z, y, known))
    scale = torch.nn.Parameter(torch.ones(labels))
    shift = torch.nn.Parameter(torch.zeros(labels))
    parameters = [scale, shift]
    residual, features = None, None
    if correction.residual > 0 and image is not None and sentence is not None and has_caption is not None:
        residual = create_linear_head(HeadConfig(image.shape[1], sentence.shape[1], labels, kind="linear"))
        inputs = [torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in (image, sentence, has_caption)]
        with torch.no_grad():
            statistics = input_statistics(inputs[0], inputs[1], inputs[2], sentence.shape[1])
            for buffer, value in zip((residual.image_mean, residual.image_std, residual.text_mean, residual.text_std),
                                     statistics):
                buffer.copy_(value)
            residual.linear.weight.zero_()
            residual.linear.bias.zero_()
            features = residual.features(*inputs)
        parameters += [residual.linear.weight, residual.linear.bias]
    rows = max(len(z), 1)
    pull = correction.prior / rows

    def closure() -> torch.Tensor:
        for parameter in parameters:
            parameter.grad = None
        logits = zt * scale + shift
        if residual is not None and features is not None:
            logits = logits + residual.linear(features)
        total = (cell_loss(loss, logits, yt) * mt).sum() / rows
        total = total + pull * ((scale - 1).pow(2).sum() + shift.pow(2).sum())
        if residual is not None:
            total = total + correction.residual * residual.linear.weight.pow(2).sum() / 2
        total.backward()
        return total

    torch.optim.LBFGS(parameters, lr=1, max_iter=60, history_size=10, line_search_fn="strong_wolfe",
                      tolerance_change=1e-7).step(closure)
    return FittedCorrection(scale.detach().numpy().copy(), shift.detach().numpy().copy(),
                            residual.eval() if residual is not None else None)


@dataclass
class CorrectionChoice:
    chosen: Correction
    scores: dict[str, float]  # every candidate's out-of-fold samples F1 on the old labels
    oof: np.ndarray  # the chosen candidate's out-of-fold probabilities
    folds: np.ndarray


def choose_correction(base: BaseModel, z: np.ndarray, data: TrainingData, rows: np.ndarray, targets: np.ndarray,
                      known: np.ndarray, candidates: tuple[Correction, ...] = CORRECTIONS, k: int = 5,
                      seed: int = 0, margin: float = MARGIN) -> CorrectionChoice:
    """Score each correction out of fold on `rows` (the old model's own thresholds and fallback),
    keep the best; "keep" unless another beats it by more than `margin`."""
    sentence_dim = HeadConfig(**base.members[0]["head"]).sentence_dim()
    image, sentence, flag = data.image[rows], data.text[rows, :sentence_dim], data.has_caption[rows]
    k = int(min(k, len(rows)))
    folds = assign_folds(targets, max(k, 2), seed) if len(rows) >= 2 else np.zeros(len(rows), np.int64)
    thresholds = base.row_thresholds(flag)
    truth = targets.astype(bool)
    scores: dict[str, float] = {}
    found: dict[str, np.ndarray] = {}
    for candidate in candidates:
        oof = np.zeros(z.shape, np.float32)
        if math.isinf(candidate.prior) or len(rows) < 2:
            oof = 1 / (1 + np.exp(-z))
        else:
            for fold in range(int(folds.max()) + 1):
                train, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
                fitted = fit_correction(z[train], targets[train], known[train], base.loss, candidate,
                                        image[train], sentence[train], flag[train])
                oof[held] = 1 / (1 + np.exp(-fitted.apply(z[held], image[held], sentence[held], flag[held])))
        scores[candidate.name] = samples_f1(truth, decide(oof, thresholds, base.top1_fallback) & known.astype(bool))
        found[candidate.name] = oof
    best = KEEP if KEEP in candidates else candidates[0]
    for candidate in candidates:
        if scores[candidate.name] > scores[best.name] + (margin if best is KEEP else 0.0):
            best = candidate
    return CorrectionChoice(best, scores, found[best.name], folds)


@dataclass
class Refined:
    """A refined model: the composite head and how it decides, with its out-of-fold scores."""

    head: Any
    labels: list[str]  # the old model's labels, then the new ones
    thresholds: np.ndarray
    no_caption: np.ndarray
    top1_fallback: bool
    mentions: bool  # the new labels read whether the caption names them
    oof: np.ndarray  # out-of-fold probabilities, (rows of the data, labels); NaN where not scored
    fold_of: np.ndarray  # each row's fold (-1: in none)
    report: dict[str, Any] = field(default_factory=dict)


def refine(data: TrainingData, base: BaseModel, decided: np.ndarray | None = None, seed: int = 0,
           cancel: CancelToken | None = None, candidates: tuple[Correction, ...] = CORRECTIONS,
           margin: float = MARGIN, generated: np.ndarray | None = None) -> Job[Refined]:
    """The old model corrected on the photos decided for its labels, and the labels it does not
    know learnt from the photos decided for them. `data` holds the project's labels (sentence
    embedding only on the caption side; `label_text` the names embedded); `decided` marks which
    cells the person decided (all of them when None); `generated` the rows whose caption a captioner
    wrote (the old model weighs them as it does when classifying; the new labels learn from them)."""
    decided = np.ones(data.targets.shape, bool) if decided is None else decided.astype(bool)
    column = {name: j for j, name in enumerate(data.labels)}
    # a label the old model does not know is learnt where the person decided it on two photos or more
    new_labels = [name for name in data.labels if name not in base.labels and decided[:, column[name]].sum() >= 2]
    unlearnt = [name for name in data.labels if name not in base.labels and name not in new_labels]
    labels = list(base.labels) + new_labels
    n, n_base = len(data.targets), len(base.labels)
    # the old labels: their targets where the project has them, unknown where it does not
    targets = np.zeros((n, n_base), bool)
    known = np.zeros((n, n_base), bool)
    for j, name in enumerate(base.labels):
        if name in column:
            targets[:, j] = data.targets[:, column[name]]
            known[:, j] = decided[:, column[name]]
    base_rows = np.flatnonzero(known.any(axis=1))
    yield Progress("refine", 0, 2, message=f"correcting model {base.version or 'in use'} on {len(base_rows)} photos")
    probabilities = base.probabilities(data.image, data.text, data.has_caption, generated)
    z = logits_of(probabilities)
    with one_thread():
        choice = choose_correction(base, z[base_rows], data, base_rows, targets[base_rows], known[base_rows],
                                   candidates, seed=seed, margin=margin)
        sentence_dim = HeadConfig(**base.members[0]["head"]).sentence_dim()
        fitted = fit_correction(z[base_rows], targets[base_rows], known[base_rows], base.loss, choice.chosen,
                                data.image[base_rows], data.text[base_rows, :sentence_dim], data.has_caption[base_rows])
    oof = np.full((n, len(labels)), np.nan, np.float32)
    oof[base_rows, :n_base] = choice.oof
    fold_of = np.full(n, -1, np.int64)
    fold_of[base_rows] = choice.folds
    report: dict[str, Any] = {"base": base.version, "correction": choice.chosen.name, "photos": int(len(base_rows)),
                              "scores": choice.scores, "unlearnt": unlearnt}
    thresholds, no_caption = list(base.thresholds), list(base.no_caption)
    extra_heads: list[Any] = []
    mentions = False
    if new_labels:
        if cancel is not None:
            cancel.raise_if_cancelled()
        new_columns = [column[name] for name in new_labels]
        new_rows = np.flatnonzero(decided[:, new_columns].all(axis=1))
        if len(new_rows) < 2:
            raise TaglineError(f"confirm at least two photos with all of {', '.join(new_labels)} decided to learn them")
        sub = new_label_data(data, new_rows, new_columns)
        mentions = sub.mention_dim > 0
        with one_thread():  # small batches of a few photos: the same, and no waiting on busy cores
            trained, ladder = yield from train_small(sub, seed=seed, cancel=cancel)
        extra_heads = trained.heads
        oof[new_rows, n_base:] = ladder.oof
        unfolded = fold_of[new_rows] < 0
        fold_of[new_rows[unfolded]] = np.asarray(ladder.fold_of)[unfolded]
        thresholds += [ladder.threshold] * len(new_labels)
        no_caption += [ladder.threshold] * len(new_labels)
        report["new_labels"] = {"labels": new_labels, "photos": int(len(new_rows)), **ladder.as_dict()}
    head = assemble(base, fitted, extra_heads, data.image.shape[1], sentence_dim, len(labels), mentions)
    yield Progress("refine", 2, 2, message=f"kept model {base.version or 'in use'} with {choice.chosen.name}")
    return Refined(head, labels, np.asarray(thresholds, np.float32), np.asarray(no_caption, np.float32),
                   base.top1_fallback, mentions, oof, fold_of, report)


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread for the corrections' many tiny operations: on two busy cores its thread
    pool made each one cost a millisecond (a profile: 55 s for 200 photos instead of a few)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def new_label_data(data: TrainingData, rows: np.ndarray, columns: list[int]) -> TrainingData:
    """The rows decided for the new labels, with only those labels (and their names' columns)."""
    sub = replace(data, image=data.image[rows], text=data.text[rows], has_caption=data.has_caption[rows],
                  targets=data.targets[rows][:, columns], labels=[data.labels[c] for c in columns],
                  captions=[data.captions[i] for i in rows] if data.captions else [],
                  label_text=None if data.label_text is None else data.label_text[columns],
                  label_prior=None if data.label_prior is None else data.label_prior.subset(columns))
    if sub.label_text is None or len(sub.captions) != len(rows):
        return sub
    found = name_mentions(sub.captions, sub.labels)
    return replace(sub, text=np.concatenate([sub.text, found], axis=1), mention_dim=len(sub.labels))


def member_specs(heads: list[Any]) -> list[dict[str, Any]]:
    return [{"head": h.config.as_dict(), "weight": float(getattr(h, "ensemble_weight", 1.0))} for h in heads]


def assemble(base: BaseModel, fitted: FittedCorrection, extra: list[Any], image_dim: int, sentence_dim: int,
             labels: int, mentions: bool) -> Any:
    """The composite head with the old model's members, the correction and the new labels' heads."""
    import torch

    config = HeadConfig(image_dim, sentence_dim + (labels if mentions else 0), labels, kind="refined",
                        mention_dim=labels if mentions else 0, base=base.members, extra=member_specs(extra),
                        residual=fitted.residual is not None)
    head = create_head(config)
    state = {f"base.{m}.{key}": value for m, h in enumerate(base.heads) for key, value in h.state_dict().items()}
    state |= {f"extra.{m}.{key}": value for m, h in enumerate(extra) for key, value in h.state_dict().items()}
    state |= {"scale": torch.from_numpy(fitted.scale), "shift": torch.from_numpy(fitted.shift)}
    if fitted.residual is not None:
        state |= {f"residual.{key}": value for key, value in fitted.residual.state_dict().items()}
    state |= {key: value for key, value in head.state_dict().items() if key.endswith("_weights")}
    head.load_state_dict(state)
    return head.eval()


def create_refined_head(config: HeadConfig) -> Any:
    """The composite: the old members' weighted mean probability as a logit, corrected per label,
    then the new labels' members (each reads the sentence and the new labels' mention columns)."""
    import torch
    from torch import nn

    n_base = HeadConfig(**config.base[0]["head"]).num_labels if config.base else 0
    sentence_dim = config.sentence_dim()

    def members(specs: list[dict[str, Any]]) -> tuple[Any, Any]:
        heads = nn.ModuleList(create_head(HeadConfig(**spec["head"])) for spec in specs)
        weights = torch.tensor([float(spec["weight"]) for spec in specs], dtype=torch.float32)
        return heads, weights / weights.sum().clamp(min=1e-12)

    def mean_logit(heads: Any, weights: torch.Tensor, image: torch.Tensor, text: torch.Tensor,
                   flag: torch.Tensor) -> torch.Tensor:
        total = torch.stack([torch.sigmoid(h(image, text, flag)) for h in heads])
        p = (total * weights.view(-1, 1, 1)).sum(0).clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)

    class RefinedHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.base, base_weights = members(config.base)
            self.extra, extra_weights = members(config.extra)
            self.register_buffer("base_weights", base_weights)
            self.register_buffer("extra_weights", extra_weights)
            self.scale = nn.Parameter(torch.ones(n_base))
            self.shift = nn.Parameter(torch.zeros(n_base))
            if config.residual:
                self.residual = create_linear_head(HeadConfig(config.image_dim, sentence_dim, n_base, kind="linear"))

        def forward(self, image: torch.Tensor, text: torch.Tensor, has_caption: torch.Tensor,
                    words: torch.Tensor | None = None) -> torch.Tensor:
            sentence = text[:, :sentence_dim]
            z = mean_logit(self.base, self.get_buffer("base_weights"), image, sentence, has_caption)
            z = z * self.scale + self.shift
            if config.residual:
                z = z + self.residual(image, sentence, has_caption)
            if not len(self.extra):
                return z
            extra_text = torch.cat([sentence, text[:, sentence_dim + n_base:]], dim=1) if config.mention_dim else sentence
            extra = mean_logit(self.extra, self.get_buffer("extra_weights"), image, extra_text, has_caption)
            return torch.cat([z, extra], dim=1)

    return RefinedHead()


def refined_parts(head: Any) -> tuple[list[Any], list[dict[str, Any]]] | None:
    """The old model inside a refined head (its members and their specs), so a later retrain
    refines that model again with every confirmation rather than a refinement of a refinement."""
    config = getattr(head, "config", None)
    if config is None or config.kind != "refined":
        return None
    return list(head.base), list(config.base)


def out_of_fold_score(truth: np.ndarray, oof: np.ndarray, thresholds: np.ndarray, fallback: bool,
                      folds: np.ndarray) -> tuple[float, float]:
    """Samples F1 of out-of-fold decisions, pooled, and its spread over the folds."""
    predicted = decide(oof, thresholds, fallback)
    per_fold = [samples_f1(truth[folds == f], predicted[folds == f]) for f in np.unique(folds)]
    return samples_f1(truth, predicted), float(np.std(per_fold)) if per_fold else 0.0
