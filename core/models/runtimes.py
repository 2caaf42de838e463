"""Which engine runs the encoders' ONNX graphs: onnxruntime (CUDA or CPU) or OpenVINO (CPU).

The same graph, the same preprocessing: only the engine differs. On an x86 CPU, OpenVINO runs
our graphs faster than onnxruntime at the same f32 results (docs/benchmarks.md); where the CPU
has bf16 units, OpenVINO's bf16 inference may be faster still (2.7x on an AMD EPYC and 2.2x on
an Intel Xeon with AMX; slower on one without AMX, so it is timed once per machine, with whether
photos go one at a time or in batches: `core.models.precision_probe`), and is
allowed because the benchmark showed held-out samples F1 moving by less than 0.002
(`bench/bench_runtimes.py --quality`). Features computed in bf16 are cached under their own key
(`feature_key_suffix`), never mixed with f32 ones.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError
from core.models.precision_probe import RuntimeProbe

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnxruntime", "openvino", "openvino-bf16")
RUNTIME_ENV = "TAGLINE_RUNTIME"  # set by `--runtime` and the app's setting; "auto" when unset


@dataclass(frozen=True)
class Runtime:
    """An engine and a precision: `engine` is "onnxruntime" or "openvino"; `precision` "f32" or "bf16"."""

    engine: str
    precision: str = "f32"

    @property
    def name(self) -> str:
        return self.engine if self.precision == "f32" else f"{self.engine}-{self.precision}"

    @property
    def feature_key_suffix(self) -> str:
        """Appended to an encoder's cache key: reduced precision gives (slightly) other vectors."""
        return "" if self.precision == "f32" else f"+{self.precision}"


def _openvino() -> Any:
    """`import openvino` without its model-conversion tools: importing those sends a usage event
    to Intel from a forked process (a desktop app must not phone home unasked) and cost
    0.2-0.3 s of every run; Tagline reads ONNX graphs and never converts models."""
    import sys

    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino.tools.ovc", None)  # type: ignore[arg-type]  # its import then fails quietly
    import openvino

    return openvino


@functools.cache
def openvino_available() -> bool:
    """Installed, and with its CPU plugin (a bundle missing the plugin lists no device)."""
    try:
        ov = _openvino()
        return "CPU" in ov.Core().available_devices
    except Exception:  # not installed, or a broken install: onnxruntime does the work
        return False


@functools.cache
def cpu_has_bf16() -> bool:
    if not openvino_available():
        return False
    ov = _openvino()
    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # an old runtime or an unknown device: no reduced precision
        return False


def choose_runtime(requested: str | None = None, gpu: bool = False,
                   image_graph: Callable[[], Path] | None = None) -> Runtime:
    """`requested` (or $TAGLINE_RUNTIME): "onnxruntime", "openvino", "openvino-bf16" or "auto".

    Auto: onnxruntime when it will run on a GPU; else OpenVINO where it is installed on an x86
    CPU, in bf16 where the CPU has bf16 units and bf16 is measured faster on `image_graph` (the
    encoder about to run; the default model's when not given): held-out samples F1 0.8805-0.8806
    against 0.8804 in f32, within the 0.002 allowed; else in f32 (the same numbers as
    onnxruntime, 1.4-1.5x its speed); else onnxruntime on the CPU.
    """
    name = (requested or os.environ.get(RUNTIME_ENV) or "auto").lower()
    if name not in RUNTIMES:
        raise ModelError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    if name == "onnxruntime":
        return Runtime("onnxruntime")
    if name.startswith("openvino"):
        if not openvino_available():
            raise ModelError("the openvino runtime is not installed: pip install openvino (or use --runtime onnxruntime)")
        if name == "openvino-bf16" and not cpu_has_bf16():
            raise ModelError("this CPU has no bf16 support; use --runtime openvino")
        return Runtime("openvino", "bf16" if name == "openvino-bf16" else "f32")
    if gpu:
        return Runtime("onnxruntime")
    if openvino_available() and platform.machine().lower() in ("x86_64", "amd64"):
        return Runtime("openvino", "bf16" if cpu_has_bf16() and bf16_measured_faster(image_graph) else "f32")
    return Runtime("onnxruntime")


def _probe(image_graph: Callable[[], Path] | None, bf16: bool) -> RuntimeProbe:
    """This machine's timing of `image_graph` (the default model's when not given), measured on
    first use, then read from the cache; bf16 timed too where asked (and the CPU has it)."""
    from core.models.precision_probe import runtime_probe
    from core.models.registry import cache_dir

    graph = image_graph() if image_graph is not None else default_image_graph()
    return runtime_probe(_openvino(), graph, cache_dir(), bf16=bf16 and cpu_has_bf16())


def bf16_measured_faster(image_graph: Callable[[], Path] | None = None) -> bool:
    """The probe's answer for this machine."""
    try:
        return _probe(image_graph, bf16=True).bf16_pays
    except (ModelError, OSError, RuntimeError) as exc:  # no graph to time, or OpenVINO refused it: f32 is safe
        log.warning("cannot time bf16 on this CPU (%s); running in f32", exc)
        return False


def image_batch(runtime: Runtime, graph: Path) -> int:
    """How many photos an image graph on `runtime` takes at once on a CPU: one at a time (f32 on
    every CPU measured) or a small batch (bf16 with AMX), as the probe timed this graph."""
    if runtime.engine != "openvino":
        return 1  # onnxruntime on a CPU: one at a time, measured faster (docs/benchmarks.md)
    try:
        # an f32 graph (the captioner's) is not timed in a precision it never runs in
        return _probe(lambda: graph, bf16=runtime.precision == "bf16").batch(runtime.precision)
    except (ModelError, OSError, RuntimeError) as exc:
        log.debug("cannot time %s (%s); one photo at a time", graph, exc)
        return 1


def precision_note(runtime: Runtime, image_graph: Callable[[], Path] | None = None) -> str:
    """How the probe timed this CPU, for `tagline info` ("" where OpenVINO does not run)."""
    if runtime.engine != "openvino":
        return ""
    try:
        return f"; {_probe(image_graph, bf16=True).describe()}"
    except (ModelError, OSError, RuntimeError):
        return ""


def default_image_graph() -> Path:
    """The shipped model's image graph, exported on first use: what the probe times when no
    encoder is named (`tagline info`, the status bar)."""
    from core.models.encoders import image_onnx_path
    from core.models.model_files import default_model_dir, read_info
    from core.models.registry import image_spec

    folder = default_model_dir()
    return image_onnx_path(image_spec(read_info(folder).image_encoder, folder))


def full_precision(runtime: Runtime) -> Runtime:
    """The same engine in f32: for features cached under the f32 key (the captioner's), which
    must be the numbers onnxruntime gives."""
    return Runtime(runtime.engine, "f32")


class OpenVinoSession:
    """An OpenVINO compiled model behind onnxruntime's `run` and `get_providers`, so the
    encoders need not know which engine they hold.

    With `byte_pixels` (the image graph's mean and std), its "pixels" input also takes the
    photos as bytes, (n, h, w, 3) uint8: OpenVINO's preprocessing converts, normalises and
    transposes them inside the graph (folded into the first convolution), where the decode
    threads' numpy normalisation and the four times larger float batch had cost about a fifth
    of a classify run's processor time. Float input still goes to the plain graph."""

    def __init__(self, path: Path, precision: str = "f32",
                 byte_pixels: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> None:
        self._ov = ov = _openvino()
        self._core = ov.Core()
        self._path = path
        self._config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                        "PERFORMANCE_HINT": "LATENCY"}
        self._requests: dict[bool, Any] = {}
        self._byte_pixels = byte_pixels
        self.precision = precision
        self._inputs: list[str] = []
        self._request(False)

    def _request(self, as_bytes: bool) -> Any:
        """The infer request of the plain graph, or of the graph that takes bytes (made on first use)."""
        if as_bytes not in self._requests:
            target: Any = str(self._path)
            try:
                if as_bytes:
                    target = self._bytes_model()
                compiled = _compile(self._core, target, self._config)
            except Exception as exc:
                raise ModelError(f"OpenVINO cannot load {self._path}: {exc}") from exc
            self._inputs = self._inputs or [port.any_name for port in compiled.inputs]
            self._requests[as_bytes] = compiled.create_infer_request()
        return self._requests[as_bytes]

    def _bytes_model(self) -> Any:
        from openvino.preprocess import PrePostProcessor

        ov = self._ov
        assert self._byte_pixels is not None
        mean, std = self._byte_pixels
        model = self._core.read_model(str(self._path))
        ppp = PrePostProcessor(model)
        pixels = ppp.input("pixels")
        pixels.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        pixels.model().set_layout(ov.Layout("NCHW"))
        # ((x / 255) - mean) / std, as preprocess_image computes it from the bytes
        pixels.preprocess().convert_element_type(ov.Type.f32).mean([255.0 * m for m in mean]).scale([255.0 * s for s in std])
        return ppp.build()

    @property
    def takes_bytes(self) -> bool:
        return self._byte_pixels is not None

    def get_providers(self) -> list[str]:
        return [f"OpenVINO-CPU-{self.precision}"]

    def run(self, output_names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        as_bytes = self.takes_bytes and feeds.get("pixels", np.empty(0, np.float32)).dtype == np.uint8
        # the arrays are read in place (copying each batch into OpenVINO's tensors cost 0.7 s of
        # a 1,500-photo classify): they are contiguous and outlive the call
        results = self._request(as_bytes).infer({name: np.ascontiguousarray(feeds[name]) for name in self._inputs},
                                                share_inputs=True)
        return [np.array(value) for value in results.values()]


def _compile(core: Any, model: Any, config: dict[str, str]) -> Any:
    """Compile with OpenVINO's model cache: compiling the two encoders took 1.1 s of every
    `tagline classify` (py-spy), reading the compiled blobs back a fraction of it. The cache is
    keyed by OpenVINO on the graph, the device and the settings; where it cannot be written,
    compile without it."""
    from core.models.registry import cache_dir

    blobs = cache_dir() / "openvino"
    try:
        blobs.mkdir(parents=True, exist_ok=True)
        return core.compile_model(model, "CPU", {**config, "CACHE_DIR": str(blobs)})
    except Exception as exc:  # a read-only or full cache folder is no reason to fail
        log.debug("OpenVINO model cache unusable (%s); compiling without it", exc)
        return core.compile_model(model, "CPU", config)
