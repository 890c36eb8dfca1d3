"""Exceptions shared by every layer.

Every error a user can cause names *where* it happened (file, row or line, sample id), so the
message alone is enough to fix the input.
"""

from __future__ import annotations

import errno
import os
from typing import Any


class ReasonSegXError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class InvalidInputError(ReasonSegXError, ValueError):
    """Bad user input: a corrupt file, a malformed record, an unknown id.

    ``where`` names the file and row/line (e.g. ``"preds.jsonl:17"``); it prefixes the message.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        self.reason = message
        super().__init__(f"{where}: {message}" if where else message)


class InvalidMaskError(InvalidInputError):
    """An RLE or array mask that is malformed or does not fit its image."""


class UnknownLabelError(InvalidInputError, KeyError):
    """A label that no category of a taxonomy knows."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0] if self.args else ""


class SourceNotFoundError(ReasonSegXError, FileNotFoundError):
    """A data source spec that resolves to nothing reachable (offline Hub id, missing folder)."""


#: errors of a write the user can fix (permissions, a read-only disk, a size limit, a full disk)
WRITE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG, errno.ENOSPC, errno.EDQUOT})

_WRITE_ADVICE = {
    errno.EROFS: "write somewhere else (another --out), or make it writable",
    errno.EACCES: "make it writable (chmod, chattr -i), or write somewhere else (another --out)",
    errno.EPERM: "make it writable (chmod, chattr -i), or write somewhere else (another --out)",
    errno.EFBIG: "the file-size limit (ulimit -f) was reached; raise it (ulimit -f unlimited) and rerun",
    errno.ENOSPC: "free some space and rerun",
    errno.EDQUOT: "the disk quota is used up; free some space and rerun",
}


def is_write_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is an OS refusal to write that the user can fix (see :data:`WRITE_ERRNOS`)."""
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


class WriteError(ReasonSegXError):
    """A file or folder that could not be written: the path, the reason and what to do, in one line.

    ``then`` adds what the command kept (e.g. "the predictions so far are kept; rerun to resume").
    """

    def __init__(self, path: str | os.PathLike[str], cause: OSError, then: str = "") -> None:
        self.path = str(path)
        self.cause = cause
        self.then = then
        advice = _WRITE_ADVICE.get(cause.errno or 0, "")
        message = f"cannot write {self.path}: {cause.strerror or cause}"
        super().__init__(message + (f": {advice}" if advice else "") + (f"; {then}" if then else ""))

    def __reduce__(self) -> tuple[Any, tuple[str, OSError, str]]:
        """Pickled by its parts: a viewer worker process raises it and the main process reports it."""
        return (WriteError, (self.path, self.cause, self.then))

    def with_note(self, then: str) -> WriteError:
        return WriteError(self.path, self.cause, then)
