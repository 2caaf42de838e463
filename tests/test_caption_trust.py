"""Generated captions are weighed by what they were worth on validation photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.captions.caption_trust import calibrate, choose_weight
from core.cli import main
from core.models.model_files import default_model_dir, read_info
from core.store.database import ProjectStore
from core.tagging.classifier import Classifier
from core.tagging.learning import SplitRule
from tests.conftest import ROOT, needs_shared, write_comp_truth
from tests.test_caption_attention import tiny_attention_captioner

LABEL_MAP = ROOT / "resources" / "label_maps" / "comp5329.json"


def test_weight_follows_what_helped_on_validation() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((300, 6)) < 0.3
    def view() -> np.ndarray:  # an informative but noisy view: the classes overlap
        return truth * 0.4 + rng.random(truth.shape) * 0.6

    informative = view()
    noise = rng.random(truth.shape)
    assert choose_weight(truth, noise, informative).weight == 0.0  # captions that say nothing useful
    assert choose_weight(truth, informative, noise).weight == 1.0  # captions that carry it all
    blend = choose_weight(truth, informative, view())
    assert 0.0 < blend.weight < 1.0  # two independent views: their average beats either
    assert blend.validation_f1 == pytest.approx(max(row["validation_f1"] for row in blend.table), abs=5e-5)


def test_generated_rows_blend_with_the_photo_alone_and_use_their_thresholds() -> None:
    classifier = Classifier()
    info = classifier.info
    labels = len(classifier.labels)
    rng = np.random.default_rng(1)
    image = rng.normal(size=(3, 2560)).astype(np.float32)
    text = rng.normal(size=(3, 384)).astype(np.float32)
    ones = np.ones(3, np.float32)
    captions = ["a man riding a horse", "a cat on a sofa", "a red bus on a street"]
    fused = classifier.predict(image, text, ones, captions)
    alone = classifier.predict(image, np.zeros_like(text), np.zeros(3, np.float32), None)
    info.generated_captions = {"weight": 0.25, "thresholds": [0.9] * labels}
    generated = np.array([True, False, True])
    blended = classifier.predict(image, text, ones, captions, generated)
    np.testing.assert_allclose(blended[generated], 0.25 * fused[generated] + 0.75 * alone[generated], rtol=1e-6)
    np.testing.assert_array_equal(blended[~generated], fused[~generated])
    rows = info.row_thresholds(ones, generated)
    assert (rows[generated] == np.float32(0.9)).all()
    np.testing.assert_array_equal(rows[1], info.decision_thresholds())


@needs_shared
def test_calibration_chooses_on_validation_and_rewrites_only_the_metadata(comp_slice: Path, tmp_path: Path) -> None:
    """Real labelled photos, a captioner that writes nonsense (untrained): it earns little trust."""
    truth = write_comp_truth(comp_slice, tmp_path / "truth.csv")
    assert main(["-q", "import", str(comp_slice), "--captions", str(truth), "--label-map", str(LABEL_MAP)]) == 0
    model = tmp_path / "model"
    shutil.copytree(default_model_dir(), model)
    weights = (model / read_info(model).weights).read_bytes()
    captioner = tiny_attention_captioner(tmp_path / "captioner")
    with ProjectStore(comp_slice) as store:
        setting = calibrate(model, store, captioner, SplitRule(holdout=0.3, validation=0.4, seed=5))
    assert setting["weight"] <= 0.5 and setting["captioner"] == "test-attention"
    scores = setting["samples_f1"]
    assert scores["validation"]["photos"] > 30 and scores["holdout"]["photos"] > 30
    assert scores["validation"]["generated_blended"] >= scores["validation"]["generated_as_typed"]
    info = read_info(model)
    assert info.generated_captions == setting and info.version == read_info(default_model_dir()).version
    assert (model / info.weights).read_bytes() == weights
