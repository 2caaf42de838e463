"""How OpenVINO runs our graphs on this CPU: the image graph's time a photo by batch size in each
precision, and what a caption length the caption graph has not seen before costs.

The answers decide how the encoders feed the graphs (`core.models.precision_probe` times the
first on every machine; captions are padded to a multiple of `PAD_TOKENS_TO` for the second).
Usage: python -m bench.bench_batching [ROUNDS]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from core.models.encoders import image_onnx_path, text_onnx_path
from core.models.registry import image_spec, text_spec
from core.models.runtimes import _compile, _openvino, cpu_has_bf16, openvino_available

BATCHES = (1, 4, 8, 16, 32)
PHOTOS = 64


def image_table(rounds: int) -> None:
    ov = _openvino()
    graph = str(image_onnx_path(image_spec("efficientnet_lite0")))
    pixels = np.random.default_rng(0).standard_normal((PHOTOS, 3, 256, 256)).astype(np.float32)
    print("image graph, ms a photo (fastest of", rounds, "rounds over", PHOTOS, "photos):")
    print("precision " + "".join(f"{f'batch {b}':>10}" for b in BATCHES))
    for precision in ("f32", "bf16") if cpu_has_bf16() else ("f32",):
        request = _compile(ov.Core(), graph, {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
        row = []
        for batch in BATCHES:
            request.infer({0: pixels[:batch]})  # each shape is prepared on its first run
            best = float("inf")
            for _ in range(rounds):
                start = time.perf_counter()
                for i in range(0, PHOTOS, batch):
                    request.infer({0: pixels[i : i + batch]})
                best = min(best, (time.perf_counter() - start) / PHOTOS)
            row.append(1000 * best)
        print(f"{precision:<10}" + "".join(f"{ms:10.2f}" for ms in row))


def caption_lengths(rounds: int) -> None:
    ov = _openvino()
    graph = str(text_onnx_path(text_spec("minilm_l6")))
    precision = "bf16" if cpu_has_bf16() else "f32"
    request = _compile(ov.Core(), graph, {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()

    def run(length: int) -> float:
        ids = np.ones((32, length), np.int64)
        start = time.perf_counter()
        request.infer({"input_ids": ids, "attention_mask": ids})
        return 1000 * (time.perf_counter() - start)

    print(f"caption graph ({precision}), a batch of 32, ms: the first run of a length, then the fastest of {rounds}")
    for length in (16, 20, 24, 32):
        first = run(length)
        print(f"  {length} tokens: first {first:6.1f}, then {min(run(length) for _ in range(rounds)):6.1f}")


if __name__ == "__main__":
    if not openvino_available():
        sys.exit("OpenVINO is not installed: nothing to time")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    image_table(count)
    caption_lengths(count)
