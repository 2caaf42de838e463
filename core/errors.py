"""Typed errors: every failure a user can meet has a class and a message that says the fix."""

from __future__ import annotations


class TaglineError(Exception):
    """Base of all errors Tagline reports to a person rather than as a crash."""


class ImageDecodeError(TaglineError):
    """One image could not be read; batches skip it and carry on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CsvImportError(TaglineError):
    """A caption/label CSV cannot be imported at all (bad header, unreadable file)."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class ModelError(TaglineError):
    """A model is missing, unsafe or incompatible with the project."""


class StoreError(TaglineError):
    """The project database cannot be opened or written."""


class Cancelled(TaglineError):
    """A long job stopped because its cancel token was set; finished work is kept."""
