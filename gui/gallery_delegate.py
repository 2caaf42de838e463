"""Paints one gallery cell: thumbnail or placeholder, file name, badges. Never decodes; a
missing thumbnail is requested from the loader and the cell repaints when it arrives."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from gui.gallery import (
    ConfirmedLabelsRole,
    GalleryModel,
    HasCaptionRole,
    PredictedLabelsRole,
    ReviewedRole,
    ThumbnailRole,
    model_data,
)

PLACEHOLDER = QColor(70, 70, 74)
CAPTION_BADGE = QColor(52, 120, 246)
REVIEWED_BADGE = QColor(46, 160, 67)
GENERATED_BADGE = QColor(130, 130, 140)  # a captioner's caption: grey "G", a person's: blue "T"
PREDICTED_CHIP = QColor(52, 120, 246)  # the legend's blue: predicted by the model
CONFIRMED_CHIP = QColor(214, 130, 20)


class GalleryDelegate(QStyledItemDelegate):
    def __init__(self, thumb_size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size
        self.small = QFont()
        self.small.setPointSizeF(max(6.0, self.small.pointSizeF() * 0.8))

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.thumb_size + 12, self.thumb_size + 44)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        rect = option.rect  # type: ignore[attr-defined]
        palette = option.palette  # type: ignore[attr-defined]
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        box = QRect(rect.x() + 6, rect.y() + 6, self.thumb_size, self.thumb_size)
        image = model_data(index, ThumbnailRole)
        if image is None:
            painter.fillRect(box, PLACEHOLDER)
            model = index.model()
            if isinstance(model, GalleryModel):
                model.request_thumbnail(index)
        else:
            scaled = image.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(box.center())
            painter.drawImage(target, image)
            box = target  # badges sit on the photo's own corners
        self._badges(painter, box, index)
        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        painter.setPen(text_color)
        name_rect = QRect(rect.x() + 4, rect.y() + 6 + self.thumb_size + 3, rect.width() - 8, 16)
        name = painter.fontMetrics().elidedText(str(model_data(index)), Qt.TextElideMode.ElideMiddle, name_rect.width())
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        self._chips(painter, QRect(rect.x() + 4, name_rect.bottom() + 2, rect.width() - 8, 15), index)
        painter.restore()

    def _badges(self, painter: QPainter, box: QRect, index: QModelIndex | QPersistentModelIndex) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(self.small)
        caption = model_data(index, HasCaptionRole)
        if caption == "generated":  # a machine's caption looks different from a person's
            self._badge(painter, QRect(box.left() + 3, box.top() + 3, 18, 18), GENERATED_BADGE, "G")
        elif caption:
            self._badge(painter, QRect(box.left() + 3, box.top() + 3, 18, 18), CAPTION_BADGE, "T")
        if model_data(index, ReviewedRole):
            self._badge(painter, QRect(box.right() - 20, box.top() + 3, 18, 18), REVIEWED_BADGE, "\u2713")

    @staticmethod
    def _badge(painter: QPainter, rect: QRect, color: QColor, text: str) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawEllipse(rect)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _chips(self, painter: QPainter, area: QRect, index: QModelIndex | QPersistentModelIndex) -> None:
        """Label chips: orange when the person confirmed it, grey when only predicted."""
        labels = model_data(index, PredictedLabelsRole) or []
        confirmed = set(model_data(index, ConfirmedLabelsRole) or [])
        painter.setFont(self.small)
        metrics = painter.fontMetrics()
        x = area.left()
        for shown, name in enumerate(labels):
            width = metrics.horizontalAdvance(name) + 8
            rest = len(labels) - shown
            if x + width > area.right() - (22 if rest > 1 else 0):
                painter.setPen(PREDICTED_CHIP)
                painter.drawText(QRect(x, area.top(), area.right() - x, area.height()),
                                 Qt.AlignmentFlag.AlignVCenter, f"+{rest}")
                break
            chip = QRect(x, area.top(), width, area.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(CONFIRMED_CHIP if name in confirmed else PREDICTED_CHIP)
            painter.drawRoundedRect(chip, 4, 4)
            painter.setPen(QColor("white"))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, name)
            x += width + 3
