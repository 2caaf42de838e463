"""Each encoder runtime against the torch reference (golden tests), the automatic choice, and
reduced-precision features cached apart from f32 ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from core.media.images import load_rgb
from core.models.embedding import Encoders
from core.models.encoders import ImageEncoder, TextEncoder, preprocess_image
from core.models.registry import image_spec, text_spec
from core.models.runtimes import (
    RUNTIME_ENV,
    Runtime,
    _openvino,
    bf16_measured_faster,
    choose_runtime,
    cpu_has_bf16,
    default_image_graph,
    openvino_available,
)
from core.models.torch_encoders import PooledFeatures, create_text_module

needs_openvino = pytest.mark.skipif(not openvino_available(), reason="openvino is not installed")
RUNTIMES = [Runtime("onnxruntime"), Runtime("openvino"), Runtime("openvino", "bf16")]
TEXTS = ["a cat sleeping on a sofa", "a kitten asleep on the couch", "a red bus in the city street"]


def available(runtime: Runtime) -> bool:
    return runtime.engine == "onnxruntime" or (openvino_available() and (runtime.precision == "f32" or cpu_has_bf16()))


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import shutil

    import torch

    from tests.conftest import SAMPLE

    folder = tmp_path_factory.mktemp("photos")
    for path in SAMPLE.glob("*.jpg"):
        shutil.copyfile(path, folder / path.name)
    spec, text = image_spec("efficientnet_lite0"), text_spec("minilm_l6")
    batch = np.stack([preprocess_image(load_rgb(p), spec) for p in sorted(folder.glob("*.jpg"))])
    ids, mask = TextEncoder(text, prefer_gpu=False).tokenize(TEXTS)
    with torch.inference_mode():
        image = PooledFeatures.create(spec)(torch.from_numpy(batch)).numpy()
        sentences = create_text_module(text)(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    return batch, image, sentences, ids


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda r: r.name)
def test_every_runtime_gives_the_torch_features(runtime: Runtime, references) -> None:  # type: ignore[no-untyped-def]
    if not available(runtime):
        pytest.skip(f"{runtime.name} is not available here")
    batch, image_reference, text_reference, _ = references
    image = ImageEncoder(image_spec("efficientnet_lite0"), prefer_gpu=False, runtime=runtime).encode(batch)
    text = TextEncoder(text_spec("minilm_l6"), prefer_gpu=False, runtime=runtime).encode(TEXTS)
    cosine = np.sum(image * image_reference, 1) / np.linalg.norm(image, axis=1) / np.linalg.norm(image_reference, axis=1)
    if runtime.precision == "f32":  # the same graph in another engine: the same numbers
        assert np.allclose(image, image_reference, atol=1e-3, rtol=1e-3)
        assert np.allclose(text, text_reference, atol=1e-4)
    else:  # bf16: close, not equal (cached under its own key)
        assert cosine.min() > 0.99 and np.abs(text - text_reference).max() < 0.02
    assert text[0] @ text[1] > text[0] @ text[2] + 0.2


def test_the_automatic_choice_and_asking_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert choose_runtime(None, gpu=True) == Runtime("onnxruntime")
    if openvino_available():
        bf16 = cpu_has_bf16() and bf16_measured_faster()
        expected = Runtime("openvino", "bf16" if bf16 else "f32")
    else:
        expected = Runtime("onnxruntime")
    assert choose_runtime(None, gpu=False) == expected  # this machine is x86_64
    assert choose_runtime("onnxruntime") == Runtime("onnxruntime")
    monkeypatch.setenv(RUNTIME_ENV, "onnxruntime")
    assert choose_runtime(None) == Runtime("onnxruntime")
    with pytest.raises(ModelError, match="unknown runtime 'tpu'"):
        choose_runtime("tpu")


@needs_openvino
def test_bf16_is_chosen_only_where_this_machine_timed_it_faster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.models import precision_probe
    from core.models.precision_probe import PROBE_FILE, RuntimeProbe, machine_key, runtime_probe

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16")
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    monkeypatch.setenv("TAGLINE_CACHE_DIR", str(tmp_path))
    graph = default_image_graph()
    measured = runtime_probe(_openvino(), graph, tmp_path, bf16=True)  # timed on the real graph, then kept
    assert measured.f32_single_ms > 0 and measured.f32_batch_ms > 0 and measured.bf16_batch_ms
    assert choose_runtime(None) == Runtime("openvino", "bf16" if measured.bf16_pays else "f32")
    monkeypatch.setattr(precision_probe, "measure", lambda *_: pytest.fail("timed again instead of read back"))
    assert runtime_probe(_openvino(), graph, tmp_path, bf16=True) == measured
    key = machine_key(_openvino(), graph)
    for times, expected in (((10.0, 12.0, 5.0, 4.0), "bf16"),  # the AMD EPYC of 12-02
                            ((4.3, 5.5, 2.8, 2.0), "bf16"),  # the Intel Xeon with AMX of 12-04: bf16 in batches
                            ((7.3, 7.4, 9.3, 10.5), "f32"),  # the Intel Xeon without AMX of 12-03
                            ((10.0, 11.0, 9.5, 9.6), "f32")):  # a gain within the noise
        fields = dict(zip(("f32_single_ms", "f32_batch_ms", "bf16_single_ms", "bf16_batch_ms"), times))
        (tmp_path / PROBE_FILE).write_text(json.dumps({key: fields}), encoding="utf-8")
        assert choose_runtime(None) == Runtime("openvino", expected)
    assert not RuntimeProbe(10.0, 11.0, 9.5, 9.6).bf16_pays  # not worth features cached apart


def test_the_probe_says_how_many_photos_go_to_the_graph_at_once() -> None:
    from core.models.precision_probe import PROBE_BATCH, RuntimeProbe

    amx = RuntimeProbe(4.3, 5.5, 2.8, 2.0)
    assert (amx.batch("f32"), amx.batch("bf16")) == (1, PROBE_BATCH)
    assert "in batches" in amx.describe() and "one photo at a time" in amx.describe()
    no_bf16 = RuntimeProbe(4.3, 5.5)
    assert not no_bf16.bf16_pays and no_bf16.batch("bf16") == 1  # asked for bf16 it has no timing of: f32's way
    assert no_bf16.describe() == "timed at 4.3 ms a photo in f32 (one photo at a time) on this CPU"
    assert RuntimeProbe(4.3, 4.1).batch("f32") == 1  # batches barely faster: the steady way stays


@needs_openvino
def test_the_image_encoder_batches_as_the_probe_timed_and_gives_the_same_features(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.models.encoders import image_onnx_path
    from core.models.precision_probe import PROBE_FILE, machine_key
    from tests.conftest import SAMPLE

    monkeypatch.setenv("TAGLINE_CACHE_DIR", str(tmp_path))
    spec = image_spec("efficientnet_lite0")
    photos = np.stack([preprocess_image(load_rgb(p), spec) for p in sorted(SAMPLE.glob("*.jpg"))] * 3)  # 12 photos
    graph = image_onnx_path(spec)
    key = machine_key(_openvino(), graph)
    features = {}
    for single_ms, batch_ms in ((4.0, 5.0), (5.0, 4.0)):
        fields = {"f32_single_ms": single_ms, "f32_batch_ms": batch_ms, "bf16_single_ms": 1.0, "bf16_batch_ms": 1.0}
        (tmp_path / PROBE_FILE).write_text(json.dumps({key: fields}), encoding="utf-8")
        encoder = ImageEncoder(spec, prefer_gpu=False, runtime=Runtime("openvino"))
        features[encoder.cpu_batch] = encoder.encode(photos)
    assert sorted(features) == [1, 8]
    assert np.allclose(features[1], features[8], atol=1e-4)  # 8 and then 4 photos at once: the same numbers


@needs_openvino
def test_an_f32_image_encoder_is_not_timed_in_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The captioner's graph runs in f32 only: timing it in bf16 too would cost a compile for nothing."""
    from core.models import precision_probe
    from core.models.precision_probe import RuntimeProbe

    monkeypatch.setenv("TAGLINE_CACHE_DIR", str(tmp_path))
    asked: list[bool] = []

    def measure(ov: object, graph: Path, bf16: bool) -> RuntimeProbe:
        asked.append(bf16)
        return RuntimeProbe(4.0, 5.0, 2.0, 1.0) if bf16 else RuntimeProbe(4.0, 5.0)

    monkeypatch.setattr(precision_probe, "measure", measure)
    assert ImageEncoder(image_spec("efficientnet_lite0"), prefer_gpu=False, runtime=Runtime("openvino")).cpu_batch == 1
    assert asked == [False]


@needs_openvino
def test_a_damaged_probe_file_is_timed_again(tmp_path: Path) -> None:
    from core.models.precision_probe import PROBE_FILE, runtime_probe

    (tmp_path / PROBE_FILE).write_text("{not json", encoding="utf-8")
    probe = runtime_probe(_openvino(), default_image_graph(), tmp_path, bf16=False)
    assert probe.f32_single_ms > 0 and probe.bf16_single_ms is None
    assert runtime_probe(_openvino(), default_image_graph(), tmp_path, bf16=False) == probe  # the file was mended


@needs_openvino
def test_bf16_features_are_cached_under_their_own_key(sample_folder: Path) -> None:
    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16")
    from core.progress import run_to_end
    from core.store.database import ProjectStore
    from core.store.sync import sync_folder
    from core.tagging.classifier import Classifier, classify_project

    classifier = Classifier()
    f32 = Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), False, "openvino")
    bf16 = Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), False, "openvino-bf16")
    assert f32.image_key == f32.image_spec.key and bf16.image_key == f32.image_key + "+bf16"
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        run_to_end(classify_project(store, classifier, f32))
        run_to_end(classify_project(store, classifier, bf16, redo=True))
        assert len(store.cached_embeddings(f32.image_key)) == len(store.cached_embeddings(bf16.image_key)) == 4
        a, b = store.cached_embeddings(f32.image_key), store.cached_embeddings(bf16.image_key)
        assert any(not np.array_equal(a[i][1], b[i][1]) for i in a)  # never one served for the other


@needs_openvino
def test_openvino_keeps_its_compiled_graphs_and_compiles_without_a_writable_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.models.registry import cache_dir

    spec = image_spec("efficientnet_lite0")
    pixels = preprocess_image(load_rgb(Path(__file__).resolve().parents[1] / "resources" / "sample" / "rocket.jpg"), spec)
    first = ImageEncoder(spec, prefer_gpu=False, runtime=Runtime("openvino")).encode(pixels[None])
    from core.models.encoders import _export_path
    from core.models.runtimes import OpenVinoSession

    assert any((cache_dir() / "openvino").glob("*.blob")), "the compiled graph is kept for the next run"
    graph = _export_path(spec.key)
    monkeypatch.setenv("TAGLINE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "openvino").write_text("a file where the cache folder would be")

    session = OpenVinoSession(graph)  # the cache cannot be made there: compiled without it
    again = session.run(None, {name: pixels[None] for name in session._inputs})[0]
    assert np.allclose(again, first, atol=1e-5)


@needs_openvino
def test_openvino_is_imported_without_its_conversion_tools_and_their_telemetry() -> None:
    import subprocess
    import sys

    code = ("import sys; from core.models.runtimes import openvino_available; assert openvino_available(); "
            "print('openvino.tools.ovc' in sys.modules and sys.modules['openvino.tools.ovc'] is not None, "
            "'openvino_telemetry' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda r: r.name)
def test_photos_as_bytes_give_the_features_of_photos_as_floats(runtime: Runtime) -> None:
    """OpenVINO normalises bytes inside its graph; onnxruntime is given them normalised in numpy."""
    from core.models.encoders import normalise_bytes, preprocess_bytes
    from tests.conftest import SAMPLE

    if not available(runtime):
        pytest.skip(f"{runtime.name} is not available here")
    spec = image_spec("efficientnet_lite0")
    photos = [load_rgb(p) for p in sorted(SAMPLE.glob("*.jpg"))]
    floats = np.stack([preprocess_image(p, spec) for p in photos])
    raw = np.stack([preprocess_bytes(p, spec) for p in photos])
    assert raw.dtype == np.uint8 and raw.shape == (4, 256, 256, 3)
    assert np.allclose(normalise_bytes(raw, spec), floats, atol=1e-6)
    encoder = ImageEncoder(spec, prefer_gpu=False, runtime=runtime)
    assert encoder.takes_bytes == (runtime.engine == "openvino")
    from_floats, from_bytes = encoder.encode(floats), encoder.encode(raw)
    if runtime.precision == "f32":
        assert np.allclose(from_bytes, from_floats, atol=1e-4)
    else:  # bf16: the normalisation folded into the first convolution rounds otherwise
        cosine = np.sum(from_bytes * from_floats, 1) / np.linalg.norm(from_bytes, axis=1) / np.linalg.norm(from_floats, axis=1)
        assert cosine.min() > 0.995
