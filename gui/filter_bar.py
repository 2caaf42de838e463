"""The review toolbar: filter by label, text, review state, disagreement, confidence; sort."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from gui.gallery import ViewFilter

ALL_LABELS = "All labels"


def is_escape(event: QEvent) -> bool:
    """Esc pressed, or asked for as a shortcut (the window's Esc cancels a job)."""
    return (event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
            and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape)


class SearchBox(QLineEdit):
    """The search field: Esc gives the keyboard back to the photos."""

    escaped = Signal()

    def event(self, event: QEvent) -> bool:
        if is_escape(event):
            if event.type() == QEvent.Type.KeyPress:
                self.escaped.emit()
            event.accept()
            return True
        return super().event(event)


class FilterBar(QWidget):
    changed = Signal(object)  # ViewFilter

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QComboBox()
        self.label.setMinimumContentsLength(12)
        self.text = SearchBox()
        self.text.setPlaceholderText("Search file names and captions, or describe a photo")
        self.text.setClearButtonEnabled(True)
        self.text.setToolTip("Ctrl+F; Esc goes back to the photos")
        self.text.setMinimumWidth(180)
        self.reviewed = QComboBox()
        self.reviewed.addItems(["Reviewed or not", "Unreviewed", "Reviewed"])
        self.disagreement = QCheckBox("Disagreements")
        self.disagreement.setToolTip("Images where your decision differs from the model's prediction")
        self.min_conf = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, value=0.0)
        self.max_conf = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, value=1.0)
        for spin in (self.min_conf, self.max_conf):
            spin.setToolTip("Range of the image's highest label confidence")
        self.sort = QComboBox()
        self.sort.addItems(["Sort by name", "Most uncertain first"])
        # two rows, so the window fits a laptop (one row held it at 1,284 px or more)
        self.text.setMinimumWidth(120)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        first, second = QHBoxLayout(), QHBoxLayout()
        first.addWidget(self.label)
        first.addWidget(self.text, 2)
        first.addWidget(self.sort)
        row: tuple[QWidget, ...] = (self.reviewed, self.disagreement, QLabel("Confidence"), self.min_conf, QLabel("to"),
                                    self.max_conf)
        for item in row:
            second.addWidget(item)
        second.addStretch(1)
        layout.addLayout(first)
        layout.addLayout(second)
        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self._emit)
        self.text.textChanged.connect(self._debounce.start)
        for combo in (self.label, self.reviewed, self.sort):
            combo.currentIndexChanged.connect(self._emit)
        self.disagreement.toggled.connect(self._emit)
        self.min_conf.valueChanged.connect(self._debounce.start)
        self.max_conf.valueChanged.connect(self._debounce.start)
        self._wanted_label = ""  # a saved filter's label, until the project's labels are listed
        self.set_labels([])

    def set_labels(self, names: list[str]) -> None:
        current = self._wanted_label or self.label.currentText()
        self._wanted_label = ""
        self.label.blockSignals(True)
        self.label.clear()
        self.label.addItems([ALL_LABELS, *names])
        self.label.setCurrentText(current if current in names else ALL_LABELS)
        self.label.blockSignals(False)

    def set_value(self, view_filter: ViewFilter) -> None:
        """Show a saved filter (the label is kept for `set_labels`, which fills the list later)."""
        widgets: tuple[QWidget, ...] = (self.label, self.text, self.reviewed, self.disagreement, self.min_conf,
                                        self.max_conf, self.sort)
        for widget in widgets:
            widget.blockSignals(True)
        self._wanted_label = view_filter.label
        self.text.setText(view_filter.text)
        self.reviewed.setCurrentIndex({None: 0, False: 1, True: 2}.get(view_filter.reviewed, 0))
        self.disagreement.setChecked(bool(view_filter.disagreement))
        self.min_conf.setValue(float(view_filter.min_confidence))
        self.max_conf.setValue(float(view_filter.max_confidence))
        self.sort.setCurrentIndex(1 if view_filter.sort == "uncertainty" else 0)
        for widget in widgets:
            widget.blockSignals(False)

    def value(self) -> ViewFilter:
        label = self.label.currentText()
        return ViewFilter(
            label="" if label == ALL_LABELS else label,
            text=self.text.text().strip(),
            reviewed={0: None, 1: False, 2: True}[self.reviewed.currentIndex()],
            disagreement=self.disagreement.isChecked(),
            min_confidence=self.min_conf.value(),
            max_confidence=self.max_conf.value(),
            sort="uncertainty" if self.sort.currentIndex() == 1 else "name",
        )

    def _emit(self) -> None:
        self.changed.emit(self.value())
