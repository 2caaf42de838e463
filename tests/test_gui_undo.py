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


def test_typing_in_the_editor_saves_and_undoes(qtbot, synced_store):
    from gui.detail import DetailPanel
    from gui.project import Project

    project = Project(synced_store)
    panel = DetailPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    image = project.order[0]
    panel.set_images([image])
    panel.caption.setPlainText("typed by a person")
    qtbot.waitUntil(lambda: synced_store.caption(image) is not None, timeout=3000)
    assert synced_store.caption(image) == ("typed by a person", "typed")
    project.undo_stack.undo()
    assert synced_store.caption(image) is None
    assert panel.caption.toPlainText() == ""
