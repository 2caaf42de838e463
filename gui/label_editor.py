"""Label vocabulary editor: add, rename, delete, set hotkeys, each an undoable command
(`gui/commands.py`) on the project's undo stack."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence, QUndoCommand
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.commands import AddLabelCommand, DeleteLabelCommand, HotkeyCommand, RenameLabelCommand
from gui.label_list import hotkey_for
from gui.project import Project


class LabelEditor(QDialog):
    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Labels")
        self.project = project
        self.list = QListWidget()
        buttons = QHBoxLayout()
        for text, slot in (("Add…", self._add), ("Rename…", self._rename), ("Hotkey…", self._hotkey),
                           ("Delete", self._delete)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        # The dialog is modal, so the main window's Undo/Redo shortcuts do not reach it.
        for action, keys in ((project.undo_stack.createUndoAction(self), QKeySequence.StandardKey.Undo),
                             (project.undo_stack.createRedoAction(self), QKeySequence.StandardKey.Redo)):
            action.setShortcut(QKeySequence(keys))
            self.addAction(action)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(close)
        self._fill()
        project.labels_changed.connect(self._fill)  # after every command, its undo and redo
        self.finished.connect(lambda _result: project.labels_changed.disconnect(self._fill))

    def _fill(self) -> None:
        row = self.list.currentRow()
        self.list.clear()
        for i, label in enumerate(self.project.labels):
            key = hotkey_for(i, label.hotkey)
            self.list.addItem(f"{label.name}" + (f"   [{key}]" if key else ""))
        self.list.setCurrentRow(min(row, self.list.count() - 1))

    def _selected(self) -> str | None:
        row = self.list.currentRow()
        return self.project.labels[row].name if 0 <= row < len(self.project.labels) else None

    def _push(self, command: QUndoCommand) -> None:
        """The command writes the store and reloads the project (see `VocabularyCommand`)."""
        self.project.undo_stack.push(command)

    def _name_is_free(self, name: str) -> bool:
        if name in self.project.label_names():
            QMessageBox.information(self, "Labels", f"There is a label named {name} already.")
            return False
        return True

    def _add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add label", "Name")
        if ok and name.strip() and self._name_is_free(name.strip()):
            self._push(AddLabelCommand(self.project, name.strip()))

    def _rename(self) -> None:
        old = self._selected()
        if old is None:
            return
        new, ok = QInputDialog.getText(self, "Rename label", "New name", text=old)
        if ok and new.strip() and new.strip() != old and self._name_is_free(new.strip()):
            self._push(RenameLabelCommand(self.project, old, new.strip()))

    def _hotkey(self) -> None:
        name = self._selected()
        if name is None:
            return
        key, ok = QInputDialog.getText(self, "Hotkey", f"Key for {name} (empty: default)")
        hotkey = key.strip()[:1] or None
        if ok and hotkey != next(label.hotkey for label in self.project.labels if label.name == name):
            self._push(HotkeyCommand(self.project, name, hotkey))

    def _delete(self) -> None:
        name = self._selected()
        if name is None:
            return
        answer = QMessageBox.question(self, "Delete label",
                                      f"Delete {name} with its predictions and decisions? (Edit > Undo brings them back.)")
        if answer == QMessageBox.StandardButton.Yes:
            self._push(DeleteLabelCommand(self.project, name))
