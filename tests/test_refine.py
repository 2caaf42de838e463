"""Refining a model with a person's confirmations (core.learn.refine) and the gate that decides
whether the new model is taken (core.learn.gate): small synthetic models, exact checks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.learn.fusion_head import HeadConfig, create_head
from core.learn.gate import Comparison, decide_activation, masked_scores
from core.learn.metrics import decide
from core.learn.refine import KEEP, BaseModel, Correction, fit_correction, logits_of, refine
from core.learn.training import TrainingData, predict_heads
from core.progress import run_to_end


def tiny_base(seed: int = 0, members: int = 2) -> BaseModel:
    """Two small random MLP members over 8 photo and 4 caption columns, labels a and b."""
    import torch

    torch.manual_seed(seed)
    config = HeadConfig(8, 4, 2, hidden=16)
    heads = [create_head(config).eval() for _ in range(members)]
    return BaseModel(heads, [{"head": config.as_dict(), "weight": 1.0}] * members, ["a", "b"],
                     np.full(2, 0.5, np.float32), np.full(2, 0.5, np.float32), True, "weighted_bce", "base-1")


def project_data(base: BaseModel, n: int = 80, seed: int = 1) -> TrainingData:
    """Photos whose a/b are what the base says, and a new label c (photo column 0 above 0.3)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, 8)).astype(np.float32)
    text = rng.normal(size=(n, 4)).astype(np.float32)
    flag = np.ones(n, np.float32)
    known = decide(base.probabilities(image, text, flag), 0.5, False)
    targets = np.concatenate([known, (image[:, 0] > 0.3)[:, None]], axis=1)
    return TrainingData(image, text, flag, targets, ["a", "b", "c"], [None] * n)


def test_a_kept_base_predicts_exactly_as_before_and_a_new_label_is_learnt() -> None:
    base = tiny_base()
    data = project_data(base)
    refined = run_to_end(refine(data, base, candidates=(KEEP,)))
    assert refined.labels == ["a", "b", "c"] and refined.report["correction"] == "keep"
    probabilities = predict_heads([refined.head], data.image, data.text, data.has_caption)
    before = base.probabilities(data.image, data.text, data.has_caption)
    np.testing.assert_allclose(probabilities[:, :2], before, atol=1e-5)  # the base labels: untouched
    learnt = decide(probabilities[:, 2:], refined.thresholds[2:], False)[:, 0]
    assert (learnt == data.targets[:, 2]).mean() > 0.9  # the new label, from its 80 photos
    assert np.isfinite(refined.oof).all() and set(np.unique(refined.fold_of)) == set(range(5))


def test_photos_decided_before_a_label_existed_do_not_teach_it() -> None:
    """Undecided cells are neither positive nor negative: the new label learns from its rows only,
    and a label decided on fewer than two photos is not learnt at all."""
    base = tiny_base()
    data = project_data(base, n=60)
    decided = np.ones(data.targets.shape, bool)
    decided[:40, 2] = False
    refined = run_to_end(refine(data, base, decided, candidates=(KEEP,)))
    assert refined.report["new_labels"]["photos"] == 20
    assert np.isnan(refined.oof[:40, 2]).all() and np.isfinite(refined.oof[40:, 2]).all()
    decided[:, 2] = False
    decided[0, 2] = True
    alone = run_to_end(refine(data, base, decided, candidates=(KEEP,)))
    assert alone.labels == ["a", "b"] and alone.report["unlearnt"] == ["c"]


def test_a_shift_is_learnt_where_the_person_disagrees_with_the_base() -> None:
    """The person counts label a on every photo the base gives a probability over 0.2: a shifted
    logit fits them, and cross-validation prefers it to keeping the base."""
    base = tiny_base()
    base.top1_fallback = False
    data = project_data(base, n=200, seed=3)
    data = replace(data, targets=data.targets[:, :2], labels=["a", "b"])
    z = logits_of(base.probabilities(data.image, data.text, data.has_caption))
    data.targets[:, 0] = z[:, 0] > np.log(0.2 / 0.8)
    fitted = fit_correction(z[:, :2], data.targets[:, :2], np.ones((200, 2), bool), "weighted_bce", Correction("s", 1.0))
    corrected = fitted.apply(z[:, :2], data.image, data.text, data.has_caption) > 0
    assert (corrected[:, 0] == data.targets[:, 0]).mean() > 0.95 > ((z[:, 0] > 0) == data.targets[:, 0]).mean()
    assert fitted.shift[0] > 0  # label a moved up: the person counts more photos than the base does
    refined = run_to_end(refine(data, base, candidates=(KEEP, Correction("shift 1", 1.0))))
    assert refined.report["correction"] == "shift 1"
    assert refined.report["scores"]["shift 1"] > refined.report["scores"]["keep"]


def test_a_refined_model_saves_loads_and_classifies_as_trained(tmp_path: Path) -> None:
    """Through model.json and the weights file, with the name columns the classifier adds and the
    head graph exported for onnxruntime: the same probabilities."""
    from core.models.model_files import ClassifierInfo, save_classifier
    from core.tagging.classifier import Classifier
    from core.tagging.learning import ensemble_tensors
    from core.tagging.refining import base_of

    base = tiny_base()
    data = project_data(base)
    data.captions = ["a photo of c" if i % 3 == 0 else "nothing here" for i in range(len(data.targets))]
    data.label_text = np.eye(3, 4, dtype=np.float32)
    refined = run_to_end(refine(data, base, candidates=(Correction("shift 25 + linear", 25.0, 0.3),)))
    assert refined.mentions and refined.head.config.residual  # every part of the composite travels
    tensors, _ = ensemble_tensors([refined.head])
    info = ClassifierInfo(version="v1", labels=refined.labels, thresholds=[float(t) for t in refined.thresholds],
                          global_threshold=0.5, threshold_mode="per_label", top1_fallback=True, image_encoder="x",
                          text_encoder="y", image_key="ik", text_key="tk", head=refined.head.config.as_dict(),
                          name_mentions=True,
                          metrics={"refined": {"base": "base-1", "base_labels": ["a", "b"], "base_no_caption": [0.5, 0.5],
                                               "base_fallback": True, "base_loss": "weighted_bce"}})
    save_classifier(tmp_path / "m", info, tensors)
    from core.learn.caption_words import name_mentions

    text = np.concatenate([data.text, name_mentions(data.captions, refined.labels)], axis=1)
    expected = predict_heads([refined.head], data.image, text, data.has_caption)
    for _ in range(2):  # torch the first time (and the graph exported), onnxruntime the second
        loaded = Classifier(tmp_path / "m")
        np.testing.assert_allclose(loaded.predict(data.image, data.text, data.has_caption, data.captions), expected,
                                   atol=1e-4)
    again = base_of(Classifier(tmp_path / "m"))  # a retrain refines the model inside, not the refinement
    assert again is not None and again.labels == ["a", "b"] and again.version == "base-1"
    np.testing.assert_allclose(again.probabilities(data.image, data.text, data.has_caption),
                               base.probabilities(data.image, data.text, data.has_caption), atol=1e-5)


def test_the_gate_keeps_a_worse_model_out_and_says_why() -> None:
    worse = Comparison(0.76, 0.05, 0.89, 0.03, 25)
    kept = decide_activation(worse)
    assert not kept.activate
    assert kept.sentence.startswith("kept the current model: 0.89 against 0.76") and "25" in kept.sentence
    assert decide_activation(worse, "always").activate
    assert "as asked" in decide_activation(worse, "always").sentence
    assert decide_activation(Comparison(0.89, 0.0, 0.89, 0.0, 25)).activate  # at least as good
    assert not decide_activation(Comparison(0.95, 0.0, 0.89, 0.0, 25), "never").activate
    assert decide_activation(Comparison(0.5, 0.0, None, 0.0, 25)).activate  # nothing to compare with
    with pytest.raises(ValueError):
        decide_activation(worse, "sometimes")


def test_undecided_cells_count_neither_way() -> None:
    truth = np.array([[1, 0], [0, 1]], bool)
    predicted = np.array([[1, 1], [0, 1]], bool)
    decided = np.array([[1, 0], [1, 1]], bool)  # photo 0's second label was never decided
    score, spread = masked_scores(truth, predicted, decided, np.array([0, 1]))
    assert score == 1.0 and spread == 0.0


def test_train_refines_the_bundled_model_then_learns_a_label_of_its_own(comp_slice: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Real photos the bundled model never saw: `tagline train` keeps the bundled model inside the new
    one and takes it only when it scores at least as well; a label the person adds later is learnt
    from the photos decided for it, and a retrain refines the bundled model again, not the refinement."""
    from core.cli import main
    from core.models.model_files import read_info
    from core.store.database import ProjectStore
    from core.tagging.classifier import Classifier
    from tests.conftest import ROOT, write_comp_truth

    keep = sorted(comp_slice.iterdir(), key=lambda p: int(p.stem))[:100]
    for extra in set(comp_slice.iterdir()) - set(keep):
        extra.unlink()
    truth = write_comp_truth(comp_slice, tmp_path / "truth.csv")
    label_map = ROOT / "resources" / "label_maps" / "comp5329.json"
    first = tmp_path / "first"
    assert main(["-q", "train", str(comp_slice), "--captions", str(truth), "--label-map", str(label_map),
                 "--out", str(first)]) == 0
    printed = capsys.readouterr().out
    info = read_info(first)
    bundled = Classifier()
    assert info.head["kind"] == "refined" and info.metrics["refined"]["base"] == bundled.version
    assert info.labels == bundled.labels and info.metrics["comparison"]["photos"] == 100
    comparison = info.metrics["comparison"]
    taken = comparison["new_score"] >= comparison["current_score"]
    with ProjectStore(comp_slice) as store:
        assert (store.active_model() == first.resolve()) == taken
        assert ("is now the project's model" in printed) == taken and "on your 100 confirmed photos" in printed
        ids = store.image_ids_by_relpath()
        captions = {i: c for i, (c, _) in store.captions().items()}
        showing = {i for i, c in captions.items() if "grass" in c.lower()}  # as a person reading the captions
        assert len(showing) >= 3
        store.confirm_many([(i, "grass", i in showing) for i in ids.values()])
    second = tmp_path / "second"
    assert main(["-q", "train", str(comp_slice), "--out", str(second), "--activate", "never"]) == 0
    assert "kept the current model as asked" in capsys.readouterr().out
    info = read_info(second)
    assert info.labels == [*bundled.labels, "grass"] and info.metrics["refined"]["base"] == bundled.version
    assert info.metrics["cross_validation"]["fused"]["per_label"]["grass"]["f1"] > 0.5  # out of fold
    with ProjectStore(comp_slice) as store:
        assert store.active_model() != second.resolve()
    predicted = Classifier(second).predict(np.zeros((1, 2560), np.float32), np.zeros((1, 384), np.float32),
                                           np.ones(1, np.float32), ["a dog running on the grass"])
    assert predicted.shape == (1, 19)
    with ProjectStore(comp_slice) as store:  # the refinement with a label of its own in use, then a retrain
        store.set_active_model(second)
    third = tmp_path / "third"
    assert main(["-q", "train", str(comp_slice), "--out", str(third), "--activate", "never"]) == 0
    assert "as its own cross-validated score: it trained on all of them" in capsys.readouterr().out
    reread = Classifier(third)  # reads back: the new label's thresholds are not added twice
    assert reread.labels == [*bundled.labels, "grass"] and reread.info.metrics["refined"]["base"] == bundled.version
    assert len(reread.info.generated_captions["thresholds"]) == len(reread.labels)
