"""Training the fused head on cached embeddings: seconds on a CPU, early stopping on validation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.learn.fusion_head import HeadConfig, create_head
from core.learn.label_prior import LabelPrior
from core.learn.metrics import best_global_threshold, best_label_thresholds, decide, samples_f1
from core.progress import CancelToken, Job, Progress


@dataclass
class TrainingData:
    image: np.ndarray  # (n, image dim) float32
    text: np.ndarray  # (n, text dim) float32, zero rows where no caption
    has_caption: np.ndarray  # (n,) float32
    targets: np.ndarray  # (n, labels) bool
    labels: list[str]
    captions: list[str | None] = field(default_factory=list)  # raw text, for caption words
    words_dim: int = 0  # the last `words_dim` columns of `text` are a binary bag of caption words
    label_text: np.ndarray | None = None  # (labels, sentence dim): each label's name through the caption encoder
    mention_dim: int = 0  # the `mention_dim` columns after the sentence embedding: 1 where the caption names label j
    label_prior: LabelPrior | None = None  # each label's zero-shot score from its prompts (the linear rung reads it)


@dataclass(frozen=True)
class TrainConfig:
    """How the fused head is trained. The defaults are the recipe chosen on validation for the
    default model (2026-12-01, docs/benchmarks.md): every input standardised, strong dropout,
    the asymmetric loss, no caption words."""

    max_epochs: int = 15
    patience: int = 4
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    loss: str = "asymmetric"  # or "weighted_bce"
    ensemble: int = 1
    hidden: int = 384
    seed: int = 0
    caption_words: bool = False  # add the bag of caption words to the caption side
    dropout: float = 0.4  # before the fused hidden layer
    second_dropout: float | None = 0.4  # before the output layer; None: half of `dropout`
    image_dropout: float = 0.2
    text_dropout: float = 0.2
    caption_dropout: float = 0.1  # how often training hides the caption (so photos alone are learnt)
    standardise_text: bool = True


@dataclass
class TrainedHead:
    heads: list[Any]
    config: HeadConfig
    global_threshold: float
    thresholds: np.ndarray
    threshold_mode: str
    validation: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    no_caption_thresholds: np.ndarray | None = None  # per label, for photos without a caption


def make_loss(loss: str, targets: np.ndarray) -> Any:
    """The loss by name; weighted BCE weighs each label's positives by sqrt(negatives / positives)
    clipped to [1, 20] (the linear rung of core.learn.ladder is fitted with it too)."""
    import torch

    positives = targets.sum(axis=0).clip(min=1)
    weight = torch.tensor(np.sqrt((len(targets) - positives) / positives).clip(1.0, 20.0), dtype=torch.float32)
    if loss == "weighted_bce":
        return torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    if loss == "asymmetric":
        def asymmetric(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = torch.sigmoid(logits)
            p_neg = (p - 0.05).clamp(min=0)
            loss_pos = y * torch.log(p.clamp(min=1e-8))
            loss_neg = (1 - y) * p_neg**4 * torch.log((1 - p_neg).clamp(min=1e-8))
            return -(loss_pos + loss_neg).sum(dim=1).mean()
        return asymmetric
    raise ValueError(f"unknown loss {loss!r}; use weighted_bce or asymmetric")


def input_statistics(image: Any, text: Any, has_caption: Any, sentence_dim: int) -> tuple[Any, Any, Any, Any]:
    """What a head standardises its inputs by: mean and spread of the photo rows and of the
    captioned rows' sentence columns (mean 0 / spread 1 where there are too few rows to tell)."""
    import torch

    image_mean = image.mean(0) if len(image) else torch.zeros(image.shape[1])
    image_std = image.std(0).clamp(min=1e-3) if len(image) > 1 else torch.ones(image.shape[1])
    captioned = text[has_caption > 0, :sentence_dim]
    text_mean = captioned.mean(0) if len(captioned) else torch.zeros(sentence_dim)
    text_std = captioned.std(0).clamp(min=1e-3) if len(captioned) > 1 else torch.ones(sentence_dim)
    return image_mean, image_std, text_mean, text_std


def predict_heads(heads: list[Any], image: np.ndarray, text: np.ndarray, has_caption: np.ndarray) -> np.ndarray:
    """Average of the ensemble's sigmoid outputs, each head weighted by its `ensemble_weight`
    (1 unless set: a blend of a linear and an MLP rung weighs the two kinds alike)."""
    import torch

    weights = np.array([float(getattr(h, "ensemble_weight", 1.0)) for h in heads], np.float32)
    with torch.inference_mode():
        x_i, x_t, x_c = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (image, text, has_caption))
        stacked = torch.stack([torch.sigmoid(h.eval()(x_i, x_t, x_c)) for h in heads])
        total = (stacked * torch.from_numpy(weights / weights.sum()).view(-1, 1, 1)).sum(0)
        return np.asarray(total.numpy())


def term_indices(bag: np.ndarray) -> Any:
    """Rows of a binary bag as term ids, padded with -1 to the longest row (a LongTensor)."""
    import torch

    rows, cols = np.nonzero(bag)
    counts = np.bincount(rows, minlength=len(bag))
    indices = np.full((len(bag), max(int(counts.max(initial=0)), 1)), -1, np.int64)
    indices[rows, np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)] = cols
    return torch.from_numpy(indices)


def head_config_for(data: TrainingData, config: TrainConfig) -> HeadConfig:
    """The fused MLP's shape and regularisation for these inputs under this recipe."""
    return HeadConfig(
        image_dim=data.image.shape[1], text_dim=data.text.shape[1], num_labels=len(data.labels),
        hidden=config.hidden, words_dim=data.words_dim, dropout=config.dropout, second_dropout=config.second_dropout,
        image_dropout=config.image_dropout, text_dropout=config.text_dropout, caption_dropout=config.caption_dropout,
        standardise_text=config.standardise_text, mention_dim=data.mention_dim,
    )


def train_head(
    data: TrainingData,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: TrainConfig = TrainConfig(),
    cancel: CancelToken | None = None,
) -> Job[TrainedHead]:
    """Train `config.ensemble` heads; yields a Progress per epoch with losses and val F1."""
    import torch

    head_config = head_config_for(data, config)
    tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
               for a in (data.image, data.text, data.has_caption, data.targets)]
    train_t = [t[torch.from_numpy(train_idx)] for t in tensors]
    train_words = None
    if data.words_dim:  # train on the words' indices: the same model, a fraction of the arithmetic
        dense_cols = data.text.shape[1] - data.words_dim
        train_words = term_indices(data.text[train_idx, dense_cols:])
        train_t[1] = train_t[1][:, :dense_cols].contiguous()
    val_t = [t[torch.from_numpy(val_idx)] for t in tensors]
    val_words = None
    if data.words_dim:
        val_words = term_indices(data.text[val_idx, dense_cols:])
        val_sentence = val_t[1][:, :dense_cols].contiguous()
    truth_val = data.targets[val_idx].astype(bool)
    mean, std, text_mean, text_std = input_statistics(train_t[0], train_t[1], train_t[2], head_config.sentence_dim())
    loss_fn = make_loss(config.loss, data.targets[train_idx])
    heads: list[Any] = []
    history: list[dict[str, float]] = []
    total_epochs = config.ensemble * config.max_epochs
    started = time.perf_counter()
    for member in range(config.ensemble):
        torch.manual_seed(config.seed + member)
        generator = torch.Generator().manual_seed(config.seed + member)
        head = create_head(head_config)
        head.image_mean.copy_(mean)
        head.image_std.copy_(std)
        if config.standardise_text:
            head.text_mean.copy_(text_mean)
            head.text_std.copy_(text_std)
        optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                      fused=True)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_epochs)
        best_state, best_f1, stale = None, -1.0, 0
        for epoch in range(config.max_epochs):
            if cancel is not None:
                cancel.raise_if_cancelled()
            head.train()
            order = torch.randperm(len(train_idx), generator=generator)
            running = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                words = None if train_words is None else train_words[batch]
                logits = head(train_t[0][batch], train_t[1][batch], train_t[2][batch], words)
                loss = loss_fn(logits, train_t[3][batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                running += float(loss.detach()) * len(batch)
            schedule.step()
            record = {"member": member, "epoch": epoch + 1, "train_loss": running / len(order),
                      "seconds": time.perf_counter() - started}
            if not len(val_idx):  # a fixed number of epochs (cross-validation chose it): keep the last
                history.append(record)
                best_state = head.state_dict()
                yield Progress("train", member * config.max_epochs + epoch + 1, total_epochs,
                               message=f"model {member + 1}/{config.ensemble} epoch {epoch + 1}", extra=record)
                continue
            with torch.inference_mode():
                logits = (head.eval()(val_t[0], val_t[1], val_t[2]) if val_words is None
                          else head.eval()(val_t[0], val_sentence, val_t[2], val_words))
                probs = torch.sigmoid(logits).numpy()
            val_f1 = samples_f1(truth_val, decide(probs, 0.5))
            record["val_samples_f1"] = val_f1
            history.append(record)
            yield Progress("train", member * config.max_epochs + epoch + 1, total_epochs,
                           message=f"model {member + 1}/{config.ensemble} epoch {epoch + 1}: val F1 {val_f1:.4f}",
                           extra=record)
            if val_f1 > best_f1 + 1e-4:
                best_f1, stale = val_f1, 0
                best_state = {k: v.clone() for k, v in head.state_dict().items()}
            else:
                stale += 1
                if stale >= config.patience:
                    break
        assert best_state is not None
        head.load_state_dict(best_state)
        heads.append(head.eval())
    if not len(val_idx):
        return TrainedHead(heads=heads, config=head_config, global_threshold=0.5,
                           thresholds=np.full(len(data.labels), 0.5, np.float32), threshold_mode="global",
                           validation={"seconds": time.perf_counter() - started}, history=history)
    probs = predict_heads(heads, val_t[0].numpy(), val_t[1].numpy(), val_t[2].numpy())
    global_t, global_f1, per_label, per_label_f1 = choose_thresholds(truth_val, probs)
    mode = "per_label" if per_label_f1 > global_f1 else "global"
    no_caption, no_caption_f1 = _no_caption_thresholds(heads, val_t[0].numpy(), val_t[1].shape[1], truth_val)
    return TrainedHead(
        heads=heads, config=head_config, global_threshold=global_t, thresholds=per_label,
        threshold_mode=mode,
        validation={"samples_f1_global": global_f1, "samples_f1_per_label": per_label_f1,
                    "photo_alone_samples_f1": no_caption_f1, "seconds": time.perf_counter() - started},
        history=history, no_caption_thresholds=no_caption,
    )


def choose_thresholds(truth: np.ndarray, probs: np.ndarray) -> tuple[float, float, np.ndarray, float]:
    """The best global threshold and per-label thresholds on a validation split, each with
    its samples F1 there: (global, global F1, per label, per-label F1)."""
    global_t, global_f1 = best_global_threshold(truth, probs)
    per_label = best_label_thresholds(truth, probs, global_t)
    return global_t, global_f1, per_label, samples_f1(truth, decide(probs, per_label))


def _no_caption_thresholds(heads: list[Any], image: np.ndarray, text_dim: int, truth: np.ndarray) -> tuple[np.ndarray, float]:
    """Thresholds for photos without a caption, chosen on validation with the captions hidden:
    the photo alone gives less confident probabilities, so the fused thresholds cut too high."""
    probs = predict_heads(heads, image, np.zeros((len(image), text_dim), np.float32), np.zeros(len(image), np.float32))
    global_t, global_f1, per_label, per_label_f1 = choose_thresholds(truth, probs)
    if per_label_f1 > global_f1:
        return per_label.astype(np.float32), per_label_f1
    return np.full(truth.shape[1], global_t, np.float32), global_f1
