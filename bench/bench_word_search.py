"""How fast words rank a folder's photos: the query through MiniLM and the alignment, then one
matrix product and a partial sort over N aligned vectors (random unit vectors stand in for the
photos: the time does not depend on what they show).

    python -m bench.bench_word_search --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.common import default_encoders
from core.models.alignment import load_alignment
from core.tagging.word_search import best_first, query_vectors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    alignment, encoders = load_alignment(), default_encoders()
    query_vectors(encoders, alignment, ["warm up"])
    started = time.perf_counter()
    query = query_vectors(encoders, alignment, ["a dog on a beach"])[0]
    print(f"load average {os.getloadavg()[0]:.1f}; query encoded in {1000 * (time.perf_counter() - started):.1f} ms")
    rng = np.random.default_rng(0)
    for size in args.sizes:
        matrix = rng.standard_normal((size, alignment.dim), np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            best_first(matrix, query, 50)
            times.append(time.perf_counter() - started)
        print(f"{size:>9,} photos: ranked in {1000 * np.median(times):.0f} ms (median of {args.repeats}; best {1000 * min(times):.0f})")


if __name__ == "__main__":
    main()
