"""Undoable edits. Each command remembers the exact prior state, so undo restores it exactly
(a caption's text and source, a label's decision including "undecided", a deleted label with
every decision and prediction it had)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import QApplication

from core.errors import StoreError, TaglineError
from core.store.database import LabelSnapshot
from core.tagging.label_guesses import rename_label, saved_prompts, set_prompts
from gui import errors
from gui.project import Project

CAPTION_COMMAND_ID = 1


class StoreCommand(QUndoCommand):
    """An edit written to the project store. When the write fails (a full disk, a read-only
    folder, a label gone) the person is told, the store is unchanged (one transaction), and the
    command is dropped from the stack; what they typed stays in the editor to save again."""

    def __init__(self, project: Project, text: str) -> None:
        super().__init__(text)
        self.project = project

    def photos(self) -> list[int]:
        """The photos this step changes, so the window can show them after an undo or redo."""
        return []

    def _apply(self, change: Callable[[], None], direction: str) -> bool:
        try:
            change()
        except TaglineError as exc:
            self.setObsolete(True)  # QUndoStack deletes an obsolete command instead of keeping it
            errors.show_error(QApplication.activeWindow(), exc, f"Cannot {direction} '{self.text()}'")
            return False
        return True

    def _still(self, unchanged: bool, direction: str) -> bool:
        """Whether the store still holds what this step left there; when another process changed it
        since, the step is dropped and the person told: an undo never silently overwrites a newer edit."""
        if unchanged:
            return True
        self.setObsolete(True)
        errors.show_error(QApplication.activeWindow(),
                          TaglineError(f"another program (the command line, a second window) changed this since; "
                                       f"'{self.text()}' was not {direction}, so its change stays"),
                          f"Cannot {direction} '{self.text()}'")
        return False


class LabelsCommand(StoreCommand):
    """Set label decisions on one or many images, optionally marking them reviewed."""

    def __init__(self, project: Project, text: str, changes: list[tuple[int, str, bool | None]],
                 mark_reviewed: list[int] | None = None) -> None:
        super().__init__(project, text)
        project.poll_external()  # the prior state is the store's, not a stale copy
        self.new = list(changes)
        self.old = [(i, n, project.confirmations.get(i, {}).get(n)) for i, n, _ in changes]
        self.applied = False
        self.mark = list(mark_reviewed or [])
        self.was_reviewed = [i for i in self.mark if i in project.reviewed]

    def _write(self, changes: list[tuple[int, str, bool | None]], reviewed: list[int], present: bool) -> None:
        with self.project.store.transaction():
            self.project.write_confirmations(changes)
            if reviewed:
                self.project.write_reviewed(reviewed, present)

    def photos(self) -> list[int]:
        return list(dict.fromkeys(i for i, _, _ in self.new))

    def _holds(self, items: list[tuple[int, str, bool | None]]) -> bool:
        self.project.poll_external()
        decided = self.project.confirmations
        return all(decided.get(i, {}).get(n) == value for i, n, value in items)

    def redo(self) -> None:
        if self.applied and not self._still(self._holds(self.old), "redone"):
            return
        self.applied = True
        self._apply(lambda: self._write(self.new, self.mark, True), "apply")

    def undo(self) -> None:
        if not self._still(self._holds(self.new), "undone"):
            return
        unmark = [i for i in self.mark if i not in self.was_reviewed]
        self._apply(lambda: self._write(list(reversed(self.old)), unmark, False), "undo")


class ReviewedCommand(StoreCommand):
    def __init__(self, project: Project, image_ids: list[int], reviewed: bool) -> None:
        super().__init__(project, "mark reviewed" if reviewed else "mark unreviewed")
        self.reviewed = reviewed
        self.changed = [i for i in image_ids if (i in project.reviewed) != reviewed]

    def photos(self) -> list[int]:
        return list(self.changed)

    def redo(self) -> None:
        if self.changed:
            self._apply(lambda: self.project.write_reviewed(self.changed, self.reviewed), "apply")

    def undo(self) -> None:
        if self.changed:
            self._apply(lambda: self.project.write_reviewed(self.changed, not self.reviewed), "undo")


class CaptionCommand(StoreCommand):
    """A typed caption. Consecutive saves of the same image merge into one undo step."""

    def __init__(self, project: Project, image_id: int, text: str, source: str = "typed") -> None:
        super().__init__(project, "edit caption")
        project.poll_external()
        self.image_id = image_id
        self.old = project.captions.get(image_id)
        self.new: tuple[str, str] | None = (text, source) if text else None
        self.applied = False

    def id(self) -> int:
        return CAPTION_COMMAND_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, CaptionCommand) or other.image_id != self.image_id:
            return False
        self.new = other.new
        return True

    def photos(self) -> list[int]:
        return [self.image_id]

    def _holds(self, value: tuple[str, str] | None) -> bool:
        self.project.poll_external()
        return self.project.captions.get(self.image_id) == value

    def redo(self) -> None:
        if self.applied and not self._still(self._holds(self.old), "redone"):
            return
        self.applied = True
        self._apply(lambda: self.project.write_caption(self.image_id, self.new), "save")

    def undo(self) -> None:
        if not self._still(self._holds(self.new), "undone"):
            return
        self._apply(lambda: self.project.write_caption(self.image_id, self.old), "undo")


# -- the label vocabulary -------------------------------------------------------------------
# Commands refer to labels by name; as long as every vocabulary edit goes through the stack the
# names each command sees are the ones it was made with (undo walks the history backwards).


class VocabularyCommand(StoreCommand):
    """Base of the vocabulary edits: after each change the whole project reloads (the label
    list, filter bar, hotkeys, gallery and detail panel all show the vocabulary).

    A step that can no longer be applied (say, classifying re-created a deleted label outside
    the stack) is reported and dropped from the stack, and the store is left as it was.
    """

    def _apply(self, change: Callable[[], None], direction: str) -> bool:
        if not super()._apply(change, direction):
            return False
        self.project.reload_labels()
        self.project.reload()
        return True


class AddLabelCommand(VocabularyCommand):
    def __init__(self, project: Project, name: str) -> None:
        super().__init__(project, f"add label {name}")
        self.name = name
        self.snapshot: LabelSnapshot | None = None  # what undo removed, so redo brings back the same label

    def _add(self) -> None:
        store = self.project.store
        if self.snapshot is not None:
            store.restore_label(self.snapshot)
        elif any(label.name == self.name for label in store.labels()):
            raise StoreError(f"a label named {self.name!r} exists already")
        else:
            store.ensure_labels([self.name])

    def _remove(self) -> None:
        self.snapshot = self.project.store.delete_label(self.name)

    def redo(self) -> None:
        self._apply(self._add, "apply")

    def undo(self) -> None:
        self._apply(self._remove, "undo")


class DeleteLabelCommand(VocabularyCommand):
    """Delete a label with its decisions and predictions; undo puts all of them back."""

    def __init__(self, project: Project, name: str) -> None:
        super().__init__(project, f"delete label {name}")
        self.name = name
        self.snapshot: LabelSnapshot | None = None

    def _delete(self) -> None:
        snapshot = self.project.store.delete_label(self.name)
        if snapshot is None:
            raise StoreError(f"there is no label named {self.name!r}")
        self.snapshot = snapshot

    def _restore(self) -> None:
        assert self.snapshot is not None  # undo only follows a redo that deleted
        self.project.store.restore_label(self.snapshot)

    def redo(self) -> None:
        self._apply(self._delete, "apply")

    def undo(self) -> None:
        self._apply(self._restore, "undo")


class RenameLabelCommand(VocabularyCommand):
    """Decisions and predictions refer to the label's id, so renaming back restores them."""

    def __init__(self, project: Project, old: str, new: str) -> None:
        super().__init__(project, f"rename label {old} to {new}")
        self.old = old
        self.new = new

    def redo(self) -> None:
        self._apply(lambda: rename_label(self.project.store, self.old, self.new), "apply")

    def undo(self) -> None:
        self._apply(lambda: rename_label(self.project.store, self.new, self.old), "undo")


class HotkeyCommand(VocabularyCommand):
    def __init__(self, project: Project, name: str, hotkey: str | None) -> None:
        super().__init__(project, f"hotkey of {name}")
        self.name = name
        self.new = hotkey
        self.old = next((label.hotkey for label in project.labels if label.name == name), None)

    def redo(self) -> None:
        self._apply(lambda: self.project.store.set_hotkey(self.name, self.new), "apply")

    def undo(self) -> None:
        self._apply(lambda: self.project.store.set_hotkey(self.name, self.old), "undo")


class DescribeLabelCommand(VocabularyCommand):
    """The person's own words for what a label shows (`core.tagging.label_guesses.set_prompts`)."""

    def __init__(self, project: Project, name: str, prompts: list[str]) -> None:
        super().__init__(project, f"words for {name}")
        self.name = name
        self.new = prompts
        self.old = saved_prompts(project.store).get(name, [])

    def _set(self, prompts: list[str]) -> None:
        set_prompts(self.project.store, self.name, prompts)

    def redo(self) -> None:
        self._apply(lambda: self._set(self.new), "apply")

    def undo(self) -> None:
        self._apply(lambda: self._set(self.old), "undo")


class ExternalIdCommand(VocabularyCommand):
    """The id a label is exported as (`export --label-ids`)."""

    def __init__(self, project: Project, name: str, external_id: str | None) -> None:
        super().__init__(project, f"id of {name}")
        self.name = name
        self.new = external_id or None
        self.old = next((label.external_id for label in project.labels if label.name == name), None)

    def redo(self) -> None:
        self._apply(lambda: self.project.store.set_external_id(self.name, self.new), "apply")

    def undo(self) -> None:
        self._apply(lambda: self.project.store.set_external_id(self.name, self.old), "undo")


class SetLabelsCommand(VocabularyCommand):
    """The whole vocabulary in one step (the label editor's list): labels not in `wanted` are
    deleted with their decisions and predictions, new ones added, all put in `wanted`'s order,
    ids set where given. One undo step brings back exactly what was there; the project reloads once."""

    def __init__(self, project: Project, wanted: list[tuple[str, str | None]], text: str = "set the labels") -> None:
        super().__init__(project, text)
        self.wanted = [(name.strip(), (external or "").strip() or None) for name, external in wanted]
        before = project.store.labels()
        self.before_order = [label.name for label in before]
        self.before_ids = {label.name: label.external_id for label in before}
        names = [name for name, _ in self.wanted]
        self.removed = [n for n in self.before_order if n not in names]
        self.added = [n for n in names if n not in self.before_ids]
        self.deleted: dict[str, LabelSnapshot] = {}  # removed labels, for undo
        self.undone: dict[str, LabelSnapshot] = {}  # added labels an undo took away, for redo

    def _forward(self) -> None:
        store = self.project.store
        with store.transaction():
            for name in self.removed:
                snapshot = store.delete_label(name)
                if snapshot is not None:
                    self.deleted[name] = snapshot
            for name in self.added:
                if name in self.undone:
                    store.restore_label(self.undone.pop(name))
                else:
                    store.ensure_labels([name])
            store.reorder_labels([name for name, _ in self.wanted])
            for name, external in self.wanted:
                if external is not None or name in self.before_ids:
                    store.set_external_id(name, external if external is not None else self.before_ids.get(name))

    def _backward(self) -> None:
        store = self.project.store
        with store.transaction():
            for name in self.added:
                snapshot = store.delete_label(name)
                if snapshot is not None:
                    self.undone[name] = snapshot
            for name in reversed(self.removed):
                if name in self.deleted:
                    store.restore_label(self.deleted.pop(name))
            for name, external in self.before_ids.items():
                store.set_external_id(name, external)
            store.reorder_labels(self.before_order)

    def redo(self) -> None:
        self._apply(self._forward, "apply")

    def undo(self) -> None:
        self._apply(self._backward, "undo")
