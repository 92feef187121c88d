"""The money transactions: issue an invoice, apply / reverse a payment, re-evaluate.

Each function is one transaction (a savepoint when the caller already has one open),
serialised per customer by locking its row, and ends by recomputing the customer's whole
fold with the domain (db/ledger/fold.py). Instants recorded (service change, reversal,
assignment) are the ``now`` passed in, never the database clock: workflows pass
``workflow.now()`` so time-skipping tests hold. Whether an invoice is past its suspension
time is what its workflow recorded (invoices.suspension_reached_at), not a clock reading.

Idempotent retries: with a ``token``, the first committed result is stored in
customer_operations and any later call with that token returns it and does nothing else.
Results are frozen dataclasses that round-trip through JSON (db/codec.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection, Rollback, sql
from psycopg.rows import class_row

from db.audit import customer_target, invoice_target, payment_target, record_audit
from db.codec import dumps
from db.collection.invoice_rows import get_invoice, list_invoices
from db.errors import InvalidValue, UnknownPayment
from db.ledger.fold import (
    FoldOutcome,
    PendingInvoice,
    ServiceEvent,
    customer_class,
    decide_and_record_service,
    lock_customer,
    refold,
)
from db.ledger.payments import get_payment
from db.ledger.tokens import store_result, stored_result
from db.rows import (
    AuditEntry,
    AuditInfo,
    ClassRow,
    CustomerRow,
    InvoiceRow,
    PaymentRow,
    columns,
)
from domain.ledger.commands import EvaluateService, IssueInvoice, Reevaluate, ReversePayment
from domain.ledger.effects import InvoiceFacts
from domain.ledger.payments import Actor, ApplyPayment, PaymentSource

__all__ = [
    "ApplyPaymentResult", "EvaluateServiceResult", "IssueInvoiceResult", "PaymentAllocation",
    "ReevaluateResult", "ReversePaymentResult", "ServiceEvent", "apply_payment", "audit_of",
    "body_hash", "evaluate_service", "fingerprint", "issue_invoice", "known_payment",
    "payment_hash", "reevaluate", "reverse_payment",
]



def body_hash(fields_: dict[str, Any]) -> str:
    """sha256 hex of a canonical JSON form of a payment request (sorted keys, no spaces).

    Callers hash the same normalised fields for a payment whether it ends up matched or
    unmatched (e.g. processor, payment_id, customer_id, amount as given, currency,
    received_at), so a resend is recognised as the same request.
    """
    canonical = dumps(fields_, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def payment_hash(processor: str, payment_id: str, customer_id: str, amount: int,
                 currency_code: str) -> str:
    """The one fingerprint of a payment's money facts, whichever way it arrived.

    Webhook, CLI and a processor's own Temporal client compute the same value for the same
    payment (amount normalised to minor units; the arrival time is not part of it), so a
    re-delivery is a duplicate and only different money facts are a conflict.
    """
    return body_hash({"processor": processor, "payment_id": payment_id,
                      "customer_id": customer_id, "amount": amount,
                      "currency": currency_code})


def fingerprint(cmd: ApplyPayment) -> str:
    """The payment_hash of a command: what ``known_payment`` compares."""
    return payment_hash(cmd.processor, cmd.payment_id, cmd.customer_id, cmd.amount,
                        cmd.currency)


def audit_of(actor: Actor | None) -> AuditInfo | None:
    if actor is None:
        return None
    return AuditInfo(actor=actor.name, realm=actor.realm,  # type: ignore[arg-type]
                     reason=actor.reason, request_id=actor.request_id)


# --------------------------------------------------------------------------- issue_invoice
@dataclass(frozen=True)
class IssueInvoiceResult:
    """``created``; ``exists`` (same data, nothing changed); ``conflict`` (other data,
    nothing written; ``invoice`` is the stored one and ``conflict_fields`` names what differs)."""

    status: Literal["created", "exists", "conflict"]
    invoice: InvoiceRow
    conflict_fields: tuple[str, ...]
    changes: tuple[InvoiceFacts, ...]  # other invoices re-evaluated (back-dated issue)
    customer_id: str
    class_name: str
    currency: str
    balance: int
    credit: int
    service_state: str


_INVOICE_INPUTS = ("new_charges", "issued_at", "due_text", "overdue_at", "suspend_at")


async def issue_invoice(conn: AsyncConnection, cmd: IssueInvoice, *,
                        token: str | None = None) -> IssueInvoiceResult:
    """Store a new invoice with amount due, remaining and statuses from the fold.

    Makes no service decision (no ``now``): the invoice's suspension step calls
    ``evaluate_service``. Raises UnknownCustomer, InvalidValue.
    """
    _require_aware(cmd.issued_at, cmd.overdue_at, cmd.suspend_at)
    if cmd.new_charges < 0:
        raise InvalidValue("new charges must not be negative")
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "issue_invoice",
                                        IssueInvoiceResult)) is not None:
            return done
        klass = await customer_class(conn, customer)
        existing = await get_invoice(conn, cmd.customer_id, cmd.number)
        if existing is not None:
            differs = tuple(name for name in _INVOICE_INPUTS
                            if getattr(existing, name) != getattr(cmd, name))
            result = IssueInvoiceResult(
                status="conflict" if differs else "exists", invoice=existing,
                conflict_fields=differs, changes=(), customer_id=customer.id,
                class_name=klass.name, currency=klass.currency, balance=customer.balance,
                credit=customer.credit, service_state=customer.service_state)
        else:
            pending = PendingInvoice(cmd.number, cmd.issued_at, cmd.due_text, cmd.overdue_at,
                                     cmd.suspend_at, cmd.new_charges)
            outcome = await refold(conn, customer, klass, now=None, reason="invoice issued",
                                   pending=pending)
            invoice = next(i for i in outcome.invoices if i.number == cmd.number)
            result = IssueInvoiceResult(
                status="created", invoice=invoice, conflict_fields=(), changes=outcome.changes,
                customer_id=customer.id, class_name=klass.name, currency=klass.currency,
                balance=outcome.customer.balance, credit=outcome.customer.credit,
                service_state=outcome.customer.service_state)
            if (audit := audit_of(cmd.actor)) is not None:
                await record_audit(conn, AuditEntry.of(
                    audit, "invoice.issue", invoice_target(customer.id, cmd.number),
                    on_behalf_of=customer.id, after=invoice))
        await store_result(conn, token, "issue_invoice", customer.id, result)
        return result


# --------------------------------------------------------------------------- apply_payment
@dataclass(frozen=True)
class PaymentAllocation:
    invoice_number: str
    amount: int


@dataclass(frozen=True)
class ApplyPaymentResult:
    """``accepted``; ``duplicate`` (same id and body: nothing changed); ``conflict`` (same id,
    other body: nothing written). ``payment`` is None when the id is held by an unmatched
    payment (finance assigns it, see db/ledger/unmatched.py)."""

    status: Literal["accepted", "duplicate", "conflict"]
    payment: PaymentRow | None
    allocations: tuple[PaymentAllocation, ...]  # where this payment went (accepted only)
    changes: tuple[InvoiceFacts, ...]
    service: ServiceEvent | None
    customer_id: str
    currency: str
    balance: int
    credit: int
    service_state: str
    class_name: str = ""
    payment_receipts: bool = True     # the class sends payment_received mails


async def apply_payment(conn: AsyncConnection, cmd: ApplyPayment, *,
                        token: str | None = None) -> ApplyPaymentResult:
    """Record a payment and re-evaluate the customer at ``cmd.applied_at`` (the service
    change time, stamped by ``ApplyPayment.at``); ``token``: the call's identity
    (db/ledger/tokens.py). The command was validated when it was built
    (domain/ledger/payments.py); here the payment is fingerprinted and decided
    duplicate/conflict, once. Raises UnknownCustomer (the caller then records it as
    unmatched), InvalidValue; the schema refuses another currency than the class's
    (payments_currency_matches_class). Nothing is written then."""
    now = cmd.applied_at
    if now is None:
        raise InvalidValue("a payment is applied at an instant: ApplyPayment.at(now)")
    received_at = cmd.received_at if cmd.received_at is not None else now
    _require_aware(received_at, now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "apply_payment",
                                        ApplyPaymentResult)) is not None:
            return done
        klass = await customer_class(conn, customer)
        await lock_payment_key(conn, cmd.processor, cmd.payment_id)
        status, existing = await known_payment(conn, cmd)
        if status is not None:
            result = ApplyPaymentResult(
                status=status, payment=existing, allocations=(), changes=(), service=None,
                customer_id=customer.id, currency=klass.currency, balance=customer.balance,
                credit=customer.credit, service_state=customer.service_state,
                class_name=klass.name, payment_receipts=klass.payment_receipts)
        else:
            result = await insert_payment_and_refold(
                conn, customer, klass, cmd.processor, cmd.payment_id, cmd.amount,
                received_at, fingerprint(cmd), cmd.source, now, audit_of(cmd.actor),
                currency=cmd.currency)
        await store_result(conn, token, "apply_payment", customer.id, result)
        return result


async def insert_payment_and_refold(conn: AsyncConnection, customer: CustomerRow, klass: ClassRow,
                                    processor: str, payment_id: str, amount: int,
                                    received_at: datetime, hash_: str, source: PaymentSource,
                                    now: datetime, audit: AuditInfo | None,
                                    reason: str | None = None, *, currency: str | None = None
                                    ) -> ApplyPaymentResult:
    """Shared by apply_payment and assign_unmatched: caller holds the customer lock.
    ``currency``: the payment's (the schema holds it to the class's); None: the class's."""
    query = sql.SQL(
        "INSERT INTO payments (processor, payment_id, customer_id, amount, currency,"
        " received_at, body_hash, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING {}"
    ).format(columns(PaymentRow))
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cur:
        await cur.execute(query, (processor, payment_id, customer.id, amount,
                                  currency or klass.currency, received_at, hash_, source))
        payment = await cur.fetchone()
    assert payment is not None
    outcome = await refold(conn, customer, klass, now=now,
                           reason=reason or f"payment {processor}/{payment_id} applied")
    if audit is not None:
        await record_audit(conn, AuditEntry.of(
            audit, "payment.post", payment_target(processor, payment_id),
            on_behalf_of=customer.id, after=payment))
    return ApplyPaymentResult(
        status="accepted", payment=payment, allocations=_allocations_of(outcome, payment.id),
        changes=outcome.changes, service=outcome.service, customer_id=customer.id,
        currency=klass.currency, balance=outcome.customer.balance,
        credit=outcome.customer.credit, service_state=outcome.customer.service_state,
        class_name=klass.name, payment_receipts=klass.payment_receipts)


# ------------------------------------------------------------------------- reverse_payment
@dataclass(frozen=True)
class ReversePaymentResult:
    """``reversed``; ``already_reversed`` (nothing changed)."""

    status: Literal["reversed", "already_reversed"]
    payment: PaymentRow
    changes: tuple[InvoiceFacts, ...]
    service: ServiceEvent | None
    customer_id: str
    currency: str
    balance: int
    credit: int
    service_state: str
    class_name: str = ""


async def reverse_payment(conn: AsyncConnection, cmd: ReversePayment, *,
                          token: str | None = None) -> ReversePaymentResult:
    """Reverse a payment of ``cmd.customer_id``: the fold runs again without it (SPEC 2.2).
    Raises UnknownPayment, InvalidValue (the payment is another customer's)."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        found = await get_payment(conn, cmd.processor, cmd.payment_id)
        if found is None:
            detail = ("it is an unmatched payment that was never applied"
                      if await _is_unmatched(conn, cmd.processor, cmd.payment_id) else "")
            raise UnknownPayment(cmd.processor, cmd.payment_id, detail)
        if found.customer_id != cmd.customer_id:
            # Only the owner's workflow reverses: checked before anything is written.
            raise InvalidValue(f"payment {cmd.processor}:{cmd.payment_id} belongs to another "
                               "customer")
        customer = await lock_customer(conn, found.customer_id)
        if (done := await stored_result(conn, token, "reverse_payment",
                                        ReversePaymentResult)) is not None:
            return done
        klass = await customer_class(conn, customer)
        before = await get_payment(conn, cmd.processor, cmd.payment_id)  # re-read under lock
        assert before is not None
        if before.status == "reversed":
            result = ReversePaymentResult(
                status="already_reversed", payment=before, changes=(), service=None,
                customer_id=customer.id, currency=klass.currency, balance=customer.balance,
                credit=customer.credit, service_state=customer.service_state,
                class_name=klass.name)
        else:
            query = sql.SQL(
                "UPDATE payments SET status = 'reversed', reversed_at = %s WHERE id = %s"
                " RETURNING {}"
            ).format(columns(PaymentRow))
            async with conn.cursor(row_factory=class_row(PaymentRow)) as cur:
                await cur.execute(query, (now, before.id))
                after = await cur.fetchone()
            assert after is not None
            why = f"payment {cmd.processor}/{cmd.payment_id} reversed"
            outcome = await refold(conn, customer, klass, now=now,
                                   reason=f"{why}: {cmd.reason}" if cmd.reason else why)
            if (audit := audit_of(cmd.actor)) is not None:
                await record_audit(conn, AuditEntry.of(
                    _with_reason(audit, cmd.reason), "payment.reverse",
                    payment_target(cmd.processor, cmd.payment_id), on_behalf_of=customer.id,
                    before=before, after=after))
            result = ReversePaymentResult(
                status="reversed", payment=after, changes=outcome.changes,
                service=outcome.service, customer_id=customer.id, currency=klass.currency,
                balance=outcome.customer.balance, credit=outcome.customer.credit,
                service_state=outcome.customer.service_state, class_name=klass.name)
        await store_result(conn, token, "reverse_payment", customer.id, result)
        return result


# ------------------------------------------------------------------------------ reevaluate
@dataclass(frozen=True)
class ReevaluateResult:
    customer_id: str
    dry_run: bool
    threshold: int                    # the class threshold used
    changes: tuple[InvoiceFacts, ...]
    service: ServiceEvent | None  # event_id None in a dry run
    currency: str
    balance: int
    credit: int
    service_state: str                # after (what it would be, in a dry run)
    class_name: str = ""


async def reevaluate(conn: AsyncConnection, cmd: Reevaluate, *,
                     token: str | None = None) -> ReevaluateResult:
    """Re-run the fold, statuses and service decision with the class's current settings.

    A dry run computes the same result and rolls everything back (token not stored).
    """
    now = _stamped(cmd.now)
    result: ReevaluateResult | None = None
    async with conn.transaction() as tx:
        customer = await lock_customer(conn, cmd.customer_id)
        if not cmd.dry_run and (done := await stored_result(
                conn, token, "reevaluate", ReevaluateResult)) is not None:
            return done
        klass = await customer_class(conn, customer)
        outcome = await refold(conn, customer, klass, now=now, reason=cmd.reason)
        result = _reevaluate_result(cmd, klass, outcome)
        if cmd.dry_run:
            raise Rollback(tx)
        if (audit := audit_of(cmd.actor)) is not None:
            await record_audit(conn, AuditEntry.of(
                audit, "customer.rerun", customer_target(customer.id),
                on_behalf_of=customer.id,
                before={"service_state": customer.service_state},
                after={"changes": result.changes, "service": result.service,
                       "threshold": klass.threshold}))
        await store_result(conn, token, "reevaluate", customer.id, result)
    assert result is not None
    return result


def _reevaluate_result(cmd: Reevaluate, klass: ClassRow,
                       outcome: FoldOutcome) -> ReevaluateResult:
    service = outcome.service
    if cmd.dry_run and service is not None:
        # The service_events row is rolled back with the rest; do not hand out its id.
        service = ServiceEvent(**{f.name: getattr(service, f.name)
                                       for f in fields(service) if f.name != "event_id"},
                                    event_id=None)
    return ReevaluateResult(
        customer_id=cmd.customer_id, dry_run=cmd.dry_run, threshold=klass.threshold,
        changes=outcome.changes, service=service, currency=klass.currency,
        balance=outcome.customer.balance, credit=outcome.customer.credit,
        service_state=outcome.customer.service_state, class_name=klass.name)


# ------------------------------------------------------------------------ evaluate_service
@dataclass(frozen=True)
class EvaluateServiceResult:
    customer_id: str
    service_state: str                # after
    causes: tuple[str, ...]           # invoices that keep it suspended
    service: ServiceEvent | None
    balance: int = 0


async def evaluate_service(conn: AsyncConnection, cmd: EvaluateService, *,
                           token: str | None = None) -> EvaluateServiceResult:
    """Only the service decision, over the stored invoice statuses and the suspension
    times their workflows recorded; a change is recorded as happening at ``now``."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "evaluate_service",
                                        EvaluateServiceResult)) is not None:
            return done
        invoices = tuple(await list_invoices(conn, customer.id))
        after, service, causes = await decide_and_record_service(
            conn, customer, invoices, now, cmd.reason)
        result = EvaluateServiceResult(customer.id, after.service_state, causes, service,
                                       balance=after.balance)
        await store_result(conn, token, "evaluate_service", customer.id, result)
        return result


# -------------------------------------------------------------------------------- helpers
async def lock_payment_key(conn: AsyncConnection, processor: str, payment_id: str) -> None:
    """Serialise everything about one (processor, payment_id), matched or unmatched."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       (f"payment:{processor}\x1f{payment_id}",))


async def known_payment(
    conn: AsyncConnection, cmd: ApplyPayment
) -> tuple[Literal["duplicate", "conflict"] | None, PaymentRow | None]:
    """The one duplicate rule: the same id seen before (as a payment or an unmatched
    payment) is a duplicate with the same fingerprint, else a conflict. apply_payment
    decides with it under the payment's lock; the edge may ask it first (no lock) to
    answer a payment sent again later without reaching Temporal."""
    processor, payment_id, hash_ = cmd.processor, cmd.payment_id, fingerprint(cmd)
    existing = await get_payment(conn, processor, payment_id)
    if existing is not None:
        return ("duplicate" if existing.body_hash == hash_ else "conflict"), existing
    cur = await conn.execute(
        "SELECT body_hash FROM unmatched_payments WHERE processor = %s AND payment_id = %s",
        (processor, payment_id),
    )
    row = await cur.fetchone()
    if row is not None:
        return ("duplicate" if row[0] == hash_ else "conflict"), None
    return None, None


async def _is_unmatched(conn: AsyncConnection, processor: str, payment_id: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM unmatched_payments WHERE processor = %s AND payment_id = %s"
        " AND status = 'unmatched'",
        (processor, payment_id),
    )
    return await cur.fetchone() is not None


def _allocations_of(outcome: FoldOutcome, payment_row_id: int) -> tuple[PaymentAllocation, ...]:
    return tuple(PaymentAllocation(number, amount)
                 for pid, number, amount in outcome.allocations if pid == payment_row_id)


def _with_reason(info: AuditInfo, reason: str | None) -> AuditInfo:
    if info.reason is not None or reason is None:
        return info
    return AuditInfo(info.actor, info.realm, reason, info.request_id)


def _stamped(now: datetime | None) -> datetime:
    """The instant the customer's workflow stamped on the command (``at``)."""
    if now is None:
        raise InvalidValue("a ledger command runs at an instant: stamp it with .at(now)")
    _require_aware(now)
    return now


def _require_aware(*instants: datetime) -> None:
    for instant in instants:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise InvalidValue(f"instant {instant.isoformat()} must be timezone-aware")
