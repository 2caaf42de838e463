"""Screenshots of finding photos by words (issue 36): the search box ranking uncaptioned photos
by meaning, a new label's first guesses from its name, and the label after the person decided
its best eight guesses (as their captions say) and the window retrained by itself.

    xvfb-run -a -s "-screen 0 1600x1000x24" python -m bench.bench_gui_word_screens docs/screenshots [--words "..."]

200 comp5329 photos are symlinked into a temporary folder, without their captions (the point:
photos nobody described are found by what they show).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench.bench_gui_screenshots import COMP, save, wait


def first_screen_decoded(window: object) -> bool:
    """The first 16 photos shown have their thumbnails (each paint asks for its own)."""
    model, loader = window.model, window.loader  # type: ignore[attr-defined]
    window.view.viewport().update()  # type: ignore[attr-defined]
    return all(loader.memory.get(model.image_id(row)) is not None for row in range(min(16, model.rowCount())))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--words", default="a plate of food on a table")
    parser.add_argument("--label", default="snow")
    args = parser.parse_args()
    os.environ.setdefault("TAGLINE_CACHE_DIR", str(Path(tempfile.gettempdir()) / "tagline-screens-cache"))
    work = Path(tempfile.mkdtemp(prefix="tagline-word-screens-"))
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    from gui import errors
    from gui.app import create_app
    from gui.main_window import MainWindow

    errors.SILENT = True
    app = create_app()
    window = MainWindow()
    window.settings.prefer_gpu = False
    window.resize(1360, 860)
    window.show()
    folder = work / "photos"
    folder.mkdir()
    for i in range(13500, 13700):
        (folder / f"{i}.jpg").symlink_to(COMP / "images" / f"{i}.jpg")
    window.open_folder(folder)
    wait(app, lambda: not window.jobs.queue.busy and window.model.rowCount() == 200)
    window.filter_bar.text.setText(args.words)
    wait(app, lambda: window.model.by_meaning and not window.jobs.queue.busy, timeout=900)
    wait(app, lambda: first_screen_decoded(window) and window.detail.preview.image is not None)
    args.out.mkdir(parents=True, exist_ok=True)
    save(window, args.out / "search-by-words.png")
    window.filter_bar.text.setText("")
    window.project.store.ensure_labels([args.label])
    window.project.reload_labels()
    wait(app, lambda: args.label in window.model.guesses)
    window.filter_bar.label.setCurrentText(args.label)
    wait(app, lambda: window.model.by_guess)
    window.select_row(0)
    wait(app, lambda: first_screen_decoded(window) and window.detail.preview.image is not None)
    app.processEvents()
    save(window, args.out / "new-label-guesses.png")
    learnt_screen(app, window, args.label, args.out / "new-label-learnt.png")
    window.close()
    return 0


def learnt_screen(app: object, window: object, label: str, path: Path) -> None:
    """The person decides the label on its best eight guesses (the truth read off the photos'
    captions, as a person would see it), the window retrains by itself (its model learns the label
    from those photos and its name), and the label's view shows the new model's calls."""
    import csv
    import re

    from bench.bench_label_guesses import LABELS
    from gui import review

    with open(COMP / "train.csv", newline="", encoding="utf-8") as f:
        captions = {r["ImageID"]: r["Caption"].lower() for r in csv.DictReader(f)}
    project, model = window.project, window.model  # type: ignore[attr-defined]
    window.settings.retrain_every = 8  # type: ignore[attr-defined]
    before = project.get_active_model()
    confirmed = 0
    for row in range(8):
        image_id = model.image_id(row)
        shows = bool(re.search(LABELS[label], captions[project.records.relpath(image_id)]))
        review.set_label(project, [image_id], label, shows)
        confirmed += shows
    wait(app, lambda: project.get_active_model() != before, timeout=900)
    # the view, left on the label, grows by the photos the new model calls so once it has decided them all
    wait(app, lambda: not model.by_guess and model.rowCount() > confirmed and not window.jobs.queue.busy,  # type: ignore[attr-defined]
         timeout=900)
    window.select_row(8)  # type: ignore[attr-defined]
    wait(app, lambda: first_screen_decoded(window) and window.detail.preview.image is not None  # type: ignore[attr-defined]
         and f"({model.rowCount()} shown)" in window.status.counts.text())  # type: ignore[attr-defined]
    save(window, path)


if __name__ == "__main__":
    raise SystemExit(main())
