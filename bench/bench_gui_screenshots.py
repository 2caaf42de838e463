"""Take the README screenshots of the main window's states (runs the real app, CPU models).

    QT_QPA_PLATFORM=offscreen python bench/bench_gui_screenshots.py docs/screenshots
    xvfb-run -a python bench/bench_gui_screenshots.py docs/screenshots

Photos are copied (sample) or symlinked (shared data set) into a temporary folder; nothing is
written beside the originals.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "sample"
COMP = ROOT.parent / "shared" / "data" / "comp5329"
MAX_BYTES = 300_000


def wait(app: object, condition: Callable[[], bool], timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("condition not met")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def save(widget: object, path: Path) -> None:
    """PNG, palette-reduced when the full-colour file would be too large for the repository."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    widget.grab().save(buffer, "PNG")  # type: ignore[attr-defined]
    data = bytes(buffer.data())
    if len(data) > MAX_BYTES:
        image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=192, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        data = out.getvalue()
    path.write_bytes(data)
    print(f"{path}: {len(data) // 1024} KiB")


def comp_rows(count: int) -> list[tuple[str, str, str]]:
    with open(COMP / "train.csv", encoding="utf-8", newline="") as handle:
        rows = [(r["ImageID"], r["Labels"], r["Caption"]) for r in csv.DictReader(handle)]
    return rows[:count]


def main(out_dir: Path) -> int:
    os.environ.setdefault("TAGLINE_CACHE_DIR", str(Path(tempfile.gettempdir()) / "tagline-screens-cache"))
    work = Path(tempfile.mkdtemp(prefix="tagline-screens-"))
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    from gui import errors
    from gui.app import create_app
    from gui.export_dialog import ExportDialog
    from gui.main_window import MainWindow

    errors.SILENT = True
    app = create_app()
    window = MainWindow()
    window.settings.prefer_gpu = False
    window.resize(1360, 860)
    window.show()
    out_dir.mkdir(parents=True, exist_ok=True)
    wait(app, lambda: window.isVisible())
    save(window, out_dir / "empty-window.png")

    def open_and_classify(folder: Path, captions: dict[str, str], confirmed: dict[str, list[str]]) -> None:
        window.open_folder(folder)
        wait(app, lambda: not window.jobs.queue.busy and window.model.rowCount() > 0)
        project = window.project
        ids = project.store.image_ids_by_relpath()
        project.store.set_captions([(ids[k], v) for k, v in captions.items() if k in ids], "imported")
        project.store.confirm_many([(ids[k], n, True) for k, names in confirmed.items() for n in names if k in ids])
        project.store.set_reviewed([ids[k] for k in confirmed if k in ids])
        project.reload()
        window.jobs.classify()
        wait(app, lambda: not window.jobs.queue.busy)

    sample = work / "sample"
    shutil.copytree(SAMPLE, sample, ignore=shutil.ignore_patterns("*.csv", "*.md"))
    with open(SAMPLE / "captions.csv", encoding="utf-8", newline="") as handle:
        sample_captions = {r["ImageID"]: r["Caption"] for r in csv.DictReader(handle)}
    open_and_classify(sample, sample_captions, {"astronaut.jpg": ["person"]})
    window.select_row(0)
    wait(app, lambda: len(window.loader.memory) == 4 and window.detail.preview.image is not None)
    save(window, out_dir / "gallery-sample.png")

    if (COMP / "train.csv").is_file():
        from gui.jobs import model_summary

        id_to_name = {v: k for k, v in model_summary(None).external_ids.items()}
        comp = work / "comp"
        comp.mkdir()
        rows = comp_rows(60)
        for name, _, _ in rows:
            (comp / name).symlink_to(COMP / "images" / name)
        captions = {n: c for n, _, c in rows}
        labels = {n: [id_to_name[i] for i in ids.split() if i in id_to_name] for n, ids, _ in rows}
        open_and_classify(comp, captions, {n: v for n, v in list(labels.items())[::3]})
        window.select_row(4)
        wait(app, lambda: len(window.loader.memory) >= 12 and window.detail.preview.image is not None)
        save(window, out_dir / "gallery-photos.png")
        window.resize(1024, 640)  # a laptop's screen: every control still reachable
        wait(app, lambda: window.width() == 1024)
        app.processEvents()
        save(window, out_dir / "laptop-1024x640.png")
        window.resize(1360, 860)

        window.project.store.confirm_many([(window.project.store.image_ids_by_relpath()[n], lab, True)
                                           for n, names in labels.items() for lab in names])
        window.project.reload()
        window.settings.train_epochs = 30
        def on_progress(step: object) -> None:
            app.processEvents()

        handle = window.jobs.train()
        handle.progress.connect(on_progress)
        wait(app, lambda: not window.jobs.queue.busy)
        app.processEvents()
        save(window, out_dir / "training.png")  # few photos: the cross-validated score and per-label table

    project = window.project
    dialog = ExportDialog(project.folder, list(project.order), window.model.ids(), window.selected_ids(), window)
    dialog.probabilities.setChecked(True)
    dialog.show()
    wait(app, dialog.isVisible)
    save(dialog, out_dir / "export-dialog.png")
    dialog.close()
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"))
