"""Training tab: loss and F1 curves drawn while training runs, the per-label scores of a model,
the model versions of the project with the active one marked, why the latest retrain was or was
not taken (core.learn.gate), and the bundled model back in one step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
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


@dataclass(frozen=True)
class ModelEntry:
    """One line of the model list, in what a person recognises: when it was made, what kind of
    model it is, its score, and (in the tooltip) the id the status bar shows and its folder."""

    version: str  # the id (status bar, model.json)
    folder: Path | None  # None: the bundled model
    made: str  # local time it was made, "2026-12-05 08:58"
    kind: str
    score: tuple[str, float] | None  # (how it was scored, samples F1)

    def text(self, active: bool) -> str:
        scored = f"{self.score[0]} samples F1 {self.score[1]:.3f}" if self.score else "unscored"
        return " · ".join(p for p in (self.made, self.kind, scored, "● in use" if active else "") if p)

    def tooltip(self) -> str:
        """The whole line (a narrow window cuts it), the id and where the model lives."""
        where = f"Folder: {self.folder}" if self.folder else "The model that came with Tagline"
        return f"{self.text(False)}\nModel id {self.version}\n{where}"


def model_entry(info: Any, folder: Path | None) -> ModelEntry:
    """The list's line for a model: made when its folder says (trained folders are named by the
    local time), else when its model.json says; its kind from how it was trained."""
    made = ""
    try:
        made = datetime.strptime(folder.name, "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M") if folder else ""
    except ValueError:
        pass
    created = info.training.get("created") if isinstance(info.training, dict) else None
    if not made and isinstance(created, str):
        try:
            made = datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            made = ""
    head = info.head if isinstance(info.head, dict) else {}
    if folder is None:
        kind = "bundled"
    elif head.get("kind") == "refined":
        kind = "refined bundled model" if "refined" in info.metrics and info.metrics["refined"].get("base") else "refined"
    elif "cross_validation" in info.metrics:
        kind = "learnt from your photos"
    else:
        kind = "trained on a split"
    if info.generated_captions.get("learnt"):
        kind += ", reads generated captions"
    quality, scores = info.quality()
    return ModelEntry(info.version, folder, made or info.version, kind,
                      (quality, float(scores["samples_f1"])) if quality else None)


def per_label_rows(info: Any) -> list[tuple[str, float, float, float, int]]:
    """(label, precision, recall, F1, support) from a model's held-out (or cross-validated) metrics."""
    metrics = info.quality()[1] if info is not None else {}
    table = metrics.get("per_label", {})
    return [(name, s.get("precision", 0.0), s.get("recall", 0.0), s.get("f1", 0.0), int(s.get("support", 0)))
            for name, s in ((n, table[n]) for n in info.labels if n in table)] if info is not None else []


class TrainingView(QWidget):
    train_requested = Signal()
    activate_requested = Signal(object)  # Path of the model folder, or None for the bundled one
    generated_captions_changed = Signal(bool)  # the folder's switch: models learn from generated captions

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chart = CurveChart()
        self.train_button = QPushButton("Train from confirmed labels")
        self.train_button.clicked.connect(self.train_requested)
        self.generated_captions = QCheckBox("Learn from generated captions too")
        self.generated_captions.setToolTip(
            "On: captions the captioner wrote train your model beside people's, and it reads them when it labels "
            "(measured on few photos: better than the photo alone; docs/benchmarks.md). Off: only the photos and "
            "the captions people wrote. Kept for this folder.")
        self.generated_captions.setChecked(True)
        self.generated_captions.toggled.connect(self.generated_captions_changed)
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
        layout.addWidget(self.generated_captions)  # a row of its own: the window still fits 1,024 px
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

    def set_generated_captions(self, enabled: bool) -> None:
        """Show the open folder's switch without telling anyone it changed."""
        self.generated_captions.blockSignals(True)
        self.generated_captions.setChecked(enabled)
        self.generated_captions.blockSignals(False)

    def set_versions(self, versions: list[ModelEntry], active: Path | None) -> None:
        """The bundled model and the folder's models, oldest first, the one in use marked."""
        self.versions.clear()
        in_use = next((e for e in versions if e.folder == active), None)
        self.in_use.setText("<b>In use:</b> " + (f"{in_use.made} · {in_use.kind} (id {in_use.version})"
                                                 if in_use else "unknown"))
        self.in_use.setToolTip(in_use.tooltip() if in_use else "")
        self.bundled_button.setEnabled(active is not None)
        trained = [e.folder for e in versions if e.folder is not None]
        self.verdict.setText(retrain_verdict(trained[-1], active) if trained else "")
        for entry in versions:
            item = QListWidgetItem(entry.text(entry.folder == active))
            item.setToolTip(entry.tooltip())
            item.setData(Qt.ItemDataRole.UserRole, str(entry.folder) if entry.folder else "")  # never None (PySide6 6.12)
            self.versions.addItem(item)
            if entry.folder == active:
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
