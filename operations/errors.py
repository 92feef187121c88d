"""Errors an operator can act on: shown as one line, never with a traceback."""

from __future__ import annotations


class OperationError(Exception):
    """A request that cannot be carried out as asked; the message says why, ``field`` the
    input it is about when there is one (the API reports it there)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(OperationError):
    pass


class Conflict(OperationError):
    pass


class Unavailable(OperationError):
    """Temporal could not be reached: nothing was recorded, the same request may be sent
    again (the API answers 503)."""
