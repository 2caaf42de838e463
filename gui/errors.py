"""The one place errors reach the person (Anki's `aqt/errors.py` pattern).

A `TaglineError` is an expected problem with a message that says the fix: shown as a warning.
Anything else is a bug: shown with the traceback under "Show Details" and logged.
`Cancelled` shows nothing: the person asked for it.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from core.errors import Cancelled, TaglineError

log = logging.getLogger(__name__)

# Tests set this to collect errors instead of opening modal dialogs.
SILENT = False
shown: list[tuple[str, str]] = []


def details_of(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def show_error(parent: QWidget | None, error: BaseException, context: str = "") -> None:
    if isinstance(error, Cancelled):
        return
    expected = isinstance(error, TaglineError)
    title = "Tagline" if expected else "Tagline: unexpected error"
    text = f"{context}\n\n{error}" if context else str(error)
    if not expected:
        log.error("unexpected error: %s", context or error, exc_info=(type(error), error, error.__traceback__))
        text += "\n\nThis is a bug in Tagline; the details below help to fix it."
    shown.append((title, text))
    if SILENT or QApplication.instance() is None:
        return
    box = QMessageBox(QMessageBox.Icon.Warning if expected else QMessageBox.Icon.Critical, title, text,
                      QMessageBox.StandardButton.Ok, parent)
    box.setDetailedText(details_of(error))
    box.exec()


def show_failures(parent: QWidget | None, what: str, failures: list[tuple[str, str]]) -> None:
    """Per-file problems of a batch: listed, not fatal."""
    if not failures:
        return
    lines = "\n".join(f"{path}: {reason}" for path, reason in failures)
    shown.append((what, lines))
    if SILENT or QApplication.instance() is None:
        return
    box = QMessageBox(QMessageBox.Icon.Information, "Tagline",
                      f"{what}: {len(failures)} file(s) were skipped; the rest is done.",
                      QMessageBox.StandardButton.Ok, parent)
    box.setDetailedText(lines)
    box.exec()


def install_excepthook() -> None:
    """Exceptions escaping Qt slots would otherwise only reach stderr."""
    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, tb)
            return
        show_error(QApplication.activeWindow(), error.with_traceback(tb))

    sys.excepthook = hook
