"""Which engine runs the encoders' ONNX graphs: onnxruntime (CUDA or CPU) or OpenVINO (CPU).

The same graph, the same preprocessing: only the engine differs. On an x86 CPU, OpenVINO runs
our graphs faster than onnxruntime at the same f32 results (docs/benchmarks.md); where the CPU
has bf16 units, OpenVINO's bf16 inference is faster still, and is chosen because the benchmark
showed held-out samples F1 moving by less than 0.002 (`bench/bench_runtimes.py --quality`). Features computed in bf16 are cached
under their own key (`feature_key_suffix`), never mixed with f32 ones.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError

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


def choose_runtime(requested: str | None = None, gpu: bool = False) -> Runtime:
    """`requested` (or $TAGLINE_RUNTIME): "onnxruntime", "openvino", "openvino-bf16" or "auto".

    Auto: onnxruntime when it will run on a GPU; else OpenVINO where it is installed on an x86
    CPU, in bf16 where the CPU has bf16 units (held-out samples F1 0.8806 against 0.8804 in f32,
    photo alone 0.8170 against 0.8159: within the 0.002 allowed; 2.7x the encoders' speed), else
    in f32 (the same numbers as onnxruntime, 1.5x); else onnxruntime on the CPU.
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
        return Runtime("openvino", "bf16" if cpu_has_bf16() else "f32")
    return Runtime("onnxruntime")


def full_precision(runtime: Runtime) -> Runtime:
    """The same engine in f32: for features cached under the f32 key (the captioner's), which
    must be the numbers onnxruntime gives."""
    return Runtime(runtime.engine, "f32")


class OpenVinoSession:
    """An OpenVINO compiled model behind onnxruntime's `run` and `get_providers`, so the
    encoders need not know which engine they hold."""

    def __init__(self, path: Path, precision: str = "f32") -> None:
        ov = _openvino()

        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  "PERFORMANCE_HINT": "LATENCY"}
        try:
            self._compiled = _compile(core, path, config)
        except Exception as exc:
            raise ModelError(f"OpenVINO cannot load {path}: {exc}") from exc
        self._request = self._compiled.create_infer_request()
        self._inputs = [port.any_name for port in self._compiled.inputs]
        self.precision = precision

    def get_providers(self) -> list[str]:
        return [f"OpenVINO-CPU-{self.precision}"]

    def run(self, output_names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        # the arrays are read in place (copying each batch into OpenVINO's tensors cost 0.7 s of
        # a 1,500-photo classify): they are contiguous and outlive the call
        results = self._request.infer({name: np.ascontiguousarray(feeds[name]) for name in self._inputs},
                                      share_inputs=True)
        return [np.array(value) for value in results.values()]


def _compile(core: Any, path: Path, config: dict[str, str]) -> Any:
    """Compile with OpenVINO's model cache: compiling the two encoders took 1.1 s of every
    `tagline classify` (py-spy), reading the compiled blobs back a fraction of it. The cache is
    keyed by OpenVINO on the graph, the device and the settings; where it cannot be written,
    compile without it."""
    from core.models.registry import cache_dir

    blobs = cache_dir() / "openvino"
    try:
        blobs.mkdir(parents=True, exist_ok=True)
        return core.compile_model(str(path), "CPU", {**config, "CACHE_DIR": str(blobs)})
    except Exception as exc:  # a read-only or full cache folder is no reason to fail
        log.debug("OpenVINO model cache unusable (%s); compiling without it", exc)
        return core.compile_model(str(path), "CPU", config)
