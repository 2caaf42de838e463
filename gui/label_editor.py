"""Label vocabulary editor: add, rename, delete (several at once), reorder, keys and ids, or the
whole list typed, pasted or read from a file in one step; each an undoable command
(`gui/commands.py`) on the project's undo stack."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtGui import QKeySequence, QUndoCommand
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.tagging.label_guesses import own_words, saved_prompts
from gui.commands import (
    AddLabelCommand,
    DeleteLabelCommand,
    DescribeLabelCommand,
    ExternalIdCommand,
    HotkeyCommand,
    RenameLabelCommand,
    SetLabelsCommand,
)
from gui.label_list import hotkey_for
from gui.project import Project


class LabelEditor(QDialog):
    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Labels")
        self.project = project
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        buttons = QHBoxLayout()
        for text, slot, tip in (
            ("Add…", self._add, "Add one label"),
            ("Set all…", self._set_all, "Type, paste or load the whole list at once (one label a line, "
                                        "'name = id' to give ids); labels left out are deleted"),
            ("Rename…", self._rename, ""), ("Key…", self._hotkey, "A key of its own: 1-9, F2, Alt+3, ..."),
            ("Describe…", self._describe, "Other ways of saying what the label shows ('a snowy mountain' for snow): "
                                          "its guesses before any photo is confirmed and its first training read them"),
            ("Id…", self._external_id, "The id exported with 'label ids' (e.g. a COCO category number)"),
            ("Up", lambda: self._move(-1), "Move up (the order of the list and of the keys 1-9)"),
            ("Down", lambda: self._move(1), "Move down"),
            ("Delete", self._delete, "Delete the selected labels with their decisions (Undo brings them back)"),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
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
        prompts = saved_prompts(self.project.store)
        for i, label in enumerate(self.project.labels):
            key = hotkey_for(i, label.hotkey)
            own = prompts.get(label.name, [])
            self.list.addItem(f"{label.name}" + (f"   id {label.external_id}" if label.external_id else "")
                              + (f"   [{key}]" if key else "") + (f"   “{'”, “'.join(own)}”" if own else ""))
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

    def _describe(self) -> None:
        name = self._selected()
        if name is None:
            return
        saved = saved_prompts(self.project.store).get(name, [])
        text, ok = QInputDialog.getMultiLineText(
            self, "Describe label", f"What photos of {name} show, in other words, one a line (its name is always read "
                                    "too; empty: the name alone):", "\n".join(saved))
        wanted = own_words(text.splitlines())
        if ok and wanted != saved:
            self._push(DescribeLabelCommand(self.project, name, wanted))  # the window guesses again with them

    def _hotkey(self) -> None:
        name = self._selected()
        if name is None:
            return
        key, ok = QInputDialog.getText(self, "Key", f"Key for {name}: a character, or F2, Alt+3, ... (empty: default)")
        hotkey = parse_hotkey(key)
        if hotkey is not None and hotkey.upper() in {k.upper() for k in RESERVED_KEYS}:
            QMessageBox.information(self, "Labels", f"{hotkey} already moves between photos; choose another key.")
            return
        if ok and hotkey != next(label.hotkey for label in self.project.labels if label.name == name):
            self._push(HotkeyCommand(self.project, name, hotkey))

    def _chosen(self) -> list[str]:
        rows = sorted(self.list.row(item) for item in self.list.selectedItems())
        return [self.project.labels[r].name for r in rows if r < len(self.project.labels)]

    def _wanted(self) -> list[tuple[str, str | None]]:
        return [(label.name, label.external_id) for label in self.project.labels]

    def _delete(self) -> None:
        chosen = self._chosen()
        if len(chosen) > 1:
            answer = QMessageBox.question(self, "Delete labels", f"Delete {len(chosen)} labels ({', '.join(chosen)}) "
                                          "with their predictions and decisions? (Edit > Undo brings them back.)")
            if answer == QMessageBox.StandardButton.Yes:
                self._push(SetLabelsCommand(self.project, [w for w in self._wanted() if w[0] not in chosen],
                                            f"delete {len(chosen)} labels"))
            return
        name = self._selected()
        if name is None:
            return
        answer = QMessageBox.question(self, "Delete label",
                                      f"Delete {name} with its predictions and decisions? (Edit > Undo brings them back.)")
        if answer == QMessageBox.StandardButton.Yes:
            self._push(DeleteLabelCommand(self.project, name))

    def _external_id(self) -> None:
        name = self._selected()
        if name is None:
            return
        current = next((label.external_id for label in self.project.labels if label.name == name), None) or ""
        value, ok = QInputDialog.getText(self, "Id", f"Id of {name} in exported CSVs (empty: none)", text=current)
        if ok and value.strip() != current:
            self._push(ExternalIdCommand(self.project, name, value.strip() or None))

    def _move(self, step: int) -> None:
        name = self._selected()
        wanted = self._wanted()
        row = next((i for i, (n, _) in enumerate(wanted) if n == name), None)
        if row is None or not 0 <= row + step < len(wanted):
            return
        wanted[row], wanted[row + step] = wanted[row + step], wanted[row]
        self._push(SetLabelsCommand(self.project, wanted, f"move {name}"))
        self.list.setCurrentRow(row + step)

    def _set_all(self) -> None:
        dialog = LabelListDialog(self._wanted(), self)
        if dialog.exec():
            wanted = dialog.wanted()
            if wanted != self._wanted():
                self._push(SetLabelsCommand(self.project, wanted))


RESERVED_KEYS = {"J", "K", "U", "N", "Space", "Esc"}  # the review keys


def parse_hotkey(text: str) -> str | None:
    """A label's key as typed: one character, or a key sequence Qt reads (F2, Alt+3, Shift+A)."""
    text = text.strip()
    if not text:
        return None
    if len(text) > 1:
        sequence = QKeySequence(text).toString()
        if sequence and "," not in sequence:
            return sequence
    return text[:1]


def parse_label_lines(text: str) -> list[tuple[str, str | None]]:
    """One label a line, `name = id` to give its id; blank lines and repeats are skipped."""
    wanted: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        name, _, external = line.partition("=")
        name = name.strip()
        if name and name not in [n for n, _ in wanted]:
            wanted.append((name, external.strip() or None))
    return wanted


def read_label_file(path: Path) -> str:
    """A label list from a file: a JSON label map (`{"1": "person"}`, as `--label-map` takes),
    else one label a line (a CSV's first column)."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        mapping = json.loads(text)
    except ValueError:
        mapping = None
    if isinstance(mapping, dict):
        return "\n".join(f"{name} = {key}" for key, name in mapping.items())
    if isinstance(mapping, list):
        return "\n".join(str(name) for name in mapping)
    return "\n".join(line.split(",")[0] for line in text.splitlines())


class LabelListDialog(QDialog):
    """The whole label list as text: typed, pasted or loaded; labels left out are deleted."""

    def __init__(self, wanted: list[tuple[str, str | None]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set all labels")
        self.text = QPlainTextEdit("\n".join(f"{n} = {i}" if i else n for n, i in wanted))
        self.text.setTabChangesFocus(True)
        load = QPushButton("Load from file…")
        load.clicked.connect(self._load)
        clear = QPushButton("Start empty")
        clear.clicked.connect(self.text.clear)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(load)
        row.addWidget(clear)
        row.addStretch(1)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("One label a line, in the order you want them (keys 1-9, 0, then Alt+1 ... follow it);\n"
                                "'name = id' gives a label its id for exports. Labels you remove are deleted with "
                                "their decisions\n(Edit > Undo brings them back)."))
        layout.addWidget(self.text)
        layout.addLayout(row)

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels from a file", "", "Label lists (*.txt *.json *.csv);;All files (*)")
        if path:
            try:
                self.text.setPlainText(read_label_file(Path(path)))
            except (OSError, UnicodeDecodeError) as exc:
                QMessageBox.warning(self, "Labels", f"Cannot read {path}: {exc}")

    def wanted(self) -> list[tuple[str, str | None]]:
        return parse_label_lines(self.text.toPlainText())
