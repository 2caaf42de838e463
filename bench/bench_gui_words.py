"""The search box ranking by meaning over N photos: from words typed (after the box's 250 ms
pause) to the gallery showing them best first, in the window's own objects.

    QT_QPA_PLATFORM=offscreen python -m bench.bench_gui_words --sizes 100000 1000000

The project is N synthetic rows (no files: the time does not depend on what photos show; 1,000
in every 100 have a caption that says the words, so the caption-hits-first rule has work), the
word index N random unit vectors in place of the embedded photos. Timed apart, medians: the
box's text filter as before (GUI thread, after the box's pause), the query on the I/O pool (MiniLM
encoding of the words, one float32 matrix product, a partial sort for the best 20,000), and the
ranking landing on the GUI thread (`order_by_words` and the model reset). The window is never
blocked by the query.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from core.media.scan import FoundFile
from core.store.database import ProjectStore
from core.tagging.word_ranking import GrowingIndex, ProjectWords

WORDS = "a dog on a beach"


def synthetic_store(folder: Path, size: int) -> ProjectStore:
    folder.mkdir(parents=True, exist_ok=True)
    store = ProjectStore(folder)
    if len(store.image_ids_by_relpath()) != size:
        for start in range(0, size, 100_000):
            files = [FoundFile(f"d{i // 100:05d}/img{i:07d}.jpg", 1000, 0) for i in range(start, min(size, start + 100_000))]
            store.add_files(files)
        ids = sorted(store.image_ids_by_relpath().values())
        for i in ids[::100]:
            store.set_caption(i, f"{WORDS} at sunset", "typed")
    return store


def measure(size: int, root: Path, repeats: int) -> dict[str, float]:
    from PySide6.QtWidgets import QApplication

    from gui.gallery import GalleryModel, ViewFilter
    from gui.project import Project
    from gui.thumbnails import ThumbnailLoader
    from gui.word_search import RANKED_LIMIT

    QApplication.instance() or QApplication([])
    store = synthetic_store(root / str(size), size)
    project = Project(store)
    project.finish_loading()
    model = GalleryModel(project, ThumbnailLoader())
    words = ProjectWords(store)
    from core.models.alignment import load_alignment
    from core.models.embedding import Encoders
    from core.models.registry import image_spec, text_spec

    words.alignment = load_alignment()
    words.encoders = Encoders(image_spec("efficientnet_lite0"), text_spec("minilm_l6"), False)
    words.encoders.text.encode(["warm up"])
    index = GrowingIndex(words.alignment.dim)
    ids = np.asarray(project.order, np.int64)
    matrix = np.random.default_rng(0).standard_normal((len(ids), index.dim), np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    index.put(ids.tolist(), matrix, [""] * len(ids))
    words.index = index
    query, literal, landing = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        model.set_filter(ViewFilter(text=WORDS))  # the box's text filter, as before this issue
        literal.append(time.perf_counter() - started)
        started = time.perf_counter()
        ranked = words.rank(WORDS, RANKED_LIMIT)  # on the I/O pool in the app
        query.append(time.perf_counter() - started)
        started = time.perf_counter()
        model.set_word_ranking(WORDS, ranked)  # back on the GUI thread
        landing.append(time.perf_counter() - started)
        assert model.by_meaning and model.rowCount() == size
        model.set_filter(ViewFilter())
    store.close()
    return {"photos": size, "text_filter_s": round(float(np.median(literal)), 3),
            "query_s": round(float(np.median(query)), 3), "landing_s": round(float(np.median(landing)), 3),
            "typed_to_shown_s": round(float(np.median(literal) + np.median(query) + np.median(landing)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "tagline-bench-words")
    args = parser.parse_args()
    for size in args.sizes:
        print(f"load average {os.getloadavg()[0]:.1f}:", measure(size, args.folder, args.repeats), flush=True)


if __name__ == "__main__":
    main()
