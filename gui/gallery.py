"""The thumbnail grid: a thin list model over the project snapshot, filtered and sorted in
plain Python (one list of ids), and a view whose rows all have the same size."""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from core.tagging.word_ranking import order_by_words
from gui.project import Project
from gui.thumbnails import ThumbnailLoader

Index = QModelIndex | QPersistentModelIndex

ImageIdRole = Qt.ItemDataRole.UserRole + 1
RelpathRole = Qt.ItemDataRole.UserRole + 2
CaptionRole = Qt.ItemDataRole.UserRole + 3
HasCaptionRole = Qt.ItemDataRole.UserRole + 4
ReviewedRole = Qt.ItemDataRole.UserRole + 5
PredictedLabelsRole = Qt.ItemDataRole.UserRole + 6  # effective labels (confirmed override predicted)
ConfirmedLabelsRole = Qt.ItemDataRole.UserRole + 7  # labels the person confirmed present
UncertaintyRole = Qt.ItemDataRole.UserRole + 8
ThumbnailRole = Qt.ItemDataRole.UserRole + 9  # QImage or None: never decodes


def model_data(index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
    """Ask the Python model directly. PySide6 6.12's `QModelIndex.data()` drops a reference to
    None for every empty value, which crashes the interpreter after a few thousand paints."""
    model = index.model()
    return model.data(index, role) if model is not None else None


@dataclass(frozen=True)
class ViewFilter:
    """What the grid shows. Empty fields mean "no restriction"."""

    label: str = ""
    text: str = ""
    reviewed: bool | None = None
    disagreement: bool = False
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    sort: str = "name"  # "name" or "uncertainty"

    def is_default(self) -> bool:
        return self == ViewFilter(sort=self.sort)


class RowIndex:
    """Image id -> row shown, as an array indexed by id: a dict of a million rows took 0.4 s to
    build on each refilter, the array 0.05 s (ids are the store's, dense from 1)."""

    def __init__(self, ids: list[int]) -> None:
        shown = np.asarray(ids, np.int64)
        self._row = np.full(int(shown.max()) + 1 if len(shown) else 0, -1, np.int64)
        self._row[shown] = np.arange(len(shown))

    def get(self, image_id: int) -> int | None:
        row = int(self._row[image_id]) if 0 <= image_id < len(self._row) else -1
        return row if row >= 0 else None

    def __contains__(self, image_id: object) -> bool:
        return isinstance(image_id, (int, np.integer)) and self.get(int(image_id)) is not None

    def extend(self, ids: list[int], first: int) -> None:
        """Rows `first`, `first + 1`, ... show `ids` (appended at the end)."""
        added = np.asarray(ids, np.int64)
        if len(added) and int(added.max()) >= len(self._row):
            grown = np.full(max(int(added.max()) + 1, 2 * len(self._row)), -1, np.int64)
            grown[: len(self._row)] = self._row
            self._row = grown
        self._row[added] = np.arange(first, first + len(added))


class GalleryModel(QAbstractListModel):
    def __init__(self, project: Project | None, loader: ThumbnailLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.project: Project | None = None
        self.filter = ViewFilter()
        self._ids: list[int] = []
        self._rows = RowIndex([])
        self._ranking: tuple[str, list[int]] | None = None  # words, image ids best first (gui/word_search.py)
        self.by_meaning = False  # the rows are the search's words ranked by meaning, not a text match
        self.wants_meaning = False  # the search text names no file: a ranking by meaning would be shown
        self._names_checked: tuple[tuple[object, ...], bool] | None = None
        self.guesses: dict[str, list[int]] = {}  # a label no model knows -> image ids, best guess first
        self.by_guess = False  # the rows are a new label's confirmed photos, then its guesses
        self.caption_led = 0  # under a ranking by meaning: captions that say the words (of any photo)
        # thumbnails arrive in bursts (a page of 50 after a jump); one repaint per burst
        self._arrived: set[int] = set()
        self._arrival_timer = QTimer(self)
        self._arrival_timer.setSingleShot(True)
        self._arrival_timer.setInterval(16)
        self._arrival_timer.timeout.connect(self._flush_thumbnails)
        loader.loaded.connect(self._on_thumbnail)
        self.set_project(project)

    # -- wiring ---------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        if self.project is not None:
            self.project.reloaded.disconnect(self.refilter)
            self.project.images_changed.disconnect(self._on_images_changed)
            self.project.images_added.disconnect(self._on_images_added)
        self.project = project
        self.loader.reset()
        if project is not None:
            project.reloaded.connect(self.refilter)
            project.images_changed.connect(self._on_images_changed)
            project.images_added.connect(self._on_images_added)
        self.refilter()

    def set_filter(self, view_filter: ViewFilter) -> None:
        self.filter = view_filter
        self.refilter()

    def set_word_ranking(self, words: str, ranked: list[int]) -> None:
        """The photos ranked by `words` (best first): shown when the search box still says them."""
        self._ranking = (words, ranked)
        if self.filter.text == words:
            self.refilter()

    def set_guesses(self, guesses: dict[str, list[int]]) -> None:
        """New labels' photos ranked by their names (core.tagging.label_guesses): a filter on
        such a label shows its confirmed photos, then the guesses, instead of nothing."""
        self.guesses = guesses
        if self.filter.label and (self.filter.label in guesses or self.by_guess):
            self.refilter()

    def has_image(self, image_id: int) -> bool:
        return image_id in self._rows

    def _on_images_added(self, image_ids: list[int]) -> None:
        """Rows at the end while a scan runs or the snapshot is read page by page (the view keeps
        its place); under a filter only the new photos are tested, not the whole snapshot again."""
        if self.filter.sort != "name" and not self.by_meaning:
            self.refilter()
            return
        rows = self._rows  # a refilter while pages were read may have shown some already
        # under a ranking by meaning a new photo is not ranked yet: it goes last, as in order_by_words
        image_ids = self._passing([i for i in image_ids if i not in rows], text=not self.by_meaning)
        if not image_ids:
            return
        first = len(self._ids)
        self.beginInsertRows(QModelIndex(), first, first + len(image_ids) - 1)
        self._rows.extend(image_ids, first)
        self._ids.extend(image_ids)
        self.endInsertRows()

    def refilter_after_classifying(self) -> None:
        """A classification streams its calls into the cells without moving rows (the person may be
        working there); once it is done, a filter that reads the calls (a label, a confidence range,
        disagreements) shows the photos the model now calls so, once, the selection kept."""
        f = self.filter
        if f.label or f.disagreement or f.min_confidence > 0.0 or f.max_confidence < 1.0:
            self.refilter()

    def refilter(self) -> None:
        self.beginResetModel()
        self._ids = self._visible_ids()
        self._rows = RowIndex(self._ids)
        self.endResetModel()

    def _visible_ids(self) -> list[int]:
        project, text = self.project, self.filter.text
        self.by_meaning = self.wants_meaning = self.by_guess = False
        if project is None:
            return []
        guessed = self.guesses.get(self.filter.label)
        if guessed is not None and not text and self.filter.min_confidence == 0.0 and self.filter.max_confidence == 1.0:
            # no model knows the label: the photos confirmed with it first, then the best guesses
            # (rejected photos are left out: the person said no)
            self.by_guess = True
            label, decided = self.filter.label, project.confirmations
            candidates = [i for i in self._passing(project.order, label=False) if decided.get(i, {}).get(label) is not False]
            said = {i for i in candidates if decided.get(i, {}).get(label)}
            return order_by_words(candidates, said, guessed)
        if text:
            # the search rule (docs/architecture.md): words that name a file filter by file name and
            # caption as typed; other words rank every photo by meaning, their caption hits first
            candidates = self._passing(project.order, text=False)
            names = project.records.folded_names(candidates)
            self.wants_meaning = not self._names_hold(names)
            if self.wants_meaning and self._ranking is not None and self._ranking[0] == text:
                self.by_meaning = True
                said = self._caption_hits()
                self.caption_led = len(said)
                return order_by_words(candidates, said, self._ranking[1])
            ids = self._text_hits(candidates, names)
        else:
            ids = self._passing(project.order)
        if self.filter.sort == "uncertainty":
            # never-classified photos score -1, below every other, and keep their order (the sort
            # is stable): only the classified ones are scored and sorted
            predictions = project.predictions
            scored = sorted((i for i in ids if i in predictions), key=lambda i: -project.uncertainty(i))
            ids = scored + [i for i in ids if i not in predictions]
        return ids

    def _names_hold(self, folded_names: list[str]) -> bool:
        """Whether any of the names holds the search text; remembered for the same filter over
        the same photos (the ranking's answer refilters with the words the box already tested)."""
        key = (self.filter, len(folded_names), id(self.project))
        if self._names_checked is None or self._names_checked[0] != key:
            needle = self.filter.text.casefold()
            self._names_checked = (key, any(map(operator.contains, folded_names, repeat(needle))))
        return self._names_checked[1]

    def _caption_hits(self) -> set[int]:
        """Every photo whose caption holds the search text (read over the captions, not the photos)."""
        assert self.project is not None
        needle = self.filter.text.casefold()
        return {i for i, (caption, _) in self.project.captions.items() if needle in caption.casefold()}

    def _text_hits(self, ids: list[int], folded_names: list[str]) -> list[int]:
        """Those of `ids` whose file name or caption holds the search text (as typed)."""
        assert self.project is not None
        needle, captions = self.filter.text.casefold(), self.project.captions
        return [i for i, name in zip(ids, folded_names, strict=True) if needle in name
                or (i in captions and needle in captions[i][0].casefold())]

    def _passing(self, ids: list[int], text: bool = True, label: bool = True) -> list[int]:
        """Those of `ids` (in their order) that the filter lets through (`text`, `label`: its
        search text and its label too)."""
        project, f = self.project, self.filter
        if project is None:
            return []
        if not label:
            f = dataclasses.replace(f, label="")
        ids = list(ids)
        # only a photo with a model's call or a person's decision can have a label or a
        # confidence: the dict lookups skip the rest of a million cheaply
        predictions, confirmations = project.predictions, project.confirmations
        ranged = f.min_confidence > 0.0 or f.max_confidence < 1.0
        if f.label and ranged:
            # a label and a range: the photos whose confidence *for that label* is in the range
            # (bench between 0.2 and 0.6: the doubtful benches, had or not)
            ids = [i for i in ids if i in predictions and self._in_confidence_range(i, f.label)]
        elif f.label:
            ids = [i for i in ids if (i in predictions or i in confirmations) and project.has_label(i, f.label)]
        if f.text and text:
            ids = self._text_hits(ids, project.records.folded_names(ids))
        if f.reviewed is not None:
            reviewed, wanted = project.reviewed, f.reviewed
            ids = [i for i in ids if (i in reviewed) == wanted]
        if f.disagreement:
            ids = [i for i in ids if project.disagrees(i)]
        if ranged and not f.label:
            ids = [i for i in ids if i in predictions and self._in_confidence_range(i)]
        return ids

    def _in_confidence_range(self, image_id: int, label: str = "") -> bool:
        """The photo's confidence for `label`, or its highest one, is within the filter's range."""
        assert self.project is not None
        predicted = self.project.predictions.get(image_id, {})
        if label:
            value = predicted[label][0] if label in predicted else None
        else:
            value = max((p for p, _ in predicted.values()), default=None)
        return value is not None and self.filter.min_confidence <= value <= self.filter.max_confidence

    # -- lookups --------------------------------------------------------------------------
    def image_id(self, row: int) -> int:
        return self._ids[row]

    def ids(self) -> list[int]:
        return list(self._ids)

    def row_of(self, image_id: int) -> int | None:
        return self._rows.get(image_id)

    def request_thumbnail(self, index: Index) -> None:
        """Called by the delegate when it paints a placeholder: queue that row (newest first)."""
        if self.project is None or not index.isValid():
            return
        record = self.project.records[self._ids[index.row()]]
        self.loader.request(record.id, self.project.store.image_path(record), record.stamp)

    # -- Qt model API ---------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.project is None or not 0 <= index.row() < len(self._ids):
            return None
        image_id = self._ids[index.row()]
        project = self.project
        if role == Qt.ItemDataRole.DisplayRole:
            return project.records.relpath(image_id).rsplit("/", 1)[-1]
        if role in (ThumbnailRole, Qt.ItemDataRole.DecorationRole):
            return self.loader.get(image_id)
        if role == Qt.ItemDataRole.ToolTipRole:
            caption = project.captions.get(image_id, ("", ""))[0]
            labels = ", ".join(project.effective_labels(image_id))
            return "\n".join(x for x in (project.records.relpath(image_id), caption, labels) if x)
        if role == ImageIdRole:
            return image_id
        if role == RelpathRole:
            return project.records.relpath(image_id)
        if role == CaptionRole:
            return project.captions.get(image_id, ("", ""))[0]
        if role == HasCaptionRole:  # "generated" when a captioner wrote it, else True; False: none
            written = project.captions.get(image_id)
            return False if written is None else ("generated" if written[1] == "generated" else True)
        if role == ReviewedRole:
            return image_id in project.reviewed
        if role == PredictedLabelsRole:  # a best guess carries a "?" (no label passed its threshold)
            return [f"{n}?" if project.is_guess(image_id, n) else n for n in project.effective_labels(image_id)]
        if role == ConfirmedLabelsRole:
            return [n for n, v in project.confirmations.get(image_id, {}).items() if v]
        if role == UncertaintyRole:
            return project.uncertainty(image_id)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        ours = {ImageIdRole: b"imageId", RelpathRole: b"relpath", CaptionRole: b"caption",
                HasCaptionRole: b"hasCaption", ReviewedRole: b"reviewed", PredictedLabelsRole: b"labels",
                ConfirmedLabelsRole: b"confirmed", UncertaintyRole: b"uncertainty", ThumbnailRole: b"thumbnail"}
        names.update({role: QByteArray(name) for role, name in ours.items()})
        return names

    # -- change notifications -------------------------------------------------------------
    def _on_thumbnail(self, image_id: int) -> None:
        self._arrived.add(image_id)
        if not self._arrival_timer.isActive():
            self._arrival_timer.start()

    def _flush_thumbnails(self) -> None:
        """One dataChanged per run of adjacent rows: a range spanning rows that are not
        shown (late arrivals from pages scrolled past) costs the view a walk over all of them."""
        rows = sorted(r for r in (self._rows.get(i) for i in self._arrived) if r is not None)
        self._arrived.clear()
        roles = [ThumbnailRole, Qt.ItemDataRole.DecorationRole]
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i] != rows[i - 1] + 1:
                self.dataChanged.emit(self.index(rows[start]), self.index(rows[i - 1]), roles)
                start = i

    def _on_images_changed(self, image_ids: list[int]) -> None:
        rows = sorted(r for r in (self._rows.get(i) for i in image_ids) if r is not None)
        if not rows:
            return
        # one signal for a contiguous run (a classify batch) instead of one per row
        self.dataChanged.emit(self.index(rows[0]), self.index(rows[-1]))


class GalleryView(QListView):
    """Icon grid with uniform items; layout in batches so 100,000 rows appear at once. Letters
    typed here that are no shortcut start a search (`typed`), so typing never edits a photo."""

    typed = Signal(str)

    def keyboardSearch(self, search: str) -> None:  # noqa: N802 (Qt's name)
        if search.strip():
            self.typed.emit(search)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # list mode flowing left to right and wrapping: the same grid as icon mode, but laid out
        # from the uniform item size alone (icon mode keeps a positioned item for every row: a
        # million rows made the grid blank while pages of the snapshot were still arriving)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSpacing(4)
        self.setWordWrap(False)
        self.setAcceptDrops(False)  # drops go to the main window (open folder)
