"""A payment as one command and one outcome, the same type in every layer (SPEC 2.1, 2.2, 3).

``ApplyPayment`` is built once at the edge (CLI, HTTP, the customer's workflow for a
processor's own Temporal client) by ``ApplyPayment.build``: the only place where a
payment's currency is checked against its class and its amount is parsed. It is then the
customer workflow's update input, the apply_payment activity's input and what the ledger
transaction takes. ``PaymentOutcome`` is what that transaction answers, handed back
unchanged by the activity and the workflow. Pure standard library: these cross Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from domain.ledger.effects import InvoiceFacts, ServiceTransition
from domain.money import MoneyError, currency, parse_amount
from domain.when import parse_when

PaymentSource = Literal["api", "cli", "temporal", "assigned"]


class InvalidPayment(MoneyError):
    """A payment refused before anything is recorded (SPEC 2.1); the message is for the
    caller, ``field`` the input it is about (the API reports it there)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Actor:
    """Who asked for a change (audit trail, SPEC 2.7)."""

    name: str
    realm: str = "admin"
    reason: str | None = None
    request_id: str | None = None
    on_behalf_of: str | None = None


def payment_amount(text: str, code: str) -> int:
    """The amount of a payment in ``code``, in minor units (> 0). Raises InvalidPayment."""
    try:
        return parse_amount(text, currency(code), allow_zero=False)
    except MoneyError as err:
        raise InvalidPayment(str(err), "amount") from None


def payment_currency(given: str | None, class_currency: str, class_name: str) -> str:
    """The payment's currency: ``given`` (None: the class's), which must be the class's.
    Raises MoneyError (not a currency) or InvalidPayment (another currency)."""
    code = class_currency if given is None else given
    try:
        currency(code)
    except MoneyError as err:
        raise InvalidPayment(str(err), "currency") from None
    if code != class_currency:
        raise InvalidPayment(f"currency {code} does not match currency {class_currency} of "
                             f"class '{class_name}'", "currency")
    return code


def _received_at(value: str | datetime | None, tz: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidPayment("received_at needs a UTC offset", "received_at")
        return value.astimezone(UTC)
    try:
        return parse_when(value, tz, "received_at")
    except ValueError as err:
        raise InvalidPayment(str(err), "received_at") from None


@dataclass(frozen=True)
class ApplyPayment:
    """Apply one payment to one customer. Built by ``build`` only; amounts in minor units."""

    processor: str
    payment_id: str
    customer_id: str
    amount: int                       # minor units of ``currency``, > 0
    currency: str                     # the class currency (checked by build)
    received_at: datetime | None = None  # aware UTC; None: when the workflow applies it
    source: PaymentSource = "temporal"
    actor: Actor | None = None        # given when a person posts it by hand
    # The instant the customer's workflow applies it (its clock, so time-skipping tests
    # and production agree): the time of any service change it causes. Set by ``at``.
    applied_at: datetime | None = None

    @classmethod
    def build(cls, *, processor: str, payment_id: str, customer_id: str, amount: str,
              currency: str | None, class_currency: str, class_name: str,
              received_at: str | datetime | None = None, tz: str = "UTC",
              source: PaymentSource = "api", actor: Actor | None = None) -> ApplyPayment:
        """The edge's raw values (decimal string, WHEN text or aware datetime, the class's
        currency and time zone) validated with SPEC 2.1's messages. Raises InvalidPayment
        (a MoneyError, a ValueError); nothing is recorded then."""
        if not processor.strip() or not payment_id.strip():
            raise InvalidPayment("processor and payment id must not be empty")
        if not customer_id.strip():
            raise InvalidPayment("customer id must not be empty", "customer_id")
        code = payment_currency(currency, class_currency, class_name)
        minor = payment_amount(amount, code)
        return cls(processor=processor, payment_id=payment_id, customer_id=customer_id,
                   amount=minor, currency=code, received_at=_received_at(received_at, tz),
                   source=source, actor=actor)

    def at(self, now: datetime) -> ApplyPayment:
        """This payment applied ``now``: received then too, unless it says when it was."""
        return replace(self, received_at=self.received_at or now, applied_at=now)


@dataclass(frozen=True)
class PaymentAllocation:
    """Part of a payment the fold allocated to one invoice (oldest first, SPEC 2.2)."""

    invoice_number: str
    amount: int                       # minor units


@dataclass(frozen=True)
class PaymentOutcome:
    """What the ledger transaction did with an ApplyPayment: the transaction answers it,
    the activity and the workflow hand it back unchanged. Its first field names are those
    of the activity result earlier histories recorded, so they still decode (test_replay);
    fields added since have defaults."""

    status: str                       # "accepted" | "duplicate" | "conflict"
    service_state: str                # after
    balance: int                      # minor units
    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    payment_receipts: bool = True
    class_name: str = ""
    service_before: str = ""          # "" in results recorded before it was added
    credit: int = 0                   # minor units, after
    # Where this payment went (accepted only).
    allocations: list[PaymentAllocation] = field(default_factory=list)


__all__ = ["Actor", "ApplyPayment", "InvalidPayment", "MoneyError", "PaymentAllocation",
           "PaymentOutcome",
           "PaymentSource", "payment_amount", "payment_currency"]
