"""Undoable edits. Each command remembers the exact prior state, so undo restores it exactly
(a caption's text and source, a label's decision including "undecided")."""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from gui.project import Project

CAPTION_COMMAND_ID = 1


class LabelsCommand(QUndoCommand):
    """Set label decisions on one or many images, optionally marking them reviewed."""

    def __init__(self, project: Project, text: str, changes: list[tuple[int, str, bool | None]],
                 mark_reviewed: list[int] | None = None) -> None:
        super().__init__(text)
        self.project = project
        self.new = list(changes)
        self.old = [(i, n, project.confirmations.get(i, {}).get(n)) for i, n, _ in changes]
        self.mark = list(mark_reviewed or [])
        self.was_reviewed = [i for i in self.mark if i in project.reviewed]

    def redo(self) -> None:
        with self.project.store.transaction():
            self.project.write_confirmations(self.new)
            if self.mark:
                self.project.write_reviewed(self.mark, True)

    def undo(self) -> None:
        with self.project.store.transaction():
            self.project.write_confirmations(list(reversed(self.old)))
            unmark = [i for i in self.mark if i not in self.was_reviewed]
            if unmark:
                self.project.write_reviewed(unmark, False)


class ReviewedCommand(QUndoCommand):
    def __init__(self, project: Project, image_ids: list[int], reviewed: bool) -> None:
        super().__init__("mark reviewed" if reviewed else "mark unreviewed")
        self.project = project
        self.reviewed = reviewed
        self.changed = [i for i in image_ids if (i in project.reviewed) != reviewed]

    def redo(self) -> None:
        if self.changed:
            self.project.write_reviewed(self.changed, self.reviewed)

    def undo(self) -> None:
        if self.changed:
            self.project.write_reviewed(self.changed, not self.reviewed)


class CaptionCommand(QUndoCommand):
    """A typed caption. Consecutive saves of the same image merge into one undo step."""

    def __init__(self, project: Project, image_id: int, text: str, source: str = "typed") -> None:
        super().__init__("edit caption")
        self.project = project
        self.image_id = image_id
        self.old = project.captions.get(image_id)
        self.new: tuple[str, str] | None = (text, source) if text else None

    def id(self) -> int:
        return CAPTION_COMMAND_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, CaptionCommand) or other.image_id != self.image_id:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.project.write_caption(self.image_id, self.new)

    def undo(self) -> None:
        self.project.write_caption(self.image_id, self.old)
