"""Shared fixtures: a fresh copy of the bundled sample, isolated cache and user folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "sample"
SHARED = next(
    (p for p in (Path(os.environ.get("TAGLINE_SHARED_DATA", "")), ROOT.parent / "shared" / "data", Path("/work/shared/data"))
     if str(p) not in ("", ".") and (p / "comp5329" / "train.csv").is_file()),
    ROOT.parent / "shared" / "data",
)
COMP = SHARED / "comp5329"

needs_shared = pytest.mark.skipif(not (COMP / "train.csv").is_file(), reason="../shared/data is not present")


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ONNX exports are shared by the session (they are deterministic); user data is not real."""
    cache = os.environ.get("TAGLINE_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ["TAGLINE_CACHE_DIR"] = cache
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data_home"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def sample_folder(tmp_path: Path) -> Path:
    """The four licensed sample photos, their captions CSV moved out of the folder."""
    folder = tmp_path / "photos"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("*.csv", "*.md", ".tagline"))
    return folder


def write_comp_truth(folder: Path, path: Path) -> Path:
    """comp5329's `ImageID,Labels,Caption` rows for the photos in `folder`, as a CSV at `path`."""
    import csv

    with open(COMP / "train.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if (folder / r["ImageID"]).exists()]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ImageID", "Labels", "Caption"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def comp_slice(tmp_path: Path) -> Path:
    """160 real photos of the default model's held-out part (symlinks, not copies)."""
    if not (COMP / "train.csv").is_file():
        pytest.skip("../shared/data is not present")
    from core.tagging.learning import SplitRule

    folder = tmp_path / "comp"
    folder.mkdir()
    names = (f"{i}.jpg" for i in range(18000))
    held_out = [n for n in names if SplitRule().part(n) == "holdout"][:160]
    for name in held_out:
        (folder / name).symlink_to(COMP / "images" / name)
    return folder
