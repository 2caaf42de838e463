"""Training sized to few labels: folds, the linear rung against scikit-learn, the ladder's
choices, and `tagline train` on 100 real confirmed photos (the case the fixed split refused)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.learn.ladder import assign_folds, cross_validate, fit_linear, train_small
from core.learn.training import TrainingData, predict_heads
from core.models.model_files import read_info
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.classifier import Classifier, classify_project
from tests.conftest import ROOT, write_comp_truth

LABEL_MAP = ROOT / "resources" / "label_maps" / "comp5329.json"


def separable(n: int = 120, seed: int = 0, rare: int = 2) -> TrainingData:
    """Two learnable labels from noisy directions of the photo and caption vectors, and a
    third label with only `rare` positives."""
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, 12)).astype(np.float32)
    text = rng.normal(size=(n, 6)).astype(np.float32)
    targets = np.stack([image[:, 0] + 0.1 * rng.normal(size=n) > 0, text[:, 1] + 0.1 * rng.normal(size=n) > 0.5,
                        np.arange(n) < rare], axis=1)
    return TrainingData(image, text, np.ones(n, np.float32), targets, ["a", "b", "rare"], [None] * n)


def test_folds_spread_every_label_with_enough_photos_over_all_folds() -> None:
    targets = np.zeros((103, 3), bool)
    targets[:5, 0] = True  # five photos of a rare label: one in each of five folds
    targets[5:60, 1] = True
    folds = assign_folds(targets, 5, seed=3)
    assert sorted(folds[:5].tolist()) == [0, 1, 2, 3, 4]
    assert np.bincount(folds).max() - np.bincount(folds).min() <= 1


@pytest.mark.parametrize("n, columns", [(200, 12), (60, 150)])  # more photos than inputs; fewer (fitted in their span)
def test_linear_rung_matches_scikit_learn_logistic_regression(n: int, columns: int) -> None:
    """The L-BFGS fit is the textbook penalised logistic regression: the same objective given to
    scikit-learn (C = 1 / (n * l2), positives weighted alike) gives the same probabilities."""
    from sklearn.linear_model import LogisticRegression

    data = separable(n, seed=1, rare=n // 6)
    data = replace(data, image=np.concatenate(
        [data.image, np.random.default_rng(2).normal(size=(n, columns - 12)).astype(np.float32)], axis=1))
    idx = np.arange(n)
    l2 = 1e-2
    head = fit_linear(data, idx, l2, max_iter=500)
    ours = predict_heads([head], data.image, data.text, data.has_caption)
    import torch

    with torch.no_grad():
        features = head.features(*(torch.from_numpy(a) for a in (data.image, data.text, data.has_caption))).numpy()
    for j in range(3):
        positives = data.targets[:, j].sum()
        weight = float(np.clip(np.sqrt((n - positives) / positives), 1, 20))
        reference = LogisticRegression(C=1 / (n * l2 * len(data.labels)), class_weight={1: weight, 0: 1.0},
                                       tol=1e-8, max_iter=5000).fit(features, data.targets[:, j])
        assert np.abs(reference.predict_proba(features)[:, 1] - ours[:, j]).max() < 2e-3


def test_cross_validation_reports_rare_labels_and_chooses_a_threshold() -> None:
    data = separable(120, rare=2)
    rung, report = run_to_end(cross_validate(data))
    assert report.rare_labels == ["rare"]
    assert report.folds == 5 and 0.05 <= report.threshold <= 0.95
    assert report.chosen in report.scores and report.cv_samples_f1 == max(report.scores.values())
    per_label = report.fused["per_label"]
    assert per_label["a"]["f1"] > 0.85 and per_label["b"]["f1"] > 0.8, per_label  # the learnable labels are learnt
    assert set(report.fused) >= {"samples_f1", "micro_f1", "macro_f1", "per_label"}


def test_photos_without_any_label_turn_the_fallback_off() -> None:
    """When the person confirmed photos with none of the labels, giving every photo its most
    likely label is wrong, and the folds say so."""
    rng = np.random.default_rng(0)
    n = 150
    image = rng.normal(size=(n, 8)).astype(np.float32)
    targets = np.stack([image[:, 0] > 1.0, image[:, 1] > 1.0], axis=1)  # most photos have neither label
    data = TrainingData(image, np.zeros((n, 4), np.float32), np.zeros(n, np.float32), targets, ["x", "y"], [None] * n)
    trained, report = run_to_end(train_small(data))
    assert not report.top1_fallback
    assert len(trained.heads) >= 1 and trained.validation["folds"] == 5


def test_train_on_100_confirmed_real_photos_uses_them_all(comp_slice: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """100 confirmed photos train from scratch (the fixed split used to refuse: 0 in the training
    part), and the model reports its cross-validated score."""
    keep = sorted(comp_slice.iterdir(), key=lambda p: int(p.stem))[:100]
    for extra in set(comp_slice.iterdir()) - set(keep):
        extra.unlink()
    truth = write_comp_truth(comp_slice, tmp_path / "truth.csv")
    out = tmp_path / "model"
    assert main(["-q", "train", str(comp_slice), "--captions", str(truth), "--label-map", str(LABEL_MAP),
                 "--out", str(out), "--from-scratch", "--activate", "always"]) == 0
    info = read_info(out)
    assert info.training["images"] == 100 and info.training["train"] == 100 and info.training["holdout"] == 0
    kind, scores = info.quality()
    assert kind == "cross-validated" and scores["samples_f1"] > 0.6 and scores["samples_f1_spread"] >= 0
    assert "parking meter" in info.metrics["cross_validation"]["rare_labels"] or info.training["label_counts"]["parking meter"] >= 3
    report = run_to_end(classify_project(ProjectStore(comp_slice), Classifier(out)))
    assert report.classified == 100
    with ProjectStore(comp_slice) as store:  # train made it the project's model: classify uses it
        assert store.active_model() == out.resolve()
    capsys.readouterr()
    assert main(["classify", str(comp_slice), "--redo", "--out", str(tmp_path / "pred.csv")]) == 0
    assert f"using the project's model {out.resolve()}" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--split", "--holdout", "0.2", "--validation", "0.2", "--seed", "1"]])
def test_split_flag_keeps_a_held_out_part(comp_slice: Path, tmp_path: Path, flag: list[str]) -> None:
    truth = write_comp_truth(comp_slice, tmp_path / "truth.csv")
    out = tmp_path / "model"
    assert main(["-q", "train", str(comp_slice), "--captions", str(truth), "--label-map", str(LABEL_MAP),
                 "--out", str(out), "--epochs", "4", *flag]) == 0
    info = read_info(out)
    assert info.quality()[0] == "held-out" and info.training["holdout"] > 0


def test_a_blend_of_rungs_saves_and_loads_with_its_weights(tmp_path: Path) -> None:
    """A linear head and MLP heads in one model folder: Classifier rebuilds each member with its
    own kind and weight and predicts exactly what the trained blend did."""
    from core.learn.ladder import Rung, default_rungs, fit_rung
    from core.models.model_files import ClassifierInfo, save_classifier
    from core.tagging.learning import ensemble_tensors

    data = separable(80, rare=10)
    linear, mlp = default_rungs(80)[1], default_rungs(80)[-1]
    heads = run_to_end(fit_rung(data, np.arange(80), Rung("blend", "blend", parts=(linear, mlp)), ensemble=2))
    assert [h.config.kind for h in heads] == ["linear", "mlp", "mlp"]
    assert [h.ensemble_weight for h in heads] == [0.5, 0.25, 0.25]
    tensors, members = ensemble_tensors(heads)
    info = ClassifierInfo(version="test-blend", labels=data.labels, thresholds=[0.5] * 3, global_threshold=0.5,
                          threshold_mode="global", top1_fallback=False, image_encoder="efficientnet_lite0",
                          text_encoder="minilm_l6", image_key="i", text_key="t", head=heads[0].config.as_dict(),
                          ensemble=len(heads), members=members)
    save_classifier(tmp_path, info, tensors)
    loaded = Classifier(tmp_path)
    expected = predict_heads(heads, data.image, data.text, data.has_caption)
    assert np.allclose(loaded.predict(data.image, data.text, data.has_caption), expected, atol=1e-6)


CAPTIONS = {  # label -> captions a person might have written; the first two train, the rest are new
    "dog": ["A brown dog runs across the grass.", "Two dogs play with a ball in the yard.",
            "A puppy sleeps on the couch.", "A dog catches a frisbee in the park."],
    "cat": ["A cat lies on a sunny windowsill.", "A kitten plays with a ball of yarn.",
            "A grey cat sits on top of a car.", "A cat curled up asleep on a bed."],
    "bicycle": ["A man rides his bicycle down the street.", "A bike is chained to a fence.",
                "A row of bicycles parked by the station.", "A woman cycling along a river path."],
}


def test_a_caption_that_names_a_label_counts_from_the_first_photos(tmp_path: Path) -> None:
    """With two photos per label, the linear rung learns one shared scale for how close a caption
    is to each label's name (real MiniLM embeddings): captions it never saw that name a label, or
    say it in other words (bike, kitten, cycling), are labelled better than without the names, and
    a saved model keeps the names."""
    from core.learn.ladder import fit_linear
    from core.models.embedding import Encoders
    from core.models.model_files import ClassifierInfo, save_classifier
    from core.models.registry import image_spec, text_spec
    from core.tagging.learning import embed_label_names, ensemble_tensors

    encoders = Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), prefer_gpu=False)
    labels = list(CAPTIONS)
    captions = [c for label in labels for c in CAPTIONS[label]]
    targets = np.array([[label == name for name in labels] for label in labels for _ in CAPTIONS[label]])
    text = encoders.text.encode(captions)
    image = np.random.default_rng(0).normal(size=(len(captions), 16)).astype(np.float32)  # photos say nothing here
    data = TrainingData(image, text, np.ones(len(captions), np.float32), targets, labels, captions,
                        label_text=embed_label_names(encoders, labels))
    train = np.array([i for i in range(len(captions)) if i % 4 < 2])
    new = np.setdiff1d(np.arange(len(captions)), train)
    named = fit_linear(data, train, l2=1e-2)
    plain = fit_linear(replace(data, label_text=None), train, l2=1e-2)
    assert float(named.name_scale.detach()) > 1.0  # the names were found to help on the training photos
    p_named, p_plain = (predict_heads([h], image[new], text[new], data.has_caption[new]) for h in (named, plain))
    right = targets[new]
    assert (p_named.argmax(axis=1) == right.argmax(axis=1)).all()
    assert p_named[right].mean() - p_named[~right].mean() > p_plain[right].mean() - p_plain[~right].mean()
    info = ClassifierInfo(version="test-names", labels=labels, thresholds=[0.5] * 3, global_threshold=0.5,
                          threshold_mode="global", top1_fallback=True, image_encoder="efficientnet_lite0",
                          text_encoder="minilm_l6", image_key="i", text_key="t", head=named.config.as_dict(),
                          ensemble=1, members=ensemble_tensors([named])[1])
    save_classifier(tmp_path, info, ensemble_tensors([named])[0])
    assert np.allclose(Classifier(tmp_path).predict(image[new], text[new], data.has_caption[new]), p_named, atol=1e-6)
