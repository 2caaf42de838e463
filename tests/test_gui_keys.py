"""The keyboard never traps: Esc and Tab leave the caption box, Ctrl+F finds, and a word typed
while the photos have the keyboard searches instead of labelling."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)
from tests.gui_helpers import fake_predictions


def open_window(qtbot, window, folder):
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    fake_predictions(window.project.store)
    window.project.reload()
    window.select_row(0)
    return window.project


def type_text(qtbot, text):
    """Keys as a person types them: each to whichever widget has the keyboard now."""
    for char in text:
        qtbot.keyClick(QApplication.focusWidget(), char)


def test_esc_and_tab_leave_the_caption_box_and_the_next_key_moves_on(qtbot, window, sample_folder):
    project = open_window(qtbot, window, sample_folder)
    window.activateWindow()
    caption = window.detail.caption
    caption.setFocus()
    qtbot.waitUntil(caption.hasFocus)
    type_text(qtbot, "A dog")
    qtbot.keyClick(caption, Qt.Key.Key_Tab)
    assert not caption.hasFocus() and "\t" not in caption.toPlainText()
    caption.setFocus()
    qtbot.keyClick(caption, Qt.Key.Key_Escape)
    assert window.view.hasFocus()
    first = window.selected_ids()
    assert project.store.caption(first[0]) == ("A dog", "typed")  # saved on the way out
    type_text(qtbot, "j")
    assert window.selected_ids() != first and caption.toPlainText() != "A dogj"


def test_ctrl_f_finds_and_a_word_typed_on_the_photos_searches_instead_of_labelling(qtbot, window, sample_folder):
    project = open_window(qtbot, window, sample_folder)
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    before = (project.store.confirmations(), set(project.reviewed))
    type_text(qtbot, "zebra")
    assert (project.store.confirmations(), set(project.reviewed)) == before  # nothing marked or accepted
    assert window.filter_bar.text.text() == "zebra" and window.filter_bar.text.hasFocus()
    qtbot.keyClick(window.filter_bar.text, Qt.Key.Key_Escape)
    assert window.view.hasFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.filter_bar.text.hasFocus()


def test_the_folder_keeps_its_filter_and_sort_and_help_lists_every_key(qtbot, window, sample_folder):
    from gui.gallery import ViewFilter
    from gui.main_window import saved_filter

    project = open_window(qtbot, window, sample_folder)
    window.filter_bar.text.setText("chelsea")
    window.filter_bar.sort.setCurrentIndex(1)  # most uncertain first
    qtbot.waitUntil(lambda: saved_filter(project.store).text == "chelsea", timeout=3_000)
    assert saved_filter(project.store) == ViewFilter(text="chelsea", sort="uncertainty")
    window.close_project()
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: not window.jobs.queue.busy, timeout=10_000)
    assert window.filter_bar.text.text() == "chelsea" and window.filter_bar.sort.currentIndex() == 1
    assert window.model.rowCount() == 1
    keys = dict(window.key_table())
    assert keys["Find"] == "Ctrl+F" and keys["Accept labels and next"] == "Space" and keys["Keys"] == "F1"
    assert keys[window.project.label_names()[0]] == "1"  # labels have their keys listed too


def test_a_rescan_that_finds_new_photos_decides_them(qtbot, window, sample_folder, tmp_path):
    import shutil

    project = open_window(qtbot, window, sample_folder)
    (sample_folder / "more").mkdir()
    shutil.copy(sample_folder / "chelsea.jpg", sample_folder / "more" / "cat2.jpg")
    classified = []
    original = window.jobs.classify
    window.jobs.classify = lambda *a, **k: classified.append(True)  # the run itself is tested elsewhere
    window.rescan()
    qtbot.waitUntil(lambda: bool(classified), timeout=20_000)
    window.jobs.classify = original
    assert "more/cat2.jpg" in project.store.image_ids_by_relpath()


def test_undo_says_what_it_undoes_shows_the_photo_and_a_reload_keeps_the_selection(qtbot, window, sample_folder):
    from gui import review

    project = open_window(qtbot, window, sample_folder)
    ids = project.store.image_ids_by_relpath()
    window.select_image(ids["coffee.jpg"])
    review.set_label(project, [ids["coffee.jpg"]], "cup", True)
    assert window.a_undo.text() == "&Undo add cup"
    window.select_image(ids["astronaut.jpg"])
    window._undo()
    assert window.selected_ids() == [ids["coffee.jpg"]]  # the photo the undo changed is shown
    assert window.a_redo.text() == "&Redo add cup"
    project.reload()  # what captioning or a rescan ends with
    assert window.selected_ids() == [ids["coffee.jpg"]]


def test_the_label_list_filters_as_typed_and_esc_clears_it_and_returns_to_the_photos(qtbot, window, sample_folder):
    project = open_window(qtbot, window, sample_folder)
    window.activateWindow()
    detail, names = window.detail, project.label_names()
    assert len(names) >= 3
    box = detail.label_filter
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    before = project.store.confirmations()
    type_text(qtbot, "CA")  # a label's key typed in the box narrows the list, it never toggles a label
    shown = [detail.labels_model.states()[r].name for r in range(detail.labels_model.rowCount())
             if not detail.labels_view.isRowHidden(r)]
    assert shown == [n for n in names if "ca" in n.lower()] and "cat" in shown and "person" not in shown
    assert project.store.confirmations() == before and box.text() == "CA"
    window.select_row(1)  # another photo: the list stays filtered
    assert [r for r in range(detail.labels_model.rowCount()) if not detail.labels_view.isRowHidden(r)] == \
        [names.index(n) for n in shown]
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert box.text() == "" and window.view.hasFocus()
    assert not any(detail.labels_view.isRowHidden(r) for r in range(detail.labels_model.rowCount()))
    on = window.selected_ids()
    type_text(qtbot, "j")  # the photos have the keyboard again: J moves on
    assert window.selected_ids() != on and box.text() == ""


def test_the_training_tab_switch_for_generated_captions_is_kept_per_folder(qtbot, window, sample_folder, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(sample_folder, other)
    project = open_window(qtbot, window, sample_folder)
    switch = window.training.generated_captions
    assert switch.isChecked() and project.learns_generated_captions  # the measured default
    switch.click()
    assert not project.learns_generated_captions
    window.open_folder(other)  # another folder has its own setting
    qtbot.waitUntil(lambda: not window.jobs.queue.busy, timeout=10_000)
    assert switch.isChecked() and window.project.learns_generated_captions
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: not window.jobs.queue.busy, timeout=10_000)
    assert not switch.isChecked() and not window.project.learns_generated_captions


def test_the_window_fits_a_laptop_screen_on_every_tab(qtbot, window, sample_folder):
    """1,024 x 640 (issue 34): no tab's controls may push the window wider than a laptop's screen."""
    open_window(qtbot, window, sample_folder)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        window.resize(1024, 640)
        qtbot.waitUntil(lambda: window.width() == 1024 and window.height() == 640, timeout=5_000)
        assert window.minimumSizeHint().width() <= 1024, window.tabs.tabText(index)
