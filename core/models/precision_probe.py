"""Whether bf16 pays on this CPU: timed once on the image graph, the answer kept in the cache.

bf16 units do not make bf16 inference faster everywhere. On the AMD EPYC of 2026-12-02,
OpenVINO's bf16 ran our Lite0 graph 2.7x faster than f32; on the Intel Xeon of 2026-12-03
(avx512_bf16 without AMX) 1.3-1.6x slower (docs/benchmarks.md), though OpenVINO reports bf16
and defaults to it on both. So the automatic choice times the graph both ways, once per
machine, OpenVINO version and graph, and takes bf16 only where it is clearly faster.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PROBE_FILE = "bf16-probe.json"
PROBE_BATCH = 8
ROUNDS = 3
MIN_GAIN = 1.15  # bf16's features differ slightly and are cached apart: only a clear gain is worth it


@dataclass(frozen=True)
class Bf16Probe:
    """One machine's timing of one graph, milliseconds a photo, the fastest of a few rounds."""

    f32_ms: float
    bf16_ms: float

    @property
    def gain(self) -> float:
        return self.f32_ms / self.bf16_ms

    @property
    def pays(self) -> bool:
        return self.gain >= MIN_GAIN

    def describe(self) -> str:
        return f"bf16 timed at {self.bf16_ms:.1f} ms a photo against {self.f32_ms:.1f} ms in f32 on this CPU ({self.gain:.2f}x as fast)"


def machine_key(ov: Any, graph: Path) -> str:
    """What the answer depends on: the processor, how many cores the run gets, OpenVINO, the graph."""
    core = ov.Core()
    name = core.get_property("CPU", "FULL_DEVICE_NAME")
    capabilities = ",".join(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    stat = graph.stat()
    return f"{name}|{capabilities}|{os.cpu_count()}|{ov.__version__}|{graph.name}|{stat.st_size}"


def measure(ov: Any, graph: Path) -> Bf16Probe:
    """Time a batch of random photos through the graph in each precision, the two alternated."""
    from core.models.runtimes import _compile

    core = ov.Core()
    model = core.read_model(str(graph))
    shape = model.input(0).get_partial_shape()
    size = [shape[i].get_length() for i in (1, 2, 3)]
    pixels = np.random.default_rng(0).standard_normal((PROBE_BATCH, *size)).astype(np.float32)
    requests = {
        precision: _compile(core, str(graph), {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
        for precision in ("f32", "bf16")
    }
    best = {precision: float("inf") for precision in requests}
    for request in requests.values():
        request.infer({0: pixels})  # the first run allocates
    for _ in range(ROUNDS):
        for precision, request in requests.items():
            start = time.perf_counter()
            request.infer({0: pixels})
            best[precision] = min(best[precision], time.perf_counter() - start)
    return Bf16Probe(1000 * best["f32"] / PROBE_BATCH, 1000 * best["bf16"] / PROBE_BATCH)


def bf16_probe(ov: Any, graph: Path, cache: Path) -> Bf16Probe:
    """This machine's answer for `graph`: read from `cache`/PROBE_FILE, or measured and kept there."""
    path = cache / PROBE_FILE
    key = machine_key(ov, graph)
    known: dict[str, Any] = {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        known = loaded if isinstance(loaded, dict) else {}
        return Bf16Probe(**known[key])
    except (OSError, ValueError, KeyError, TypeError):  # not measured yet, or a damaged file: measure again
        pass
    probe = measure(ov, graph)
    log.info("%s: %s", graph.name, probe.describe())
    try:
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps({**known, key: asdict(probe)}, indent=1), encoding="utf-8")
        partial.replace(path)
    except OSError as exc:  # a read-only cache: measure again next time
        log.debug("cannot keep the bf16 probe in %s: %s", path, exc)
    return probe
