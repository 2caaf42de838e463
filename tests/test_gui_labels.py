"""Own labels in one step: the whole list typed or loaded (ids included), several deleted at
once, reordered; every label gets a key; all of it one undo step away."""

from __future__ import annotations

import json

from core.tagging.label_guesses import saved_prompts
from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)
from tests.gui_helpers import fake_predictions


def test_the_whole_list_in_one_step_and_back_with_one_undo(qtbot, synced_store, tmp_path):
    from gui.commands import SetLabelsCommand
    from gui.label_editor import LabelListDialog, parse_label_lines, read_label_file
    from gui.project import Project

    fake_predictions(synced_store)  # person, cat, cup
    image = synced_store.images()[0].id
    synced_store.confirm(image, "cat", True)
    project = Project(synced_store)
    before = (synced_store.query("SELECT * FROM labels ORDER BY id"), synced_store.confirmations())
    typed = "kayak = 7\nsnow\n\nwater = 9\nsnow\n"  # blank lines and a repeat are skipped
    assert parse_label_lines(typed) == [("kayak", "7"), ("snow", None), ("water", "9")]
    project.undo_stack.push(SetLabelsCommand(project, parse_label_lines(typed)))
    labels = synced_store.labels()
    assert [(lab.name, lab.external_id) for lab in labels] == [("kayak", "7"), ("snow", None), ("water", "9")]
    assert synced_store.confirmations() == {} and project.label_names() == ["kayak", "snow", "water"]
    project.undo_stack.undo()  # one step: the three labels back with the decision and predictions
    assert (synced_store.query("SELECT * FROM labels ORDER BY id"), synced_store.confirmations()) == before
    project.undo_stack.redo()
    assert project.label_names() == ["kayak", "snow", "water"]

    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"1": "person", "17": "cat"}), encoding="utf-8")
    assert parse_label_lines(read_label_file(label_map)) == [("person", "1"), ("cat", "17")]
    listing = tmp_path / "labels.txt"
    listing.write_text("boat\nbeach\n", encoding="utf-8")
    dialog = LabelListDialog([], None)
    qtbot.addWidget(dialog)
    dialog.text.setPlainText(read_label_file(listing))
    assert dialog.wanted() == [("boat", None), ("beach", None)]


def test_several_deleted_at_once_reordered_and_every_label_has_a_key(qtbot, monkeypatch, synced_store):
    from PySide6.QtWidgets import QMessageBox

    from gui import label_editor
    from gui.label_list import hotkey_for
    from gui.project import Project

    synced_store.ensure_labels([f"label{i}" for i in range(22)])
    project = Project(synced_store)
    monkeypatch.setattr(label_editor.QMessageBox, "question",
                        staticmethod(lambda *_a, **_k: QMessageBox.StandardButton.Yes))
    editor = label_editor.LabelEditor(project)
    qtbot.addWidget(editor)
    for row in (1, 2, 3):
        editor.list.item(row).setSelected(True)
    editor._delete()
    names = project.label_names()
    assert len(names) == 19 and not {"label1", "label2", "label3"} & set(names)
    keys = [hotkey_for(i, None) for i in range(len(names))]
    assert keys[:10] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"] and keys[10] == "Alt+1"
    assert len(set(keys)) == len(keys) and all(keys)  # every one of the 19 has its own key
    editor.list.setCurrentRow(0)
    editor._move(1)
    assert project.label_names()[:2] == ["label4", "label0"]
    project.undo_stack.undo()
    project.undo_stack.undo()
    assert project.label_names() == [f"label{i}" for i in range(22)]


def test_a_label_described_in_other_words_and_renamed_keeps_them(qtbot, monkeypatch, synced_store):
    """Describe… keeps the person's words for a label (its guesses and first training read
    them), undoable; a rename, and its undo, carry them along."""
    from gui import label_editor
    from gui.project import Project

    synced_store.ensure_labels(["snow", "boat"])
    project = Project(synced_store)
    editor = label_editor.LabelEditor(project)
    qtbot.addWidget(editor)
    changed = []
    project.labels_changed.connect(lambda: changed.append(True))
    monkeypatch.setattr(label_editor.QInputDialog, "getMultiLineText",
                        staticmethod(lambda *_a, **_k: ("a snowy mountain\n\na ski slope", True)))
    editor.list.setCurrentRow(0)
    editor._describe()
    assert saved_prompts(synced_store) == {"snow": ["a snowy mountain", "a ski slope"]} and changed
    monkeypatch.setattr(label_editor.QInputDialog, "getText", staticmethod(lambda *_a, **_k: ("winter", True)))
    editor._rename()
    assert saved_prompts(synced_store) == {"winter": ["a snowy mountain", "a ski slope"]}
    project.undo_stack.undo()
    assert project.label_names() == ["snow", "boat"] and saved_prompts(synced_store)["snow"][0] == "a snowy mountain"
    assert project.undo_stack.undoText() == "words for snow"
    project.undo_stack.undo()  # the words are one undo step like any other edit of the vocabulary
    assert saved_prompts(synced_store) == {}
    project.undo_stack.redo()
    assert saved_prompts(synced_store) == {"snow": ["a snowy mountain", "a ski slope"]}
