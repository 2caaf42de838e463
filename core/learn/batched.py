"""Several fused MLP heads trained at once, each on its own rows: the folds of a cross-validation
and the members of an ensemble in one optimiser loop.

With a few hundred photos one head's optimiser step is a handful of tiny matrix products, so
the time goes to Python and autograd overhead, paid once per head per step. Stacking the heads'
weights into (members, ...) tensors and multiplying them with batched matmuls pays it once per
step for all of them; each member still sees only its own rows, its own input statistics, its
own random init, masks and batches, and (AdamW being elementwise) its own optimiser state.
The trained members are copied back into ordinary `FusionHead`s, so nothing downstream knows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.learn.fusion_head import create_head, dropout_mask
from core.learn.training import TrainConfig, TrainingData, head_config_for, input_statistics, make_loss
from core.progress import CancelToken, Job, Progress

# (attribute path in a FusionHead, index of its Linear) for the stacked weights, in forward order
LAYERS = (("image_proj", 1), ("text_proj", 1), ("classifier", 1), ("classifier", 4))


def can_batch(data: TrainingData, config: TrainConfig) -> bool:
    """The batched loop covers the dense heads the ladder trains (no caption-word table)."""
    return not data.words_dim and not config.caption_words


def _dropout(x: Any, p: float) -> Any:
    """Training-time dropout drawn as the FusionHead's own (`dropout_mask`)."""
    return x * dropout_mask(x, p) if round(p * 256) else x


def train_members(data: TrainingData, member_rows: list[np.ndarray], config: TrainConfig, seeds: list[int],
                  cancel: CancelToken | None = None) -> Job[list[Any]]:
    """One head per entry of `member_rows`, trained on those rows for `config.max_epochs` epochs
    (no early stopping: cross-validation chose the epochs), initialised as `train_head` would
    with `torch.manual_seed(seed)`. Returns the heads in eval mode."""
    import torch
    import torch.nn.functional as F

    head_config = head_config_for(data, config)
    sentence_dim = head_config.sentence_dim()
    image_t, text_t, flag_t, target_t = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                                         for a in (data.image, data.text, data.has_caption, data.targets))
    heads: list[Any] = []
    for seed, rows in zip(seeds, member_rows):
        torch.manual_seed(seed)
        head = create_head(head_config)
        r = torch.from_numpy(rows)
        mean, std, text_mean, text_std = input_statistics(image_t[r], text_t[r], flag_t[r], sentence_dim)
        head.image_mean.copy_(mean)
        head.image_std.copy_(std)
        if config.standardise_text:
            head.text_mean.copy_(text_mean)
            head.text_std.copy_(text_std)
        heads.append(head)

    def stacked(name: str) -> Any:
        return torch.stack([h.get_buffer(name) for h in heads]).unsqueeze(1)  # (members, 1, dim)

    image_mean, image_std = stacked("image_mean"), stacked("image_std")
    text_mean, text_std = (stacked("text_mean"), stacked("text_std")) if config.standardise_text else (None, None)
    weights = [torch.nn.Parameter(torch.stack([getattr(h, part)[i].weight.detach().transpose(0, 1) for h in heads]))
               for part, i in LAYERS]  # (members, in, out)
    biases = [torch.nn.Parameter(torch.stack([getattr(h, part)[i].bias.detach() for h in heads]).unsqueeze(1))
              for part, i in LAYERS]  # (members, 1, out)
    optimizer = torch.optim.AdamW([*weights, *biases], lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_epochs)
    loss_fns = [make_loss(config.loss, data.targets[rows]) for rows in member_rows]
    members, longest = len(member_rows), max(len(rows) for rows in member_rows)
    steps = -(-longest // config.batch_size)
    generators = [np.random.default_rng(seed) for seed in seeds]  # a member's batches do not depend on the others
    second = config.dropout / 2 if config.second_dropout is None else config.second_dropout

    def layer(x: Any, k: int) -> Any:
        return torch.baddbmm(biases[k], x, weights[k])

    for epoch in range(config.max_epochs):
        if cancel is not None:
            cancel.raise_if_cancelled()
        # each member walks a permutation of its own rows; a shorter member wraps round to fill the steps
        order = np.stack([np.resize(g.permutation(rows), steps * config.batch_size) for g, rows in zip(generators, member_rows)])
        for step in range(steps):
            idx = torch.from_numpy(order[:, step * config.batch_size : (step + 1) * config.batch_size])
            image = (image_t[idx] - image_mean) / image_std
            text = text_t[idx]
            if text_mean is not None:  # the sentence embedding; name mentions after it stay 0 / 1
                sentence = (text[..., :sentence_dim] - text_mean) / text_std
                text = torch.cat([sentence, text[..., sentence_dim:]], dim=2) if text.shape[2] > sentence_dim else sentence
            flag = flag_t[idx].unsqueeze(2)
            if config.caption_dropout > 0:
                flag = flag * (torch.rand_like(flag) >= config.caption_dropout).to(flag.dtype)
            hidden_image = F.gelu(layer(_dropout(image, config.image_dropout), 0))
            hidden_text = F.gelu(layer(_dropout(text, config.text_dropout), 1))
            fused = torch.cat([hidden_image, hidden_text * flag, flag], dim=2)
            hidden = F.gelu(layer(_dropout(fused, config.dropout), 2))
            logits = layer(_dropout(hidden, second), 3)
            truth = target_t[idx]
            loss = sum(loss_fns[m](logits[m], truth[m]) for m in range(members))
            optimizer.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            optimizer.step()
        schedule.step()
        yield Progress("train", epoch + 1, config.max_epochs,
                       message=f"{members} models at once, epoch {epoch + 1}/{config.max_epochs}")
    with torch.no_grad():
        for m, head in enumerate(heads):
            for k, (part, i) in enumerate(LAYERS):
                getattr(head, part)[i].weight.copy_(weights[k][m].transpose(0, 1))
                getattr(head, part)[i].bias.copy_(biases[k][m, 0])
    return [head.eval() for head in heads]
