"""Two rungs of the default model's ladder, on the validation split only (the held-out part is
never read here): a decision rule that maximises each photo's expected F1, and MiniLM fine-tuned
jointly with the frozen image features, alone and averaged with the shipped five-head ensemble.

Usage: python -m bench.bench_rungs expected-f1
       python -m bench.bench_rungs joint [--epochs 3] [--text-lr 3e-5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.common import load_comp_embeddings
from core.learn.metrics import best_global_threshold, decide, samples_f1
from core.learn.training import TrainConfig, TrainingData, input_statistics, make_loss, predict_heads, train_head
from core.progress import run_to_end

ENSEMBLE_PROBS = Path("/tmp/tagline-bench-ensemble-validation.npy")


def ensemble_validation(data: TrainingData, train: np.ndarray, val: np.ndarray) -> np.ndarray:
    """The shipped recipe's validation probabilities (trained once, then kept in /tmp)."""
    if not ENSEMBLE_PROBS.exists():
        trained = run_to_end(train_head(data, train, val, TrainConfig(ensemble=5)))
        np.save(ENSEMBLE_PROBS, predict_heads(trained.heads, data.image[val], data.text[val], data.has_caption[val]))
    return np.asarray(np.load(ENSEMBLE_PROBS))


def poisson_binomial(p: np.ndarray) -> np.ndarray:
    """(rows, len+1): the distribution of how many of the independent events `p` happen."""
    dist = np.zeros((len(p), p.shape[1] + 1))
    dist[:, 0] = 1
    for j in range(p.shape[1]):
        q = p[:, j : j + 1]
        shifted = dist * q
        dist = dist * (1 - q)
        dist[:, 1:] += shifted[:, :-1]
    return dist


def expected_f1_sets(p: np.ndarray) -> np.ndarray:
    """Per photo, the top-k labels with the k that maximises expected F1 when labels are
    independent with probabilities `p`: E[F1(top k)] = sum over i in top k of
    2 p_i E[1 / (k + 1 + |Y without i|)] (Jansche 2007; Dembczynski et al. 2011)."""
    n, labels = p.shape
    without = np.stack([poisson_binomial(np.delete(p, i, axis=1)) for i in range(labels)], axis=1)
    order = np.argsort(-p, axis=1)
    best_k, best = np.ones(n, np.int64), np.full(n, -1.0)
    counts = np.arange(labels)
    for k in range(1, labels + 1):
        weight = (without / (k + 1 + counts)[None, None, :]).sum(axis=2)
        score = np.take_along_axis(2 * p * weight, order, axis=1)[:, :k].sum(axis=1)
        better = score > best
        best[better], best_k[better] = score[better], k
    return np.argsort(order, axis=1) < best_k[:, None]


def expected_f1_rung() -> None:
    """Calibrate the ensemble (Platt, per label or shared) on one half of validation, decide on
    the other half, both ways round; the global threshold is chosen the same cross-fitted way."""
    from sklearn.linear_model import LogisticRegression

    data, part = load_comp_embeddings()
    train, val = np.flatnonzero(part == "train"), np.flatnonzero(part == "validation")
    truth = data.targets[val].astype(bool)
    p = ensemble_validation(data, train, val)
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    half = np.random.default_rng(0).random(len(val)) < 0.5
    print(f"ensemble, threshold chosen on all of validation: {best_global_threshold(truth, p)[1]:.4f}")
    for shared in (False, True):
        rule, threshold = 0.0, 0.0
        for fit, apply in ((half, ~half), (~half, half)):
            calibrated = np.zeros((int(apply.sum()), p.shape[1]))
            columns = [slice(None)] if shared else [slice(j, j + 1) for j in range(p.shape[1])]
            for c in columns:
                y = truth[fit][:, c].reshape(-1)
                model = LogisticRegression(C=100).fit(logit[fit][:, c].reshape(-1, 1), y)
                calibrated[:, c] = model.predict_proba(logit[apply][:, c].reshape(-1, 1))[:, 1].reshape(int(apply.sum()), -1)
            rule += samples_f1(truth[apply], expected_f1_sets(calibrated)) * apply.sum()
            t, _ = best_global_threshold(truth[fit], p[fit])
            threshold += samples_f1(truth[apply], decide(p[apply], t)) * apply.sum()
        print(f"{'shared' if shared else 'per-label'} calibration: expected-F1 rule {rule / len(val):.4f}, "
              f"global threshold (cross-fitted alike) {threshold / len(val):.4f}")


def joint_rung(epochs: int, text_lr: float, seed: int = 0) -> None:
    """MiniLM (word embeddings kept) and the fused head trained together, batch 64, AdamW with a
    one-cycle schedule (text 3e-5, head 1e-3), the asymmetric loss; validation after every epoch."""
    import torch
    from tokenizers import Tokenizer

    from core.learn.fusion_head import HeadConfig, create_head
    from core.models.registry import text_spec
    from core.models.torch_encoders import create_text_module

    torch.manual_seed(seed)
    data, part = load_comp_embeddings()
    train, val = np.flatnonzero(part == "train"), np.flatnonzero(part == "validation")
    spec = text_spec("minilm_l6")
    tokenizer = Tokenizer.from_file(str(spec.model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(spec.max_tokens)
    tokenizer.no_padding()  # its file pads every caption to 128 tokens: eight times the work
    ids = [e.ids for e in tokenizer.encode_batch([c or "" for c in data.captions])]
    sentence = create_text_module(spec).train()
    for p in sentence.bert.embeddings.parameters():
        p.requires_grad = False
    head = create_head(HeadConfig(image_dim=data.image.shape[1], text_dim=data.text.shape[1], num_labels=len(data.labels),
                                  dropout=0.4, second_dropout=0.4, image_dropout=0.2, text_dropout=0.2,
                                  standardise_text=True))
    image, text, flag, y = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                            for a in (data.image, data.text, data.has_caption, data.targets))
    for buffer, value in zip((head.image_mean, head.image_std, head.text_mean, head.text_std),
                             input_statistics(image[train], text[train], flag[train], text.shape[1])):
        buffer.copy_(value)
    loss_fn = make_loss("asymmetric", data.targets[train])
    optimizer = torch.optim.AdamW([
        {"params": [p for p in sentence.parameters() if p.requires_grad], "lr": text_lr, "weight_decay": 0.01},
        {"params": head.parameters(), "lr": 1e-3, "weight_decay": 0.05}])
    batch_size = 64
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[text_lr, 1e-3], pct_start=0.1,
                                                   total_steps=epochs * -(-len(train) // batch_size))

    def embed(rows: np.ndarray) -> torch.Tensor:
        width = max(len(ids[r]) for r in rows)
        tokens, mask = np.zeros((len(rows), width), np.int64), np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            tokens[i, : len(ids[r])], mask[i, : len(ids[r])] = ids[r], 1
        return sentence(torch.from_numpy(tokens), torch.from_numpy(mask)) * flag[rows].unsqueeze(1)

    started = time.perf_counter()
    probs = np.zeros(0)
    for epoch in range(epochs):
        order = np.random.default_rng(seed * 100 + epoch).permutation(train)
        for start in range(0, len(train), batch_size):
            rows = order[start : start + batch_size]
            loss = loss_fn(head(image[rows], embed(rows), flag[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        sentence.eval(), head.eval()
        with torch.inference_mode():
            probs = np.concatenate([torch.sigmoid(head(image[r], embed(r), flag[r])).numpy()
                                    for r in np.array_split(val, max(len(val) // 256, 1))])
        sentence.train(), head.train()
        truth = data.targets[val].astype(bool)
        print(f"epoch {epoch + 1}: validation samples F1 {best_global_threshold(truth, probs)[1]:.4f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    ensemble = ensemble_validation(data, train, val)
    truth = data.targets[val].astype(bool)
    for w in np.round(np.arange(0, 1.01, 0.1), 1):
        print(f"jointly tuned weight {w}: validation samples F1 {best_global_threshold(truth, w * probs + (1 - w) * ensemble)[1]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rung", choices=("expected-f1", "joint"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--text-lr", type=float, default=3e-5)
    args = parser.parse_args()
    if args.rung == "expected-f1":
        expected_f1_rung()
    else:
        joint_rung(args.epochs, args.text_lr)


if __name__ == "__main__":
    main()
