"""Status bar: the running job (progress, images/s, ETA, Cancel) and what the app is using
(device, model version, counts)."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from core.progress import Progress
from gui.worker import JobHandle


def format_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class RateMeter:
    """Items per second since the stage started, and the time left at that rate."""

    def __init__(self) -> None:
        self.stage = ""
        self.start_time = 0.0
        self.start_done = 0

    def update(self, step: Progress, now: float | None = None) -> tuple[float, float | None]:
        now = time.perf_counter() if now is None else now
        if step.stage != self.stage or step.done < self.start_done:
            self.stage, self.start_time, self.start_done = step.stage, now, step.done
            return 0.0, None
        elapsed = now - self.start_time
        rate = (step.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = (step.total - step.done) / rate if rate > 0 and step.total else None
        return rate, eta


def build_label() -> QLabel:
    """Which build is running (CPU or GPU double-click build, or source), the details as a tip."""
    from core.build_kind import CPU, GPU, build_kind, describe_build

    label = QLabel({CPU: "CPU build", GPU: "GPU build"}.get(build_kind(), "source"))
    label.setToolTip(describe_build())
    return label


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(True)
        self.rate = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.counts = QLabel()
        self.model = QLabel()
        self.device = QLabel("Device: not checked yet")
        self.build = build_label()
        for widget in (self.job_label, self.bar, self.rate, self.cancel_button):
            self.addWidget(widget)
        for widget in (self.counts, self.model, self.device, self.job_label, self.rate):
            widget.setMinimumWidth(40)  # long texts are cut, not the window held wide (the tooltip has them)
        for widget in (self.counts, self.model, self.device, self.build):
            self.addPermanentWidget(widget)
        self._meter = RateMeter()
        self._handle: JobHandle | None = None
        self.cancel_button.clicked.connect(self._cancel)
        self._show_job(False)

    def _show_job(self, visible: bool) -> None:
        for widget in (self.job_label, self.bar, self.rate, self.cancel_button):
            widget.setVisible(visible)

    def attach(self, handle: JobHandle, title: str) -> None:
        self._handle = handle
        self._meter = RateMeter()
        self.clearMessage()  # a temporary message would be drawn over the job's widgets
        self.job_label.setText(title)
        self.bar.setRange(0, 0)
        self.rate.setText("")
        self.cancel_button.setEnabled(True)
        self._show_job(True)
        handle.progress.connect(self.on_progress)
        handle.finished.connect(self._detach)

    def on_progress(self, step: Progress) -> None:
        if step.total:
            self.bar.setRange(0, step.total)
            self.bar.setValue(step.done)
        else:
            self.bar.setRange(0, 0)
        rate, eta = self._meter.update(step)
        parts = [step.stage]
        if step.stage in ("classify", "embed", "scan") and rate > 0:
            parts.append(f"{rate:.1f} images/s")
        if eta is not None:
            parts.append(f"ETA {format_eta(eta)}")
        if step.failed:
            parts.append(f"{step.failed} skipped")
        if step.message and not step.total:
            parts.append(step.message)
        self.rate.setText(" · ".join(parts))

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self.cancel_button.setEnabled(False)
            self.rate.setText("cancelling…")

    def _detach(self) -> None:
        self._handle = None
        self._show_job(False)

    def set_counts(self, images: int, shown: int, reviewed: int, captioned: int) -> None:
        filtered = f" ({shown} shown)" if shown != images else ""
        self.counts.setText(f"{images} images{filtered} · {captioned} captioned · {reviewed} reviewed")
        self.counts.setToolTip(self.counts.text())

    def set_model(self, version: str) -> None:
        self.model.setText(f"Model: {version}")
        self.model.setToolTip(self.model.text())

    def set_device(self, device: str) -> None:
        self.device.setText(f"Device: {device}")
        self.device.setToolTip(self.device.text())
