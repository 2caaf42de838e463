"""Training tab: loss and F1 curves drawn while training runs, the per-label scores of a model,
the model versions of the project with the active one marked, why the latest retrain was or was
not taken (core.learn.gate), and the bundled model back in one step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

LOSS_COLOR = QColor(220, 90, 60)
F1_COLOR = QColor(52, 140, 246)


class CurveChart(QWidget):
    """Two curves on one step axis: training loss (left scale) and validation F1 (0..1, right)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss: list[float] = []
        self.f1: list[float] = []
        self.title = "Training curves appear here while a model trains"
        self.setMinimumHeight(90)

    def sizeHint(self) -> QSize:
        return QSize(420, 240)

    def clear(self) -> None:
        self.loss, self.f1 = [], []
        self.update()

    def add_point(self, loss: float, f1: float) -> None:
        self.loss.append(loss)
        self.f1.append(f1)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setPen(self.palette().text().color())
        if not self.loss:  # no curve (cross-validation, a refusal): the whole text, wrapped, and no empty frame
            painter.drawText(QRectF(self.rect()).adjusted(12, 8, -12, -8),
                             int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap), self.title)
            return
        plot = QRectF(self.rect()).adjusted(46, 28, -46, -28)
        title = painter.fontMetrics().elidedText(self.title, Qt.TextElideMode.ElideRight, self.width() - 8)
        painter.drawText(QRectF(0, 4, self.width(), 20), Qt.AlignmentFlag.AlignCenter, title)
        painter.setPen(QPen(QColor(150, 150, 150), 1))
        painter.drawRect(plot)
        top_loss = max(self.loss) * 1.1 or 1.0
        steps = max(len(self.loss) - 1, 1)
        for fraction in (0.0, 0.5, 1.0):
            y = plot.bottom() - fraction * plot.height()
            painter.setPen(QPen(QColor(150, 150, 150, 80), 1, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(LOSS_COLOR)
            painter.drawText(QRectF(0, y - 8, 42, 16), Qt.AlignmentFlag.AlignRight, f"{top_loss * fraction:.2f}")
            painter.setPen(F1_COLOR)
            painter.drawText(QRectF(plot.right() + 4, y - 8, 42, 16), Qt.AlignmentFlag.AlignLeft, f"{fraction:.1f}")
        self._curve(painter, plot, [v / top_loss for v in self.loss], steps, LOSS_COLOR)
        self._curve(painter, plot, self.f1, steps, F1_COLOR)
        painter.setPen(LOSS_COLOR)
        painter.drawText(QRectF(plot.left(), plot.bottom() + 4, 200, 18), Qt.AlignmentFlag.AlignLeft,
                         f"train loss {self.loss[-1]:.3f}")
        painter.setPen(F1_COLOR)
        painter.drawText(QRectF(plot.right() - 200, plot.bottom() + 4, 200, 18), Qt.AlignmentFlag.AlignRight,
                         f"validation F1 {self.f1[-1]:.3f}  (best {max(self.f1):.3f})")

    @staticmethod
    def _curve(painter: QPainter, plot: QRectF, values: list[float], steps: int, color: QColor) -> None:
        path = QPainterPath()
        for i, value in enumerate(values):
            point = QPointF(plot.left() + plot.width() * i / steps, plot.bottom() - plot.height() * min(max(value, 0), 1))
            if i == 0:
                path.moveTo(point)
            else:
                path.lineTo(point)
        painter.setPen(QPen(color, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        painter.setBrush(color)
        painter.drawEllipse(path.currentPosition(), 3, 3)


def retrain_verdict(folder: Path, active: Path | None) -> str:
    """Why the retrain saved in `folder` is or is not the model in use, in the gate's words."""
    from core.errors import TaglineError
    from core.learn.gate import Comparison, decide_activation
    from core.models.model_files import read_info

    try:
        recorded = read_info(folder).metrics.get("comparison")
        comparison = Comparison(**recorded) if isinstance(recorded, dict) else None
    except (TaglineError, TypeError):
        return ""
    if comparison is None:
        return ""
    sentence = decide_activation(comparison).sentence
    if folder == active and sentence.startswith("kept"):  # taken anyway ('Use selected model', --activate always)
        return f"The latest model is in use, chosen by hand; the check had said: {sentence}"
    if folder != active and not sentence.startswith("kept"):
        return f"The latest model is not in use (another was chosen since); when trained: {sentence}"
    return f"Latest retrain: {sentence[:1].upper()}{sentence[1:]}"


def per_label_rows(info: Any) -> list[tuple[str, float, float, float, int]]:
    """(label, precision, recall, F1, support) from a model's held-out (or cross-validated) metrics."""
    metrics = info.quality()[1] if info is not None else {}
    table = metrics.get("per_label", {})
    return [(name, s.get("precision", 0.0), s.get("recall", 0.0), s.get("f1", 0.0), int(s.get("support", 0)))
            for name, s in ((n, table[n]) for n in info.labels if n in table)] if info is not None else []


class TrainingView(QWidget):
    train_requested = Signal()
    activate_requested = Signal(object)  # Path of the model folder, or None for the bundled one

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chart = CurveChart()
        self.train_button = QPushButton("Train from confirmed labels")
        self.train_button.clicked.connect(self.train_requested)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Label", "Precision", "Recall", "F1", "Support"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.versions = QListWidget()
        self.versions.setMaximumHeight(110)
        self.activate_button = QPushButton("Use selected model")
        self.activate_button.clicked.connect(self._activate)
        self.bundled_button = QPushButton("Use the bundled model")
        self.bundled_button.setToolTip("Go back to the model that came with Tagline; your trained models are kept")
        self.bundled_button.clicked.connect(lambda: self.activate_requested.emit(None))
        self.in_use = QLabel()
        self.in_use.setWordWrap(True)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addStretch(1)
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.bundled_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.chart, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.in_use)
        layout.addWidget(self.verdict)
        layout.addWidget(QLabel("<b>Model versions</b>"))
        layout.addWidget(self.versions)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 3)

    def start_training(self) -> None:
        self.chart.clear()
        self.chart.title = "Training…"

    def training_failed(self, error: BaseException) -> None:
        """A refused or failed run ("too few labelled photos") must not leave "Training..." up."""
        self.chart.title = f"Not trained: {error}"
        self.chart.update()

    def on_epoch(self, extra: dict[str, Any], message: str = "") -> None:
        """An epoch on the fixed split (loss and validation F1 plotted), or a step of
        cross-validation on few photos (no validation part: the title says what runs)."""
        if "val_samples_f1" not in extra:
            self.chart.title = f"Cross-validation: {message}" if message else "Cross-validating…"
            self.chart.update()
            return
        self.chart.title = f"Training: model {int(extra.get('member', 0)) + 1}, epoch {extra.get('epoch')}"
        self.chart.add_point(float(extra["train_loss"]), float(extra["val_samples_f1"]))

    def set_versions(self, versions: list[tuple[str, Path | None, tuple[str, float] | None]], active: Path | None) -> None:
        """(version, folder or None for the bundled one, held-out micro F1)."""
        self.versions.clear()
        in_use = next((v for v, folder, _ in versions if folder == active), None)
        self.in_use.setText(f"<b>In use:</b> {in_use or 'unknown'}{' (bundled)' if active is None else ''}")
        self.bundled_button.setEnabled(active is not None)
        trained = [folder for _, folder, _ in versions if folder is not None]
        self.verdict.setText(retrain_verdict(trained[-1], active) if trained else "")
        for version, folder, score in versions:
            mark = "  ● active" if folder == active else ""
            scored = f"  {score[0]} micro F1 {score[1]:.3f}" if score is not None else ""
            item = QListWidgetItem(f"{version}{'  (bundled)' if folder is None else ''}{scored}{mark}")
            item.setData(Qt.ItemDataRole.UserRole, str(folder) if folder else "")  # never None (PySide6 6.12)
            self.versions.addItem(item)
            if folder == active:
                self.versions.setCurrentItem(item)

    def show_model(self, info: Any) -> None:
        kind, scores = info.quality()
        spread = f" (+/- {scores['samples_f1_spread']:.3f})" if "samples_f1_spread" in scores else ""
        rare = info.metrics.get("cross_validation", {}).get("rare_labels", [])
        self.summary.setText(
            f"<b>{info.version}</b>: {len(info.labels)} labels, {info.trained_on()}; "
            f"{kind or 'unscored'}: samples F1 {scores.get('samples_f1', float('nan')):.3f}{spread}, "
            f"micro F1 {scores.get('micro_f1', float('nan')):.3f}, macro F1 {scores.get('macro_f1', float('nan')):.3f}"
            + (f"<br>Too few photos to learn reliably: {', '.join(rare)}" if rare else ""))
        if not self.chart.loss and self.chart.title.startswith(("Training", "Cross-validat")):
            # a training without epoch curves (cross-validated, or a refined model) has ended
            self.chart.title = (f"Done: {info.version}, {kind or 'unscored'} samples F1 "
                                f"{scores.get('samples_f1', float('nan')):.3f}{spread}. Curves appear while a model "
                                f"trains epoch by epoch.")
            self.chart.update()
        rows = per_label_rows(info)
        self.table.setRowCount(len(rows))
        for r, (name, precision, recall, f1, support) in enumerate(rows):
            for c, value in enumerate((name, f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}", str(support))):
                item = QTableWidgetItem(value)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)

    def _activate(self) -> None:
        item = self.versions.currentItem()
        if item is not None:
            value = item.data(Qt.ItemDataRole.UserRole)
            self.activate_requested.emit(Path(value) if value else None)
