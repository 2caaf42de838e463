"""The measured encoders offered for training: read from resources/backbones.json, only those
installed, and chosen in the app's Model menu for the next training."""

from __future__ import annotations

import json
from pathlib import Path

from core.models.backbones import backbone_figures, figures_path


def test_the_shipped_figures_name_installed_encoders_with_their_numbers() -> None:
    rows = backbone_figures()
    assert {r["name"] for r in rows} >= {"efficientnet_lite0"}
    for row in rows:
        assert row["ms"] > 0 and 0 < row["samples_f1"] < 1 and row["parameters"] > 1_000_000
    assert "bench_backbones" in json.loads(figures_path().read_text())["measured"]


def test_encoders_that_are_not_installed_are_not_offered(tmp_path: Path) -> None:
    table = {"encoders": [{"name": "efficientnet_lite0", "ms": 3.0}, {"name": "timm:resnet18@/nowhere.pth", "ms": 9.0},
                          {"name": "not_an_encoder", "ms": 1.0}]}
    path = tmp_path / "backbones.json"
    path.write_text(json.dumps(table))
    assert [r["name"] for r in backbone_figures(path)] == ["efficientnet_lite0"]
    path.write_text("not json")
    assert backbone_figures(path) == []
