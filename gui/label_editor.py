"""Label vocabulary editor: add, rename, delete, set hotkeys (writes through the core store)."""

from __future__ import annotations

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
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(close)
        self._fill()

    def _fill(self) -> None:
        self.list.clear()
        for i, label in enumerate(self.project.labels):
            key = hotkey_for(i, label.hotkey)
            self.list.addItem(f"{label.name}" + (f"   [{key}]" if key else ""))

    def _selected(self) -> str | None:
        row = self.list.currentRow()
        return self.project.labels[row].name if 0 <= row < len(self.project.labels) else None

    def _changed(self) -> None:
        self.project.reload_labels()
        self.project.reload()
        self._fill()

    def _add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add label", "Name")
        if ok and name.strip():
            self.project.store.ensure_labels([name.strip()])
            self._changed()

    def _rename(self) -> None:
        old = self._selected()
        if old is None:
            return
        new, ok = QInputDialog.getText(self, "Rename label", "New name", text=old)
        if ok and new.strip() and new.strip() != old:
            self.project.store.rename_label(old, new.strip())
            self._changed()

    def _hotkey(self) -> None:
        name = self._selected()
        if name is None:
            return
        key, ok = QInputDialog.getText(self, "Hotkey", f"Key for {name} (empty: default)")
        if ok:
            self.project.store.set_hotkey(name, key.strip()[:1] or None)
            self._changed()

    def _delete(self) -> None:
        name = self._selected()
        if name is None:
            return
        answer = QMessageBox.question(self, "Delete label",
                                      f"Delete {name} with its predictions and decisions? This cannot be undone.")
        if answer == QMessageBox.StandardButton.Yes:
            self.project.store.delete_label(name)
            self.project.undo_stack.clear()  # commands may refer to the deleted label
            self._changed()
