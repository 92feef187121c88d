"""What crosses Temporal for a mail: the send and expire activities' inputs and results.

Activity names are constants so workflows never import activity code (which pulls in the
database driver and the mailer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SEND_NOTIFICATION = "send_notification"
SEND_NOTIFICATIONS = "send_notifications"
EXPIRE_NOTIFICATION = "expire_notification"


@dataclass
class SendNotificationInput:
    key: str
    kind: str
    customer_id: str
    invoice_number: str | None = None
    payment_ref: str | None = None  # legacy "processor:payment_id" of earlier histories
    service_event_id: int | None = None
    at: datetime | None = None
    # The payment of a payment_received mail, as two fields: either may contain ":".
    processor: str | None = None
    payment_id: str | None = None


@dataclass
class SendNotificationResult:
    key: str
    status: str  # "sent" | "already_sent" | "failed" | "unknown"
    message_id: str | None = None
    error: str | None = None


@dataclass
class SendNotificationsInput:
    """The mails of one outcome (a resumption and its payment's receipt), in one activity:
    each still at most once by its own key."""

    notifications: list[SendNotificationInput]


@dataclass
class SendNotificationsResult:
    results: list[SendNotificationResult]


@dataclass
class ExpireNotificationInput:
    """The retry window of a mail ended before the send activity could settle it."""

    key: str
    kind: str
    reason: str  # becomes last_error when the row has none


@dataclass
class ExpireNotificationResult:
    key: str
    status: str | None  # the row's status afterwards; None: the mail was never recorded
