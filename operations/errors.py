"""Errors an operator can act on: shown as one line, never with a traceback."""

from __future__ import annotations


class OperationError(Exception):
    """A request that cannot be carried out as asked; the message says why."""


class NotFound(OperationError):
    pass


class Conflict(OperationError):
    pass
