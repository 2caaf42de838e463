"""Starts the window's background jobs and routes their signals: results stream into the
project as they arrive, per-file failures are listed, errors go to `gui/errors.py`."""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from core.errors import TaglineError
from core.models.retention import KEEP_NEWEST
from core.progress import Progress
from gui import errors
from gui.export_dialog import ExportDialog
from gui.jobs import (
    ExportRequest,
    KeptModel,
    caption_job,
    check_job,
    classify_job,
    device_job,
    export_job,
    model_summary,
    sync_job,
    train_job,
)
from gui.label_editor import LabelEditor
from gui.training_view import ModelEntry, model_entry
from gui.worker import JobFactory, JobHandle, JobQueue


def device_name(provider: str) -> str:
    """The status bar's words for an encoder session's provider."""
    if "CUDA" in provider:
        return "CUDA"
    if provider.startswith("OpenVINO"):
        return f"CPU (OpenVINO {provider.rsplit('-', 1)[-1]})"
    return "CPU"


if TYPE_CHECKING:
    from PySide6.QtWidgets import QStatusBar, QTabWidget

    from gui.detail import DetailPanel
    from gui.gallery import GalleryModel
    from gui.project import Project
    from gui.settings import Settings
    from gui.status import StatusBar
    from gui.training_view import TrainingView


class JobsHost(Protocol):
    """What the controller needs of the window, and nothing else: the open project, the
    settings, the views a job reports into, and the selection. The window provides it; tests
    may pass any object that does (no import of the window, so no circle)."""

    project: Project | None
    settings: Settings
    training: TrainingView
    status: StatusBar
    detail: DetailPanel
    tabs: QTabWidget
    model: GalleryModel

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (Qt's name)
    def select_image(self, image_id: int) -> None: ...
    def selected_ids(self) -> list[int]: ...


class JobsController(QObject):
    model_shown = Signal()  # the active model was read again (opened, trained, chosen): its labels may differ
    def __init__(self, window: JobsHost) -> None:
        super().__init__(cast(QObject, window))
        self.window = window
        self.queue = JobQueue(self)
        self.queue.started.connect(self._on_started)
        self.device = ""
        self.decided_since_training = 0  # photos newly confirmed since the last training started
        self.training_running = False
        self._ladder_step = ""  # what cross-validation is doing, for the training view's title
        self._problems_shown: set[str] = set()  # unreadable paths the last scan listed
        window.training.train_requested.connect(self.train)
        window.training.activate_requested.connect(self.activate_model)
        window.training.generated_captions_changed.connect(self._set_generated_captions)

    def _submit(self, name: str, factory: JobFactory) -> JobHandle:
        handle = self.queue.submit(name, factory)
        handle.failed.connect(partial(self._on_failed, name))
        return handle

    def submit(self, name: str, factory: JobFactory) -> JobHandle:
        """A job of another part of the window (the search index): queued, shown and its errors
        reported like the verbs' own."""
        return self._submit(name, factory)

    def _on_started(self, handle: JobHandle) -> None:
        if handle.name != "device":
            self.window.status.attach(handle, handle.name.capitalize())

    def _on_failed(self, name: str, error: BaseException) -> None:
        errors.show_error(self._parent, error, f"{name.capitalize()} failed")

    def _message(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 8000)

    def cancel(self) -> None:
        self.queue.cancel_all()

    def stop_all(self) -> None:
        self.queue.wait(60_000)

    @property
    def _parent(self) -> QWidget:
        """The window as the parent of dialogs and messages (the protocol is what jobs use of it)."""
        return cast(QWidget, self.window)

    # -- jobs -----------------------------------------------------------------------------
    def rescan(self, select: Path | None, trust_folders: bool = False) -> JobHandle | None:
        """Bring the project in line with its folder. Opening a folder trusts the folders whose
        time has not moved (a million photos re-opened in seconds, not half a minute), then
        checks every file in the background for photos rewritten in place (`check_files`)."""
        project = self.window.project
        if project is None:
            return None
        handle = self._submit("scanning", partial(sync_job, project.store, trust_folders=trust_folders))
        handle.progress.connect(self._on_sync_progress)
        handle.succeeded.connect(lambda report: self._on_synced(report, select))
        return handle

    def check_files(self) -> JobHandle | None:
        """The whole rescan, in the background (a child process: `core.jobs.check`): it gives
        way to any job the person starts and runs again after it."""
        project = self.window.project
        if project is None:
            return None
        handle = self.queue.submit("checking files", partial(check_job, project.store), background=True)
        handle.failed.connect(partial(self._on_failed, "checking files"))
        handle.progress.connect(self._on_sync_progress)
        handle.succeeded.connect(lambda report: self._on_synced(report, None, "Checked every file: "))
        handle.cancelled.connect(lambda: self.check_files() if handle.preempted and self.window.project is project else None)
        return handle

    def _on_sync_progress(self, step: Progress) -> None:
        """New photos are committed in batches: each batch is appended to the grid as it lands."""
        project = self.window.project
        if project is None or not step.extra.get("added"):
            return
        project.add_images(list(step.extra["added"]))

    def _on_synced(self, report: Any, select: Path | None, said: str = "") -> None:
        project = self.window.project
        if project is None:
            return
        # a first open appended its batches in natural order as they landed: re-reading a million
        # rows would put the grid back to its first page under the person's scrolling
        if report.removed or report.changed or report.moved or (report.added and not report.appended_in_order):
            project.reload()
        self._message(said + f"{len(report.added)} new, {len(report.changed)} changed, {len(report.removed)} missing photos"
                      + (f", {len(report.problems)} unreadable" if report.problems else ""))
        # the background check finds again what the scan before it listed: only new ones are shown
        fresh = [(p.path, p.reason) for p in report.problems if not said or p.path not in self._problems_shown]
        self._problems_shown = {p.path for p in report.problems}
        errors.show_failures(self._parent, "Scanning", fresh)
        if select is not None:
            project.finish_loading()
            image_id = project.store.image_ids_by_relpath().get(select.resolve().relative_to(project.folder).as_posix())
            if image_id is not None:
                self.window.select_image(image_id)
        if report.trusted_folders:
            self.check_files()
        if (report.added or report.changed) and project.predictions:
            self.classify()  # the new and changed photos only: the others are decided already

    def classify(self, redo: bool = False) -> JobHandle | None:
        project = self.window.project
        if project is None:
            return None
        self.window.detail.save_caption()
        settings = self.window.settings
        factory = partial(classify_job, project.store, project.get_active_model(), settings.batch_size,
                          settings.prefer_gpu, top1_fallback=project.top1_fallback, redo=redo)
        handle = self._submit("classifying", factory)
        handle.progress.connect(self._on_classify_progress)
        handle.succeeded.connect(self._on_classified)
        return handle

    def _on_classify_progress(self, step: Progress) -> None:
        ids = step.extra.get("image_ids")
        if ids and self.window.project is not None:
            self.window.project.refresh_predictions(list(ids))
            self.window.detail.labels_model.refresh()

    def caption_missing(self) -> JobHandle | None:
        project = self.window.project
        if project is None:
            return None
        self.window.detail.save_caption()
        settings = self.window.settings
        handle = self._submit("captioning", partial(caption_job, project.store, settings.batch_size, settings.prefer_gpu))
        handle.progress.connect(self._on_caption_progress)
        handle.succeeded.connect(self._on_captioned)
        return handle

    def _on_caption_progress(self, step: Progress) -> None:
        ids = step.extra.get("image_ids")
        if ids and self.window.project is not None:
            self.window.project.refresh_captions(list(ids))

    def _on_captioned(self, report: Any) -> None:
        rate = report.captioned / report.seconds if report.seconds else 0.0
        self._message(f"Captioned {report.captioned} photos ({rate:.1f}/s), {report.kept} already had one, "
                      f"{len(report.failures)} skipped")
        errors.show_failures(self._parent, "Captioning", report.failures)
        if self.window.project is not None:
            self.window.project.reload()

    def _on_classified(self, report: Any) -> None:
        rate = report.classified / report.seconds if report.seconds else 0.0
        if report.provider:
            self.set_device(device_name(report.provider))
        self._message(f"Classified {report.classified} images ({rate:.1f}/s), {report.already_done} already done, "
                      f"{len(report.failures)} skipped")
        errors.show_failures(self._parent, "Classifying", report.failures)
        if self.window.project is not None:
            self.window.project.reload_labels()
            self.window.model.refilter_after_classifying()

    def count_decisions(self, count: int) -> None:
        """After `retrain_every` newly confirmed photos, retrain in the background and decide
        the other photos again with the new model; the person keeps labelling meanwhile."""
        self.decided_since_training += count
        every = self.window.settings.retrain_every
        if every > 0 and self.decided_since_training >= every and not self.training_running:
            self.train(automatic=True)

    def train(self, automatic: bool = False) -> JobHandle | None:
        project = self.window.project
        if project is None:
            return None
        if not automatic:
            self.window.detail.save_caption()
        out_dir = project.models_dir() / time.strftime("%Y%m%d-%H%M%S")
        settings = self.window.settings
        self.decided_since_training = 0
        self.training_running = True
        handle = self._submit("training", partial(train_job, project.store, out_dir, settings.train_epochs,
                                                  settings.prefer_gpu, image_encoder=settings.train_image_encoder,
                                                  generated_captions=project.learns_generated_captions))
        if not automatic:
            self.window.tabs.setCurrentWidget(self.window.training)
        self.window.training.start_training()
        handle.progress.connect(self._on_train_progress)
        handle.succeeded.connect(partial(self._on_trained, automatic))
        handle.failed.connect(self.window.training.training_failed)
        handle.finished.connect(self._on_training_ended)
        return handle

    def _on_training_ended(self, *_args: object) -> None:
        self.training_running = False

    def _on_train_progress(self, step: Progress) -> None:
        if step.stage == "train" and "train_loss" in step.extra:
            self.window.training.on_epoch(step.extra, self._ladder_step)
        elif step.stage == "cross-validate":
            self._ladder_step = step.message
            self.window.training.on_epoch({}, step.message)

    def _on_trained(self, automatic: bool, result: Any) -> None:
        """Train and automatic Retrain end alike (as "Use selected model" does): the new model is
        active and decides the photos again in the background, so the grid shows one model only."""
        removed = (f"; {result.removed} older model{'s' if result.removed > 1 else ''} removed (the newest "
                   f"{KEEP_NEWEST} and the one in use are kept)") if result.removed else ""
        if isinstance(result, KeptModel):  # not as good as the model in use: it stays, and the person is told why
            what = "Retrained on your decisions" if automatic else "Trained"
            self._message(f"{what}; {result.verdict[:1].lower()}{result.verdict[1:]} (Training tab: use it "
                          f"anyway){removed}")
            self.show_active_model()
            return
        kind, scores = result.info.quality()
        score = f" ({kind} samples F1 {scores['samples_f1']:.3f})" if kind else ""
        what = "Retrained on your decisions" if automatic else "Trained"
        self._message(f"{what}: model {result.info.version}{score} is active; deciding the photos again{removed}")
        self.activate_model(result.model_dir)

    def export(self) -> JobHandle | None:
        window = self.window
        project = window.project
        if project is None:
            return None
        window.detail.save_caption()
        project.finish_loading()  # "all photos" means all, not the pages read so far
        dialog = ExportDialog(project.folder, list(project.order), window.model.ids(), window.selected_ids(), self._parent)
        if not dialog.exec():
            return None
        return self.run_export(dialog.request())

    def run_export(self, request: ExportRequest) -> JobHandle | None:
        project = self.window.project
        if project is None:
            return None
        request = dataclasses.replace(request, threshold=project.threshold)  # what the grid shows is what is written
        handle = self._submit("exporting", partial(export_job, project.store, request))
        handle.succeeded.connect(lambda outcome: self._message(f"{outcome.summary[:1].upper()}{outcome.summary[1:]}"))
        return handle

    def probe_device(self) -> None:
        handle = self._submit("device", partial(device_job, self.window.settings.prefer_gpu))
        handle.succeeded.connect(self.set_device)

    def probe_device_later(self, msecs: int = 1500) -> None:
        QTimer.singleShot(msecs, self.probe_device)

    def set_device(self, device: str) -> None:
        self.device = device
        self.window.status.set_device(device)

    # -- models ---------------------------------------------------------------------------
    def model_versions(self) -> list[ModelEntry]:
        project = self.window.project
        folders: list[Path | None] = [None]
        if project is not None and project.models_dir().is_dir():
            folders += sorted(p for p in project.models_dir().iterdir() if (p / "model.json").is_file())
        versions = []
        for folder in folders:
            try:
                info = model_summary(folder)
            except TaglineError:
                continue
            versions.append(model_entry(info, folder))
        return versions

    def show_active_model(self) -> None:
        project = self.window.project
        active = project.get_active_model() if project is not None else None
        try:
            info = model_summary(active)
        except TaglineError as exc:
            errors.show_error(self._parent, exc, "The active model cannot be read; using the bundled one")
            if project is not None:
                project.set_active_model(None)
            active, info = None, model_summary(None)
        self.window.status.set_model(info.version)
        if project is not None:
            project.model_thresholds = dict(zip(info.labels, info.decision_thresholds().tolist()))
        self.window.training.show_model(info)
        self.window.training.set_versions(self.model_versions(), active)
        self.model_shown.emit()

    def seed_labels(self) -> None:
        """A new project starts with the active model's labels, so hotkeys work before classifying."""
        project = self.window.project
        if project is None or project.labels:
            return
        try:
            info = model_summary(project.get_active_model())
        except TaglineError:
            return
        project.store.ensure_labels(info.labels, [info.external_ids.get(n) for n in info.labels])
        project.labels = project.store.labels()

    def activate_model(self, folder: Path | None) -> None:
        """Make `folder` (None: the bundled model) the project's model and let it decide every photo
        it has not decided yet (its own earlier predictions, cached embeddings: cheap)."""
        if self.window.project is not None:
            self.window.project.set_active_model(folder)
            self.show_active_model()
            self.classify()

    def _set_generated_captions(self, enabled: bool) -> None:
        """The folder's switch: kept in its store, used by the next training (manual or automatic)."""
        project = self.window.project
        if project is not None:
            project.learns_generated_captions = enabled
            self._message("The next training learns from generated captions too" if enabled
                          else "The next training leaves generated captions out")

    def edit_labels(self) -> None:
        if self.window.project is not None:
            LabelEditor(self.window.project, self._parent).exec()
