"""The measured figures of the image encoders a model can be trained on (`bench/bench_backbones.py`
writes `resources/backbones.json`), so the app can offer each with its speed and quality."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from core.models.registry import image_spec


def figures_path() -> Path:
    import core

    return Path(str(resources.files(core))).parent / "resources" / "backbones.json"


def backbone_figures(path: Path | None = None) -> list[dict[str, Any]]:
    """Each measured encoder that is installed here: name, parameters, MB, input px, encode ms a
    photo, head training s, validation samples/micro/macro F1, photo-alone F1."""
    try:
        table = json.loads((path or figures_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for row in table.get("encoders", []) if isinstance(table, dict) else []:
        try:
            image_spec(str(row["name"])).weights()  # installed, and its weights present
        except Exception:  # not installed here: not offered
            continue
        found.append(row)
    return found
