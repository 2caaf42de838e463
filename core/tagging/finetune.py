"""Full fine-tuning of the image backbone with augmentation (meant for a GPU; runs on a CPU).

The backbone and a fused head are trained end to end on confirmed labels (flip, colour
jitter, mild crops); the tuned backbone is then saved beside the model as
`backbone.safetensors` and the usual head training (core.tagging.learning) runs on its embeddings, so
the result is an ordinary model folder that classify, ONNX export and the GUI all accept.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.build_kind import require_gpu_build
from core.errors import ImageDecodeError, ModelError
from core.learn.fusion_head import HeadConfig, create_head
from core.learn.metrics import decide, samples_f1
from core.learn.training import TrainConfig
from core.media.images import load_rgb
from core.models.embedding import Encoders
from core.models.oom import free_gpu_cache, is_out_of_memory
from core.models.registry import ImageEncoderSpec, image_spec
from core.progress import CancelToken, Job, Progress
from core.store.database import ProjectStore
from core.tagging.learning import LearnResult, SplitRule, collect_training_data, learn

BACKBONE_FILE = "backbone.safetensors"

log = logging.getLogger(__name__)


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

    on_disk = {r.relpath: store.image_path(r) for r in store.images()}
    for start in range(0, len(rows), batch_size):
        chosen = rows[start : start + batch_size]
        images, kept = [], []
        for row in chosen:
            try:
                images.append(transform(load_rgb(on_disk[relpaths[row]], max_side=512)))
                kept.append(row)
            except ImageDecodeError:
                continue
        if images:
            yield torch.stack(images), np.asarray(kept)


class _Step:
    """One optimiser step over a batch, split into micro-batches whose gradients add up to the
    batch's (batch-norm statistics aside), so running out of GPU memory costs speed, not the run: on OOM the
    micro-batch halves; when one image does not fit, everything moves to the CPU."""

    def __init__(self, model: Any, head: Any, optimizer: Any, loss_fn: Any, text: Any, flag: Any, targets: Any,
                 device: str, micro: int) -> None:
        self.model, self.head, self.optimizer, self.loss_fn = model, head, optimizer, loss_fn
        self.text, self.flag, self.targets = text, flag, targets
        self.device, self.micro = device, micro

    def _forward(self, pixels: Any, rows: np.ndarray) -> Any:
        d = self.device
        return self.head(self.model(pixels.to(d)), self.text[rows].to(d), self.flag[rows].to(d))

    def train(self, pixels: Any, rows: np.ndarray) -> float:
        while True:
            try:
                self.optimizer.zero_grad()
                total = 0.0
                for start in range(0, len(rows), self.micro):
                    part = slice(start, start + self.micro)
                    logits = self._forward(pixels[part], rows[part])
                    loss = self.loss_fn(logits, self.targets[rows[part]].to(self.device)) * (len(rows[part]) / len(rows))
                    loss.backward()
                    total += float(loss.detach())
                self.optimizer.step()
                return total
            except Exception as exc:
                self._shrink(exc)

    def predict(self, pixels: Any, rows: np.ndarray) -> np.ndarray:
        import torch

        while True:
            try:
                parts = [torch.sigmoid(self._forward(pixels[i : i + self.micro], rows[i : i + self.micro])).cpu().numpy()
                         for i in range(0, len(rows), self.micro)]
                return np.concatenate(parts)
            except Exception as exc:
                self._shrink(exc)

    def _shrink(self, exc: Exception) -> None:
        if not is_out_of_memory(exc):
            raise exc
        self.optimizer.zero_grad()
        free_gpu_cache()
        if self.micro > 1:
            self.micro //= 2
            log.warning("out of memory while fine-tuning; micro-batches of %d from now on", self.micro)
            return
        if self.device == "cpu":
            raise ModelError("out of memory while fine-tuning even one image at a time") from exc
        log.warning("out of GPU memory for a single image; fine-tuning continues on the CPU")
        self.device = "cpu"
        self.model.to("cpu")
        self.head.to("cpu")
        self.loss_fn.to("cpu")
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if hasattr(value, "to"):
                    state[key] = value.to("cpu")


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
    require_gpu_build("Fine-tuning the image backbone (train --finetune)")  # torchvision's augmentation, timm's backbone
    import torch

    from core.models.torch_encoders import PooledFeatures

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
    step = _Step(model, head, optimizer, loss_fn, text, flag, targets, device, config.batch_size)
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
            loss = step.train(pixels, rows)
            yield Progress("finetune", epoch * len(order) + done * config.batch_size, config.epochs * len(order),
                           message=f"epoch {epoch + 1}",
                           extra={"epoch": epoch + 1, "train_loss": loss, "micro_batch": step.micro, "device": step.device})
        model.eval()
        head.eval()
        probs, truth = [], []
        with torch.inference_mode():
            for pixels, rows in _batches(store, relpaths, val_rows, val_tf, config.batch_size):
                probs.append(step.predict(pixels, rows))
                truth.append(data.targets[rows])
        f1 = samples_f1(np.concatenate(truth), decide(np.concatenate(probs), 0.5))
        yield Progress("finetune", (epoch + 1) * len(order), config.epochs * len(order),
                       message=f"epoch {epoch + 1}: val F1 {f1:.4f}", extra={"epoch": epoch + 1, "val_samples_f1": f1})
        if f1 > best_f1:
            best_f1 = f1
            best_state = {k: v.detach().cpu().clone() for k, v in model.backbone.state_dict().items()}
    assert best_state is not None
    from safetensors.torch import save_file

    from core.errors import ModelError, disk_full, write_failure_message
    from core.formats.temp_files import plain_file_mode, writing_beside

    out_dir.mkdir(parents=True, exist_ok=True)
    with writing_beside(out_dir / BACKBONE_FILE) as tmp:
        try:
            save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp))
        except Exception as exc:  # safetensors' error for a full disk is no OSError
            if not disk_full(exc):
                raise
            raise ModelError(write_failure_message(out_dir / BACKBONE_FILE, exc)) from exc
        os.chmod(tmp, plain_file_mode())  # readable as model.json is
        os.replace(tmp, out_dir / BACKBONE_FILE)  # a kill never leaves half a backbone
    relative_name = f"timm:{spec.timm_name}@{BACKBONE_FILE}"
    tuned = Encoders(image_spec(relative_name, out_dir), encoders.text_spec, encoders.prefer_gpu)
    return (yield from learn(store, out_dir, tuned, split, head_config, external_ids, cancel, relative_name))
