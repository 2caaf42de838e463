"""The caption bias audit of the shipped captioner on the flickr8k test photos (five human
captions each) and the comp5329 held-out photos (one human caption each).
Usage: python -m bench.bench_caption_audit
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

from bench.bench_caption import FLICKR, flickr_test
from bench.common import holdout_folder
from core.cli import main as tagline


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tagline-audit-"))
    refs = flickr_test(work / "flickr")
    flickr_csv = work / "flickr.csv"
    with open(flickr_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageID", "Caption"])
        writer.writerows((name, text) for name, texts in refs.items() for text in texts)
    print(f"== flickr8k test ({FLICKR})")
    tagline(["-q", "audit-captions", str(work / "flickr"), "--store", str(work / "flickr.db"), "--captions", str(flickr_csv),
             "--json", str(work / "flickr.json")])
    folder, truth = holdout_folder(work / "holdout")
    print("== comp5329 held-out")
    tagline(["-q", "audit-captions", str(folder), "--store", str(work / "holdout.db"), "--captions", str(truth),
             "--json", str(work / "holdout.json")])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
