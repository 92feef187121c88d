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
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection, Rollback, sql
from psycopg.rows import class_row

from db.audit import customer_target, invoice_target, payment_target, record_audit
from db.classes import policy_of
from db.codec import dumps
from db.collection.invoice_rows import facts_of, get_invoice, list_invoices
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
from domain.collection.policy import decide_late_fee, decide_termination
from domain.hold import RESUME_REASON, Hold, ended
from domain.ledger.commands import (
    ChargeLateFee,
    EvaluateService,
    HoldOutcome,
    InvoiceChange,
    IssuedInvoice,
    IssueInvoice,
    IssueOutcome,
    PlaceHold,
    ReactivateCustomer,
    Reevaluate,
    ReevaluationOutcome,
    ReleaseHold,
    ReversalOutcome,
    ReversePayment,
    ServiceOutcome,
    TerminateCustomer,
    TerminationOutcome,
    WaiveLateFee,
    WaiverOutcome,
)
from domain.ledger.commands import LateFeeOutcome as LateFeeOutcome
from domain.ledger.effects import ServiceTransition
from domain.ledger.payments import (
    Actor,
    ApplyPayment,
    PaymentAllocation,
    PaymentOutcome,
    PaymentSource,
)

__all__ = [
    "ServiceEvent", "apply_payment", "audit_of", "body_hash", "charge_late_fee",
    "evaluate_service", "fingerprint", "issue_invoice", "issued",
    "known_payment", "payment_hash", "place_hold", "reactivate_customer", "reevaluate",
    "release_hold", "terminate_customer",
    "reverse_payment", "transition_of", "waive_late_fee",
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
_INVOICE_INPUTS = ("new_charges", "issued_at", "due_text", "overdue_at", "suspend_at")


async def issue_invoice(conn: AsyncConnection, cmd: IssueInvoice, *,
                        token: str | None = None) -> IssueOutcome:
    """Store a new invoice with amount due, remaining and statuses from the fold:
    ``created``; ``exists`` (same data, nothing changed); ``conflict`` (other data,
    nothing written; ``invoice`` is the stored one, ``conflict_fields`` what differs).

    Makes no service decision (no ``now``): the invoice's suspension step calls
    ``evaluate_service``. Raises UnknownCustomer, InvalidValue.
    """
    _require_aware(cmd.issued_at, cmd.overdue_at, cmd.suspend_at)
    if cmd.new_charges < 0:
        raise InvalidValue("new charges must not be negative")
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "issue_invoice",
                                        IssueOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        existing = await get_invoice(conn, cmd.customer_id, cmd.number)
        if existing is not None:
            differs = tuple(name for name in _INVOICE_INPUTS
                            if getattr(existing, name) != getattr(cmd, name))
            result = IssueOutcome(
                status="conflict" if differs else "exists", invoice=issued(existing),
                conflict_fields=list(differs), class_name=klass.name,
                balance=customer.balance, service_state=customer.service_state)
        else:
            pending = PendingInvoice(cmd.number, cmd.issued_at, cmd.due_text, cmd.overdue_at,
                                     cmd.suspend_at, cmd.new_charges,
                                     cmd.suspension_moved_from, cmd.suspension_moved_why)
            outcome = await refold(conn, customer, klass, now=None, reason="invoice issued",
                                   pending=pending)
            invoice = next(i for i in outcome.invoices if i.number == cmd.number)
            result = IssueOutcome(
                status="created", invoice=issued(invoice), changed=list(outcome.changes),
                class_name=klass.name, balance=outcome.customer.balance,
                service_state=outcome.customer.service_state)
            if (audit := audit_of(cmd.actor)) is not None:
                await record_audit(conn, AuditEntry.of(
                    audit, "invoice.issue", invoice_target(customer.id, cmd.number),
                    on_behalf_of=customer.id, after=invoice))
        await store_result(conn, token, "issue_invoice", customer.id, result)
        return result


# --------------------------------------------------------------------------- apply_payment
async def apply_payment(conn: AsyncConnection, cmd: ApplyPayment, *,
                        token: str | None = None) -> PaymentOutcome:
    """Record a payment and re-evaluate the customer at ``cmd.applied_at`` (the service
    change time, stamped by ``ApplyPayment.at``); ``token``: the call's identity
    (db/ledger/tokens.py). The command was validated when it was built
    (domain/ledger/payments.py); here the payment is fingerprinted and decided
    ``accepted``, ``duplicate`` (same id and fingerprint: nothing changed) or
    ``conflict`` (same id, other money facts: nothing written), once, under the
    payment's lock. Raises UnknownCustomer (the caller then records it as unmatched),
    InvalidValue; the schema refuses another currency than the class's
    (payments_currency_matches_class). Nothing is written then."""
    now = cmd.applied_at
    if now is None:
        raise InvalidValue("a payment is applied at an instant: ApplyPayment.at(now)")
    received_at = cmd.received_at if cmd.received_at is not None else now
    _require_aware(received_at, now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "apply_payment",
                                        PaymentOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        await lock_payment_key(conn, cmd.processor, cmd.payment_id)
        status = await known_payment(conn, cmd.processor, cmd.payment_id, fingerprint(cmd))
        if status is not None:
            result = PaymentOutcome(
                status=status, service_state=customer.service_state,
                service_before=customer.service_state, balance=customer.balance,
                credit=customer.credit, class_name=klass.name,
                payment_receipts=klass.payment_receipts)
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
                                    ) -> PaymentOutcome:
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
    return PaymentOutcome(
        status="accepted", service_state=outcome.customer.service_state,
        service_before=customer.service_state, balance=outcome.customer.balance,
        credit=outcome.customer.credit, changed=list(outcome.changes),
        transition=transition_of(outcome.service), class_name=klass.name,
        payment_receipts=klass.payment_receipts,
        allocations=_allocations_of(outcome, payment.id))


# ------------------------------------------------------------------------- reverse_payment
async def reverse_payment(conn: AsyncConnection, cmd: ReversePayment, *,
                          token: str | None = None) -> ReversalOutcome:
    """Reverse a payment of ``cmd.customer_id``: the fold runs again without it (SPEC 2.2):
    ``reversed``, or ``already_reversed`` (nothing changed). Raises UnknownPayment,
    InvalidValue (the payment is another customer's)."""
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
                                        ReversalOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        before = await get_payment(conn, cmd.processor, cmd.payment_id)  # re-read under lock
        assert before is not None
        if before.status == "reversed":
            result = ReversalOutcome(
                status="already_reversed", service_state=customer.service_state,
                service_before=customer.service_state, balance=customer.balance,
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
            result = ReversalOutcome(
                status="reversed", service_state=outcome.customer.service_state,
                service_before=customer.service_state, balance=outcome.customer.balance,
                changed=list(outcome.changes), transition=transition_of(outcome.service),
                class_name=klass.name)
        await store_result(conn, token, "reverse_payment", customer.id, result)
        return result


# ------------------------------------------------------------------------------ reevaluate
async def reevaluate(conn: AsyncConnection, cmd: Reevaluate, *,
                     token: str | None = None) -> ReevaluationOutcome:
    """Re-run the fold, statuses and service decision with the class's current settings.

    A dry run computes the same result and rolls everything back (token not stored; no
    transition, as the service_events row is rolled back with the rest).
    """
    now = _stamped(cmd.now)
    result: ReevaluationOutcome | None = None
    async with conn.transaction() as tx:
        customer = await lock_customer(conn, cmd.customer_id)
        if not cmd.dry_run and (done := await stored_result(
                conn, token, "reevaluate", ReevaluationOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        # Read under the customer's lock, so "before" is what this re-run changed.
        before = {i.number: i.collection_status
                  for i in await list_invoices(conn, customer.id)}
        outcome = await refold(conn, customer, klass, now=now, reason=cmd.reason)
        result = _reevaluation(cmd, customer, klass, outcome, before)
        if cmd.dry_run:
            raise Rollback(tx)
        if (audit := audit_of(cmd.actor)) is not None:
            await record_audit(conn, AuditEntry.of(
                audit, "customer.rerun", customer_target(customer.id),
                on_behalf_of=customer.id,
                before={"service_state": customer.service_state},
                after={"changes": outcome.changes, "service": outcome.service,
                       "threshold": klass.threshold}))
        await store_result(conn, token, "reevaluate", customer.id, result)
    assert result is not None
    return result


def _reevaluation(cmd: Reevaluate, customer: CustomerRow, klass: ClassRow,
                  outcome: FoldOutcome, before: dict[str, str]) -> ReevaluationOutcome:
    return ReevaluationOutcome(
        customer_id=cmd.customer_id, dry_run=cmd.dry_run,
        changes=[InvoiceChange(number=c.number, before_status=before.get(c.number),
                               after_status=c.collection_status, remaining=c.remaining)
                 for c in outcome.changes],
        service_before=customer.service_state,
        service_after=outcome.customer.service_state, balance=outcome.customer.balance,
        changed=list(outcome.changes),
        # A dry run's service_events row is rolled back with the rest: no transition.
        transition=None if cmd.dry_run else transition_of(outcome.service),
        class_name=klass.name)


# ------------------------------------------------------------------------ evaluate_service
async def evaluate_service(conn: AsyncConnection, cmd: EvaluateService, *,
                           token: str | None = None) -> ServiceOutcome:
    """Only the service decision, over the stored invoice statuses and the suspension
    times their workflows recorded; a change is recorded as happening at ``now``."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "evaluate_service",
                                        ServiceOutcome)) is not None:
            return done
        invoices = tuple(await list_invoices(conn, customer.id))
        after, service, _ = await decide_and_record_service(
            conn, customer, invoices, now, cmd.reason)
        result = ServiceOutcome(service_state=after.service_state,
                                service_before=customer.service_state,
                                balance=after.balance, transition=transition_of(service))
        await store_result(conn, token, "evaluate_service", customer.id, result)
        return result


# ------------------------------------------------------------------------------ late fees
async def charge_late_fee(conn: AsyncConnection, cmd: ChargeLateFee, *,
                          token: str | None = None) -> LateFeeOutcome:
    """Charge the invoice's late fee if SPEC 2.9 says so now (``decide_late_fee`` on the
    stored status and remaining, under the customer's lock), refold and decide the service
    at ``now``. Once per invoice: a fee row exists forever (the schema refuses a second)."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "charge_late_fee",
                                        LateFeeOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        invoice = await _invoice_of(conn, cmd.customer_id, cmd.invoice_number)
        fee = await _fee_row(conn, invoice.id)
        decision = decide_late_fee(policy_of(klass), collection_status=invoice.collection_status,
                                   remaining=invoice.remaining, charged_before=fee is not None,
                                   hold=customer.hold)
        if decision.amount == 0:
            result = LateFeeOutcome(
                status="already_charged" if fee is not None else "not_due",
                invoice_number=invoice.number, amount=fee[0] if fee else 0,
                reason=decision.reason, service_state=customer.service_state,
                balance=customer.balance, class_name=klass.name)
        else:
            charged_at = cmd.charged_at or now
            _require_aware(charged_at)
            await conn.execute(
                "INSERT INTO late_fees (customer_id, invoice_id, amount, charged_at)"
                " VALUES (%s, %s, %s, %s)",
                (customer.id, invoice.id, decision.amount, max(charged_at, invoice.issued_at)))
            outcome = await refold(conn, customer, klass, now=now,
                                   reason=f"late fee on invoice {invoice.number}")
            result = LateFeeOutcome(
                status="charged", invoice_number=invoice.number, amount=decision.amount,
                reason=decision.reason, service_state=outcome.customer.service_state,
                balance=outcome.customer.balance, changed=list(outcome.changes),
                transition=transition_of(outcome.service), class_name=klass.name)
        await store_result(conn, token, "charge_late_fee", customer.id, result)
        return result


async def waive_late_fee(conn: AsyncConnection, cmd: WaiveLateFee, *,
                         token: str | None = None) -> WaiverOutcome:
    """Waive the invoice's fee: the fold leaves it out from then on, exactly as if it had
    never been charged; re-evaluated and audited (``fee.waive``) in the same transaction."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "waive_late_fee",
                                        WaiverOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        invoice = await _invoice_of(conn, cmd.customer_id, cmd.invoice_number)
        fee = await _fee_row(conn, invoice.id)
        if fee is None or fee[1] is not None:
            result = WaiverOutcome(
                status="not_charged" if fee is None else "already_waived",
                invoice_number=invoice.number, amount=fee[0] if fee else 0,
                service_state=customer.service_state, balance=customer.balance,
                class_name=klass.name)
        else:
            await conn.execute("UPDATE late_fees SET waived_at = %s WHERE invoice_id = %s",
                               (now, invoice.id))
            outcome = await refold(conn, customer, klass, now=now,
                                   reason=f"late fee on invoice {invoice.number} waived")
            result = WaiverOutcome(
                status="waived", invoice_number=invoice.number, amount=fee[0],
                service_state=outcome.customer.service_state,
                balance=outcome.customer.balance, changed=list(outcome.changes),
                transition=transition_of(outcome.service), class_name=klass.name)
            if (audit := audit_of(cmd.actor)) is not None:
                await record_audit(conn, AuditEntry.of(
                    audit, "fee.waive", invoice_target(customer.id, invoice.number),
                    on_behalf_of=customer.id,
                    before={"fee": fee[0], "remaining": invoice.remaining},
                    after={"fee": 0, "remaining": next(
                        i.remaining for i in outcome.invoices if i.number == invoice.number)}))
        await store_result(conn, token, "waive_late_fee", customer.id, result)
        return result


async def _invoice_of(conn: AsyncConnection, customer_id: str, number: str) -> InvoiceRow:
    invoice = await get_invoice(conn, customer_id, number)
    if invoice is None:
        raise InvalidValue(f"customer {customer_id!r} has no invoice {number!r}")
    return invoice


async def _fee_row(conn: AsyncConnection, invoice_id: int) -> tuple[int, datetime | None] | None:
    """(amount, waived_at) of the invoice's fee, or None when it was never charged."""
    cur = await conn.execute("SELECT amount, waived_at FROM late_fees WHERE invoice_id = %s",
                             (invoice_id,))
    row = await cur.fetchone()
    return None if row is None else (int(row[0]), row[1])


# ------------------------------------------------------------------------------- holds
_HOLD_COLUMNS = sql.SQL(
    "UPDATE customers SET hold_placed_at = %s, hold_until = %s, hold_reason = %s,"
    " hold_actor = %s, hold_resume = %s WHERE id = %s RETURNING {}")


async def place_hold(conn: AsyncConnection, cmd: PlaceHold, *,
                     token: str | None = None) -> HoldOutcome:
    """Put the customer on hold from ``now`` (SPEC 2.11; a hold in force is replaced),
    decide the service under it (``resume``: a suspended customer resumes at once, reason
    "hold"), audited ``customer.hold``. Every open invoice hears of the hold."""
    now = _stamped(cmd.now)
    actor = cmd.actor.name if cmd.actor is not None else "system"
    try:
        hold = Hold(placed_at=now, until=cmd.until, reason=cmd.reason, actor=actor,
                    resume=cmd.resume)
    except ValueError as err:
        raise InvalidValue(str(err)) from None
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "place_hold", HoldOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        held = await _set_hold(conn, customer.id, hold)
        resume = cmd.resume and customer.service_state == "suspended"
        result = await _decided_under_hold(
            conn, customer, held, klass, now, "replaced" if customer.hold else "placed",
            RESUME_REASON if resume else "customer put on hold", resume=resume)
        if (audit := audit_of(cmd.actor)) is not None:
            await record_audit(conn, AuditEntry.of(
                _with_reason(audit, cmd.reason), "customer.hold", customer_target(customer.id),
                on_behalf_of=customer.id,
                before={"hold": customer.hold, "service_state": customer.service_state},
                after={"hold": hold, "service_state": result.service_state}))
        await store_result(conn, token, "place_hold", customer.id, result)
        return result


async def release_hold(conn: AsyncConnection, cmd: ReleaseHold, *,
                       token: str | None = None) -> HoldOutcome:
    """End the customer's hold: ``released`` by finance (audited ``customer.hold_release``)
    or ``ended`` when its ``until`` passed (``cmd.expired``; only the hold with that very
    ``until``); ``not_held`` otherwise. The service is decided again at once: a suspension
    that is due happens now (SPEC 2.11)."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "release_hold",
                                        HoldOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        hold = customer.hold
        if hold is None or (cmd.expired and (hold.until is None or hold.until != cmd.until
                                             or not ended(hold, now))):
            result = HoldOutcome(status="not_held", hold=hold,
                                 service_state=customer.service_state,
                                 service_before=customer.service_state,
                                 balance=customer.balance, class_name=klass.name)
        else:
            released = await _set_hold(conn, customer.id, None)
            why = "hold ended" if cmd.expired else "hold released"
            result = await _decided_under_hold(
                conn, customer, released, klass, now,
                "ended" if cmd.expired else "released", why)
            if result.transition is None and result.service_state == "suspended":
                # Still suspended: a termination that fell due during the hold happens
                # now; one not yet due gets the workflow's timer again (SPEC 2.9, 2.11).
                term = await _terminate_if_due(conn, await lock_customer(conn, customer.id),
                                               klass, now)
                result = replace(result, service_state=term.service_state,
                                 transition=term.transition, terminate_at=term.terminate_at,
                                 changed=term.changed or result.changed)
            if (audit := audit_of(cmd.actor)) is not None:
                await record_audit(conn, AuditEntry.of(
                    audit, "customer.hold_release", customer_target(customer.id),
                    on_behalf_of=customer.id,
                    before={"hold": hold, "service_state": customer.service_state},
                    after={"hold": None, "service_state": result.service_state}))
        await store_result(conn, token, "release_hold", customer.id, result)
        return result


async def _set_hold(conn: AsyncConnection, customer_id: str, hold: Hold | None) -> CustomerRow:
    values = ((hold.placed_at, hold.until, hold.reason, hold.actor, hold.resume)
              if hold is not None else (None, None, None, None, None))
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(_HOLD_COLUMNS.format(columns(CustomerRow)), (*values, customer_id))
        row = await cur.fetchone()
    assert row is not None
    return row


async def _decided_under_hold(conn: AsyncConnection, before: CustomerRow, customer: CustomerRow,
                              klass: ClassRow, now: datetime, status: str, reason: str, *,
                              resume: bool = False) -> HoldOutcome:
    invoices = tuple(await list_invoices(conn, customer.id))
    after, service, _ = await decide_and_record_service(conn, customer, invoices, now, reason,
                                                        resume=resume)
    return HoldOutcome(
        status=status, hold=after.hold, service_state=after.service_state,
        service_before=before.service_state, balance=after.balance,
        changed=[facts_of(i, after.hold) for i in invoices if i.payment_status != "paid"],
        transition=transition_of(service), class_name=klass.name)


# ---------------------------------------------------------------------------- termination
async def terminate_customer(conn: AsyncConnection, cmd: TerminateCustomer, *,
                             token: str | None = None) -> TerminationOutcome:
    """Terminate the customer if SPEC 2.9 says so now (``decide_termination`` on the
    stored state, the time it became suspended and the hold, under the customer's lock);
    recorded as a service event with the invoices unpaid then. ``not_due`` otherwise."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "terminate_customer",
                                        TerminationOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        result = await _terminate_if_due(conn, customer, klass, now)
        await store_result(conn, token, "terminate_customer", customer.id, result)
        return result


async def _terminate_if_due(conn: AsyncConnection, customer: CustomerRow, klass: ClassRow,
                            now: datetime) -> TerminationOutcome:
    decision = decide_termination(policy_of(klass), service_state=customer.service_state,
                                  suspended_since=customer.service_changed_at,
                                  hold=customer.hold, now=now)
    if not decision.terminate:
        return TerminationOutcome(status="not_due", reason=decision.reason,
                                  service_state=customer.service_state,
                                  service_before=customer.service_state,
                                  balance=customer.balance, terminate_at=decision.due_at,
                                  class_name=klass.name)
    invoices = tuple(await list_invoices(conn, customer.id))
    open_ = [i for i in invoices if i.payment_status != "paid"]
    causes = [i.number for i in open_ if i.suspension_reached_at is not None
              and i.collection_status == "collect"] or [i.number for i in open_]
    await conn.execute(
        "UPDATE customers SET service_state = 'terminated', service_changed_at = %s"
        " WHERE id = %s", (now, customer.id))
    cur = await conn.execute(
        "INSERT INTO service_events (customer_id, state, causes, reason, occurred_at)"
        " VALUES (%s, 'terminated', %s, %s, %s) RETURNING id",
        (customer.id, causes, decision.reason, now))
    event = await cur.fetchone()
    assert event is not None
    return TerminationOutcome(
        status="terminated", reason=decision.reason, service_state="terminated",
        service_before=customer.service_state, balance=customer.balance,
        changed=[facts_of(i, customer.hold) for i in open_],
        transition=ServiceTransition("terminated", causes, int(event[0])),
        class_name=klass.name)


async def reactivate_customer(conn: AsyncConnection, cmd: ReactivateCustomer, *,
                              token: str | None = None) -> TerminationOutcome:
    """Finance brings a terminated customer back (SPEC 2.9): the service is decided again
    under SPEC 2.4 (suspended at once if an invoice past its suspension time is still
    ``collect``), audited ``customer.reactivate``; every open invoice gets its lifecycle
    back. ``not_terminated`` otherwise (nothing changed)."""
    now = _stamped(cmd.now)
    async with conn.transaction():
        customer = await lock_customer(conn, cmd.customer_id)
        if (done := await stored_result(conn, token, "reactivate_customer",
                                        TerminationOutcome)) is not None:
            return done
        klass = await customer_class(conn, customer)
        if customer.service_state != "terminated":
            result = TerminationOutcome(
                status="not_terminated", reason=f"service {customer.service_state}",
                service_state=customer.service_state, service_before=customer.service_state,
                balance=customer.balance, class_name=klass.name)
        else:
            invoices = tuple(await list_invoices(conn, customer.id))
            reason = "reactivated" + (f": {cmd.actor.reason}"
                                      if cmd.actor is not None and cmd.actor.reason else "")
            after, service, _ = await decide_and_record_service(
                conn, customer, invoices, now, reason, resume=True, klass=klass)
            result = TerminationOutcome(
                status="reactivated", reason=reason, service_state=after.service_state,
                service_before=customer.service_state, balance=after.balance,
                changed=[facts_of(i, after.hold) for i in invoices
                         if i.payment_status != "paid"],
                transition=transition_of(service), class_name=klass.name)
            if (audit := audit_of(cmd.actor)) is not None:
                await record_audit(conn, AuditEntry.of(
                    audit, "customer.reactivate", customer_target(customer.id),
                    on_behalf_of=customer.id, before={"service_state": "terminated"},
                    after={"service_state": after.service_state}))
        await store_result(conn, token, "reactivate_customer", customer.id, result)
        return result


# -------------------------------------------------------------------------------- helpers
async def lock_payment_key(conn: AsyncConnection, processor: str, payment_id: str) -> None:
    """Serialise everything about one (processor, payment_id), matched or unmatched."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       (f"payment:{processor}\x1f{payment_id}",))


async def known_payment(conn: AsyncConnection, processor: str, payment_id: str,
                        hash_: str) -> Literal["duplicate", "conflict"] | None:
    """The one duplicate rule: the same id seen before (as a payment or an unmatched
    payment) is a duplicate with the same fingerprint, else a conflict; None: new. Asked
    only under the payment's lock (``lock_payment_key``), by apply_payment and
    record_unmatched."""
    cur = await conn.execute(
        "SELECT body_hash FROM payments WHERE processor = %s AND payment_id = %s"
        " UNION ALL SELECT body_hash FROM unmatched_payments"
        " WHERE processor = %s AND payment_id = %s LIMIT 1",
        (processor, payment_id, processor, payment_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return "duplicate" if row[0] == hash_ else "conflict"


async def _is_unmatched(conn: AsyncConnection, processor: str, payment_id: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM unmatched_payments WHERE processor = %s AND payment_id = %s"
        " AND status = 'unmatched'",
        (processor, payment_id),
    )
    return await cur.fetchone() is not None


def _allocations_of(outcome: FoldOutcome, payment_row_id: int) -> list[PaymentAllocation]:
    return [PaymentAllocation(number, amount)
            for pid, number, amount in outcome.allocations if pid == payment_row_id]


def issued(invoice: InvoiceRow) -> IssuedInvoice:
    """An invoice row as it crosses Temporal."""
    return IssuedInvoice(
        customer_id=invoice.customer_id, number=invoice.number,
        new_charges=invoice.new_charges, previous_balance=invoice.previous_balance,
        amount_due=invoice.amount_due, remaining=invoice.remaining,
        collection_status=invoice.collection_status, payment_status=invoice.payment_status,
        issued_at=invoice.issued_at, overdue_at=invoice.overdue_at,
        suspend_at=invoice.suspend_at)


def transition_of(event: ServiceEvent | None) -> ServiceTransition | None:
    """The recorded service change as it crosses Temporal (None in a dry run)."""
    if event is None or event.event_id is None:
        return None
    return ServiceTransition(state=event.state, causes=list(event.causes),
                             event_id=event.event_id, terminate_at=event.terminate_at)


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
