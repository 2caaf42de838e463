"""How long a person takes to set up five labels of their own on a new folder (issue 34): the real
main window, driven with the keys and clicks a person would use, at a person's pace.

    QT_QPA_PLATFORM=offscreen python -m bench.bench_label_setup [--photos 150] [--shots DIR]
    xvfb-run -a python -m bench.bench_label_setup

A new folder of flickr8k photos (symlinked into a temporary folder) is opened and classified by
the bundled model, so it starts with the bundled 18 labels and their predictions, as the issue
found it. Then, with the window's own widgets and keys (QTest):
Ctrl+L (the label editor), a click on "Set all…", Ctrl+A, the five names typed one a line, a
click on OK, Esc. Between the steps the script waits as a person would (`PACE`): time to read
a dialog that opens, to point and click, and to type each key. The wall clock from the first key
to the five labels in the store is the person's time: the pauses plus whatever the app itself
takes (opening the dialogs, deleting 18 labels with their predictions), which is measured.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLICKR = ROOT.parent / "shared" / "data" / "flickr8k" / "images"
NAMES = ["kayak", "horse", "beach", "snow", "dog"]
# A person's pace, in seconds: reading a dialog that just opened, pointing at a button and
# clicking it (reaction plus Fitts's-law movement), one key typed (about 40 words a minute).
PACE = {"read": 1.5, "click": 1.5, "key": 0.3}


def wait(app: object, condition: Callable[[], bool], timeout: float = 600.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("condition not met")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=150)
    parser.add_argument("--shots", type=Path, help="save a screenshot of each dialog here")
    args = parser.parse_args()
    os.environ.setdefault("TAGLINE_CACHE_DIR", str(Path(tempfile.gettempdir()) / "tagline-label-setup-cache"))
    work = Path(tempfile.mkdtemp(prefix="tagline-label-setup-"))
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QPlainTextEdit, QPushButton

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    from gui import errors
    from gui.app import create_app
    from gui.main_window import MainWindow

    errors.SILENT = True
    app = create_app()
    window = MainWindow()
    window.settings.prefer_gpu = False
    window.resize(1366, 700)
    window.show()
    folder = work / "photos"
    folder.mkdir()
    for photo in sorted(FLICKR.glob("*.jpg"))[: args.photos]:
        (folder / photo.name).symlink_to(photo)
    window.open_folder(folder)
    wait(app, lambda: not window.jobs.queue.busy and window.model.rowCount() == args.photos)
    window.jobs.classify()
    wait(app, lambda: not window.jobs.queue.busy)
    project = window.project
    assert project is not None
    before = [label.name for label in project.labels]
    print(f"{args.photos} photos open and classified, {len(before)} labels ({', '.join(before[:3])}, ...)")

    def button(text: str) -> QPushButton:
        dialog = QApplication.activeModalWidget()
        found = [b for b in dialog.findChildren(QPushButton) if b.text().replace("&", "") == text]
        if not found:
            raise RuntimeError(f"no '{text}' button in {dialog.windowTitle()}")
        return found[0]

    def shot(name: str) -> None:
        if args.shots:
            args.shots.mkdir(parents=True, exist_ok=True)
            QApplication.activeModalWidget().grab().save(str(args.shots / f"label-setup-{name}.png"))

    typed = "\n".join(NAMES)
    steps: list[tuple[float, str, Callable[[], None]]] = [
        (PACE["read"], "Ctrl+L", lambda: QTest.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)),
        (PACE["read"] + PACE["click"], "click Set all…", lambda: (shot("editor"), QTest.mouseClick(
            button("Set all…"), Qt.MouseButton.LeftButton))),
        (PACE["read"], "Ctrl+A", lambda: QTest.keyClick(QApplication.activeModalWidget().findChild(QPlainTextEdit),
                                                        Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)),
        *[(PACE["key"], f"type {c!r}", (lambda c=c: QTest.keyClick(
            QApplication.activeModalWidget().findChild(QPlainTextEdit),
            Qt.Key.Key_Return if c == "\n" else getattr(Qt.Key, f"Key_{c.upper()}"))))
          for c in typed],
        (PACE["click"], "click OK", lambda: (shot("list"), QTest.mouseClick(button("OK"), Qt.MouseButton.LeftButton))),
        (PACE["read"], "Esc", lambda: (shot("editor-after"), QTest.keyClick(QApplication.activeModalWidget(),
                                                                            Qt.Key.Key_Escape))),
    ]
    pauses = sum(pause for pause, _, _ in steps)
    keys = sum(1 for _, name, _ in steps if not name.startswith("click"))
    clicks = len(steps) - keys
    done: list[float] = []
    start = time.perf_counter()

    def run(index: int) -> None:
        if index == len(steps):
            done.append(time.perf_counter())
            return
        _, _, action = steps[index]
        pause = steps[index + 1][0] if index + 1 < len(steps) else 0.0
        QTimer.singleShot(int(pause * 1000), lambda: run(index + 1))  # first: the action may open a modal dialog
        action()

    QTimer.singleShot(int(steps[0][0] * 1000), lambda: run(0))
    wait(app, lambda: bool(done) and QApplication.activeModalWidget() is None)
    wait(app, lambda: [label.name for label in project.store.labels()] == NAMES, timeout=60)
    seconds = time.perf_counter() - start
    after = [label.name for label in project.store.labels()]
    print(f"labels now: {', '.join(after)}")
    print(f"{keys} keys and {clicks} clicks; {seconds:.1f} s from the start to the five labels in the store, "
          f"of which {pauses:.1f} s the person's pace ({PACE}) and {max(seconds - pauses, 0):.1f} s waiting for the app")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
