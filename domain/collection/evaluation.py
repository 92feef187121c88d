"""Collection status, payment status and service state (SPEC 2.3, 2.4).

These are judgements over a Ledger (see domain.ledger.allocation) and what the invoice workflows
saw of the clock; they hold no state, so re-evaluating after a payment, a reversal or a
re-run is calling them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from domain.ledger.allocation import InvoiceBalance, Ledger


class CollectionStatus(StrEnum):
    COLLECT = "collect"
    DO_NOT_COLLECT = "do_not_collect"


class PaymentStatus(StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"


class ServiceState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"  # SPEC 2.9: final for dunning until finance reactivates


def collection_status(remaining: int, threshold: int) -> CollectionStatus:
    """``collect`` iff remaining exceeds the class threshold; equal is ``do_not_collect``.

    A threshold of 0 collects any unpaid amount. Both are minor units.
    """
    if threshold < 0:
        raise ValueError(f"collection threshold must be >= 0, got {threshold}")
    if remaining < 0:
        raise ValueError(f"remaining amount cannot be negative, got {remaining}")
    return CollectionStatus.COLLECT if remaining > threshold else CollectionStatus.DO_NOT_COLLECT


def drives_dunning(collection_status: str, remaining: int) -> bool:
    """SPEC 2.3: only a ``collect`` invoice with something remaining gets reminder,
    overdue and warning mails, and only such an invoice past its suspension time
    suspends the service (SPEC 2.4)."""
    # == rather than `is`: statuses read back from rows and payloads are plain strings.
    return collection_status == CollectionStatus.COLLECT and remaining > 0


def payment_status(balance: InvoiceBalance) -> PaymentStatus:
    """``paid`` when nothing remains; ``partially_paid`` when some money went to it."""
    if balance.remaining == 0:
        return PaymentStatus.PAID
    if balance.received > 0:
        return PaymentStatus.PARTIALLY_PAID
    return PaymentStatus.UNPAID


@dataclass(frozen=True)
class InvoiceEvaluation:
    number: str
    amount_due: int
    remaining: int
    collection_status: CollectionStatus
    payment_status: PaymentStatus


def evaluate(ledger: Ledger, threshold: int) -> tuple[InvoiceEvaluation, ...]:
    """Both statuses of every invoice of the ledger, oldest first."""
    return tuple(
        InvoiceEvaluation(
            number=balance.number,
            amount_due=balance.amount_due,
            remaining=balance.remaining,
            collection_status=collection_status(balance.remaining, threshold),
            payment_status=payment_status(balance),
        )
        for balance in ledger.invoices
    )


@dataclass(frozen=True)
class SuspensionCandidate:
    """What decide_service needs to know about one open invoice of the customer.

    ``past_suspension_time``: the invoice has reached its suspension time S. The invoice's
    own workflow records that when its timer for S fires (or at once when S had already
    passed), so the customer-level decision never compares instants from different clocks.
    """

    number: str
    past_suspension_time: bool
    collection_status: CollectionStatus
    remaining: int


@dataclass(frozen=True)
class ServiceDecision:
    """The customer's service state and the invoices that cause a suspension."""

    state: ServiceState
    causes: tuple[str, ...]


def decide_service(candidates: Iterable[SuspensionCandidate], *, held: bool = False,
                   current: str | None = None) -> ServiceDecision:
    """Suspended iff some invoice is past its suspension time, ``collect`` and unpaid
    (SPEC 2.4), and the customer is neither on hold nor terminated.

    ``held``: a hold is in force (SPEC 2.11): no suspension; a customer already
    suspended (``current``) stays suspended while a cause remains, and resumes as soon as
    none is left (payments work as usual). A hold placed with ``resume`` is decided with
    ``current`` active, so the service comes back at once. ``current`` terminated (SPEC
    2.9): final, whatever is paid; only finance's reactivation leaves it.

    ``causes`` keeps the order of ``candidates``; pass them oldest first (as
    ``Ledger.invoices`` is) so the recorded reason lists the oldest cause first.
    """
    causes = tuple(
        candidate.number
        for candidate in candidates
        if candidate.past_suspension_time
        and drives_dunning(candidate.collection_status, candidate.remaining)
    )
    if current == ServiceState.TERMINATED:
        return ServiceDecision(ServiceState.TERMINATED, causes)
    if held and current != ServiceState.SUSPENDED:
        return ServiceDecision(ServiceState.ACTIVE, ())
    # Resumption is simply the absence of causes: there is no separate "resume" rule, which
    # is what makes service come back the moment the last cause is paid or re-evaluated.
    return ServiceDecision(ServiceState.SUSPENDED if causes else ServiceState.ACTIVE, causes)
