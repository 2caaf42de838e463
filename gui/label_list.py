"""The label list of the detail panel: a checkbox and a confidence bar per label, with the
person's decisions (solid, bold) told apart from the model's predictions (hollow, italic)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QObject, QPersistentModelIndex, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from gui.gallery import model_data
from gui.project import LabelState, Project

Index = QModelIndex | QPersistentModelIndex

ProbabilityRole = Qt.ItemDataRole.UserRole + 20  # float or None
PredictedRole = Qt.ItemDataRole.UserRole + 21  # bool
ConfirmedRole = Qt.ItemDataRole.UserRole + 22  # True, False or None (undecided)
HotkeyRole = Qt.ItemDataRole.UserRole + 23  # str

CONFIRMED_COLOR = QColor(214, 130, 20)
PREDICTED_COLOR = QColor(52, 120, 246)
BAR_BACKGROUND = QColor(128, 128, 128, 60)


def hotkey_for(position: int, stored: str | None) -> str:
    """The label's own key, else 1-9 and 0 for the first ten labels, Alt+1 ... Alt+0 for the next ten."""
    if stored:
        return stored
    if position >= 20:
        return ""
    digit = str((position + 1) % 10)
    return digit if position < 10 else f"Alt+{digit}"


class LabelListModel(QAbstractListModel):
    def __init__(self, project: Project | None, on_toggle: Callable[[str, bool], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.on_toggle = on_toggle
        self.project: Project | None = None
        self.image_id: int | None = None
        self._states: list[LabelState] = []
        self._hotkeys: list[str] = []
        self.set_project(project)

    def set_project(self, project: Project | None) -> None:
        if self.project is not None:
            self.project.images_changed.disconnect(self._on_images_changed)
            self.project.labels_changed.disconnect(self.refresh)
        self.project = project
        if project is not None:
            project.images_changed.connect(self._on_images_changed)
            project.labels_changed.connect(self.refresh)
        self.image_id = None
        self.refresh()

    def set_image(self, image_id: int | None) -> None:
        self.image_id = image_id
        self.refresh()

    def refresh(self) -> None:
        self.beginResetModel()
        project = self.project
        if project is None or self.image_id is None or self.image_id not in project.records:
            self._states, self._hotkeys = [], []
        else:
            self._states = project.label_states(self.image_id)
            self._hotkeys = [hotkey_for(i, lab.hotkey) for i, lab in enumerate(project.labels)]
        self.endResetModel()

    def states(self) -> list[LabelState]:
        return list(self._states)

    def _on_images_changed(self, image_ids: list[int]) -> None:
        if self.image_id in image_ids and self.project is not None:
            self._states = self.project.label_states(self.image_id)
            if self._states:
                self.dataChanged.emit(self.index(0), self.index(len(self._states) - 1))

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._states)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._states):
            return None
        state = self._states[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{state.name}?" if state.guess else state.name  # as on the gallery chip; the tooltip says why
        if role == Qt.ItemDataRole.CheckStateRole:
            return Qt.CheckState.Checked if state.effective else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ToolTipRole:
            prob = "not classified" if state.probability is None else f"confidence {state.probability:.0%}"
            decided = {True: "confirmed present", False: "confirmed absent", None: "not reviewed"}[state.confirmed]
            guess = "; the model's best guess: no label passed its threshold" if state.guess else ""
            return f"{state.name}: {prob}, {decided}{guess}"
        if role == ProbabilityRole:
            return state.probability
        if role == PredictedRole:
            return state.predicted
        if role == ConfirmedRole:
            return state.confirmed
        if role == HotkeyRole:
            return self._hotkeys[index.row()] if index.row() < len(self._hotkeys) else ""
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not index.isValid() or self.image_id is None:
            return False
        checked = value in (Qt.CheckState.Checked, Qt.CheckState.Checked.value, 2, True)
        self.on_toggle(self._states[index.row()].name, checked)
        return True

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
                | Qt.ItemFlag.ItemNeverHasChildren)


class LabelDelegate(QStyledItemDelegate):
    """[x] name ...... [=====|   ] 87%  (the tick on the bar is the decision threshold)."""

    def __init__(self, threshold: Callable[[], float | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.threshold = threshold

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(240, 24)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        painter.save()
        rect: QRect = option.rect  # type: ignore[attr-defined]
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        if option.state & QStyle.StateFlag.State_Selected:  # type: ignore[attr-defined]
            painter.fillRect(rect, palette.color(QPalette.ColorRole.AlternateBase))
        confirmed = model_data(index, ConfirmedRole)
        predicted = bool(model_data(index, PredictedRole))
        checked = model_data(index, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
        box = QRect(rect.x() + 6, rect.center().y() - 7, 14, 14)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = CONFIRMED_COLOR if confirmed is not None else PREDICTED_COLOR
        painter.setPen(QPen(color, 1.6, Qt.PenStyle.SolidLine if confirmed is not None else Qt.PenStyle.DashLine))
        painter.setBrush(color if (checked and confirmed is not None) else Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(box, 3, 3)
        if checked:
            painter.setPen(QPen(QColor("white") if confirmed is not None else color, 2))
            painter.drawPolyline([box.topLeft() + _pt(3, 7), box.topLeft() + _pt(6, 10), box.topLeft() + _pt(11, 4)])
        font = QFont(option.font)  # type: ignore[attr-defined]
        font.setBold(confirmed is not None)
        font.setItalic(confirmed is None and predicted)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        key = model_data(index, HotkeyRole)
        name = f"{model_data(index)}" + (f"  [{key}]" if key else "")
        bar_width = min(110, rect.width() // 3)
        text_rect = QRect(box.right() + 8, rect.y(), rect.width() - bar_width - 70, rect.height())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, text_rect.width()))
        self._bar(painter, QRect(rect.right() - bar_width - 44, rect.center().y() - 4, bar_width, 8),
                  model_data(index, ProbabilityRole), predicted)
        painter.restore()

    def _bar(self, painter: QPainter, bar: QRect, probability: float | None, predicted: bool) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BAR_BACKGROUND)
        painter.drawRoundedRect(bar, 3, 3)
        if probability is None:
            return
        filled = QRect(bar.x(), bar.y(), max(2, int(bar.width() * probability)), bar.height())
        painter.setBrush(PREDICTED_COLOR if predicted else QColor(150, 150, 160))
        painter.drawRoundedRect(filled, 3, 3)
        threshold = self.threshold()
        if threshold is not None:
            x = bar.x() + int(bar.width() * threshold)
            painter.setPen(QPen(QColor(220, 60, 60), 1.5))
            painter.drawLine(x, bar.y() - 3, x, bar.bottom() + 3)
        painter.setPen(QColor(140, 140, 140))
        painter.drawText(QRect(bar.right() + 6, bar.y() - 6, 40, 20), Qt.AlignmentFlag.AlignVCenter, f"{probability:.0%}")

    def editorEvent(self, event: QEvent, model: Any, option: QStyleOptionViewItem, index: Index) -> bool:
        """A click anywhere on the row toggles the label (a wide target for fast review)."""
        if event.type() == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent):
            if event.button() == Qt.MouseButton.LeftButton:
                checked = model_data(index, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
                new = Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked
                return bool(model.setData(index, new, Qt.ItemDataRole.CheckStateRole))
        return False


def _pt(x: int, y: int) -> QPoint:
    return QPoint(x, y)
