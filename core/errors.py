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


_FULL_HINT = "the disk is full: free some space and try again"


# How libraries that are not Python's own say ENOSPC / EDQUOT: safetensors' SafetensorError
# ("IoError(Os { code: 28, kind: StorageFull, message: \"No space left on device\" })"), torch's
# stream writer, onnx; none of them raise an OSError.
_FULL_WORDS = ("no space left on device", "storagefull", "os error 28", "disk quota exceeded", "os error 122",
               "quotaexceeded", "filesystemquotaexceeded")

_SAVED = "this change was not saved; earlier work is intact"


def disk_full(exc: BaseException) -> bool:
    """Whether `exc`, whatever library raised it, says the disk (or the person's quota) is full."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return any(words in text for words in _FULL_WORDS)


def write_failure_message(path: object, exc: BaseException, saved: str = _SAVED) -> str:
    """Say why a write failed and what to do, and what was and was not saved (`saved`, by
    default that nothing already saved was touched).

    Used for SQLite errors (SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR), OS errors (ENOSPC,
    EDQUOT, EROFS, EACCES) and other libraries' write errors that say the disk is full, which
    would otherwise reach the person as raw library text.
    """
    import errno
    import sqlite3

    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and code is not None:
        primary = code & 0xFF
        if primary == sqlite3.SQLITE_FULL:
            reason = _FULL_HINT
        elif primary == sqlite3.SQLITE_READONLY:
            reason = "the project database is read-only: check the folder's permissions"
        elif primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            reason = (f"the project database is damaged ({exc}): move its folder aside to start again, or "
                      f"recover it with `sqlite3 project.db .recover`")
        else:
            reason = str(exc)
    elif disk_full(exc):
        reason = _FULL_HINT
    elif isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"{exc.strerror or exc}: choose a folder you can write to"
    else:
        reason = str(getattr(exc, "strerror", None) or exc)
    return f"cannot write {path}: {reason} ({saved})"
