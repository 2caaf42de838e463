"""The attention captioner's parts: region features, their cache, the decoder, and the job."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.captions.caption_job import caption_project
from core.captions.caption_training import main as train_main
from core.captions.captioning import (
    SPECIALS,
    Captioner,
    CaptionerInfo,
    DecoderConfig,
    FrozenImageFeatures,
    beam_decode,
    create_decoder,
    greedy_decode,
    save_captioner,
)
from core.captions.region_cache import region_cache_paths, region_features, region_rows
from core.errors import ModelError
from core.media.images import load_rgb
from core.models.encoders import ImageEncoder, region_key
from core.models.registry import image_spec
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder
from tests import badfiles
from tests.conftest import COMP, SAMPLE, needs_shared

SMALL = DecoderConfig(kind="attention", feature_dim=1280, embed_dim=32, hidden_dim=48, region_dim=32, attention_heads=4)


def synced_store(folder: Path) -> ProjectStore:
    store = ProjectStore(folder)
    run_to_end(sync_folder(store))
    return store


def test_regions_pool_to_exactly_the_classifiers_embedding() -> None:
    """One encoder run feeds both: the caption job caches the pooled form for classify."""
    spec = image_spec("efficientnet_lite0")
    source = FrozenImageFeatures(spec, prefer_gpu=False, regions=True)
    pixels = np.stack([source.preprocess(load_rgb(SAMPLE / n, source.max_side)) for n in ("chelsea.jpg", "rocket.jpg")])
    regions = source.encode(pixels)
    assert regions.shape == (2, 64, 1280)
    pooled = ImageEncoder(spec, prefer_gpu=False).encode(pixels)
    np.testing.assert_allclose(source.embedding(regions), pooled, rtol=1e-4, atol=1e-4)


def test_attention_decoder_step_by_step_equals_teacher_forcing() -> None:
    """Beam search feeds one word at a time; training feeds the whole caption: same logits."""
    import torch

    torch.manual_seed(0)
    decoder = create_decoder(SMALL, 40).eval()
    features = torch.randn(3, 64, 1280)
    tokens = torch.randint(4, 40, (3, 6))
    with torch.inference_mode():
        memory, state = decoder.start(features)
        whole = decoder.step(memory, tokens, state)[0]
        steps = []
        for t in range(tokens.shape[1]):
            logits, state = decoder.step(memory, tokens[:, t : t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, rtol=1e-5, atol=1e-5)
    rows = np.random.default_rng(0).normal(size=(4, 64, 1280)).astype(np.float32)
    assert beam_decode(decoder, rows, 1, 8, 1.0) == greedy_decode(decoder, rows, 8)
    alone = [beam_decode(decoder, rows[i : i + 1], 3, 8, 1.0)[0] for i in range(4)]
    assert beam_decode(decoder, rows, 3, 8, 1.0) == alone


def tiny_attention_captioner(folder: Path) -> Captioner:
    """An untrained attention captioner saved and loaded the way a trained one is."""
    import torch

    torch.manual_seed(0)
    spec = image_spec("efficientnet_lite0")
    vocabulary = [*SPECIALS, "a", "cat", "rocket"]
    info = CaptionerInfo(version="test-attention", vocabulary=vocabulary, image_encoder=spec.name,
                         image_key=region_key(spec), decoder=SMALL.as_dict(), beam_size=2, length_penalty=1.0)
    save_captioner(folder, info, create_decoder(SMALL, len(vocabulary)).state_dict())
    return Captioner(folder, prefer_gpu=False)


def test_caption_job_with_regions_caches_the_pooled_embedding(sample_folder: Path, tmp_path: Path) -> None:
    captioner = tiny_attention_captioner(tmp_path / "captioner")
    assert captioner.feature_key is None and captioner.embedding_key == image_spec("efficientnet_lite0").key
    store = synced_store(sample_folder)
    report = run_to_end(caption_project(store, captioner))
    assert report.captioned == 4 and len(store.captions()) <= 4
    cached = store.cached_embeddings(captioner.embedding_key)
    assert set(cached) == {r.id for r in store.images()}
    records = sorted(store.images(), key=lambda r: r.relpath)
    pixels = np.stack([captioner.preprocess(load_rgb(store.image_path(r), captioner.max_side)) for r in records])
    direct = ImageEncoder(captioner.spec, prefer_gpu=False).encode(pixels)
    # the store keeps embeddings in float16, as it does for the classifier's own
    np.testing.assert_allclose(np.stack([cached[r.id][1] for r in records]), direct, rtol=2e-3, atol=2e-3)


def test_region_cache_encodes_each_photo_once_and_skips_broken_ones(sample_folder: Path) -> None:
    badfiles.truncated_jpeg(sample_folder / "coffee.jpg", sample_folder / "broken.jpg")
    store = synced_store(sample_folder)
    source = FrozenImageFeatures(image_spec("efficientnet_lite0"), prefer_gpu=False, regions=True)
    records = store.images()
    kept, first = region_features(store, source, records)
    assert sorted(r.relpath for r in kept) == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert first.shape == (4, 64, 1280) and first.dtype == np.float16

    calls: list[int] = []
    encode = source.encode
    source.encode = lambda pixels: calls.append(len(pixels)) or encode(pixels)  # type: ignore[method-assign]
    again_kept, again = region_features(store, source, records)
    assert [r.relpath for r in again_kept] == [r.relpath for r in kept]
    np.testing.assert_array_equal(again, first)
    assert calls == []  # only the broken photo is tried again, and it never reaches the encoder

    shutil.copyfile(SAMPLE / "astronaut.jpg", sample_folder / "rocket.jpg")  # a changed photo
    run_to_end(sync_folder(store))
    changed_kept, changed = region_features(store, source, store.images())
    assert calls == [1]
    by_path = {r.relpath: i for i, r in enumerate(changed_kept)}
    np.testing.assert_array_equal(changed[by_path["rocket.jpg"]], changed[by_path["astronaut.jpg"]])
    np.testing.assert_array_equal(changed[by_path["chelsea.jpg"]], first[[r.relpath for r in kept].index("chelsea.jpg")])


def test_region_cache_survives_a_damaged_index(sample_folder: Path) -> None:
    store = synced_store(sample_folder)
    source = FrozenImageFeatures(image_spec("efficientnet_lite0"), prefer_gpu=False, regions=True)
    _, first = region_features(store, source, store.images())
    _, index_path = region_cache_paths(store, source)
    index_path.write_text("{not json", encoding="utf-8")
    kept, again = region_features(store, source, store.images())
    assert len(kept) == 4
    np.testing.assert_allclose(again.astype(np.float32), first.astype(np.float32), atol=1e-2)


def test_decoder_config_reads_the_features_of_its_kind() -> None:
    from core.captions.caption_training import decoder_config

    spec = image_spec("efficientnet_lite0")
    assert decoder_config("attention", spec).feature_dim == 1280  # channels of each region
    assert decoder_config("pooled", spec).feature_dim == 2560  # [mean, max] embedding
    with pytest.raises(ModelError, match="unknown captioner decoder kind"):
        create_decoder(DecoderConfig(kind="transformer"), 10)


def test_captioner_splits_its_batch_when_memory_runs_out(tmp_path: Path) -> None:
    import torch

    captioner = tiny_attention_captioner(tmp_path / "captioner")
    features = np.random.default_rng(2).normal(size=(5, 64, 1280)).astype(np.float32)
    expected = captioner.generate(features)
    generate, sizes = captioner._generate, []

    def tight(rows: np.ndarray, beam: int) -> np.ndarray:
        sizes.append(len(rows))
        if len(rows) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return generate(rows, beam)

    captioner._generate = tight  # type: ignore[method-assign]
    assert captioner.generate(features) == expected
    assert sizes[:2] == [5, 2] and captioner.guard.chunk == 2


@needs_shared
def test_training_command_builds_a_captioner_with_styles(tmp_path: Path) -> None:
    """The documented training command end to end on 150 real captioned photos (one epoch):
    region features cached, style tokens per source, decoding chosen, files saved, loadable."""
    folder = tmp_path / "mine"
    folder.mkdir()
    with open(COMP / "train.csv", newline="", encoding="utf-8") as handle:
        rows = [next(reader) for reader in [csv.DictReader(handle)] for _ in range(150)]
    for row in rows:
        (folder / row["ImageID"]).symlink_to(COMP / "images" / row["ImageID"])
    store = synced_store(folder)
    ids = store.image_ids_by_relpath()
    store.set_captions([(ids[r["ImageID"]], r["Caption"]) for r in rows], "imported")
    store.close()

    out = tmp_path / "captioner"
    assert train_main(["--out", str(out), "--folder", str(folder), "--epochs", "1", "--styles"]) == 0
    captioner = Captioner(out, prefer_gpu=False)
    assert captioner.config.kind == "attention" and captioner.styles == ["mine"] and captioner.style == "mine"
    assert captioner.info.metrics["history"][0]["epoch"] == 1 and captioner.info.metrics["holdout_bleu_1_4"]["mine"]
    text = captioner.caption_images([load_rgb(COMP / "images" / rows[0]["ImageID"], captioner.max_side)])[0]
    assert isinstance(text, str) and "<" not in text  # one epoch on 150 photos may still say nothing
    with pytest.raises(ModelError, match="no style 'flickr8k'"):
        Captioner(out, prefer_gpu=False, style="flickr8k")
    _, index_path = region_cache_paths(ProjectStore(folder), captioner)
    index = json.loads(index_path.read_text())
    assert index["rows"] == 150 and index["shape"] == [64, 1280]


def test_decoding_never_writes_unknown_or_special_words() -> None:
    """A model that loves <unk>: the sentence must still come out whole, made of real words."""
    import torch

    torch.manual_seed(0)
    decoder = create_decoder(SMALL, 8).eval()
    with torch.no_grad():
        decoder.out.bias[:] = torch.tensor([9.0, 9.0, 0.0, 9.0, 1.0, 0.5, 0.0, 0.0])  # pad, start, unk favoured
    rows = np.random.default_rng(3).normal(size=(3, 64, 1280)).astype(np.float32)
    for ids in (greedy_decode(decoder, rows, 6), beam_decode(decoder, rows, 3, 6, 1.0)):
        assert all(ids) and all(i >= len(SPECIALS) for row in ids for i in row)


def test_full_disk_costs_the_region_cache_not_the_features(sample_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from core.captions import region_cache

    store = synced_store(sample_folder)
    source = FrozenImageFeatures(image_spec("efficientnet_lite0"), prefer_gpu=False, regions=True)
    _, expected = region_features(store, source, store.images())  # the cache, complete
    data_path, index_path = region_cache_paths(store, source)
    index_path.unlink()  # as if never committed: everything is encoded again, into a full disk
    write = region_cache._write_rows

    def full(handle: object, rows: np.ndarray) -> None:
        handle.write(b"partial")  # type: ignore[attr-defined]  # a half-written row
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(region_cache, "_write_rows", full)
    kept, features = region_features(store, source, store.images(), batch_size=2)
    assert len(kept) == 4
    np.testing.assert_array_equal(features, expected)  # in memory, all of them
    assert not index_path.exists() and not list(data_path.parent.glob("*.tmp"))
    monkeypatch.setattr(region_cache, "_write_rows", write)
    kept, features = region_features(store, source, store.images())  # space again: cut back, refilled
    np.testing.assert_array_equal(features, expected)
    assert json.loads(index_path.read_text())["rows"] == 4 and data_path.stat().st_size == 4 * 64 * 1280 * 2


def test_rows_a_killed_run_wrote_past_its_index_are_cut_away(sample_folder: Path) -> None:
    store = synced_store(sample_folder)
    source = FrozenImageFeatures(image_spec("efficientnet_lite0"), prefer_gpu=False, regions=True)
    records = sorted(store.images(), key=lambda r: r.relpath)
    _, first = region_features(store, source, records[:2])
    data_path, index_path = region_cache_paths(store, source)
    with open(data_path, "ab") as handle:
        handle.write(b"\x7f" * 1000)  # a killed run's rows, never named by the index
    kept, table = region_rows(store, source, records)
    assert [r.relpath for r in kept] == [r.relpath for r in records]
    assert isinstance(table.array, np.memmap)  # read on demand, not held in memory
    np.testing.assert_array_equal(table.take([0, 1]), first)
    assert data_path.stat().st_size == 4 * 64 * 1280 * 2
