"""Full fine-tuning of the image backbone with augmentation (meant for a GPU; runs on a CPU).

The backbone and a fused head are trained end to end on confirmed labels (flip, colour
jitter, mild crops); the tuned backbone is then saved beside the model as
`backbone.safetensors` and the usual head training (core.learn) runs on its embeddings, so
the result is an ordinary model folder that classify, ONNX export and the GUI all accept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.embedding import Encoders
from core.errors import ImageDecodeError
from core.fusion_head import HeadConfig, create_head
from core.images import load_rgb
from core.learn import LearnResult, SplitRule, collect_training_data, learn
from core.metrics import decide, samples_f1
from core.progress import CancelToken, Job, Progress
from core.registry import ImageEncoderSpec, image_spec
from core.store import ProjectStore
from core.training import TrainConfig

BACKBONE_FILE = "backbone.safetensors"


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 4
    batch_size: int = 32
    backbone_lr: float = 1e-4
    head_lr: float = 1e-3
    augment: bool = True
    device: str = "auto"  # "cuda" when available, else "cpu"


def _transforms(spec: ImageEncoderSpec, size: int, augment: bool) -> Any:
    from torchvision import transforms as T

    steps: list[Any] = []
    if augment:
        steps += [T.RandomResizedCrop((size, size), scale=(0.7, 1.0), ratio=(0.6, 1.6)),
                  T.RandomHorizontalFlip(), T.ColorJitter(0.3, 0.3, 0.3, 0.05)]
    else:
        steps.append(T.Resize((size, size)))
    return T.Compose([*steps, T.ToTensor(), T.Normalize(spec.mean, spec.std)])


def _batches(store: ProjectStore, relpaths: list[str], rows: np.ndarray, transform: Any, batch_size: int) -> Any:
    import torch

    for start in range(0, len(rows), batch_size):
        chosen = rows[start : start + batch_size]
        images, kept = [], []
        for row in chosen:
            try:
                images.append(transform(load_rgb(store.folder / relpaths[row], max_side=512)))
                kept.append(row)
            except ImageDecodeError:
                continue
        if images:
            yield torch.stack(images), np.asarray(kept)


def finetune(
    store: ProjectStore,
    out_dir: Path,
    encoders: Encoders,
    split: SplitRule = SplitRule(),
    config: FinetuneConfig = FinetuneConfig(),
    head_config: TrainConfig = TrainConfig(),
    external_ids: dict[str, str] | None = None,
    cancel: CancelToken | None = None,
) -> Job[LearnResult]:
    import torch

    from core.torch_encoders import PooledFeatures

    device = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
    data, relpaths = yield from collect_training_data(store, encoders, cancel=cancel)
    train_rows, val_rows, _ = split.indices(relpaths)
    spec = encoders.image_spec
    model = PooledFeatures.create(spec).to(device)
    head = create_head(HeadConfig(spec.dim, data.text.shape[1], len(data.labels), hidden=head_config.hidden)).to(device)
    head.get_buffer("image_mean").copy_(torch.from_numpy(data.image[train_rows].mean(0)))
    head.get_buffer("image_std").copy_(torch.from_numpy(data.image[train_rows].std(0).clip(1e-3)))
    optimizer = torch.optim.AdamW([
        {"params": model.parameters(), "lr": config.backbone_lr},
        {"params": head.parameters(), "lr": config.head_lr},
    ], weight_decay=0.01)
    positives = data.targets[train_rows].sum(0).clip(1)
    weight = torch.tensor(np.sqrt((len(train_rows) - positives) / positives).clip(1, 20), dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight.to(device))
    text, flag, targets = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                           for a in (data.text, data.has_caption, data.targets))
    train_tf = _transforms(spec, spec.input_size, config.augment)
    val_tf = _transforms(spec, spec.input_size, False)
    best_f1, best_state = -1.0, None
    rng = np.random.default_rng(0)
    for epoch in range(config.epochs):
        model.train()
        head.train()
        order = rng.permutation(train_rows)
        for done, (pixels, rows) in enumerate(_batches(store, relpaths, order, train_tf, config.batch_size), 1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            logits = head(model(pixels.to(device)), text[rows].to(device), flag[rows].to(device))
            loss = loss_fn(logits, targets[rows].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            yield Progress("finetune", epoch * len(order) + done * config.batch_size, config.epochs * len(order),
                           message=f"epoch {epoch + 1}", extra={"epoch": epoch + 1, "train_loss": float(loss.detach())})
        model.eval()
        head.eval()
        probs, truth = [], []
        with torch.inference_mode():
            for pixels, rows in _batches(store, relpaths, val_rows, val_tf, config.batch_size):
                out = head(model(pixels.to(device)), text[rows].to(device), flag[rows].to(device))
                probs.append(torch.sigmoid(out).cpu().numpy())
                truth.append(data.targets[rows])
        f1 = samples_f1(np.concatenate(truth), decide(np.concatenate(probs), 0.5))
        yield Progress("finetune", (epoch + 1) * len(order), config.epochs * len(order),
                       message=f"epoch {epoch + 1}: val F1 {f1:.4f}", extra={"epoch": epoch + 1, "val_samples_f1": f1})
        if f1 > best_f1:
            best_f1 = f1
            best_state = {k: v.detach().cpu().clone() for k, v in model.backbone.state_dict().items()}
    assert best_state is not None
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{BACKBONE_FILE}.{os.getpid()}.tmp"
    save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp))
    os.replace(tmp, out_dir / BACKBONE_FILE)  # a kill never leaves half a backbone
    relative_name = f"timm:{spec.timm_name}@{BACKBONE_FILE}"
    tuned = Encoders(image_spec(relative_name, out_dir), encoders.text_spec, encoders.prefer_gpu)
    return (yield from learn(store, out_dir, tuned, split, head_config, external_ids, cancel, relative_name))
