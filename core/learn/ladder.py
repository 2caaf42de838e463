"""Training sized to the data it gets: a capacity ladder chosen by k-fold cross-validation.

With a few hundred labelled photos a fixed held-out part throws labels away and one recipe
either underfits or overfits, so every rung (a logistic regression at several strengths, the
fused MLP ensemble) is scored out of fold on all the person's photos, the best rung and its
threshold are kept, and the final model is refitted on every labelled photo. The score the
person sees is the cross-validated one, with its spread over the folds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.errors import TaglineError
from core.learn.batched import can_batch, train_members
from core.learn.fusion_head import HeadConfig, create_linear_head
from core.learn.metrics import best_global_threshold, decide, evaluate, samples_f1
from core.learn.training import TrainConfig, TrainedHead, TrainingData, input_statistics, make_loss, predict_heads, train_head
from core.progress import CancelToken, Job, Progress

CV_LIMIT = 3000  # below this many labelled photos, cross-validate on all of them
BLEND_BELOW = 100  # below this many photos the blend is kept whatever the folds say (choosing between rungs is noise there)
RARE = 3  # a label with fewer positives than this is reported as too rare to learn reliably
# Below BLEND_BELOW photos, labels with a zero-shot prior (core.learn.label_prior) are learnt by the linear rung
# alone: the MLP cannot read the prior, and averaging with it halved what the prior gave (bench_label_prior).
PRIOR_LINEAR_ONLY = True
PRIOR_STRENGTHS: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


@dataclass(frozen=True)
class Rung:
    name: str
    kind: str  # "linear", "mlp", or "blend" (the average of `parts`)
    l2: float = 0.0  # linear: penalty on the squared weights, per photo
    config: TrainConfig | None = None  # mlp: how it is trained
    parts: tuple[Rung, ...] = ()  # blend: the rungs averaged, weighed alike


@dataclass
class LadderReport:
    chosen: str
    folds: int
    cv_samples_f1: float  # out of fold, at the chosen threshold, all photos pooled
    cv_spread: float  # standard deviation of the per-fold scores
    threshold: float
    top1_fallback: bool
    scores: dict[str, float] = field(default_factory=dict)  # every rung's out-of-fold samples F1
    rare_labels: list[str] = field(default_factory=list)
    fused: dict[str, object] = field(default_factory=dict)  # the chosen rung's out-of-fold report (core.learn.metrics)
    oof: np.ndarray | None = field(default=None, repr=False)  # the chosen rung's out-of-fold probabilities (not saved)
    fold_of: np.ndarray | None = field(default=None, repr=False)  # each photo's fold (not saved)

    def as_dict(self) -> dict[str, object]:
        return {key: value for key, value in self.__dict__.items() if key not in ("oof", "fold_of")}


def mlp_config(n: int, seed: int = 0) -> TrainConfig:
    """The well-regularised fused MLP (the default model's recipe), narrow and with about 150
    optimiser steps: on 200-500 photos that scored as well out of fold as 384 wide and 300 steps
    (set b: better) in a third of the time (docs/benchmarks.md)."""
    batch = int(np.clip(n // 8, 16, 512))
    epochs = int(np.clip(round(150 * batch / max(n, 1)), 10, 60))
    return TrainConfig(max_epochs=epochs, batch_size=batch, hidden=64 if n < 1000 else 256, caption_words=False,
                       standardise_text=True, image_dropout=0.2, text_dropout=0.2, dropout=0.4, second_dropout=0.4,
                       weight_decay=0.05, ensemble=1, seed=seed)


def default_rungs(n: int, seed: int = 0, prior: bool = False) -> list[Rung]:
    """The linear rung at four strengths and the MLP; with a zero-shot prior, stronger strengths
    too, up to weights so small that the label is ranked by its name alone (the folds choose)."""
    strengths = (1e-3, 3e-3, 1e-2, 3e-2) + (PRIOR_STRENGTHS if prior else ())
    rungs = [Rung(f"linear l2={l2:g}", "linear", l2=l2) for l2 in strengths]
    return rungs + [Rung("mlp", "mlp", config=mlp_config(n, seed))]


def assign_folds(targets: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold of each photo; photos are dealt round-robin in order of their rarest label, so a
    label with k or more photos has one in every fold."""
    rng = np.random.default_rng(seed)
    counts = targets.sum(axis=0)
    rarity = np.where(targets, counts[None, :], np.inf).min(axis=1)  # photos with no label come last
    order = np.lexsort((rng.random(len(targets)), rarity))
    folds = np.empty(len(targets), np.int64)
    folds[order] = np.arange(len(targets)) % k
    return folds


def fit_linear(data: TrainingData, idx: np.ndarray, l2: float, max_iter: int = 100) -> Any:
    """A logistic regression per label over the standardised inputs (see `fit_linear_path`)."""
    return fit_linear_path(data, idx, [l2], max_iter)[0]


def fit_linear_path(data: TrainingData, idx: np.ndarray, strengths: list[float], max_iter: int = 100,
                    later_iter: int = 40) -> list[Any]:
    """Logistic regressions per label over the standardised inputs of the rows `idx`, one head per
    L2 strength (penalty on the squared weights, per photo), by full-batch L-BFGS (positives
    weighted as the MLP's loss weighs them). Along the strengths, in the order given (strongest
    first is best), each fit starts where the previous one ended, so it needs a fraction of the
    iterations, and the inputs' statistics and decomposition are computed once for them all.

    With fewer photos than inputs (a person's first few hundred photos against 3,329 columns) the
    weights are searched in the photos' span through the thin SVD of the inputs: the same
    penalised objective (an L2-penalised linear model's optimum lies in that span) and the same
    conditioning, with n x n arithmetic instead of n x 3,329."""
    import torch

    image, text, flag, y = (torch.from_numpy(np.ascontiguousarray(a[idx], dtype=np.float32))
                            for a in (data.image, data.text, data.has_caption, data.targets))
    named = data.label_text is not None
    prior = data.label_prior
    config = HeadConfig(data.image.shape[1], data.text.shape[1], len(data.labels), kind="linear",
                        words_dim=data.words_dim, name_prior=named, mention_dim=data.mention_dim,
                        prior_dim=prior.dim if prior is not None else 0)
    head = create_linear_head(config)
    zero_shot = None
    with torch.no_grad():
        if prior is not None:  # standardised over the project's photos (else these); the scale starts where validation put it
            mean, std = prior.statistics(data.image[idx])
            for name, value in (("align_weight", prior.image_weight), ("align_bias", prior.image_bias),
                                ("label_prompts", prior.prompts), ("prior_mean", mean), ("prior_std", std)):
                head.get_buffer(name).copy_(torch.from_numpy(np.asarray(value, np.float32)))
            head.prior_scale.fill_(prior.weight)
            zero_shot = head.zero_shot(image)
        for buffer, value in zip((head.image_mean, head.image_std, head.text_mean, head.text_std),
                                 input_statistics(image, text, flag, text.shape[1])):
            buffer.copy_(value)
        mentioned = slice(config.sentence_dim(), config.sentence_dim() + config.mention_dim)
        head.text_mean[mentioned] = 0.0  # name mentions stay 0 / 1: their own shared scale reads them
        head.text_std[mentioned] = 1.0
        if named:
            head.label_text.copy_(torch.from_numpy(np.asarray(data.label_text, np.float32)))
        features = head.features(image, text, flag)
        closeness = head.name_closeness(text, flag) if named else None
        mentions = head.mentions(text, flag) if config.mention_dim else None
    vt = None
    if len(idx) < features.shape[1]:  # features = U S V^T; the weights W = B V^T, so |W| = |B| and X W^T = (U S) B^T
        u, singular, vt = torch.linalg.svd(features, full_matrices=False)
        features = u * singular
    start = head.linear.weight.detach()
    coef = torch.nn.Parameter(start @ vt.T if vt is not None else start.clone())  # the start, in the photos' span
    parameters = [coef, head.linear.bias, *([head.name_scale] if named else []),
                  *([head.mention_scale] if mentions is not None else []),
                  *([head.prior_scale] if zero_shot is not None else [])]
    loss_fn = make_loss("weighted_bce", data.targets[idx])
    strength = [0.0]

    def closure() -> torch.Tensor:
        for parameter in parameters:
            parameter.grad = None
        logits = features @ coef.T + head.linear.bias
        if closeness is not None:
            logits = logits + head.name_scale * closeness
        if mentions is not None:
            logits = logits + head.mention_scale * mentions
        if zero_shot is not None:
            logits = logits + head.prior_scale * zero_shot
        loss = loss_fn(logits, y) + strength[0] * coef.pow(2).sum() / 2
        if zero_shot is not None and prior is not None:  # the scale is pulled back to its start
            loss = loss + prior.worth / len(idx) * (head.prior_scale - prior.weight).pow(2)
        loss.backward()
        return loss

    heads: list[Any] = []
    for number, l2 in enumerate(strengths):
        strength[0] = l2
        torch.optim.LBFGS(parameters, lr=1, max_iter=max_iter if number == 0 else later_iter, history_size=10,
                          line_search_fn="strong_wolfe", tolerance_change=1e-7).step(closure)
        fitted = create_linear_head(config)
        fitted.load_state_dict(head.state_dict())
        with torch.no_grad():
            fitted.linear.weight.copy_(coef @ vt if vt is not None else coef)
        heads.append(fitted.eval())
    return heads


def fit_rung(data: TrainingData, idx: np.ndarray, rung: Rung, ensemble: int = 1,
             cancel: CancelToken | None = None) -> Job[list[Any]]:
    """Heads of one rung fitted on the rows `idx` (a blend's heads carry their `ensemble_weight`)."""
    if rung.kind == "blend":
        heads: list[Any] = []
        for part in rung.parts:
            fitted = yield from fit_rung(data, idx, part, ensemble, cancel)
            for head in fitted:
                head.ensemble_weight = 1.0 / (len(rung.parts) * len(fitted))
            heads += fitted
        return heads
    if rung.kind == "linear":
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield Progress("train", 0, 1, message=f"fitting {rung.name}")
        return [fit_linear(data, idx, rung.l2)]
    assert rung.config is not None
    if can_batch(data, rung.config):  # the ensemble's members trained together
        seeds = [rung.config.seed + member for member in range(ensemble)]
        return (yield from train_members(data, [idx] * ensemble, rung.config, seeds, cancel))
    trained = yield from train_head(data, idx, np.zeros(0, np.int64), replace(rung.config, ensemble=ensemble), cancel)
    return trained.heads


def _oof_linear_path(data: TrainingData, folds: np.ndarray, rungs: list[Rung],
                     cancel: CancelToken | None) -> Job[dict[str, np.ndarray]]:
    """Out-of-fold probabilities of every linear rung; in each fold the strengths are fitted from
    the strongest down, each starting where the previous one ended (a regularisation path)."""
    probs = {rung.name: np.zeros(data.targets.shape, np.float32) for rung in rungs}
    ordered = sorted(rungs, key=lambda r: -r.l2)
    for fold in range(int(folds.max()) + 1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield Progress("cross-validate", fold, int(folds.max()) + 1, message=f"linear rungs, fold {fold + 1}")
        train, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        heads = fit_linear_path(data, train, [rung.l2 for rung in ordered])
        for rung, head in zip(ordered, heads):
            probs[rung.name][held] = predict_heads([head], data.image[held], data.text[held], data.has_caption[held])
    return probs


def _oof(data: TrainingData, folds: np.ndarray, rung: Rung, cancel: CancelToken | None) -> Job[np.ndarray]:
    probs = np.zeros(data.targets.shape, np.float32)
    k = int(folds.max()) + 1
    if rung.kind == "mlp" and rung.config is not None and can_batch(data, rung.config):  # every fold's model at once
        rows = [np.flatnonzero(folds != fold) for fold in range(k)]
        heads = yield from train_members(data, rows, rung.config, [rung.config.seed] * k, cancel)
        for fold, head in enumerate(heads):
            held = np.flatnonzero(folds == fold)
            probs[held] = predict_heads([head], data.image[held], data.text[held], data.has_caption[held])
        return probs
    for fold in range(k):
        train, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        heads = yield from fit_rung(data, train, rung, cancel=cancel)
        probs[held] = predict_heads(heads, data.image[held], data.text[held], data.has_caption[held])
    return probs


def cross_validate(data: TrainingData, rungs: list[Rung] | None = None, k: int = 5, seed: int = 0,
                   cancel: CancelToken | None = None) -> Job[tuple[Rung, LadderReport]]:
    """Score each rung out of fold and choose the rung, the global threshold and whether the
    most likely label is given to a photo where none passes (every choice on the folds)."""
    n = len(data.targets)
    k = int(min(k, n))
    if k < 2:
        raise TaglineError(f"{n} photo has a confirmed label; confirm at least two to train")
    prior = data.label_prior is not None
    linear_only = PRIOR_LINEAR_ONLY and prior and n < BLEND_BELOW
    rungs = rungs or [r for r in default_rungs(n, seed, prior) if not (linear_only and r.kind == "mlp")]
    folds = assign_folds(data.targets, k, seed)
    truth = data.targets.astype(bool)
    scores: dict[str, float] = {}  # every candidate's out-of-fold samples F1, with and without fallback
    found: dict[str, tuple[float, Rung, float, bool, np.ndarray]] = {}  # the best of each kind

    def consider(rung: Rung, probs: np.ndarray) -> None:
        for fallback in (True, False):
            threshold, score = best_global_threshold(truth, probs, fallback)
            scores[f"{rung.name}{'' if fallback else ' (no fallback)'}"] = score
            if rung.kind not in found or score > found[rung.kind][0] + 1e-9:
                found[rung.kind] = (score, rung, threshold, fallback, probs)

    linear_rungs = [rung for rung in rungs if rung.kind == "linear"]
    if linear_rungs:
        path = yield from _oof_linear_path(data, folds, linear_rungs, cancel)
        # with a prior, ties go to the strongest penalty: the folds of a few photos often cannot tell the
        # strengths apart, and then the name's ranking, which the weakest would drown, is the better guess
        for rung in sorted(linear_rungs, key=lambda r: -r.l2) if prior else linear_rungs:
            consider(rung, path[rung.name])
    for rung in (r for r in rungs if r.kind != "linear"):
        yield Progress("cross-validate", 0, 1, message=f"cross-validating {rung.name}")
        consider(rung, (yield from _oof(data, folds, rung, cancel)))
    if "linear" in found and "mlp" in found:  # the two kinds averaged: steadier than either on few photos
        linear, mlp = found["linear"], found["mlp"]
        consider(Rung(f"blend of {linear[1].name} and mlp", "blend", parts=(linear[1], mlp[1])), (linear[4] + mlp[4]) / 2)
    best = max(found.values(), key=lambda candidate: candidate[0])
    if n < BLEND_BELOW and "blend" in found:
        best = found["blend"]
    score, rung, threshold, fallback, probs = best
    per_fold = [samples_f1(truth[folds == f], decide(probs[folds == f], threshold, fallback)) for f in range(k)]
    counts = data.targets.sum(axis=0)
    report = LadderReport(
        chosen=rung.name, folds=k, cv_samples_f1=score, cv_spread=float(np.std(per_fold)), threshold=threshold,
        top1_fallback=fallback, scores=scores, rare_labels=[name for name, c in zip(data.labels, counts) if c < RARE],
        fused=evaluate(truth, decide(probs, threshold, fallback), data.labels).as_dict(), oof=probs, fold_of=folds,
    )
    yield Progress("cross-validate", len(rungs), len(rungs), message=f"chose {rung.name}: {score:.3f}")
    return rung, report


def train_small(data: TrainingData, seed: int = 0, cancel: CancelToken | None = None,
                rungs: list[Rung] | None = None, ensemble: int = 3) -> Job[tuple[TrainedHead, LadderReport]]:
    """Cross-validate the ladder, then refit the chosen rung on every labelled photo."""
    started = time.perf_counter()
    rung, report = yield from cross_validate(data, rungs, seed=seed, cancel=cancel)
    heads = yield from fit_rung(data, np.arange(len(data.targets)), rung, ensemble if rung.kind == "mlp" else 1, cancel)
    thresholds = np.full(len(data.labels), report.threshold, np.float32)
    trained = TrainedHead(
        heads=heads, config=heads[0].config, global_threshold=report.threshold, thresholds=thresholds,
        threshold_mode="global",
        validation={"cross_validated_samples_f1": report.cv_samples_f1, "cross_validated_spread": report.cv_spread,
                    "folds": report.folds, "seconds": time.perf_counter() - started},
    )
    return trained, report
