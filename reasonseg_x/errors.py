"""Exceptions shared by every layer.

Every error a user can cause names *where* it happened (file, row or line, sample id), so the
message alone is enough to fix the input.
"""

from __future__ import annotations


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
