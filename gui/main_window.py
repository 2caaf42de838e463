"""The main window: opening folders, the gallery with its detail panel, menus and shortcuts."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.errors import TaglineError
from core.media.images import is_image_path
from core.store.database import ProjectStore
from core.tagging.label_guesses import first_round_picks, label_prompts, saved_prompts, unknown_labels
from gui import errors, review
from gui.commands import StoreCommand
from gui.detail import DetailPanel
from gui.filter_bar import FilterBar
from gui.gallery import GalleryModel, GalleryView, ViewFilter
from gui.gallery_delegate import GalleryDelegate
from gui.jobs_controller import JobsController
from gui.label_list import hotkey_for
from gui.project import Project
from gui.settings import AUTO_RETRAIN, Settings, load_settings, qsettings, save_settings
from gui.status import StatusBar
from gui.thumbnails import ThumbnailLoader
from gui.training_view import TrainingView
from gui.word_search import WordSearch
from gui.worker import io_pool

DROP_HINT = ("<div style='font-size:18pt; color:#888'>Drop a folder of photos here</div>"
             "<div style='color:#999'><br>or use File &gt; Open Folder… (Ctrl+O)<br><br>"
             "Tagline keeps its project beside your photos in <tt>.tagline/</tt>; your photos are never changed.</div>")


VIEW_FILTER_KEY = "gui.view_filter"  # meta: the filter and sort the folder was left with


def photos_of(command: object) -> list[int]:
    """The photos an undo step changes (none for label-vocabulary steps)."""
    return command.photos() if isinstance(command, StoreCommand) else []


def accept_without_moving(event: QDragEnterEvent | QDropEvent) -> None:
    """The photos are opened where they are, never moved: say so to the file manager."""
    event.setDropAction(Qt.DropAction.LinkAction if event.possibleActions() & Qt.DropAction.LinkAction
                        else Qt.DropAction.CopyAction)
    event.accept()


def saved_filter(store: ProjectStore) -> ViewFilter:
    """The folder's last filter and sort (the default view when none, or when unreadable)."""
    try:
        saved = json.loads(store.get_meta(VIEW_FILTER_KEY) or "{}")
        fields = {f.name for f in dataclasses.fields(ViewFilter)}
        return ViewFilter(**{k: v for k, v in saved.items() if k in fields}) if isinstance(saved, dict) else ViewFilter()
    except (ValueError, TypeError, TaglineError):
        return ViewFilter()


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.project: Project | None = None
        self.setWindowTitle("Tagline")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self.loader = ThumbnailLoader(self.settings.thumbnail_size, self.settings.thumbnail_cache_mb * 2**20, parent=self)
        self.model = GalleryModel(None, self.loader, self)
        self.view = GalleryView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(GalleryDelegate(self.settings.thumbnail_size, self.view))
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        # a reload (after captioning, a rescan, a label edit) keeps the photo the person was on
        self._kept_selection: list[int] = []
        self.model.modelAboutToBeReset.connect(lambda: setattr(self, "_kept_selection", self.selected_ids()[:1]))
        self.model.modelReset.connect(self._restore_selection)
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self._on_filter)
        self.detail = DetailPanel()
        self.detail.accepted.connect(self.accept_and_next)
        self.detail.left_caption.connect(self.focus_gallery)
        self.detail.left_label_filter.connect(self.focus_gallery)
        self.view.typed.connect(self._search_typed)
        self.filter_bar.text.escaped.connect(self.focus_gallery)
        self.detail.threshold_changed.connect(self.view.viewport().update)
        self.training = TrainingView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.detail, "Details")
        self.tabs.addTab(self.training, "Training")
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.jobs = JobsController(self)
        self.word_search = WordSearch(self.jobs, self)
        self.word_search.ranked.connect(self._on_ranked)
        self.word_search.guessed.connect(self._on_guessed)
        self.jobs.model_shown.connect(self._guess_new_labels)  # a model that learnt a label needs no guesses
        self._build_central()
        self._build_menus()
        self._counts_timer = QTimer(self, singleShot=True, interval=200)
        self._counts_timer.timeout.connect(self._update_counts)
        self.model.modelReset.connect(self._counts_timer.start)  # "(n shown)" follows every refilter
        self._restore_window_state()

    # -- layout ---------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.drop_hint = QLabel(DROP_HINT)
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.filter_bar)
        column.addWidget(self.view, 1)
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([780, 480])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.drop_hint)
        self.stack.addWidget(self.splitter)
        self.setCentralWidget(self.stack)

    def _action(self, menu: object, text: str, slot: object, shortcut: str | QKeySequence.StandardKey | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)  # type: ignore[attr-defined]
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open Folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self.recent_menu = file.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.a_rescan = self._action(file, "Re&scan Folder", self.rescan, "F5", "Find new, changed and removed photos")
        self.a_export = self._action(file, "&Export…", self.jobs.export, "Ctrl+E")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = bar.addMenu("&Edit")
        self.a_undo = self._action(edit, "&Undo", self._undo, QKeySequence.StandardKey.Undo)
        self.a_redo = self._action(edit, "&Redo", self._redo, QKeySequence.StandardKey.Redo)
        edit.addSeparator()
        self._action(edit, "&Labels…", self.jobs.edit_labels, "Ctrl+L")
        self._action(edit, "&Find…", self.focus_search, QKeySequence.StandardKey.Find,
                     "Search file names and captions (Esc returns to the photos)")
        go = bar.addMenu("&Review")
        self._action(go, "&Next image", lambda: self.step_selection(1), "J")
        self._action(go, "&Previous image", lambda: self.step_selection(-1), "K")
        self._action(go, "Next &unreviewed", self.next_unreviewed, "U")
        self._action(go, "Next to &label (model least sure)", self.next_to_label, "N")
        self._action(go, "&Accept labels and next", self.accept_and_next, "Space")
        # no single letter edits: a word typed in the gallery goes to the search box instead
        self._action(go, "Accept labels of &selected", self.accept_selected, "Ctrl+Return")
        self._action(go, "Mark &reviewed", lambda: review.set_reviewed(self._project(), self.selected_ids(), True),
                     "Ctrl+R")
        self._action(go, "Mark unre&viewed", lambda: review.set_reviewed(self._project(), self.selected_ids(), False),
                     "Ctrl+Shift+R")
        self._action(go, "&Clear my decisions", lambda: review.clear_decisions(self._project(), self.selected_ids()))
        go.addSeparator()
        self.label_menu = go.addMenu("Toggle &label")
        model = bar.addMenu("&Model")
        self.a_classify = self._action(model, "&Classify all", self.jobs.classify, "Ctrl+Shift+C",
                                       "Predict labels for every photo whose picture or caption changed")
        self.a_fallback = self._action(model, "Always give the most likely &label", self.set_top1_fallback, None,
                                       "When no label passes its threshold, give the photo its most likely "
                                       "label (right when every photo shows one of the labels)")
        self.a_fallback.setCheckable(True)
        self.a_fallback.setChecked(True)  # the folder's own setting once one is open
        self.a_caption = self._action(model, "Caption &missing", self.jobs.caption_missing, "Ctrl+Shift+M",
                                      "Write a caption for every photo that has none (yours are never replaced)")
        self.a_train = self._action(model, "&Train from confirmed labels", lambda: self.jobs.train(), "Ctrl+Shift+T")
        self.a_autotrain = self._action(model, "Retrain &automatically as I label", self.set_auto_retrain, None,
                                        f"Retrain in the background after every {AUTO_RETRAIN} photos you confirm, "
                                        "then decide the other photos again")
        self.a_autotrain.setCheckable(True)
        self.a_autotrain.setChecked(self.settings.retrain_every > 0)
        self._encoder_menu(model.addMenu("Image &encoder for training"))
        self.a_cancel = self._action(model, "Ca&ncel running job", self.jobs.cancel, "Escape")
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keys", self.show_keys, "F1", "Every key of the window")
        self._action(help_menu, "&About Tagline", self.show_about)
        self._project_actions = [self.a_rescan, self.a_export, self.a_classify, self.a_caption, self.a_train, self.a_fallback]
        self._enable_project_actions(False)

    def key_table(self) -> list[tuple[str, str]]:
        """(what, key) of every action that has a key, labels included, in menu order."""
        rows = []
        for action in self.actions():
            key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if key:
                rows.append((action.text().replace("&", "").replace("…", ""), key))
        return rows

    def show_keys(self) -> None:
        table = "".join(f"<tr><td>{what}</td><td>&nbsp;&nbsp;<b>{key}</b></td></tr>" for what, key in self.key_table())
        QMessageBox.information(self, "Keys", "<table>" + table + "</table><p>A word typed on the photos goes to the "
                                "search box; Esc leaves the caption and search boxes. No single letter changes a photo.</p>")

    def show_about(self) -> None:
        from PySide6 import __version__ as qt_version

        from core import __version__

        QMessageBox.about(self, "About Tagline",
                          f"<b>Tagline {__version__}</b><p>Label photo collections from the picture and its caption "
                          f"together. Everything runs on this computer; your photos are never changed.</p>"
                          f"<p>Qt for Python {qt_version}, Python {sys.version.split()[0]}.<br>"
                          f"Settings and models you train: the folder's <tt>.tagline/</tt>.</p>"
                          f"<p>Free software under the MIT licence.</p>")

    def _encoder_menu(self, menu: QMenu) -> None:
        """The encoders new models can be trained on, each with its measured speed and quality
        (`resources/backbones.json`, from bench/bench_backbones.py)."""
        from core.models.backbones import backbone_figures

        group = QActionGroup(menu)
        choices = [("", "The bundled model's (EfficientNet-Lite0)", "")]
        for row in backbone_figures():
            choices.append((row["name"], f"{row['name']}: {row['ms']:.1f} ms a photo, validation samples F1 "
                                         f"{row['samples_f1']:.3f}, photo alone {row['photo_alone_f1']:.3f}",
                            f"{row['parameters'] / 1e6:.1f} M parameters, {row['mb']:.1f} MB, {row['input']} px"))
        for name, text, tip in choices:
            action = menu.addAction(text)
            action.setCheckable(True)
            action.setToolTip(tip or "the encoder of the bundled model")
            action.setChecked(self.settings.train_image_encoder == name)
            action.triggered.connect(lambda _=False, n=name: self.set_train_encoder(n))
            group.addAction(action)
        menu.setToolTipsVisible(True)

    def set_train_encoder(self, name: str) -> None:
        self.settings.train_image_encoder = name
        save_settings(self.settings)

    def set_auto_retrain(self, enabled: bool) -> None:
        self.settings.retrain_every = AUTO_RETRAIN if enabled else 0
        save_settings(self.settings)

    def set_top1_fallback(self, enabled: bool) -> None:
        """Remembered by the folder; its photos already classified are decided again (cached embeddings)."""
        if self.project is None:
            return
        self.project.top1_fallback = bool(enabled)
        if self.project.predictions:
            self.jobs.classify(redo=True)

    def _enable_project_actions(self, enabled: bool) -> None:
        for action in self._project_actions:
            action.setEnabled(enabled)

    def _rebuild_label_shortcuts(self) -> None:
        """One action per label: its hotkey (1-9 by default) toggles it on the selected images."""
        for action in self.label_menu.actions():
            self.removeAction(action)
        self.label_menu.clear()
        if self.project is None:
            return
        for i, label in enumerate(self.project.labels):
            key = hotkey_for(i, label.hotkey)
            self._action(self.label_menu, label.name, lambda _=False, n=label.name: self.toggle_label(n), key or None)

    # -- opening --------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = self.settings.recent_folders[0] if self.settings.recent_folders else str(Path.home())
        # the photos are shown too (not folders only), so a person sees they chose the right one
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", start, QFileDialog.Option(0))
        if folder:
            self.open_folder(Path(folder))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent_folders:
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_folder(Path(f)))
        if not self.settings.recent_folders:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def open_folder(self, folder: Path, select: Path | None = None) -> bool:
        """Open or create the folder's project, show what the store has now, then rescan."""
        try:
            store = ProjectStore(folder)
        except TaglineError as exc:
            errors.show_error(self, exc, f"Cannot open {folder}")
            return False
        self.close_project()
        self.project = Project(store, self)
        self.a_fallback.setChecked(self.project.top1_fallback)
        self.training.set_generated_captions(self.project.learns_generated_captions)
        view_filter = saved_filter(store)
        self.filter_bar.set_value(view_filter)
        self.jobs.seed_labels()
        self.model.set_project(self.project)  # before our own slots: counts and selection need the rows
        self.model.set_filter(view_filter)
        self.detail.set_project(self.project)
        self.word_search.set_project(store, self.settings.prefer_gpu)
        self.project.reloaded.connect(self.word_search.mark_stale)
        self.project.images_added.connect(self.word_search.mark_stale)
        self.project.reloaded.connect(self._on_reloaded)
        self.project.images_changed.connect(lambda _ids: self._counts_timer.start())
        self.project.images_added.connect(self._on_images_added)
        self.project.labels_changed.connect(self._on_labels_changed)
        self.project.newly_decided.connect(self.jobs.count_decisions)
        self.project.changed_elsewhere.connect(
            lambda n: self.statusBar().showMessage(f"{n} photos changed by another program (shown as they are now)", 8000))
        self.project.undo_stack.canUndoChanged.connect(self.a_undo.setEnabled)
        self.project.undo_stack.canRedoChanged.connect(self.a_redo.setEnabled)
        # the menu says what Ctrl+Z and Ctrl+Shift+Z will do ("Undo accept labels")
        # (methods, not lambdas: Qt disconnects them when the window goes, before the stack does)
        self.project.undo_stack.undoTextChanged.connect(self._show_undo_text)
        self.project.undo_stack.redoTextChanged.connect(self._show_redo_text)
        self.a_undo.setEnabled(False)
        self.a_redo.setEnabled(False)
        self.settings.add_recent(folder)
        save_settings(self.settings, qsettings())
        if store.notice:
            self.statusBar().showMessage(store.notice, 15000)
        self.setWindowTitle(f"Tagline: {store.folder}")
        self.stack.setCurrentWidget(self.splitter)
        self._enable_project_actions(True)
        self._on_reloaded()
        self.jobs.show_active_model()
        project = self.project
        project.when_loaded(lambda: self._after_loading(project, select))
        return True

    def _after_loading(self, project: Project, select: Path | None) -> None:
        if self.project is project:
            self.jobs.rescan(select, trust_folders=True)
            self._search_by_meaning()  # a folder left with words in its search box
            self._guess_new_labels()

    def rescan(self) -> None:
        self.jobs.rescan(None)

    def close_project(self) -> None:
        if self.project is None:
            return
        self.detail.save_caption()
        self.jobs.stop_all()
        self.loader.reset()
        io_pool().waitForDone(5000)
        self.model.set_project(None)
        self.detail.set_project(None)
        self.word_search.set_project(None)
        self.project.close()
        self.project.deleteLater()
        self.project = None
        self._enable_project_actions(False)

    def _project(self) -> Project:
        assert self.project is not None
        return self.project

    # -- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            accept_without_moving(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        folder = next((p for p in paths if p.is_dir()), None)
        image = next((p for p in paths if p.is_file() and is_image_path(p)), None)
        if folder is not None or image is not None:
            accept_without_moving(event)
        if folder is not None:
            self.open_folder(folder)
        elif image is not None:
            self.open_folder(image.parent, select=image)

    # -- selection and review -------------------------------------------------------------
    def selected_ids(self) -> list[int]:
        """Selected images, the current one first."""
        current = self.view.currentIndex()
        rows = sorted(index.row() for index in self.view.selectionModel().selectedIndexes())
        if current.isValid() and current.row() in rows:
            rows.remove(current.row())
            rows.insert(0, current.row())
        return [self.model.image_id(r) for r in rows]

    def select_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row)
            self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.view.scrollTo(index)

    def select_image(self, image_id: int) -> None:
        row = self.model.row_of(image_id)
        if row is not None:
            self.select_row(row)

    def step_selection(self, step: int) -> None:
        """The next (1) or previous (-1) photo; named so it does not hide QWidget.move."""
        current = self.view.currentIndex()
        self.select_row((current.row() + step) if current.isValid() else 0)

    def next_unreviewed(self) -> None:
        if self.project is None:
            return
        ids, start = self.model.ids(), self.view.currentIndex().row() + 1
        for row in [*range(start, len(ids)), *range(0, start)]:
            if ids[row] not in self.project.reviewed:
                self.select_row(row)
                return
        self.statusBar().showMessage("Every image shown is reviewed", 4000)

    def next_to_label(self) -> None:
        """The undecided photo shown whose confirmation teaches the model most."""
        if self.project is None:
            return
        # labels no model knows: their best guesses first, until enough photos are confirmed
        guesses = {name: (np.asarray(ids), -np.arange(len(ids), dtype=np.float32)) for name, ids in self.model.guesses.items()}
        first = first_round_picks(guesses, self.project.confirmations, 1, set(self.model.ids())) if guesses else []
        if first:
            self.select_image(first[0][0])
            self.statusBar().showMessage(f"A first guess for “{first[0][1]}”, from its name", 6000)
            return
        image_id = self.project.next_to_label(self.model.ids())
        if image_id is None:
            self.statusBar().showMessage("Every photo shown has your decisions", 4000)
        else:
            self.select_image(image_id)

    def accept_selected(self) -> None:
        if self.project is not None:
            self.detail.save_caption()
            review.accept_predictions(self.project, self.selected_ids())

    def accept_and_next(self) -> None:
        if self.project is not None and self.selected_ids():
            self.detail.save_caption()
            review.accept_predictions(self.project, self.selected_ids()[:1])
            self.step_selection(1)

    def toggle_label(self, name: str) -> None:
        if self.project is not None:
            review.toggle_label(self.project, self.selected_ids(), name)

    def _undo(self) -> None:
        if self.project is not None:
            self.detail.save_caption()
            stack = self.project.undo_stack
            photos = photos_of(stack.command(stack.index() - 1))
            stack.undo()
            self._show_photos(photos)

    def _redo(self) -> None:
        if self.project is not None:
            stack = self.project.undo_stack
            photos = photos_of(stack.command(stack.index()))
            stack.redo()
            self._show_photos(photos)

    def _restore_selection(self) -> None:
        kept, self._kept_selection = self._kept_selection, []
        if kept and self.model.has_image(kept[0]):
            self.select_image(kept[0])

    def _show_photos(self, photos: list[int]) -> None:
        """After an undo or redo, the photo it changed is the one shown (when the view has it)."""
        if photos and self.model.has_image(photos[0]) and photos[0] not in self.selected_ids():
            self.select_image(photos[0])

    # -- keyboard focus -------------------------------------------------------------------
    def focus_gallery(self) -> None:
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def focus_search(self) -> None:
        self.filter_bar.text.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_bar.text.selectAll()

    def _search_typed(self, text: str) -> None:
        """Letters typed in the gallery start a search: they land in the search box, which keeps
        the keyboard (so the rest of the word is typed there, never run as shortcuts)."""
        box = self.filter_bar.text
        box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        box.setText(text)

    # -- reactions ------------------------------------------------------------------------
    def _on_selection(self) -> None:
        self.detail.set_images(self.selected_ids())

    def _on_filter(self, view_filter: object) -> None:
        if self.project is not None and isinstance(view_filter, ViewFilter):
            try:  # remembered by the folder: it opens again as the person left it
                self.project.store.set_meta(VIEW_FILTER_KEY, json.dumps(dataclasses.asdict(view_filter)))
            except TaglineError:
                pass  # a read-only or full store: the filter still applies, it is just not remembered
        keep = self.selected_ids()[:1]
        self.model.set_filter(view_filter)  # type: ignore[arg-type]
        if keep:
            self.select_image(keep[0])
        self._update_counts()
        self._search_by_meaning()
        self._say_guessing()
        if self.project is not None and self.project.order and self.model.rowCount() == 0:
            self.statusBar().showMessage("No photo matches these filters: widen the confidence range, or choose "
                                         "another label or review state", 10000)

    def _search_by_meaning(self) -> None:
        """Words that name no file are ranked by meaning (the answer comes in `_on_ranked`)."""
        self.word_search.search(self.model.filter.text if self.model.wants_meaning else "")
        if self.model.wants_meaning and not self.model.by_meaning:
            self.statusBar().showMessage(f"Ranking the photos by how well they match “{self.model.filter.text}”…", 10000)

    def _guess_new_labels(self) -> None:
        """Labels the active model does not know get photos guessed from their names."""
        project = self.project
        if project is None or not project.model_thresholds:  # the active model not read yet
            return
        prompts = saved_prompts(project.store)
        new = unknown_labels(project.labels, project.model_thresholds)
        self.word_search.guess({label.name: label_prompts(label.name, prompts.get(label.name, [])) for label in new})

    def _on_guessed(self, guesses: dict[str, list[int]]) -> None:
        self.model.set_guesses(guesses)
        self._say_guessing()

    def _say_guessing(self) -> None:
        label, project = self.model.filter.label, self.project
        if self.model.by_guess and project is not None:
            confirmed = sum(1 for decided in project.confirmations.values() if decided.get(label))
            said = f"your {confirmed} confirmed photos first, then " if confirmed else ""
            self.statusBar().showMessage(f"No model knows “{label}” yet: {said}photos guessed from its name, best "
                                         "first (confirm a few, then train, to teach it)", 10000)

    def _on_ranked(self, words: str, ranked: list[int]) -> None:
        self.model.set_word_ranking(words, ranked)
        if self.model.by_meaning:
            self.view.scrollToTop()
            self.select_row(0)
            self._update_counts()
            lead = "photos whose caption says it first, then " if self.model.caption_led else ""
            self.statusBar().showMessage(f"Ranked by meaning: {lead}the best matches for “{words}” first", 10000)

    def _on_reloaded(self) -> None:
        self._on_labels_changed()
        self._update_counts()
        if not self.view.currentIndex().isValid():
            self.select_row(0)

    def _on_images_added(self, _ids: list[int]) -> None:
        self._counts_timer.start()
        if not self.view.currentIndex().isValid():
            self.select_row(0)

    def _on_labels_changed(self) -> None:
        if self.project is not None:
            self.filter_bar.set_labels(self.project.label_names())
            self._guess_new_labels()
        self._rebuild_label_shortcuts()

    def _update_counts(self) -> None:
        if self.project is not None:
            p = self.project
            self.status.set_counts(len(p.order), self.model.rowCount(), len(p.reviewed), len(p.captions))

    # -- window state ---------------------------------------------------------------------
    def _restore_window_state(self) -> None:
        store = qsettings()  # contains() first: value() of a missing key mishandles None in PySide6 6.12
        if store.contains("window/geometry"):
            self.restoreGeometry(store.value("window/geometry"))
        if store.contains("window/state"):
            self.restoreState(store.value("window/state"))
        if store.contains("window/splitter"):
            self.splitter.restoreState(store.value("window/splitter"))

    def _show_undo_text(self, text: str) -> None:
        self.a_undo.setText(f"&Undo {text}".strip())

    def _show_redo_text(self, text: str) -> None:
        self.a_redo.setText(f"&Redo {text}".strip())

    def closeEvent(self, event: QCloseEvent) -> None:
        store = qsettings()
        store.setValue("window/geometry", self.saveGeometry())
        store.setValue("window/state", self.saveState())
        store.setValue("window/splitter", self.splitter.saveState())
        self.close_project()
        io_pool().waitForDone(5000)
        super().closeEvent(event)
