"""Exceptions of the notification machinery.

The Temporal activity layer maps them: ``PermanentMailError`` and ``MessageBuildError`` ->
non-retryable ``ApplicationError``; ``TransientMailError`` -> retryable, except its subclass
``OutcomeUnknownMailError``, which the outbox turns into an ``unknown`` row (never resent).
"""

from __future__ import annotations


class NotificationError(Exception):
    """Base class for every error raised by ``activities.notifications``."""


class MessageBuildError(NotificationError, ValueError):
    """The message can never be built from these values; retrying cannot help."""


class HeaderInjectionError(MessageBuildError):
    """A header value (name, address, subject) contains CR, LF or another control character."""


class InvalidAddressError(MessageBuildError):
    """An email address is malformed or not plain ASCII (we never require SMTPUTF8)."""


class NotificationNotFound(NotificationError, LookupError):
    """No outbox row has this key."""


class MailError(NotificationError):
    """Delivery through SMTP failed."""


class TransientMailError(MailError):
    """Worth retrying later: 4xx reply, connection refused/lost, timeout, TLS/auth trouble."""


class OutcomeUnknownMailError(TransientMailError):
    """The message was handed to the server (DATA) and then the connection died or timed out
    before its reply: the server may have accepted it. Sending again could duplicate it, so
    the outbox records ``unknown`` and never resends it automatically (SPEC 2.6)."""


class PermanentMailError(MailError):
    """The server refused this message for good (5xx reply, refused recipient).

    ``reply`` is the server's reply as text, e.g. ``"550 5.1.1 User unknown"``; it is what
    the outbox stores in ``last_error``.
    """

    def __init__(self, reply: str, code: int | None = None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.code = code
