"""GUI benchmarks: window visible time, first screen of thumbnails on 100,000 photos, memory,
and the longest GUI-thread stall while scrolling.

    QT_QPA_PLATFORM=offscreen python bench/bench_gui.py [--count 100000] [--folder /tmp/tagline-bench]

The photos are small generated JPEGs in a temporary folder (made once, reused). Each measure
runs in a fresh process so imports and caches are what a person launching the app would get.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, count: int) -> None:
    """Small JPEGs with varied colours, 100 per sub-folder (like a camera's DCIM)."""
    from PIL import Image

    marker = folder / f".complete-{count}"
    if marker.exists():
        return
    started = time.perf_counter()
    for i in range(count):
        sub = folder / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        Image.new("RGB", (96, 72), colour).save(sub / f"img{i:06d}.jpg", quality=70)
    marker.touch()
    print(f"generated {count} JPEGs in {time.perf_counter() - started:.1f} s")


def child_visible() -> dict[str, float]:
    """Time from interpreter start to the main window painted (torch must not be imported)."""
    from PySide6.QtWidgets import QApplication

    from gui.app import create_app
    from gui.main_window import MainWindow

    app = create_app()
    window = MainWindow()
    window.show()
    QApplication.processEvents()
    window.grab()
    visible = time.time() - float(os.environ["BENCH_T0"])
    heavy = [m for m in ("torch", "onnxruntime", "timm") if m in sys.modules]
    del app
    return {"window_visible_s": visible, "heavy_modules_loaded": len(heavy)}


def child_open(folder: Path) -> dict[str, float]:
    """Open the folder; time to sync done, and to every visible cell showing its thumbnail."""
    from PySide6.QtCore import QElapsedTimer, QPoint, QTimer
    from PySide6.QtWidgets import QApplication

    from gui import errors
    from gui.app import create_app
    from gui.main_window import MainWindow

    errors.SILENT = True
    app = create_app()
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    QApplication.processEvents()
    handles: list = []  # the jobs the open started: the scan, then (re-open) the background check
    window.jobs.queue.started.connect(handles.append)
    started = time.perf_counter()
    window.open_folder(folder)
    shown_rows = window.model.rowCount()

    def visible_ids() -> list[int]:
        rows = set()
        view = window.view
        for y in range(5, view.viewport().height(), 40):
            for x in range(5, view.viewport().width(), 40):
                index = view.indexAt(QPoint(x, y))
                if index.isValid():
                    rows.add(index.row())
        return [window.model.image_id(r) for r in rows]

    # the first screen does not wait for the rescan: the gallery shows what the store knows
    while True:
        app.processEvents()
        ids = visible_ids()
        if ids and all(window.loader.get(i) is not None for i in ids):
            break
        time.sleep(0.002)
    first_screen = time.perf_counter() - started
    def scanned() -> bool:
        return any(h.name == "scanning" and h.outcome for h in handles)

    def only_background_left() -> bool:
        current = window.jobs.queue.current
        return current.background if current is not None else not window.jobs.queue.busy

    while window.project.loading or not scanned():  # the rescan starts once the snapshot is read
        app.processEvents()
        time.sleep(0.002)
    synced = time.perf_counter() - started
    while not only_background_left():  # the scan's last signals handled
        app.processEvents()
        time.sleep(0.002)
    # a re-open's whole check of every file runs on in the background (a child process): the
    # scrolling below is what a person scrolling meanwhile gets
    checking = window.jobs.queue.busy

    # scrolling: a 5 ms timer measures how late the event loop serves it
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    # the garbage collector's pauses, to tell them from slow painting or thumbnail handling
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((time.perf_counter() - gc_started[0]) * 1000)

    gc.callbacks.append(on_gc)
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    bar = window.view.verticalScrollBar()
    scroll_started = time.perf_counter()
    for page in range(200):
        bar.setValue(int(bar.maximum() * page / 200))
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            app.processEvents()
    timer.stop()
    gc.callbacks.remove(on_gc)
    scroll_s = time.perf_counter() - scroll_started
    checking_after_scroll = window.jobs.queue.busy
    while window.jobs.queue.busy:
        app.processEvents()
        time.sleep(0.002)
    checked = time.perf_counter() - started
    filters = time_filters(window)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"rows": window.model.rowCount(), "rows_before_sync": shown_rows, "open_to_synced_s": synced,
              "open_to_every_file_checked_s": checked, "jobs": [h.name for h in handles],
              "checking_when_scroll_began": checking, "checking_when_scroll_ended": checking_after_scroll,
              "open_to_first_screen_s": first_screen, "scroll_max_stall_ms": max(gaps) if gaps else 0.0,
              "scroll_seconds": scroll_s, "scroll_stalls_over_50ms": sum(g > 50 for g in gaps),
              "scroll_longest_gc_ms": max(gc_pauses, default=0.0), "peak_rss_mb": rss_mb,
              "thumbnails_in_memory": len(window.loader.memory), **filters}
    window.close()
    return result


def time_filters(window: object) -> dict[str, float]:
    """Seconds for the grid to answer each filter and sort over the whole snapshot, and the
    rows each left (the photos are unlabelled and uncaptioned, so a label filter leaves none)."""
    from gui.gallery import ViewFilter

    model = window.model  # type: ignore[attr-defined]
    result: dict[str, float] = {}
    for name, view_filter in (("text", ViewFilter(text="img0004")), ("unreviewed", ViewFilter(reviewed=False)),
                              ("label", ViewFilter(label="person")), ("uncertainty_sort", ViewFilter(sort="uncertainty")),
                              ("confidence", ViewFilter(min_confidence=0.5)), ("none", ViewFilter())):
        started = time.perf_counter()
        model.set_filter(view_filter)
        result[f"filter_{name}_s"] = round(time.perf_counter() - started, 3)
        result[f"filter_{name}_rows"] = model.rowCount()
    return result


def run_child(mode: str, folder: Path | None, cache: Path) -> dict[str, float]:
    env = dict(os.environ, BENCH_T0=repr(time.time()), TAGLINE_CACHE_DIR=str(cache),
               QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               XDG_CONFIG_HOME=str(cache / "config"))
    args = [sys.executable, __file__, "--child", mode] + ([str(folder)] if folder else [])
    out = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "tagline-bench")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        mode = args.child[0]
        if mode == "open-no-freeze":  # the comparison: what scrolling costs without gc.freeze()
            gc.freeze = lambda: None
        result = child_visible() if mode == "visible" else child_open(Path(args.child[1]))
        print(json.dumps(result))
        return 0
    folder = args.folder / str(args.count)
    make_photos(folder, args.count)
    cache = args.folder / f"cache-{args.count}"
    shutil.rmtree(folder / ".tagline", ignore_errors=True)  # the first open really is the first
    shutil.rmtree(cache, ignore_errors=True)
    print("window visible:", run_child("visible", None, cache))
    print("first open (scan + hash + thumbnails decoded):", run_child("open", folder, cache))
    print("second open (project and disk thumbnail cache exist):", run_child("open", folder, cache))
    print("third open, without gc.freeze() (for comparison):", run_child("open-no-freeze", folder, cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
