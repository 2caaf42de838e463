"""How this CPU runs the image graph fastest: in which precision, and one photo at a time or in
small batches. Timed once per machine, OpenVINO version and graph; the answer kept in the cache.

Neither answer holds everywhere. On the AMD EPYC of 2026-12-02, OpenVINO's bf16 ran our Lite0
graph 2.7x faster than f32; on the Intel Xeon of 2026-12-03 (avx512_bf16 without AMX) 1.3-1.6x
slower, though OpenVINO reports bf16 and defaults to it on both. And in f32 a convnet runs fastest
one photo at a time on these CPUs (activations stay in cache: 4.3 against 5.5 ms a photo in
batches of 32), while bf16 on an Intel Xeon with AMX runs batches of 4-8 at 1.95-2.0 ms a photo
against 2.8 ms one at a time (2026-12-04, docs/benchmarks.md). So the probe times each precision
both ways, and the encoders take bf16 only where it is clearly faster, in the batching timed best.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PROBE_FILE = "runtime-probe.json"  # "bf16-probe.json" (before 12-04) timed batches only
PROBE_BATCH = 8  # also the batch the encoder then runs where batches are faster
ROUNDS = 3
MIN_GAIN = 1.15  # bf16's features differ slightly and are cached apart: only a clear gain is worth it
BATCH_MIN_GAIN = 1.1  # one photo at a time stays unless batches are clearly faster (a steady choice)


@dataclass(frozen=True)
class RuntimeProbe:
    """One machine's timing of one graph, milliseconds a photo, the fastest of a few rounds:
    one photo at a time and in batches of PROBE_BATCH, in f32 and (where the CPU has it) bf16."""

    f32_single_ms: float
    f32_batch_ms: float
    bf16_single_ms: float | None = None
    bf16_batch_ms: float | None = None

    def _times(self, precision: str) -> tuple[float, float]:
        if precision == "bf16" and self.bf16_single_ms is not None and self.bf16_batch_ms is not None:
            return self.bf16_single_ms, self.bf16_batch_ms
        return self.f32_single_ms, self.f32_batch_ms

    def best_ms(self, precision: str) -> float:
        """The time of the way the encoder will run."""
        single, batched = self._times(precision)
        return batched if self.batch(precision) > 1 else single

    def batch(self, precision: str) -> int:
        """How many photos the encoder hands the graph at once in this precision."""
        single, batched = self._times(precision)
        return PROBE_BATCH if single >= BATCH_MIN_GAIN * batched else 1

    @property
    def bf16_gain(self) -> float:
        return self.best_ms("f32") / self.best_ms("bf16") if self.bf16_single_ms is not None else 1.0

    @property
    def bf16_pays(self) -> bool:
        return self.bf16_single_ms is not None and self.bf16_gain >= MIN_GAIN

    def describe(self) -> str:
        def way(precision: str) -> str:
            return "in batches" if self.batch(precision) > 1 else "one photo at a time"

        f32 = f"{self.best_ms('f32'):.1f} ms a photo in f32 ({way('f32')})"
        if self.bf16_single_ms is None:
            return f"timed at {f32} on this CPU"
        return (f"bf16 timed at {self.best_ms('bf16'):.1f} ms a photo ({way('bf16')}) against {f32} "
                f"on this CPU ({self.bf16_gain:.2f}x as fast)")


@functools.cache
def _processor(ov: Any) -> str:
    """The CPU as OpenVINO names it and what it can do (asked once a process: every encoder asks)."""
    core = ov.Core()
    return f"{core.get_property('CPU', 'FULL_DEVICE_NAME')}|{','.join(core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}"


def machine_key(ov: Any, graph: Path) -> str:
    """What the answer depends on: the processor, how many cores the run gets, OpenVINO, the graph."""
    return f"{_processor(ov)}|{os.cpu_count()}|{ov.__version__}|{graph.name}|{graph.stat().st_size}"


def measure(ov: Any, graph: Path, bf16: bool) -> RuntimeProbe:
    """Time PROBE_BATCH random photos through the graph each way, the ways alternated."""
    from core.models.runtimes import _compile

    core = ov.Core()
    model = core.read_model(str(graph))
    shape = model.input(0).get_partial_shape()
    size = [shape[i].get_length() for i in (1, 2, 3)]
    pixels = np.random.default_rng(0).standard_normal((PROBE_BATCH, *size)).astype(np.float32)
    precisions = ("f32", "bf16") if bf16 else ("f32",)
    requests = {
        precision: _compile(core, str(graph), {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
        for precision in precisions
    }

    def singly(request: Any) -> None:
        for i in range(PROBE_BATCH):
            request.infer({0: pixels[i : i + 1]})

    def batched(request: Any) -> None:
        request.infer({0: pixels})

    ways = {(precision, name): (request, run) for precision, request in requests.items()
            for name, run in (("single", singly), ("batch", batched))}
    for request, run in ways.values():
        run(request)  # the first run of each shape allocates
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(ROUNDS):
        for way, (request, run) in ways.items():
            start = time.perf_counter()
            run(request)
            best[way] = min(best[way], time.perf_counter() - start)
    ms = {way: 1000 * seconds / PROBE_BATCH for way, seconds in best.items()}
    return RuntimeProbe(ms["f32", "single"], ms["f32", "batch"], ms.get(("bf16", "single")), ms.get(("bf16", "batch")))


def runtime_probe(ov: Any, graph: Path, cache: Path, bf16: bool) -> RuntimeProbe:
    """This machine's answer for `graph`: read from `cache`/PROBE_FILE, or measured and kept there.
    `bf16`: the CPU has bf16 units, so that precision is timed too."""
    from core.formats.temp_files import writing_beside

    path = cache / PROBE_FILE
    key = machine_key(ov, graph)
    known: dict[str, Any] = {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        known = loaded if isinstance(loaded, dict) else {}
        probe = RuntimeProbe(**known[key])
        if not bf16 or probe.bf16_single_ms is not None:
            return probe
    except (OSError, ValueError, KeyError, TypeError):  # not measured yet, or a damaged file: measure again
        pass
    probe = measure(ov, graph, bf16)
    log.info("%s: %s", graph.name, probe.describe())
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with writing_beside(path) as partial:
            partial.write_text(json.dumps({**known, key: asdict(probe)}, indent=1), encoding="utf-8")
            partial.replace(path)
    except OSError as exc:  # a read-only cache: measure again next time
        log.debug("cannot keep the runtime probe in %s: %s", path, exc)
    return probe
