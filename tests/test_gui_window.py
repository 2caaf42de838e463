"""The main window: open by drop or argument, thumbnails, keyboard review, export."""

from __future__ import annotations

import csv

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from core.progress import run_to_end
from core.store.sync import sync_folder
from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)
from tests.gui_helpers import fake_predictions


def drop(widget, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPointF(10, 10).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def wait_open(qtbot, win, rows=4):
    qtbot.waitUntil(lambda: win.model.rowCount() == rows and not win.jobs.queue.busy, timeout=10_000)


def test_empty_window_shows_drop_hint(window):
    assert window.stack.currentWidget() is window.drop_hint
    assert "Drop a folder" in window.drop_hint.text()
    assert not window.a_classify.isEnabled()


def test_dropping_a_folder_opens_it(qtbot, window, sample_folder):
    drop(window, sample_folder)
    wait_open(qtbot, window)
    assert window.project is not None and window.project.folder == sample_folder.resolve()
    assert window.stack.currentWidget() is window.splitter
    assert str(sample_folder.resolve()) in window.settings.recent_folders


def test_dropping_an_image_opens_its_folder_and_selects_it(qtbot, window, sample_folder):
    drop(window, sample_folder / "coffee.jpg")
    wait_open(qtbot, window)
    qtbot.waitUntil(lambda: window.detail.title.text().find("coffee.jpg") >= 0, timeout=5000)


def test_thumbnails_load_in_background_and_disk_cache(qtbot, window, sample_folder):
    window.open_folder(sample_folder)
    wait_open(qtbot, window)
    qtbot.waitUntil(lambda: len(window.loader.memory) == 4, timeout=10_000)
    cached = list(window.loader.disk_dir.rglob("*.jpg"))
    assert len(cached) >= 4
    assert max(window.loader.get(i).width() for i in window.project.order) <= window.loader.size


def test_keyboard_review_and_undo(qtbot, window, sample_folder):
    window.open_folder(sample_folder)
    wait_open(qtbot, window)
    window.view.setFocus()
    first = window.selected_ids()[0]
    first_label = window.project.label_names()[0]
    qtbot.keyClick(window.view, Qt.Key.Key_1)
    assert window.project.store.confirmations()[first] == {first_label: True}
    qtbot.keyClick(window.view, Qt.Key.Key_Space)  # accept and advance
    assert first in window.project.reviewed
    assert window.selected_ids()[0] != first
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.project.store.confirmations() == {}
    assert first not in window.project.reviewed


def test_export_csv_through_the_worker(qtbot, window, sample_folder, tmp_path):
    from gui import review
    from gui.jobs import ExportRequest

    window.open_folder(sample_folder)
    wait_open(qtbot, window)
    image = window.project.order[0]
    review.set_label(window.project, [image], "cat", True)
    review.save_caption(window.project, image, "=a formula-looking caption")
    out = tmp_path / "labels.csv"
    handle = window.jobs.run_export(ExportRequest(out, "csv", None))
    with qtbot.waitSignal(handle.finished, timeout=10_000):
        pass
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["ImageID", "Labels", "Caption", "Confirmed", "Rejected", "CaptionSource"] and len(rows) == 5
    assert rows[1][1] == "cat" and rows[1][2] == "'=a formula-looking caption"
    assert rows[1][3] == "cat" and rows[1][5] == "typed"  # the person's decision and caption, said so
    qtbot.waitUntil(lambda: not window.jobs.queue.busy)


def test_startup_does_not_import_heavy_libraries():
    import subprocess
    import sys

    code = ("import sys; from gui.app import create_app; create_app(); from gui.main_window import MainWindow; "
            "MainWindow(); print(sorted(m for m in ('torch', 'onnxruntime', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().endswith("[]")


def test_settings_are_written_where_the_default_format_points(tmp_path):
    """Tests point QSettings at a temporary folder; the app's settings must follow, or the test
    suite would rewrite the developer's own settings (it once left batch size 2 there)."""
    from gui.settings import Settings, load_settings, qsettings, save_settings

    save_settings(Settings(batch_size=7))
    assert qsettings().fileName().startswith(str(tmp_path))
    assert load_settings().batch_size == 7


def test_the_export_writes_the_labels_the_grid_shows_at_the_chosen_threshold(qtbot, window, sample_folder, tmp_path):
    """One labelling rule (core.store.decisions): with the slider at 0.09 the grid and the export agree."""
    from core.store.database import ProjectStore
    from gui.jobs import ExportRequest

    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        fake_predictions(store)
    window.open_folder(sample_folder)
    wait_open(qtbot, window)
    window.detail.model_thresholds.setChecked(False)
    window.detail.slider.setValue(9)
    assert window.project.threshold == 0.09
    shown = {window.project.records[i].relpath: window.project.effective_labels(i) for i in window.project.order}
    assert any(len(labels) > 1 for labels in shown.values())  # the slider changed what is shown
    out = tmp_path / "labels.csv"
    handle = window.jobs.run_export(ExportRequest(out, "csv", None))
    with qtbot.waitSignal(handle.finished, timeout=10_000):
        pass
    written = {row["ImageID"]: [n for n in row["Labels"].split(";") if n] for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert written == shown
    window.detail.model_thresholds.setChecked(True)  # the model's thresholds again: the stored decisions
    handle = window.jobs.run_export(ExportRequest(out, "csv", None))
    with qtbot.waitSignal(handle.finished, timeout=10_000):
        pass
    written = {row["ImageID"]: [n for n in row["Labels"].split(";") if n] for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert written == {window.project.records[i].relpath: window.project.effective_labels(i) for i in window.project.order}
    assert written != shown
    qtbot.waitUntil(lambda: not window.jobs.queue.busy)


def test_missing_xcb_libraries_get_the_install_line_not_a_qt_abort(monkeypatch, capsys):
    import ctypes.util

    from gui import app, platform_check

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    real = ctypes.util.find_library
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name in ("xcb-icccm", "xcb-keysyms") else real(name))
    if real("xcb-cursor") is None:
        expected = ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"]
    else:
        expected = ["libxcb-icccm4", "libxcb-keysyms1"]
    assert platform_check.missing_xcb_packages() == expected
    assert app.run(None) == 2
    assert f"sudo apt install {' '.join(expected)}" in capsys.readouterr().err
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert platform_check.missing_xcb_packages() == []


def test_the_model_menu_offers_the_measured_encoders_for_training(window):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")
    encoders = next(a.menu() for a in menu.actions() if a.text() == "Image &encoder for training")
    texts = [a.text() for a in encoders.actions()]
    assert texts[0].startswith("The bundled model's") and encoders.actions()[0].isChecked()
    lite1 = next((a for a in encoders.actions() if a.text().startswith("efficientnet_lite1:")), None)
    if lite1 is not None:  # installed with the dev extras
        assert "ms a photo" in lite1.text() and "validation samples F1" in lite1.text()
        lite1.trigger()
        assert window.settings.train_image_encoder == "efficientnet_lite1" and not encoders.actions()[0].isChecked()


def test_a_scan_appends_batches_to_the_grid_without_reloading_the_snapshot(qtbot, window, tmp_path):
    """The first open of a big folder: each committed batch is appended (a reload per batch grew
    with the square of the folder) in natural order as it lands, and the snapshot is never re-read
    (a re-read of a million rows put the grid back to its first page under the person's scrolling)."""
    import shutil

    from tests.conftest import SAMPLE

    folder = tmp_path / "many"
    folder.mkdir()
    photo = SAMPLE / "rocket.jpg"
    for i in range(4500):  # three insert batches of 2,000
        shutil.copyfile(photo, folder / f"{i}.jpg")
    reloads, added = [], []
    window.open_folder(folder)
    window.project.reloaded.connect(lambda: reloads.append(window.model.rowCount()))
    window.project.images_added.connect(lambda ids: added.append(len(ids)))
    qtbot.waitUntil(lambda: window.model.rowCount() == 4500 and not window.jobs.queue.busy, timeout=60_000)
    assert added == [2000, 2000, 500] and reloads == []  # appended batch by batch, never reloaded
    names = [window.project.records[i].relpath for i in window.project.order[:12]]
    assert names[:3] == ["0.jpg", "1.jpg", "2.jpg"] and names[10] == "10.jpg"  # natural order as they landed
    assert window.project.order == [r.id for r in window.project.store.images()] == window.model.ids()
    assert window.view.currentIndex().isValid()


def test_a_reopen_shows_the_first_page_at_once_and_reads_the_rest_page_by_page(qtbot, window, tmp_path, monkeypatch):
    """A million-photo project must not build its whole snapshot before the first screen: the
    first page comes in natural order at once, the rest from the event loop, filtered as it lands."""
    import shutil

    from core.store.database import ProjectStore
    from gui import project as project_module
    from gui.gallery import ViewFilter
    from tests.conftest import SAMPLE

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1200):
        shutil.copyfile(SAMPLE / "rocket.jpg", folder / f"{i}.jpg")
    with ProjectStore(folder) as store:
        run_to_end(sync_folder(store))
        ids = store.image_ids_by_relpath()
        store.set_reviewed([ids[f"{i}.jpg"] for i in range(0, 1200, 7)], True)
        expected = [r.id for r in store.images()]
    monkeypatch.setattr(project_module, "FIRST_PAGE", 100)
    monkeypatch.setattr(project_module, "PAGE", 300)
    window.open_folder(folder)
    project = window.project
    assert window.model.rowCount() == 100 and project.loading  # the first screen before the rest is read
    assert [project.records[i].relpath for i in project.order[:11]][-2:] == ["9.jpg", "10.jpg"]
    qtbot.waitUntil(lambda: not project.loading and window.model.rowCount() == 1200, timeout=30_000)
    assert project.order == expected and len(project.reviewed) == len(range(0, 1200, 7))
    window.model.set_filter(ViewFilter(reviewed=True))
    project.reload()  # pages arriving under a filter are filtered one by one, not the whole snapshot again
    qtbot.waitUntil(lambda: not project.loading, timeout=30_000)
    assert window.model.ids() == [i for i in expected if i in project.reviewed]
    project.reload()
    project._load_next_page()
    window.model.set_filter(ViewFilter())  # a refilter mid-way shows what was read; the rest joins once, no row twice
    qtbot.waitUntil(lambda: not project.loading, timeout=30_000)
    assert window.model.ids() == expected
    project.reload()
    project.finish_loading()  # what export and a dropped photo's selection call: every photo, at once
    assert project.order == expected and not project.loading
    qtbot.waitUntil(lambda: not window.jobs.queue.busy, timeout=30_000)


def test_a_reopen_trusts_unmoved_folders_then_checks_every_file_in_the_background(qtbot, window, sample_folder):
    """Opening lists again only folders whose time moved (seconds for a million photos); the
    whole check that follows finds a photo rewritten in place and gives way to the person's jobs."""
    import os
    import time

    from core.store.database import ProjectStore

    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        before = {r.relpath: r.digest for r in store.images()}
    (sample_folder / "chelsea.jpg").write_bytes((sample_folder / "rocket.jpg").read_bytes())
    hour_ago = time.time() - 3600
    os.utime(sample_folder, (hour_ago, hour_ago))
    with ProjectStore(sample_folder) as store:
        store.save_folder_stamps({b"": os.stat(sample_folder).st_mtime_ns}, replace=True)
    started: list[str] = []
    window.jobs.queue.started.connect(lambda handle: started.append(handle.name))
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    window.open_folder(sample_folder)
    wait_open(qtbot, window)
    assert started == ["scanning", "checking files"]
    assert any(m.startswith("Checked every file: 0 new, 1 changed") for m in messages)
    after = {r.relpath: r.digest for r in window.project.store.images()}
    assert after["chelsea.jpg"] == before["rocket.jpg"] != before["chelsea.jpg"]
