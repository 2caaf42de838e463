"""Undo and redo restore labels, review state and captions exactly, in the store too."""

from __future__ import annotations

from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)
from tests.gui_helpers import fake_predictions


def state(store):
    return store.confirmations(), store.captions(), {r.id for r in store.images() if r.reviewed_at}


def test_label_changes_undo_and_redo_exactly(synced_store):
    from gui import review
    from gui.project import Project

    fake_predictions(synced_store)
    a, b = [r.id for r in synced_store.images()][:2]
    synced_store.confirm(a, "cat", False)  # an earlier decision that undo must bring back
    project = Project(synced_store)
    before = state(synced_store)
    review.set_label(project, [a, b], "cat", True)
    review.accept_predictions(project, [b])
    review.toggle_label(project, [a], "person")
    after = state(synced_store)
    assert after != before
    for _ in range(3):
        project.undo_stack.undo()
    assert state(synced_store) == before
    assert project.confirmations == {k: v for k, v in before[0].items()}
    for _ in range(3):
        project.undo_stack.redo()
    assert state(synced_store)[0] == after[0] and state(synced_store)[2] == after[2]


def test_caption_edits_undo_to_the_exact_text_and_source(synced_store):
    from gui import review
    from gui.project import Project

    a, b = [r.id for r in synced_store.images()][:2]
    synced_store.set_caption(a, "Imported caption", source="imported")
    project = Project(synced_store)
    review.save_caption(project, a, "Imported caption, edited")
    review.save_caption(project, a, "Imported caption, edited twice")  # merges with the edit above
    review.save_caption(project, b, "new caption")
    assert project.undo_stack.count() == 2
    assert synced_store.caption(a) == ("Imported caption, edited twice", "typed")
    project.undo_stack.undo()
    assert synced_store.caption(b) is None and b not in project.captions
    project.undo_stack.undo()
    assert synced_store.caption(a) == ("Imported caption", "imported")
    project.undo_stack.redo()
    project.undo_stack.redo()
    assert synced_store.caption(a) == ("Imported caption, edited twice", "typed")
    assert synced_store.caption(b) == ("new caption", "typed")


def panel_on_first_image(qtbot, store):
    """A detail panel over a fresh project snapshot, showing its first photo."""
    from gui.detail import DetailPanel
    from gui.project import Project

    project = Project(store)
    panel = DetailPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    image = project.order[0]
    panel.set_images([image])
    return project, panel, image


def test_typing_in_the_editor_saves_and_undoes(qtbot, synced_store):
    project, panel, image = panel_on_first_image(qtbot, synced_store)
    panel.caption.setPlainText("typed by a person")
    qtbot.waitUntil(lambda: synced_store.caption(image) is not None, timeout=3000)
    assert synced_store.caption(image) == ("typed by a person", "typed")
    project.undo_stack.undo()
    assert synced_store.caption(image) is None
    assert panel.caption.toPlainText() == ""


# -- the label vocabulary -------------------------------------------------------------------
def label_tables(store):
    """The raw rows, so "exactly" includes ids, positions, timestamps and model versions."""
    return (store.query("SELECT * FROM labels ORDER BY id"),
            store.query("SELECT * FROM confirmations ORDER BY image_id, label_id"),
            store.query("SELECT * FROM predictions ORDER BY image_id, label_id"))


def open_editor(qtbot, monkeypatch, project, answer=""):
    """The label editor with its input and question dialogs answered by the test."""
    from PySide6.QtWidgets import QMessageBox

    from gui import label_editor

    class Input:
        @staticmethod
        def getText(*_args, **_kwargs):
            return answer, True

    class Box(QMessageBox):
        asked: list[str] = []

        @staticmethod
        def question(_parent, _title, text, *_args):
            Box.asked.append(text)
            return QMessageBox.StandardButton.Yes

        @staticmethod
        def information(_parent, _title, text, *_args):
            Box.asked.append(text)
            return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(label_editor, "QInputDialog", Input)
    monkeypatch.setattr(label_editor, "QMessageBox", Box)
    editor = label_editor.LabelEditor(project)
    qtbot.addWidget(editor)
    return editor


def select(editor, name):
    editor.list.setCurrentRow(editor.project.label_names().index(name))


def editor_names(editor):
    return [editor.list.item(i).text().split()[0] for i in range(editor.list.count())]


def test_deleting_a_label_undoes_with_every_decision_and_prediction(qtbot, monkeypatch, synced_store):
    from gui.project import Project

    fake_predictions(synced_store)
    a, b, c = [r.id for r in synced_store.images()][:3]
    synced_store.ensure_labels(["cat"], ["17"])
    synced_store.set_hotkey("cat", "c")
    synced_store.confirm_many([(a, "cat", True), (b, "cat", False), (c, "person", True)])
    project = Project(synced_store)
    before, labels_before = label_tables(synced_store), project.labels
    editor = open_editor(qtbot, monkeypatch, project)
    select(editor, "cat")
    with qtbot.waitSignal(project.reloaded):
        editor._delete()

    deleted = label_tables(synced_store)
    assert "cat" not in project.label_names() and editor_names(editor) == ["person", "cup"]
    assert not any("cat" in decided for decided in project.confirmations.values())
    assert not any("cat" in predicted for predicted in project.predictions.values())
    assert synced_store.confirmations() == {c: {"person": True}}

    with qtbot.waitSignal(project.reloaded):
        project.undo_stack.undo()
    assert label_tables(synced_store) == before  # id, position, hotkey, external id, every row
    assert project.labels == labels_before and editor_names(editor) == ["person", "cat", "cup"]
    assert project.confirmations == synced_store.confirmations()
    assert project.confirmations[a]["cat"] is True and project.confirmations[b]["cat"] is False
    assert project.predictions == synced_store.predictions(project.model_key)

    project.undo_stack.redo()
    assert label_tables(synced_store) == deleted
    project.undo_stack.undo()
    assert label_tables(synced_store) == before


def test_renaming_a_label_undoes_to_the_old_name(qtbot, monkeypatch, synced_store):
    from gui import review
    from gui.project import Project

    fake_predictions(synced_store)
    a = synced_store.images()[0].id
    project = Project(synced_store)
    review.set_label(project, [a], "cat", False)  # an earlier step, still undoable after the rename
    editor = open_editor(qtbot, monkeypatch, project, answer=" feline ")
    select(editor, "cat")
    editor._rename()
    assert project.label_names() == ["person", "feline", "cup"] and editor_names(editor)[1] == "feline"
    assert synced_store.confirmations() == {a: {"feline": False}} == project.confirmations
    assert "feline" in project.predictions[a]

    project.undo_stack.undo()
    assert project.label_names() == ["person", "cat", "cup"] and editor_names(editor)[1] == "cat"
    assert synced_store.confirmations() == {a: {"cat": False}} == project.confirmations
    project.undo_stack.undo()  # the decision made before the rename
    assert synced_store.confirmations() == {}
    project.undo_stack.redo()
    project.undo_stack.redo()
    assert synced_store.confirmations() == {a: {"feline": False}}

    select(editor, "feline")
    editor._rename()  # to "feline" again: nothing to do
    editor = open_editor(qtbot, monkeypatch, project, answer="cup")
    select(editor, "feline")
    editor._rename()  # a taken name is refused before anything is pushed
    assert project.undo_stack.count() == 2 and project.label_names() == ["person", "feline", "cup"]


def test_adding_a_label_and_its_hotkey_undo(qtbot, monkeypatch, synced_store):
    from gui.project import Project

    project = Project(synced_store)
    before = label_tables(synced_store)
    editor = open_editor(qtbot, monkeypatch, project, answer="dog")
    editor._add()
    select(editor, "dog")
    editor._hotkey()  # "dog"[:1]
    assert [(label.name, label.hotkey) for label in synced_store.labels()] == [("dog", "d")]
    assert editor.list.item(0).text().endswith("[d]")
    project.undo_stack.undo()
    assert synced_store.labels()[0].hotkey is None
    project.undo_stack.undo()
    assert label_tables(synced_store) == before and project.labels == [] and editor.list.count() == 0
    project.undo_stack.redo()
    project.undo_stack.redo()
    assert [(label.name, label.hotkey) for label in project.labels] == [("dog", "d")]


def test_an_undo_that_no_longer_fits_is_reported_and_dropped(qtbot, monkeypatch, synced_store):
    from gui import errors
    from gui.commands import DeleteLabelCommand
    from gui.project import Project

    fake_predictions(synced_store)
    project = Project(synced_store)
    project.undo_stack.push(DeleteLabelCommand(project, "cat"))
    fake_predictions(synced_store)  # classifying again does not bring "cat" back ...
    assert "cat" not in [label.name for label in synced_store.labels()]
    synced_store.ensure_labels(["cat"])  # ... an import naming it does, outside the undo stack
    now = label_tables(synced_store)
    project.undo_stack.undo()
    assert label_tables(synced_store) == now  # nothing half-restored
    assert project.undo_stack.count() == 0 and not project.undo_stack.canRedo()
    assert errors.shown and "exists again" in errors.shown[-1][1]


def test_the_window_follows_label_undo_and_redo(qtbot, monkeypatch, window, sample_folder):
    from PySide6.QtCore import Qt

    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    project = window.project
    fake_predictions(project.store)
    project.reload()
    names = project.label_names()
    name = names[0]

    def shown():
        menu = [action.text() for action in window.label_menu.actions()]
        bar = [window.filter_bar.label.itemText(i) for i in range(1, window.filter_bar.label.count())]
        detail = [state.name for state in window.detail.labels_model.states()]
        return menu, bar, detail

    assert all(listed == names for listed in shown())
    editor = open_editor(qtbot, monkeypatch, project)
    select(editor, name)
    editor._delete()
    editor.close()
    assert all(name not in listed for listed in shown())
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert all(listed == names for listed in shown())
    window.a_redo.trigger()  # Edit > Redo (its key differs between platforms)
    assert all(name not in listed for listed in shown())


def test_full_disk_while_typing_and_labelling_loses_nothing(qtbot, synced_store):
    """A failed write is shown, leaves the store and the undo stack as they were, and keeps
    the typed caption in the editor; once space is freed the same text is saved."""
    from gui import errors, review

    project, panel, image = panel_on_first_image(qtbot, synced_store)
    review.set_label(project, [image], "cat", True)
    before = state(synced_store)
    pages = synced_store.query("PRAGMA page_count")[0][0]
    synced_store.query(f"PRAGMA max_page_count={pages}")  # SQLite's page limit: the same SQLITE_FULL path
    shown_before = len(errors.shown)
    text = "a long caption typed while the disk was full " * 2000
    panel.caption.setPlainText(text)
    panel.save_caption()
    synced_store.query("PRAGMA query_only=ON")  # and a database that became read-only
    review.set_label(project, [image], "dog", True)
    synced_store.query("PRAGMA query_only=OFF")
    assert len(errors.shown) == shown_before + 2
    assert "disk is full" in errors.shown[-2][1] and "read-only" in errors.shown[-1][1]
    assert state(synced_store) == before and project.undo_stack.count() == 1
    assert "dog" not in project.confirmations[image]
    assert panel.caption.toPlainText() == text and "not saved" in panel.caption_source.text()
    synced_store.query(f"PRAGMA max_page_count={pages * 1000}")
    panel.save_caption()
    assert synced_store.caption(image) == (text, "typed")
    project.undo_stack.undo()
    assert synced_store.caption(image) is None and synced_store.confirmations()[image] == {"cat": True}
