"""Ray's overhead on one machine and how throughput scales with workers, side by side in one run:
`tagline classify` locally, then on a local Ray instance with 1 and 2 workers, each on a fresh
project of the same photos (the graphs already exported).
Usage: python -m bench.bench_ray [N]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import holdout_folder

TAGLINE = [sys.executable, "-m", "core.cli", "-q"]


def run(folder: Path, truth: Path, store: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([*TAGLINE, "classify", str(folder), "--store", str(store), "--captions", str(truth), *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(count: int = 500) -> None:
    work = Path(tempfile.mkdtemp(prefix="tagline-ray-"))
    folder, truth = holdout_folder(work / "photos", count)
    run(folder, truth, work / "warm.db", [])  # graphs exported, caches warm
    rows = [("local (no Ray)", run(folder, truth, work / "local.db", []))]
    for workers in (1, 2):
        rows.append((f"Ray, {workers} worker{'s' if workers > 1 else ''}",
                     run(folder, truth, work / f"ray{workers}.db", ["--ray", "--ray-workers", str(workers)])))
    base = rows[0][1]
    for name, seconds in rows:
        print(f"{name:<16} {seconds:6.1f} s  {count / seconds:6.1f} photos/s  ({seconds / base:.2f}x the local time)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
