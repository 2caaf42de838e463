"""What to label next: the uncertainty score, greedy k-centre, and `tagline suggest` on real photos."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.store.database import ProjectStore
from core.tagging.suggest import choose, k_center, photo_uncertainty, uncertainty
from tests.conftest import SAMPLE


def test_uncertainty_peaks_at_the_threshold_and_takes_the_most_doubtful_label() -> None:
    probs = np.array([[0.7, 0.99], [0.05, 0.02], [0.69, 0.5], [1.0, 0.0]], np.float32)
    scores = uncertainty(probs, np.array([0.7, 0.5], np.float32))
    assert scores[0] == pytest.approx(1.0) and scores[2] == pytest.approx(1.0)
    assert scores[3] == pytest.approx(0.0) and 0 < scores[1] < 0.2


def test_the_gallerys_scalar_measure_is_the_same_rule() -> None:
    rng = np.random.default_rng(3)
    probs = rng.random((50, 4)).astype(np.float32)
    thresholds = rng.uniform(0.2, 0.8, 4).astype(np.float32)
    vectorised = uncertainty(probs, thresholds)
    assert all(abs(photo_uncertainty(row.tolist(), thresholds.tolist()) - v) < 1e-5 for row, v in zip(probs, vectorised))


def test_k_center_picks_the_far_cluster_first() -> None:
    rng = np.random.default_rng(0)
    near = rng.normal(0, 0.1, size=(50, 3))
    far = rng.normal(0, 0.1, size=(5, 3)) + np.array([10.0, 0, 0])
    features = np.concatenate([near, far]).astype(np.float32)
    labelled = np.zeros(55, bool)
    labelled[:3] = True
    picked = k_center(features, labelled, 2)
    assert picked[0] >= 50 and not labelled[picked].any() and len(set(picked.tolist())) == 2


def test_choose_never_returns_labelled_rows() -> None:
    rng = np.random.default_rng(1)
    probs = rng.random((40, 3)).astype(np.float32)
    labelled = rng.random(40) < 0.5
    for strategy in ("uncertain", "diverse", "random"):
        picked = choose(strategy, 10, labelled, probs, 0.5, probs, seed=2)
        assert len(picked) == 10 and not labelled[picked].any()
    with pytest.raises(ValueError, match="unknown strategy"):
        choose("cleverest", 1, labelled, probs)


def test_suggest_lists_unconfirmed_photos_most_uncertain_first(sample_folder: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "import", str(sample_folder), "--captions", str(SAMPLE / "captions.csv"), "--no-labels"]) == 0
    store = ProjectStore(sample_folder)
    ids = store.image_ids_by_relpath()
    store.confirm(ids["astronaut.jpg"], "person", True)
    store.close()
    capsys.readouterr()
    assert main(["-q", "suggest", str(sample_folder), "-n", "2"]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) == 2 and "astronaut.jpg" not in names and set(names) <= set(ids)
    out = tmp_path / "next.csv"
    assert main(["-q", "suggest", str(sample_folder), "-n", "5", "--out", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["ImageID"] for r in rows][:2] == names and len(rows) == 3  # only three are unconfirmed
    doubts = [float(r["Uncertainty"]) for r in rows]
    assert doubts == sorted(doubts, reverse=True) and all(0 <= d <= 1 for d in doubts)
