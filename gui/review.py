"""Review operations as undo commands: the functions keyboard shortcuts, buttons and the label
list all call, so every label change can be undone the same way."""

from __future__ import annotations

from gui.commands import CaptionCommand, LabelsCommand, ReviewedCommand
from gui.project import Project


def set_label(project: Project, image_ids: list[int], name: str, present: bool) -> None:
    if not image_ids:
        return
    what = f"{'add' if present else 'remove'} {name}" + (f" on {len(image_ids)} images" if len(image_ids) > 1 else "")
    project.undo_stack.push(LabelsCommand(project, what, [(i, name, present) for i in image_ids]))


def toggle_label(project: Project, image_ids: list[int], name: str) -> None:
    """Flip the label as shown on the first image; apply the same value to all selected."""
    if not image_ids:
        return
    shown = name in project.effective_labels(image_ids[0])
    set_label(project, image_ids, name, not shown)


def accept_predictions(project: Project, image_ids: list[int]) -> None:
    """Confirm every label as currently shown (decisions kept, predictions adopted), mark reviewed.
    A guess (the model's most likely label where none passed its threshold, shown as `name?`) is
    not a decision: it stays a guess until the person confirms that label itself."""
    if not image_ids:
        return
    project.poll_external()  # accept what the store holds now, not a copy another process has changed
    changes: list[tuple[int, str, bool | None]] = []
    for image_id in image_ids:
        shown = set(project.effective_labels(image_id))
        changes.extend((image_id, name, name in shown) for name in project.label_names()
                       if not project.is_guess(image_id, name))
    text = "accept labels" + (f" of {len(image_ids)} images" if len(image_ids) > 1 else "")
    project.undo_stack.push(LabelsCommand(project, text, changes, mark_reviewed=image_ids))


def clear_decisions(project: Project, image_ids: list[int]) -> None:
    changes: list[tuple[int, str, bool | None]] = [
        (i, n, None) for i in image_ids for n in project.confirmations.get(i, {})]
    if changes:
        project.undo_stack.push(LabelsCommand(project, "clear decisions", changes))


def set_reviewed(project: Project, image_ids: list[int], reviewed: bool) -> None:
    if image_ids:
        project.undo_stack.push(ReviewedCommand(project, image_ids, reviewed))


def save_caption(project: Project, image_id: int, text: str) -> bool:
    """Push a caption edit unless nothing changed; returns whether the store now holds `text`
    (False when the write failed, say on a full disk: the error was shown)."""
    if text != project.captions.get(image_id, ("", ""))[0]:
        project.undo_stack.push(CaptionCommand(project, image_id, text))
    return project.captions.get(image_id, ("", ""))[0] == text
