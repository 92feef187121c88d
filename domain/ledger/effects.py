"""What a committed ledger change sets in motion, as data (SPEC 2.4, 2.6, 3).

A ledger transaction answers with the invoices whose facts changed, the service
transition it recorded (if any) and whether the payment gets a receipt: a ``Followup``.
``effects_of`` turns that into the ordered list of effects; the customer's workflow
carries out exactly that list and decides nothing else. The types here cross Temporal
(workflows/payloads.py re-exports them), so they stay plain dataclasses of JSON values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.hold import Hold
from domain.notifications.catalog import (
    SERVICE_MAIL,
    invoice_notification_key,
    service_notification_key,
)


@dataclass
class InvoiceFacts:
    """An invoice as the database sees it now (the source of truth)."""

    number: str
    remaining: int
    collection_status: str
    payment_status: str
    paid: bool
    # The customer's hold in force (SPEC 2.11): the invoice's steps it pauses are held
    # (``domain.hold.held_step``). Absent from histories recorded before holds.
    hold: Hold | None = None
    # Older histories also carry "cancelled": false (invoices are never cancelled); the JSON
    # converter ignores the unknown key (tests/workflows/test_replay.py replays them).


@dataclass
class ServiceTransition:
    """A suspension or resumption the transaction recorded (service_events row)."""

    state: str
    causes: list[str]
    event_id: int
    # A suspension of a class with terminate-after (SPEC 2.9): when it terminates if the
    # service is still suspended then; the customer's workflow keeps a timer for it.
    terminate_at: datetime | None = None


@dataclass
class Followup:
    """The outcome of a committed ledger change whose effects are still to be carried out
    (queued in the customer's state, so it survives continue-as-new)."""

    changed: list[InvoiceFacts] = field(default_factory=list)
    transition: ServiceTransition | None = None
    receipt_key: str | None = None  # set when the payment gets a payment_received mail
    payment_ref: str | None = None  # legacy "processor:payment_id" of earlier histories
    service_state: str | None = None
    # The payment of a payment_received mail, as two fields: either may contain ":".
    processor: str | None = None
    payment_id: str | None = None
    # The invoice a late fee was just charged on: it gets a late_fee_charged mail (SPEC 2.9).
    fee_invoice: str | None = None


# --- the effects ---------------------------------------------------------------------


@dataclass(frozen=True)
class SignalInvoice:
    """Tell the invoice's workflow its new facts; an open invoice whose workflow has ended
    (a reversal or a back-dated invoice opened it again) gets its lifecycle back."""

    facts: InvoiceFacts
    service_state: str | None
    reopen_if_ended: bool


@dataclass(frozen=True)
class Provision:
    """Tell provisioning the customer's service is now ``transition.state``."""

    transition: ServiceTransition


@dataclass(frozen=True)
class SendMail:
    """Send one notification; ``key`` makes it at most once (the outbox)."""

    key: str
    kind: str
    invoice_number: str | None = None
    service_event_id: int | None = None
    processor: str | None = None
    payment_id: str | None = None
    payment_ref: str | None = None


Effect = SignalInvoice | Provision | SendMail


def needs_followup(followup: Followup) -> bool:
    """An outcome with nothing to carry out is not queued at all."""
    return bool(followup.changed or followup.transition or followup.receipt_key
                or followup.fee_invoice)


def effects_of(customer_id: str, followup: Followup) -> tuple[Effect, ...]:
    """Every effect of one outcome, in the order they are issued: the invoices hear of
    their facts first, then the service change and its mail, then the payment receipt.
    The customer's workflow issues them in one workflow task, the mails in one activity;
    none waits for another, and the next outcome's wait for all of these."""
    effects: list[Effect] = [
        SignalInvoice(facts=facts, service_state=followup.service_state,
                      reopen_if_ended=not facts.paid)
        for facts in followup.changed
    ]
    transition = followup.transition
    if transition is not None:
        effects.append(Provision(transition))
        kind = SERVICE_MAIL[transition.state]
        effects.append(SendMail(
            key=service_notification_key(customer_id, transition.event_id, kind),
            kind=kind, service_event_id=transition.event_id,
            invoice_number=transition.causes[0] if transition.causes else None,
        ))
    if followup.receipt_key:
        effects.append(SendMail(
            key=followup.receipt_key, kind="payment_received",
            processor=followup.processor, payment_id=followup.payment_id,
            payment_ref=followup.payment_ref,
        ))
    if followup.fee_invoice:
        effects.append(SendMail(
            key=invoice_notification_key(customer_id, followup.fee_invoice, "late_fee_charged"),
            kind="late_fee_charged", invoice_number=followup.fee_invoice,
        ))
    return tuple(effects)
