"""Training from confirmed labels: a real (small) model folder that classify accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.cli import main
from core.errors import ModelError
from core.learn.metrics import best_global_threshold, decide, evaluate, samples_f1
from core.models.model_files import read_info
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.classifier import Classifier, classify_project
from tests.conftest import COMP, ROOT

LABEL_MAP = ROOT / "resources" / "label_maps" / "comp5329.json"


def test_train_on_real_photos_then_classify_with_the_new_model(comp_slice: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    status = main(["-q", "train", str(comp_slice), "--captions", str(COMP / "train.csv"), "--label-map", str(LABEL_MAP),
                   "--out", str(out), "--split", "--holdout", "0.2", "--validation", "0.2", "--epochs", "6", "--seed", "1"])
    assert status == 1  # rows of the full CSV whose photos are not in the slice are reported
    info = read_info(out)
    assert info.labels[0] == "person" and info.external_ids["person"] == "1"
    assert info.metrics["holdout"]["fused"]["samples_f1"] > 0.5
    assert json.loads((out / "model.json").read_text())["training"]["images"] == 160
    assert len(info.no_caption_thresholds) == len(info.labels)  # chosen with the captions hidden
    store = ProjectStore(comp_slice)
    report = run_to_end(classify_project(store, Classifier(out)))
    assert report.classified == 160 and not report.failures


def tiny_finetune_project(sample_folder: Path) -> tuple[ProjectStore, object, object]:
    """The four sample photos with decisions, their encoders, and a split with one in validation."""
    captions = ROOT / "resources" / "sample" / "captions.csv"
    assert main(["-q", "import", str(sample_folder), "--captions", str(captions)]) == 0
    store = ProjectStore(sample_folder)
    ids = store.image_ids_by_relpath()
    store.confirm_many([(ids["coffee.jpg"], "person", False), (ids["rocket.jpg"], "person", False)])
    store.confirm_many([(ids["coffee.jpg"], "cat", False), (ids["rocket.jpg"], "cat", False)])
    store.confirm(ids["astronaut.jpg"], "person", True)
    from core.models.embedding import Encoders
    from core.models.registry import image_spec, text_spec
    from core.tagging.learning import SplitRule

    encoders = Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), prefer_gpu=False)
    split = next(rule for rule in (SplitRule(holdout=0.0, validation=0.4, seed=s) for s in range(100))
                 if [rule.part(n) for n in sorted(ids)].count("validation") == 1)
    return store, encoders, split


def test_finetune_runs_end_to_end_on_the_cpu(sample_folder: Path, tmp_path: Path) -> None:
    from core.learn.training import TrainConfig
    from core.tagging.finetune import BACKBONE_FILE, FinetuneConfig, finetune

    store, encoders, split = tiny_finetune_project(sample_folder)
    out = tmp_path / "tuned"
    result = run_to_end(finetune(store, out, encoders, split,  # type: ignore[arg-type]
                                 FinetuneConfig(epochs=1, batch_size=2, device="cpu"), TrainConfig(max_epochs=2)))
    assert (out / BACKBONE_FILE).is_file()
    assert result.info.image_encoder == f"timm:tf_efficientnet_lite0@{BACKBONE_FILE}"
    tuned = Classifier(out)
    assert tuned.encoders().image_spec.key != encoders.image_spec.key  # type: ignore[attr-defined]
    assert run_to_end(classify_project(store, tuned)).classified == 4


def test_thresholds_and_metrics_match_hand_computed_values() -> None:
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], bool)
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.2], [0.7, 0.8, 0.1]])
    predicted = decide(probs, 0.5)
    assert predicted.tolist() == [[True, False, True], [False, True, False], [True, True, False]]  # row 2: top-1
    assert samples_f1(truth, predicted) == 1.0
    report = evaluate(truth, decide(probs, 0.65), ["a", "b", "c"])
    assert report.per_label["c"]["recall"] == 0.0 and report.per_label["a"]["f1"] == 1.0
    assert abs(report.hamming_loss - 1 / 9) < 1e-9
    threshold, score = best_global_threshold(truth, probs)
    assert score == 1.0 and 0.2 <= threshold <= 0.6


def test_damaged_model_files_are_refused(tmp_path: Path) -> None:
    import pytest

    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_info(tmp_path)
    (tmp_path / "model.json").unlink()
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ModelError, match="pickled models are refused"):
        read_info(tmp_path)


def test_word_indices_train_the_same_function_as_the_dense_bag() -> None:
    """The fast training path (caption words as indices) computes exactly what the saved,
    dense model computes: same outputs, same gradients."""
    import torch

    from core.learn.fusion_head import HeadConfig, create_head
    from core.learn.training import term_indices

    rng = np.random.default_rng(0)
    sentence = rng.normal(size=(6, 8)).astype(np.float32)
    bag = (rng.random((6, 50)) < 0.1).astype(np.float32)
    bag[3] = 0  # a caption with no known word
    indices = term_indices(bag)
    assert indices.shape[0] == 6 and (indices[3] == -1).all()
    assert sorted(indices[0][indices[0] >= 0].tolist()) == np.flatnonzero(bag[0]).tolist()
    torch.manual_seed(0)
    head = create_head(HeadConfig(image_dim=5, text_dim=58, num_labels=3, hidden=16, words_dim=50)).eval()
    image, flag = torch.randn(6, 5), torch.ones(6)
    dense_in = torch.from_numpy(np.concatenate([sentence, bag], axis=1))
    dense = head(image, dense_in, flag)
    dense.sum().backward()
    dense_grad = head.words.grad.clone()
    head.zero_grad()
    sparse = head(image, torch.from_numpy(sentence), flag, indices)
    sparse.sum().backward()
    assert torch.allclose(dense, sparse, atol=1e-5)
    assert torch.allclose(dense_grad, head.words.grad, atol=1e-5)
    assert dense_grad[np.flatnonzero(bag.sum(0) == 0)].abs().sum() == 0  # words never seen get no gradient


def test_photos_without_a_caption_are_decided_with_their_own_thresholds() -> None:
    from dataclasses import replace

    info = read_info(Classifier().folder)
    labels = len(info.labels)
    probs = np.full((2, labels), 0.3, np.float32)
    probs[:, 0] = 0.55  # between the two threshold sets below
    info = replace(info, threshold_mode="global", global_threshold=0.6, top1_fallback=False,
                   no_caption_thresholds=[0.5] * labels)
    rows = info.row_thresholds(np.array([1.0, 0.0], np.float32))
    assert rows.shape == (2, labels) and rows[0, 0] == np.float32(0.6) and rows[1, 0] == np.float32(0.5)
    decided = decide(probs, rows, top1_fallback=False)
    assert decided[:, 0].tolist() == [False, True]  # captioned: 0.55 < 0.6; without caption: 0.55 >= 0.5
    assert replace(info, no_caption_thresholds=[]).row_thresholds(np.zeros(2, np.float32))[0, 0] == np.float32(0.6)


def test_a_hostile_or_broken_model_json_is_refused_with_a_message(tmp_path: Path, capsys) -> None:
    """Someone else's model folder: wrong counts, odd types, a backbone to download or weights
    outside the folder end in one clear message and exit 2, never a traceback or a download."""
    import shutil

    import pytest

    from core.models.model_files import default_model_dir

    def broken(name: str, change) -> Path:
        folder = tmp_path / name
        shutil.copytree(default_model_dir(), folder)
        meta = json.loads((folder / "model.json").read_text())
        change(meta)
        (folder / "model.json").write_text(json.dumps(meta))
        return folder

    cases = {
        "ensemble 0": (lambda m: m.update(ensemble=0), "ensemble must be"),
        "ensemble 4": (lambda m: m.update(ensemble=len(m.get("members") or []) + 9), "do not match"),
        "string threshold": (lambda m: m.update(global_threshold="high"), "global_threshold"),
        "label count": (lambda m: m.update(labels=m["labels"][:-1], thresholds=m["thresholds"][:-1],
                                           no_caption_thresholds=[], generated_captions={}), "labels but"),
        "head kind": (lambda m: m["head"].update(kind="forest"), "head kind"),
        "download": (lambda m: m.update(image_encoder="timm:resnet18"), "without a weights file"),
        "escape": (lambda m: m.update(image_encoder="timm:resnet18@../../etc/passwd"), "outside its folder"),
    }
    for name, (change, message) in cases.items():
        folder = broken(name.replace(" ", "-"), change)
        with pytest.raises(ModelError, match=message):
            Classifier(folder).encoders()
        assert main(["-q", "info", "--model", str(folder)]) == 2 or name in ("download", "escape")
        assert "Traceback" not in capsys.readouterr().err


def test_label_names_are_embedded_beside_captions_only(sample_folder: Path) -> None:
    """Training data carries each label's name through the caption encoder when some photo has a
    caption; a project of photos alone never loads the caption encoder for the names (it may be
    missing there, and the names would change nothing)."""
    from core.models.embedding import Encoders
    from core.models.registry import image_spec, text_spec
    from core.tagging.learning import collect_training_data

    store, _, _ = tiny_finetune_project(sample_folder)
    encoders = Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), prefer_gpu=False)
    data, _ = run_to_end(collect_training_data(store, encoders, ["person", "cat"]))
    assert data.has_caption.any() and data.label_text is not None and data.label_text.shape == (2, 384)
    assert np.allclose(data.label_text[1], encoders.text.encode(["cat"])[0], atol=1e-5)

    class NoCaptionEncoder(Encoders):
        @property
        def text(self):  # type: ignore[override]
            raise ModelError("MiniLM caption encoder is missing")

    for image_id in store.image_ids_by_relpath().values():
        store.delete_caption(image_id)
    bare = NoCaptionEncoder(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), prefer_gpu=False)
    data, _ = run_to_end(collect_training_data(store, bare, ["person", "cat"]))
    assert not data.has_caption.any() and data.label_text is None
