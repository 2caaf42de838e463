"""How long `tagline train` makes a person wait with few photos: `core.learn.ladder.train_small` alone
on the same 200 and 500 photos of each label set of bench_learning_curve.

Usage: python -m bench.bench_ladder_time [THREADS] [SETS]   (defaults: 2, cab)
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np
import torch

from bench.bench_learning_curve import label_set
from bench.common import load_comp_embeddings
from core.learn.ladder import train_small
from core.progress import run_to_end


def main(threads: int = 2, sets: str = "cab") -> None:
    torch.set_num_threads(threads)
    data, part = load_comp_embeddings()
    for name in sets:
        subset, rows = label_set(data, name)
        for n in (200, 500):
            idx = np.random.default_rng(n).choice(rows[part[rows] != "holdout"], n, replace=False)
            sample = replace(subset, image=subset.image[idx], text=subset.text[idx], has_caption=subset.has_caption[idx],
                             targets=subset.targets[idx], captions=[subset.captions[i] for i in idx])
            start = time.perf_counter()
            _, report = run_to_end(train_small(sample))
            print(f"{threads} threads, set {name}, {n} photos: {time.perf_counter() - start:.2f} s, chose {report.chosen}",
                  flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2, sys.argv[2] if len(sys.argv) > 2 else "cab")
