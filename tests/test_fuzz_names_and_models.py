"""Fuzzed file names (any bytes Linux allows), exported cells and model.json fields: no
traceback, nothing lost, a clear message (issue 15)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import TaglineError
from core.formats.exporting import collect_rows, export_csv
from core.media.images import IMAGE_EXTENSIONS
from core.media.scan import stored_name
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder
from core.tagging.classifier import Classifier
from tests.conftest import ROOT, SAMPLE

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
# A name component is any bytes but "/" and NUL, at most 255 of them; a leading dot hides it.
name_bytes = st.binary(min_size=1, max_size=120).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
photo_name = st.tuples(name_bytes, st.sampled_from(sorted(IMAGE_EXTENSIONS))).map(
    lambda p: (b"p" + p[0]).rstrip(b" ")[:200] + p[1].encode())


def read_back(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(names=st.lists(photo_name, min_size=1, max_size=6, unique=True), folder_name=st.one_of(st.none(), name_bytes))
def test_fuzzed_file_names_are_scanned_stored_and_exported(tmp_path_factory: pytest.TempPathFactory,
                                                          names: list[bytes], folder_name: bytes | None) -> None:
    root = tmp_path_factory.mktemp("names")
    where = os.path.join(os.fsencode(root), b"d" + folder_name) if folder_name else os.fsencode(root)
    os.makedirs(where, exist_ok=True)
    photo = (SAMPLE / "rocket.jpg").read_bytes()
    for name in names:
        with open(os.path.join(where, name), "wb") as handle:
            handle.write(photo)
    with ProjectStore(root) as store:
        report = run_to_end(sync_folder(store))
        shown = {stored_name(os.fsdecode(os.path.relpath(os.path.join(where, n), os.fsencode(root))))[0] for n in names}
        stored = {r.relpath for r in store.images()}
        clashes = {p.path for p in report.problems}
        assert stored | clashes == shown and len(stored) + len(report.problems) == len(names)
        for record in store.images():  # every stored name opens its file again
            assert store.image_path(record).read_bytes() == photo
        out = root.parent / f"{root.name}.csv"
        assert export_csv(store, out, collect_rows(store, "no model")) == len(stored)
        assert {row["ImageID"] for row in read_back(out.read_bytes().decode("utf-8"))} == stored
    shutil.rmtree(root)


cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=80, deadline=None, suppress_health_check=FIXTURES)
@given(captions=st.lists(cell, min_size=4, max_size=4))
def test_fuzzed_captions_export_one_record_each_and_never_a_live_formula(sample_folder: Path, tmp_path: Path,
                                                                         captions: list[str]) -> None:
    store = ProjectStore(sample_folder, tmp_path / f"{abs(hash(tuple(captions)))}.db")
    run_to_end(sync_folder(store))
    ids = sorted(store.image_ids_by_relpath().values())
    store.set_captions(zip(ids, captions), "typed")
    out = tmp_path / "out.csv"
    export_csv(store, out, collect_rows(store, "no model"))
    rows = read_back(out.read_bytes().decode("utf-8"))
    assert len(rows) == 4  # no caption splits or swallows a record
    by_id = store.image_ids_by_relpath()
    for row in rows:
        original = captions[ids.index(by_id[row["ImageID"]])]
        assert row["Caption"] in (original, "'" + original)
        assert not row["Caption"].startswith(("=", "+", "-", "@", "\t", "\r"))
    store.close()


MODEL = ROOT / "models" / "default"
META = json.loads((MODEL / "model.json").read_text(encoding="utf-8"))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)
HEAD_KEYS = sorted(META["head"]) + ["unknown"]


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    for path in MODEL.iterdir():
        shutil.copyfile(path, folder / path.name)
    return folder


def _load_and_predict(folder: Path) -> None:
    classifier = Classifier(folder)
    classifier.encoders(prefer_gpu=False)  # resolves the encoder names (never downloads)
    config = classifier.heads[0].config if hasattr(classifier.heads[0], "config") else None
    image_dim = getattr(config, "image_dim", 2560)
    text_dim = getattr(config, "text_dim", 384)
    probabilities = classifier.predict(np.zeros((2, image_dim), np.float32), np.zeros((2, text_dim), np.float32),
                                       np.ones(2, np.float32), ["a", None])
    decided = classifier.decide(probabilities, np.ones(2, bool), np.array([False, True]))
    kind, scores = classifier.info.quality()  # what `tagline info` and the GUI show
    if kind:
        assert f"{scores['samples_f1']:.4f} {scores['micro_f1']:.4f} {scores['macro_f1']:.4f}"
    assert probabilities.shape == decided.shape == (2, len(classifier.labels))


@settings(max_examples=120, deadline=None, suppress_health_check=FIXTURES)
@given(key=st.sampled_from(sorted(META) + ["head." + k for k in HEAD_KEYS] + ["unknown"]), value=json_value,
       drop=st.booleans())
def test_fuzzed_model_json_loads_or_is_refused_with_a_message(model_copy: Path, key: str, value: Any, drop: bool) -> None:
    meta = json.loads(json.dumps(META))
    target, name = (meta["head"], key[5:]) if key.startswith("head.") else (meta, key)
    if drop:
        target.pop(name, None)
    else:
        target[name] = value
    (model_copy / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    try:
        _load_and_predict(model_copy)
    except TaglineError as exc:
        assert str(exc) and "Traceback" not in str(exc)
