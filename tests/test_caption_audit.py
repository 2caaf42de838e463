"""The caption bias audit: which side a caption names, the human side from several references,
outcomes with Wilson intervals, and the verb end to end on the sample photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.captions.audit import audit, human_side, outcome, rate, sides
from core.cli import main
from tests.conftest import SAMPLE


def test_sides_and_the_human_majority() -> None:
    assert sides("A woman and her dog", "gender") == {"woman"}
    assert sides("a man and a woman", "gender") == {"man", "woman"}
    assert sides("a red bus", "gender") == set()
    assert sides("two girls are posing", "number") == {"several people"} and sides("a girl", "age") == {"child"}
    references = ["A girl runs.", "A young woman running.", "A man watches a girl run.", "Someone runs."]
    assert human_side(references, "gender") == "woman"  # two name only a woman, the third names both
    assert human_side(["A man.", "A woman."], "gender") is None  # the references disagree
    assert outcome("a man riding a horse", "woman", "gender") == "other side"
    assert outcome("a person riding a horse", "woman", "gender") == "neither"


def test_rates_count_every_photo_once_with_intervals() -> None:
    photos = [("a.jpg", ["A woman cooking."], "a man cooking"), ("b.jpg", ["A woman reading."], "a woman reading"),
              ("c.jpg", ["A man skiing."], "a man skiing"), ("d.jpg", ["A red bus."], "a bus")]
    gender = next(r for r in audit(photos) if r.attribute == "gender")
    assert gender.table["woman"] == {"agrees": 1, "other side": 1, "both": 0, "neither": 0}
    assert gender.table["man"]["agrees"] == 1 and gender.examples == [("a.jpg", "woman", "a man cooking", "A woman cooking.")]
    half = gender.rates("woman")["other side"]
    assert half.rate == 0.5 and half.low < 0.5 < half.high
    wilson = rate(0, 10)
    assert wilson.low == 0.0 and 0.2 < wilson.high < 0.35  # never the empty interval of the plain estimate


def test_audit_captions_runs_on_the_sample_and_writes_json(sample_folder: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit.json"
    assert main(["-q", "audit-captions", str(sample_folder), "--captions", str(SAMPLE / "captions.csv"),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 photos with human and generated captions" in printed and "human says woman (1 photos)" in printed
    report = json.loads(out.read_text())
    assert report["photos"] == 4 and {a["attribute"] for a in report["attributes"]} == {"gender", "age", "number"}
    assert sum(v["count"] for v in report["attributes"][0]["by_truth"]["woman"].values()) == 1


def test_the_wilson_interval_is_scipys() -> None:
    """The closed form the application uses (it ships without scipy) against scipy's binomtest."""
    from statistics import NormalDist

    from core.captions import audit as audit_module

    assert audit_module._Z95 == pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-15)
    stats = pytest.importorskip("scipy.stats")
    for total in (1, 2, 3, 7, 10, 41, 100, 1234):
        for count in sorted({0, 1, total // 3, total // 2, total - 1, total}):
            ours = rate(count, total)
            interval = stats.binomtest(count, total).proportion_ci(confidence_level=0.95, method="wilson")
            assert (ours.low, ours.high) == (interval.low, interval.high), (count, total)  # to the bit
