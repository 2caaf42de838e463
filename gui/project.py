"""The open project as the GUI sees it: a snapshot of the store plus the edits made through it.

Every edit writes to the store first (committed before the call returns), then updates the
snapshot and announces which images changed, so views repaint only those rows. Edits a person
makes go through `QUndoStack` commands (`gui/commands.py`), which call the methods here.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoStack

from core.jobs.project import active_model_key
from core.store.database import Label, ProjectStore
from core.store.decisions import has_label, is_predicted, photo_labels
from core.store.snapshot import ImageColumns
from core.tagging.suggest import photo_uncertainty


@dataclass(frozen=True)
class LabelState:
    """One label of one image, as the detail panel shows it."""

    name: str
    probability: float | None  # None: never classified
    predicted: bool
    confirmed: bool | None  # None: the person has not decided
    guess: bool = False  # given only because no label passed its threshold

    @property
    def effective(self) -> bool:
        return self.confirmed if self.confirmed is not None else self.predicted


_NONE: dict = {}  # read-only stand-in for a photo without predictions or decisions
FALLBACK_KEY = "gui.top1_fallback"  # meta: the guess setting of this folder
GENERATED_CAPTIONS_KEY = "gui.train_generated_captions"  # meta: whether this folder's models learn from them
POLL_MS = 500  # how often the store is asked whether another process wrote to it
FIRST_PAGE = 5_000  # more than any screen shows
PAGE = 5_000  # about 25 ms of the event loop each (20,000 took 90 ms: a stall while scrolling)


class Project(QObject):
    """Snapshot + edits of one open `ProjectStore`."""

    reloaded = Signal()  # everything may have changed (rows added or removed)
    # ids as a Python object: `Signal(list)` converted the list for each slot, 0.24 s a slot
    # for the million ids of a re-open's last page
    images_added = Signal(object)  # list[int]: image ids appended to `order` while a scan runs
    images_changed = Signal(object)  # list[int]: image ids whose captions, labels or review state changed
    labels_changed = Signal()  # the label vocabulary
    newly_decided = Signal(int)  # how many photos just got their first decision from the person
    changed_elsewhere = Signal(int)  # another process (the command line, a second window) changed this many photos

    def __init__(self, store: ProjectStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.undo_stack = QUndoStack(self)
        self.threshold: float | None = None  # None: the model's own decisions
        self.records = ImageColumns()  # the present photos, by id
        # The snapshot is read page by page in natural order: the first page at once, the rest
        # from the event loop, so a million-photo project shows its first screen in well under
        # a second and scrolling never waits on more than one page.
        self._next_page: tuple[str, int] | None = None
        self._page_timer = QTimer(self)
        self._page_timer.setSingleShot(True)
        self._page_timer.setInterval(0)
        self._page_timer.timeout.connect(self._load_next_page)
        self._when_loaded: list[Callable[[], object]] = []
        self.captions: dict[int, tuple[str, str]] = {}
        self.predictions: dict[int, dict[str, tuple[float, bool]]] = {}
        self.guesses: dict[int, set[str]] = {}  # labels given only as the model's best guess
        self.confirmations: dict[int, dict[str, bool]] = {}
        self.labels: list[Label] = []
        self.model_thresholds: dict[str, float] = {}  # the active model's, by label; missing: 0.5
        self.model_key = ""  # identity of the active model: only its predictions are shown
        # What other processes write is noticed through SQLite's data_version (microseconds to
        # ask) and read back through the store's change log, photo by photo (`poll_external`).
        self._seen_change = 0
        self._data_version = 0
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(POLL_MS)
        self._poll_timer.timeout.connect(self.poll_external)
        self.reload()
        self._poll_timer.start()

    @property
    def order(self) -> list[int]:
        """The snapshot's photos in the grid's order (natural order, then photos a scan added)."""
        return self.records.ids

    @property
    def reviewed(self) -> set[int]:
        return self.records.reviewed

    @property
    def folder(self) -> Path:
        return self.store.folder

    def close(self) -> None:
        self._poll_timer.stop()
        self.store.close()

    # -- reading --------------------------------------------------------------------------
    def reload(self) -> None:
        store = self.store
        self._page_timer.stop()
        self.records = ImageColumns()
        self._unannounced: list[int] = []  # read from the store, not yet in the grid
        self._seen_change = store.last_change()  # before reading: a change made meanwhile is read again
        self._data_version = store.data_version()
        self.model_key = active_model_key(store)
        self.captions = store.captions()
        self.predictions = store.predictions(self.model_key)
        self.guesses = store.guessed_labels(self.model_key)
        self.confirmations = store.confirmations()
        self.labels = store.labels()
        self._append_page(None, FIRST_PAGE)
        self.reloaded.emit()

    @property
    def loading(self) -> bool:
        """More of the snapshot is still being read (the grid grows page by page)."""
        return self._next_page is not None

    def _append_page(self, after: tuple[str, int] | None, limit: int) -> list[int]:
        page, self._next_page = self.store.shown_page(after, limit)
        fresh = self.records.extend(page)  # a scan may have added some already
        # The snapshot's long-lived objects would otherwise be walked by every full garbage
        # collection: about 35 ms on 100,000 photos, landing at random, say while scrolling.
        gc.freeze()
        if self._next_page is not None:
            self._page_timer.start()
        return fresh

    def finish_loading(self) -> None:
        """Read the rest of the snapshot now (before an action that needs every photo)."""
        while self._next_page is not None:
            self._load_next_page()
        self._page_timer.stop()

    def _load_next_page(self) -> None:
        """One page into the snapshot; the grid hears of them all at once when the last lands.
        Announced page by page, each insertion restarted the grid's layout of every row, and a
        million-photo re-open showed an empty grid until the last page (bench_gui)."""
        if self._next_page is None:
            return
        self._unannounced += self._append_page(self._next_page, PAGE)
        if self._next_page is None:
            if self._unannounced:
                ids, self._unannounced = self._unannounced, []
                self.images_added.emit(ids)
            waiting, self._when_loaded = self._when_loaded, []
            for callback in waiting:
                callback()

    def when_loaded(self, callback: Callable[[], object]) -> None:
        """Call `callback` once the whole snapshot is read (now, if it is). The rescan waits for
        it: both at once fought for the interpreter, and each page took 80 ms instead of 20."""
        if self._next_page is None:
            callback()
        else:
            self._when_loaded.append(callback)

    def reload_labels(self) -> None:
        self.labels = self.store.labels()
        self.labels_changed.emit()

    def add_images(self, relpaths: list[str]) -> list[int]:
        """A scan committed these new photos: append them to the snapshot instead of reloading it
        (a reload per batch made the first open of a big folder grow with the square of its size).
        They keep the scan's order, which is the natural one. Photos the paged read has yet to
        reach are left to it, so none is shown twice."""
        found = {row[1]: row for row in self.store.shown_by_relpath(relpaths)}
        ids = self.records.extend([row for row in (found.get(rel) for rel in relpaths) if row is not None])
        if ids:
            self.images_added.emit(ids)
        return ids

    def refresh_captions(self, image_ids: list[int]) -> None:
        """A caption batch just committed these images: re-read their captions only, not the
        whole snapshot (a reload per batch made captioning a large folder quadratic)."""
        self._reread_captions(image_ids)
        self.images_changed.emit(list(image_ids))

    def _reread_captions(self, image_ids: list[int]) -> None:
        fresh = self.store.captions(image_ids)
        for image_id in image_ids:
            if image_id in fresh:
                self.captions[image_id] = fresh[image_id]
            else:
                self.captions.pop(image_id, None)

    def _reread_predictions(self, image_ids: list[int]) -> None:
        """The active model's predictions and guesses of these photos (gone ones removed)."""
        predicted = self.store.predictions(self.model_key, image_ids)
        guesses = self.store.guessed_labels(self.model_key, image_ids)
        for image_id in image_ids:
            self.predictions.pop(image_id, None)
            self.guesses.pop(image_id, None)
        self.predictions.update(predicted)
        self.guesses.update(guesses)

    def refresh_predictions(self, image_ids: list[int]) -> None:
        """A classify batch just committed these images."""
        if not image_ids:
            return
        self._reread_predictions(image_ids)
        if len(self.labels) != len(self.store.labels()):
            self.reload_labels()
        self.images_changed.emit(list(image_ids))

    # -- what others wrote -----------------------------------------------------------------
    def poll_external(self) -> int:
        """Read back what another process committed since the last look (the command line, a
        second window, a server); returns how many photos changed. Called on a timer and before
        every edit, so an edit never writes back a stale copy of what it changes."""
        store = self.store
        try:
            newest = store.last_change()  # read first: if nobody else wrote, every change up to it is ours
            version = store.data_version()
        except Exception:  # a closed or vanished store: the next open tells the person
            return 0
        if version == self._data_version:
            self._seen_change = newest
            return 0
        self._data_version = version
        found = store.changes_since(self._seen_change)
        if found is None:  # too far behind: the change log was pruned past what this window saw
            self.reload()
            return len(self.order)
        self._seen_change, changes = found
        return self.apply_changes(changes)

    def apply_changes(self, changes: list[tuple[int | None, str]]) -> int:
        """Re-read the photos these change-log rows name, kind by kind; one repaint at the end."""
        ids: dict[str, set[int]] = {}
        whole: set[str] = set()
        for image_id, kind in changes:
            if image_id is None:
                whole.add(kind)
            else:
                ids.setdefault(kind, set()).add(image_id)
        store = self.store
        touched: set[int] = set()
        if "labels" in whole:
            self.labels = store.labels()
            self.labels_changed.emit()
        if "model" in whole or "labels" in whole:
            self.model_key = active_model_key(store)
            self.predictions = store.predictions(self.model_key)
            self.guesses = store.guessed_labels(self.model_key)
            self.confirmations = store.confirmations()
            touched.update(self.order)
        elif "prediction" in ids:
            chosen = sorted(ids["prediction"])
            self._reread_predictions(chosen)
            touched.update(chosen)
        if "caption" in ids:
            chosen = sorted(ids["caption"])
            self._reread_captions(chosen)
            touched.update(chosen)
        if "decision" in ids:
            chosen = sorted(ids["decision"])
            decided = store.confirmations(chosen)
            for image_id in chosen:
                self.confirmations.pop(image_id, None)
            self.confirmations.update(decided)
            touched.update(chosen)
        if "reviewed" in ids:
            chosen = sorted(ids["reviewed"])
            marked = store.reviewed_among(chosen)
            self.reviewed.difference_update(chosen)
            self.reviewed.update(marked)
            touched.update(chosen)
        if touched:
            self.images_changed.emit(sorted(touched))
            self.changed_elsewhere.emit(len(touched))
        return len(touched)

    def image_path(self, image_id: int) -> Path:
        return self.store.image_path(self.records[image_id])

    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def is_predicted(self, image_id: int, name: str) -> bool:
        return is_predicted(self.predictions.get(image_id, {}).get(name), self.threshold)

    def label_states(self, image_id: int) -> list[LabelState]:
        predicted = self.predictions.get(image_id, {})
        confirmed = self.confirmations.get(image_id, {})
        return [
            LabelState(name, predicted[name][0] if name in predicted else None,
                       self.is_predicted(image_id, name), confirmed.get(name), self.is_guess(image_id, name))
            for name in self.label_names()
        ]

    def is_guess(self, image_id: int, name: str) -> bool:
        """Shown as a guess: the model's fallback label, at its thresholds, not confirmed."""
        return (self.threshold is None and name in self.guesses.get(image_id, ())
                and name not in self.confirmations.get(image_id, {}))

    def effective_labels(self, image_id: int) -> list[str]:
        return photo_labels(self.label_names(), self.predictions.get(image_id, {}),
                            self.confirmations.get(image_id, {}), self.threshold)

    def has_label(self, image_id: int, name: str) -> bool:
        """`name in effective_labels(image_id)`, without building the list."""
        return has_label(name, self.predictions.get(image_id, _NONE), self.confirmations.get(image_id, _NONE),
                         self.threshold)

    def uncertainty(self, image_id: int) -> float:
        """1 when some label sits right on its threshold, 0 when every label is clear-cut
        (core.tagging.suggest's measure, at the thresholds in force); -1 when never classified."""
        predicted = self.predictions.get(image_id)
        if not predicted:
            return -1.0
        cut, cuts = self.threshold, self.model_thresholds
        return photo_uncertainty([p for p, _ in predicted.values()],
                                 [cut if cut is not None else cuts.get(n, 0.5) for n in predicted])

    def next_to_label(self, candidates: list[int]) -> int | None:
        """Of `candidates` (image ids, in view order), the undecided photo the model is least
        sure of: the one whose confirmation teaches most (bench_learning_curve --active)."""
        best, best_score = None, -1.0
        for image_id in candidates:
            if image_id in self.confirmations:
                continue
            score = self.uncertainty(image_id)
            if score > best_score:
                best, best_score = image_id, score
        return best

    def disagrees(self, image_id: int) -> bool:
        confirmed = self.confirmations.get(image_id, {})
        return any(self.is_predicted(image_id, n) != v for n, v in confirmed.items())

    # -- writing (called by undo commands) ------------------------------------------------
    def write_caption(self, image_id: int, value: tuple[str, str] | None) -> None:
        """Set (text, source) exactly, or remove the caption with None."""
        if value is None:
            self.store.delete_caption(image_id)
            self.captions.pop(image_id, None)
        else:
            self.store.set_caption(image_id, value[0], value[1])
            self.captions[image_id] = value
        self.images_changed.emit([image_id])

    def write_confirmations(self, items: list[tuple[int, str, bool | None]]) -> None:
        self.store.confirm_many(items)
        first = {i for i, _, present in items if present is not None and i not in self.confirmations}
        for image_id, name, present in items:
            decided = self.confirmations.setdefault(image_id, {})
            if present is None:
                decided.pop(name, None)
                if not decided:
                    del self.confirmations[image_id]  # same shape as store.confirmations()
            else:
                decided[name] = present
        self.images_changed.emit(sorted({i for i, _, _ in items}))
        if first:
            self.newly_decided.emit(len(first))

    def write_reviewed(self, image_ids: list[int], reviewed: bool) -> None:
        self.store.set_reviewed(image_ids, reviewed)
        if reviewed:
            self.reviewed.update(image_ids)
        else:
            self.reviewed.difference_update(image_ids)
        self.images_changed.emit(list(image_ids))

    @property
    def top1_fallback(self) -> bool:
        """Whether a photo where no label passes gets its most likely one as a guess: a setting
        of the folder (a folder of other things wants it off), kept in its store."""
        return self.store.get_meta(FALLBACK_KEY) != "0"

    @top1_fallback.setter
    def top1_fallback(self, enabled: bool) -> None:
        self.store.set_meta(FALLBACK_KEY, "1" if enabled else "0")

    @property
    def learns_generated_captions(self) -> bool:
        """Whether the models trained here read the captions a captioner wrote (weighed against
        the photo alone): on unless the person turned it off for this folder."""
        return self.store.get_meta(GENERATED_CAPTIONS_KEY) != "0"

    @learns_generated_captions.setter
    def learns_generated_captions(self, enabled: bool) -> None:
        self.store.set_meta(GENERATED_CAPTIONS_KEY, "1" if enabled else "0")

    def get_active_model(self) -> Path | None:
        return self.store.active_model()

    def set_active_model(self, folder: Path | None) -> None:
        """Show the predictions of the model now active (none until it has decided the photos)."""
        self.store.set_active_model(folder)
        self.apply_changes([(None, "model")])

    def models_dir(self) -> Path:
        """Models trained on this project live beside its database."""
        return self.store.db_path.parent / "models"
