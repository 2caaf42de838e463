"""Issue 12's rung that changes the image features: Lite0's last stages fine-tuned with
augmentation on cached earlier-stage maps, measured on validation only (the held-out part is
never read here).

1. `maps`: every comp5329 photo decoded and preprocessed as `tagline classify` does it (longest
   side at most 512, squashed to 256 x 256), through Lite0's stem and blocks 0-4 in torch: a
   (18000, 112, 16, 16) float16 file in /tmp (1 GB), made once.
2. `tune`: blocks 5-6 and the 1x1 head convolution (2.7 M of Lite0's 3.4 M weights; batch-norm
   statistics kept) trained with a fused head of the default recipe on the training part,
   asymmetric loss, the maps flipped and shifted by up to a cell at random; the validation
   samples F1 after each epoch, the best epoch's stages kept.
3. the default model's five-head ensemble (`TrainConfig(ensemble=5)`) trained on the features of
   the untouched stages and on those of the tuned stages (both in torch f32 from the same maps),
   and the two averaged: validation samples F1 at the global threshold each chooses there.

`--cut 3` tunes blocks 3-6 as well, from cached (40, 32, 32) block-2 maps (1.5 GB in /tmp); the
shift augmentation is then up to two cells (the same 16 pixels).

Usage: python -m bench.bench_stages [--cut 5] [--epochs 4] [--stage-lr 3e-4] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import COMP, comp_relpaths, load_comp_embeddings
from core.learn.fusion_head import HeadConfig, create_head
from core.learn.metrics import best_global_threshold
from core.learn.training import TrainConfig, TrainingData, input_statistics, make_loss, predict_heads, train_head
from core.media.images import load_rgb
from core.models.encoders import preprocess_image
from core.models.registry import image_spec
from core.models.torch_encoders import build_timm_backbone
from core.progress import run_to_end

MAP_SHAPES = {5: (112, 16, 16), 3: (40, 32, 32)}  # blocks before the cut are frozen and cached
MAPS = Path("/tmp/tagline-lite0-block4.f16")
OUT = Path("/tmp/tagline-stages")


def configure(cut: int) -> None:
    """Point the cached maps and the outputs at the chosen cut (the block-4 ones keep their names)."""
    global MAPS, OUT, MAP_SHAPE
    MAP_SHAPE = MAP_SHAPES[cut]
    if cut != 5:
        MAPS = Path(f"/tmp/tagline-lite0-block{cut - 1}.f16")
        OUT = Path(f"/tmp/tagline-stages-cut{cut}")


MAP_SHAPE = MAP_SHAPES[5]


def split_backbone(cut: int = 5) -> tuple[Any, Any]:
    """Lite0 as (frozen early part, trainable late part) whose composition is `forward_features`."""
    model = build_timm_backbone(image_spec("efficientnet_lite0"))
    early = torch.nn.Sequential(model.conv_stem, model.bn1, *model.blocks[:cut]).eval()
    late = torch.nn.Sequential(*model.blocks[cut:], model.conv_head, model.bn2)
    return early, late


def pooled(fmap: torch.Tensor) -> torch.Tensor:
    return torch.cat([fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3))], dim=1)


def early_session(early: Any) -> Any:
    """The frozen part through onnxruntime (f32): three times faster than torch's eager
    depthwise convolutions at 128-16 px on this CPU."""
    import onnxruntime as ort

    path = MAPS.with_suffix(".onnx")
    if not path.exists():
        torch.onnx.export(early, (torch.zeros(1, 3, 256, 256),), str(path), input_names=["pixels"], output_names=["maps"],
                          dynamic_axes={"pixels": {0: "batch"}, "maps": {0: "batch"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def make_maps(early: Any, relpaths: list[str], batch: int = 32) -> np.memmap:
    if MAPS.exists():
        return np.memmap(MAPS, np.float16, "r", shape=(len(relpaths), *MAP_SHAPE))
    spec = image_spec("efficientnet_lite0")
    session = early_session(early)
    with torch.inference_mode():
        probe = torch.randn(2, 3, 256, 256)
        difference = float(np.abs(session.run(None, {"pixels": probe.numpy()})[0] - early(probe).numpy()).max())
    print(f"onnxruntime against torch on the frozen part: max difference {difference:.2e}", flush=True)
    partial = MAPS.with_suffix(".partial")
    maps = np.memmap(partial, np.float16, "w+", shape=(len(relpaths), *MAP_SHAPE))

    def pixels(relpath: str) -> np.ndarray:
        return preprocess_image(load_rgb(COMP / "images" / relpath, max_side=2 * spec.input_size), spec)

    started = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        batches = [relpaths[i : i + batch] for i in range(0, len(relpaths), batch)]
        ahead = pool.submit(lambda names: np.stack([pixels(n) for n in names]), batches[0])
        for number, _ in enumerate(batches):
            stacked = ahead.result()
            if number + 1 < len(batches):
                ahead = pool.submit(lambda names: np.stack([pixels(n) for n in names]), batches[number + 1])
            start = number * batch
            maps[start : start + len(stacked)] = session.run(None, {"pixels": stacked})[0].astype(np.float16)
            if number % 50 == 0:
                print(f"maps: {start + len(stacked)}/{len(relpaths)} photos, {time.perf_counter() - started:.0f} s", flush=True)
    maps.flush()
    partial.rename(MAPS)
    return np.memmap(MAPS, np.float16, "r", shape=(len(relpaths), *MAP_SHAPE))


def augment(fmap: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random horizontal flip and a shift of up to 16 pixels (one cell of a 16 x 16 map) each way."""
    flip = torch.rand(len(fmap), generator=generator) < 0.5
    fmap = torch.where(flip.view(-1, 1, 1, 1), fmap.flip(3), fmap)
    side = fmap.shape[-1]
    cells = side // 16
    padded = torch.nn.functional.pad(fmap, (cells, cells, cells, cells), mode="replicate")
    dy, dx = (int(v) for v in torch.randint(0, 2 * cells + 1, (2,), generator=generator))
    return padded[:, :, dy : dy + side, dx : dx + side]


def features(late: Any, maps: np.memmap, batch: int = 256) -> np.ndarray:
    late.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(maps), batch):
            out.append(pooled(late(torch.from_numpy(np.asarray(maps[start : start + batch], np.float32)))).numpy())
    return np.concatenate(out)


def tune(late: Any, maps: np.memmap, data: TrainingData, train: np.ndarray, val: np.ndarray, frozen: np.ndarray,
         epochs: int, stage_lr: float, batch: int) -> tuple[Any, list[dict[str, float]]]:
    recipe = TrainConfig()
    head = create_head(HeadConfig(frozen.shape[1], data.text.shape[1], len(data.labels), hidden=recipe.hidden,
                                  dropout=recipe.dropout, second_dropout=recipe.second_dropout,
                                  image_dropout=recipe.image_dropout, text_dropout=recipe.text_dropout,
                                  caption_dropout=recipe.caption_dropout, standardise_text=True))
    text_t, flag_t, y_t = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                           for a in (data.text, data.has_caption, data.targets))
    stats = input_statistics(torch.from_numpy(frozen[train]), text_t[train], flag_t[train], data.text.shape[1])
    for name, value in zip(("image_mean", "image_std", "text_mean", "text_std"), stats):
        head.get_buffer(name).copy_(value)
    optimizer = torch.optim.AdamW([{"params": late.parameters(), "lr": stage_lr, "weight_decay": 1e-4},
                                   {"params": head.parameters(), "lr": recipe.learning_rate,
                                    "weight_decay": recipe.weight_decay}])
    steps = epochs * (len(train) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[stage_lr, recipe.learning_rate],
                                                   total_steps=steps, pct_start=0.15)
    loss_fn = make_loss("asymmetric", data.targets[train])
    generator = torch.Generator().manual_seed(0)
    best, best_state, history = -1.0, None, []
    started = time.perf_counter()
    for epoch in range(epochs):
        late.train()
        for module in late.modules():  # batch-norm statistics stay those of ImageNet
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        head.train()
        order = np.random.default_rng(epoch).permutation(train)
        for step in range(len(train) // batch):
            rows = np.sort(order[step * batch : (step + 1) * batch])
            fmap = augment(torch.from_numpy(np.asarray(maps[rows], np.float32)), generator)
            r = torch.from_numpy(rows)
            loss = loss_fn(head(pooled(late(fmap)), text_t[r], flag_t[r]), y_t[r])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 50 == 0:
                print(f"epoch {epoch + 1} step {step}: loss {float(loss):.4f}, {time.perf_counter() - started:.0f} s",
                      flush=True)
        tuned_val = features(late, maps[val])
        probs = predict_heads([head], tuned_val, data.text[val], data.has_caption[val])
        _, f1 = best_global_threshold(data.targets[val].astype(bool), probs)
        history.append({"epoch": epoch + 1, "validation_samples_f1": f1, "seconds": time.perf_counter() - started})
        print(json.dumps(history[-1]), flush=True)
        if f1 > best:
            best, best_state = f1, {k: v.clone() for k, v in late.state_dict().items()}
    assert best_state is not None
    late.load_state_dict(best_state)
    return late.eval(), history


def ensemble_f1(data: TrainingData, image: np.ndarray, train: np.ndarray, val: np.ndarray) -> tuple[float, np.ndarray]:
    trained = run_to_end(train_head(TrainingData(image, data.text, data.has_caption, data.targets, data.labels),
                                    train, val, TrainConfig(ensemble=5)))
    probs = predict_heads(trained.heads, image[val], data.text[val], data.has_caption[val])
    return best_global_threshold(data.targets[val].astype(bool), probs)[1], probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cut", type=int, default=5, choices=sorted(MAP_SHAPES))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--stage-lr", type=float, default=3e-4)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data, part = load_comp_embeddings()
    relpaths = comp_relpaths()
    train, val = np.flatnonzero(part == "train"), np.flatnonzero(part == "validation")
    configure(args.cut)
    early, late = split_backbone(args.cut)
    maps = make_maps(early, relpaths)
    OUT.mkdir(exist_ok=True)
    frozen_file = OUT / "frozen.npy"
    if not frozen_file.exists():
        np.save(frozen_file, features(late, maps))
    frozen = np.load(frozen_file)
    print(f"frozen torch features against the cached product ones: cosine "
          f"{float(np.mean(np.sum(frozen * data.image, 1) / np.linalg.norm(frozen, axis=1) / np.linalg.norm(data.image, axis=1))):.4f}")
    late, history = tune(late, maps, data, train, val, frozen, args.epochs, args.stage_lr, args.batch)
    torch.save(late.state_dict(), OUT / "late.pt")
    tuned = features(late, maps)
    np.save(OUT / "tuned.npy", tuned)
    truth = data.targets[val].astype(bool)
    f_frozen, p_frozen = ensemble_f1(data, frozen, train, val)
    f_tuned, p_tuned = ensemble_f1(data, tuned, train, val)
    averaged = {w: best_global_threshold(truth, w * p_tuned + (1 - w) * p_frozen)[1] for w in np.arange(0.1, 1.0, 0.1)}
    photo_alone = {}
    for name, image in (("frozen", frozen), ("tuned", tuned)):
        alone = run_to_end(train_head(TrainingData(image, np.zeros_like(data.text), np.zeros_like(data.has_caption),
                                                   data.targets, data.labels), train, val, TrainConfig(ensemble=3)))
        probs = predict_heads(alone.heads, image[val], np.zeros_like(data.text[val]), np.zeros(len(val), np.float32))
        photo_alone[name] = best_global_threshold(truth, probs)[1]
    result = {"args": vars(args), "history": history, "frozen_ensemble": f_frozen, "tuned_ensemble": f_tuned,
              "averaged": {f"{w:.1f}": f for w, f in averaged.items()}, "photo_alone_3_heads": photo_alone}
    (OUT / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
