"""Classification and captioning on Ray: the same labels and probabilities as the local path,
resumable, photos read by URI prefix, and a clear message without Ray (issue 18)."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.errors import TaglineError
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.classifier import Classifier
from tests.conftest import SAMPLE

ray = pytest.importorskip("ray")
CAPTIONS = SAMPLE / "captions.csv"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local instance for the module (127.0.0.1 only); each run then reuses it."""
    os.environ["TAGLINE_RUNTIME"] = "onnxruntime"  # f32 everywhere: results comparable to 1e-5
    env = {k: v for k, v in os.environ.items() if k.startswith(("TAGLINE_", "ORT_", "XDG_"))}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": env})
    yield
    ray.shutdown()
    os.environ.pop("TAGLINE_RUNTIME", None)


def copy_sample(target: Path) -> Path:
    shutil.copytree(SAMPLE, target, ignore=shutil.ignore_patterns("*.csv", "*.md"))
    (target / "broken.jpg").write_bytes((SAMPLE / "rocket.jpg").read_bytes()[:2000])
    return target


def predictions(folder: Path) -> dict[str, dict[str, tuple[float, bool]]]:
    with ProjectStore(folder) as store:
        names = {r.id: r.relpath for r in store.images()}
        return {names[i]: p for i, p in store.predictions(Classifier().key).items()}


def test_ray_gives_the_local_labels_and_probabilities(local_ray: None, tmp_path: Path) -> None:
    here, there = copy_sample(tmp_path / "local"), copy_sample(tmp_path / "ray")
    assert main(["-q", "classify", str(here), "--captions", str(CAPTIONS), "--out", str(tmp_path / "a.csv")]) == 1
    assert main(["-q", "classify", str(there), "--captions", str(CAPTIONS), "--out", str(tmp_path / "b.csv"),
                 "--ray", "--ray-workers", "2"]) == 1  # 1: the broken photo is reported, as locally
    local, remote = predictions(here), predictions(there)
    assert set(local) == set(remote) == {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"}
    for name in local:
        assert {k: v[1] for k, v in local[name].items()} == {k: v[1] for k, v in remote[name].items()}
        assert np.allclose([v[0] for v in local[name].values()], [remote[name][k][0] for k in local[name]], atol=1e-5)
    with open(tmp_path / "a.csv", newline="") as a, open(tmp_path / "b.csv", newline="") as b:
        assert list(csv.reader(a)) == list(csv.reader(b))
    with ProjectStore(there) as store:  # the failure is in the store as locally, embeddings are cached
        assert [r.error for r in store.images() if r.relpath == "broken.jpg"][0]
        assert len(store.cached_embeddings("image:efficientnet_lite0@256.r1")) == 4


def test_a_second_run_redoes_nothing_and_photos_can_come_by_prefix(local_ray: None, tmp_path: Path) -> None:
    from core.cluster.ray_jobs import classify_on_ray, photo_uri

    folder = copy_sample(tmp_path / "photos")
    (folder / "broken.jpg").unlink()
    with ProjectStore(folder) as store:
        from core.store.sync import sync_folder

        run_to_end(sync_folder(store))
        first = run_to_end(classify_on_ray(store, source=str(folder), prefer_gpu=False))  # the s3:// code path
        assert first.classified == 4 and first.failures == []
        again = run_to_end(classify_on_ray(store, source=str(folder), prefer_gpu=False))
        assert again.classified == 0 and again.already_done == 4
        record = store.images()[0]
        assert photo_uri(store, record, "s3://bucket/photos/") == f"s3://bucket/photos/{record.relpath}"


def test_captions_on_ray_fill_only_photos_without_one(local_ray: None, tmp_path: Path) -> None:
    folder = copy_sample(tmp_path / "photos")
    (folder / "broken.jpg").unlink()
    assert main(["-q", "import", str(folder), "--captions", str(CAPTIONS)]) == 0
    with ProjectStore(folder) as store:
        store.delete_caption(store.image_ids_by_relpath()["rocket.jpg"])
    assert main(["-q", "caption", str(folder), "--ray"]) == 0
    with ProjectStore(folder) as store:
        captions = {r.relpath: store.caption(r.id) for r in store.images()}
    assert captions["rocket.jpg"][1] == "generated" and len(captions["rocket.jpg"][0].split()) >= 3
    assert captions["chelsea.jpg"] == ("A tabby cat sitting on a wooden floor looking to the side.", "imported")


def test_without_ray_the_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.cluster.ray_jobs import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(TaglineError, match=r"pip install 'tagline\[cluster\]'"):
        require_ray()
