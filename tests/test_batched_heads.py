"""Heads trained together (the ladder's folds and ensembles): each member learns only from its own
rows, exactly as it would alone, and the copies back into FusionHeads predict what was trained."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.metrics import roc_auc_score

from core.learn.batched import train_members
from core.learn.ladder import mlp_config
from core.learn.training import predict_heads, train_head
from core.progress import run_to_end
from tests.test_ladder import separable


def test_a_member_learns_the_same_alone_or_beside_others() -> None:
    """With the random masks off, the only randomness is each member's own seed: a member trained
    beside two others (on other rows) ends with the weights it reaches alone, so no gradient,
    statistic or batch leaks between members."""
    data = separable(120, seed=4, rare=10)
    config = replace(mlp_config(120), image_dropout=0.0, text_dropout=0.0, dropout=0.0, second_dropout=0.0,
                     caption_dropout=0.0, max_epochs=6)
    rows = [np.arange(0, 96), np.arange(24, 120), np.arange(12, 108)]
    together = run_to_end(train_members(data, rows, config, [0, 1, 2]))
    alone = run_to_end(train_members(data, rows[1:2], config, [1]))
    both = together[1].state_dict(), alone[0].state_dict()
    assert both[0].keys() == both[1].keys()
    for name in both[0]:
        assert np.allclose(both[0][name].numpy(), both[1][name].numpy(), atol=1e-5), name
    assert not np.allclose(together[0].state_dict()["image_mean"].numpy(), together[1].state_dict()["image_mean"].numpy())


def test_members_trained_together_learn_as_well_as_heads_trained_one_by_one() -> None:
    data = separable(300, seed=5, rare=0)
    train, held = np.arange(200), np.arange(200, 300)
    config = mlp_config(200)
    heads = run_to_end(train_members(data, [train, train], config, [0, 1]))
    reference = run_to_end(train_head(data, train, np.zeros(0, np.int64), replace(config, ensemble=2))).heads
    truth = data.targets[held, :2]
    scores = [roc_auc_score(truth, predict_heads(h, data.image[held], data.text[held], data.has_caption[held])[:, :2])
              for h in (heads, reference)]  # the two learnable labels ranked on photos neither saw
    assert scores[0] > 0.9 and scores[0] > scores[1] - 0.02, scores
    assert not np.allclose(heads[0].classifier[4].weight.detach().numpy(), heads[1].classifier[4].weight.detach().numpy())
