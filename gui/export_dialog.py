"""Export dialog: format, which images, options and destination; returns a plain request."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import ExportRequest

FORMATS = {"csv": "CSV (ImageID,Labels,Caption)", "json": "JSON", "sidecars": "Caption sidecars (.txt beside photos)"}


class ExportDialog(QDialog):
    def __init__(self, folder: Path, all_ids: list[int], shown_ids: list[int], selected_ids: list[int],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(620)
        self.folder = folder
        self._scopes = {"all": all_ids, "shown": shown_ids, "selected": selected_ids}
        self.format_buttons = QButtonGroup(self)
        formats = QVBoxLayout()
        for key, text in FORMATS.items():
            button = QRadioButton(text)
            button.setProperty("key", key)
            self.format_buttons.addButton(button)
            formats.addWidget(button)
        self.format_buttons.buttons()[0].setChecked(True)
        self.scope_buttons = QButtonGroup(self)
        scopes = QVBoxLayout()
        for key, text in (("all", "All images"), ("shown", "Images shown by the filter"), ("selected", "Selected images")):
            button = QRadioButton(f"{text} ({len(self._scopes[key])})")
            button.setProperty("key", key)
            button.setEnabled(bool(self._scopes[key]))
            self.scope_buttons.addButton(button)
            scopes.addWidget(button)
        self.scope_buttons.buttons()[0].setChecked(True)
        self.label_ids = QCheckBox("Write label ids instead of names (space separated)")
        self.probabilities = QCheckBox("Add a confidence column per label")
        self.overwrite = QCheckBox("Overwrite existing sidecar files")
        self.path = QLineEdit(str(folder / "labels.csv"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", formats)
        form.addRow("Images", scopes)
        form.addRow("Options", self._column(self.label_ids, self.probabilities, self.overwrite))
        form.addRow("Save to", path_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.format_buttons.buttonToggled.connect(self._on_format)
        self._on_format()

    @staticmethod
    def _column(*widgets: QWidget) -> QVBoxLayout:
        column = QVBoxLayout()
        for widget in widgets:
            column.addWidget(widget)
        return column

    def fmt(self) -> str:
        return _checked_key(self.format_buttons)

    def _on_format(self) -> None:
        fmt = self.fmt()
        self.label_ids.setEnabled(fmt == "csv")
        self.probabilities.setEnabled(fmt == "csv")
        self.overwrite.setEnabled(fmt == "sidecars")
        self.path.setEnabled(fmt != "sidecars")
        current = Path(self.path.text())
        if fmt in ("csv", "json"):
            self.path.setText(str(current.with_suffix(f".{fmt}")))

    def _browse(self) -> None:
        fmt = self.fmt()
        chosen, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(), f"{fmt.upper()} files (*.{fmt})")
        if chosen:
            self.path.setText(chosen)

    def request(self) -> ExportRequest:
        scope = _checked_key(self.scope_buttons)
        return ExportRequest(
            path=Path(self.path.text()).expanduser(), fmt=self.fmt(),
            image_ids=None if scope == "all" else list(self._scopes[scope]),
            label_ids=self.label_ids.isChecked(), probabilities=self.probabilities.isChecked(),
            overwrite_sidecars=self.overwrite.isChecked(),
        )


def _checked_key(group: QButtonGroup) -> str:
    """The "key" of a group's checked button (each group is built with one checked)."""
    button = group.checkedButton()
    assert button is not None, "a button group without a checked button"
    return str(button.property("key"))
