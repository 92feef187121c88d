"""Finance puts a customer on hold and releases it (SPEC 2.11, 4.2 `dunning hold`), and
reactivates a terminated customer (SPEC 2.9 `dunning customer reactivate`).

A hold changes what the ledger decides (no suspension, no fee), so it goes to the
customer's workflow (the single writer), whose transaction stores it, decides the service
under it and audits it (``customer.hold``, ``customer.hold_release``). The workflow ends a
hold with an ``until`` by its own timer.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from temporalio.service import RPCError

from client import customers
from client.customers import UpdateRefused
from db.collection.status import hold_document
from db.customers import get_customer_with_class
from db.rows import AuditInfo
from domain.ledger.commands import HoldOutcome, PlaceHold, ReactivateCustomer, ReleaseHold
from domain.when import parse_when
from operations.context import Context, actor_of
from operations.errors import NotFound, OperationError, Unavailable


async def place_hold(ctx: Context, customer_id: str, audit: AuditInfo, *,
                     until: str | None = None, resume: bool = False) -> dict[str, Any]:
    """``placed`` or ``replaced``. ``until``: a WHEN in the class's time zone (a date is
    its midnight); None: until released. A reason is required (audit.reason)."""
    if not audit.reason or not audit.reason.strip():
        raise OperationError("a hold needs a reason (--reason)", "reason")
    found = await get_customer_with_class(ctx.conn, customer_id)
    if found is None:
        raise NotFound(f"unknown customer {customer_id!r}")
    customer, klass = found
    try:
        until_at = None if until is None else parse_when(until, klass.timezone, "--until")
    except ValueError as err:
        raise OperationError(str(err), "until") from None
    command = PlaceHold(customer.id, reason=audit.reason.strip(), until=until_at,
                        resume=resume, actor=actor_of(audit, customer.id))
    outcome = await _ask(ctx, lambda client, queue: customers.place_hold(
        client, queue, command, delivery=uuid4().hex), "placed")
    return document(customer.id, outcome)


async def release_hold(ctx: Context, customer_id: str, audit: AuditInfo) -> dict[str, Any]:
    """``released``; ``not_held`` is an answer too (nothing changed)."""
    found = await get_customer_with_class(ctx.conn, customer_id)
    if found is None:
        raise NotFound(f"unknown customer {customer_id!r}")
    customer, _ = found
    command = ReleaseHold(customer.id, actor=actor_of(audit, customer.id))
    outcome = await _ask(ctx, lambda client, queue: customers.release_hold(
        client, queue, command, delivery=uuid4().hex), "released")
    return document(customer.id, outcome)


async def _ask(ctx: Context, send: Any, what: str) -> HoldOutcome:
    try:
        return await send(await ctx.client(), ctx.settings.task_queue)
    except UpdateRefused as err:
        raise OperationError(str(err), "until") from None
    except (RPCError, RuntimeError) as err:
        raise Unavailable(f"the hold is not {what}: Temporal is not reachable ({err}); run "
                          "the same command again") from None


def document(customer_id: str, outcome: HoldOutcome) -> dict[str, Any]:
    return {"status": outcome.status, "customer_id": customer_id,
            "hold": hold_document(outcome.hold), "service_state": outcome.service_state}


async def reactivate(ctx: Context, customer_id: str, audit: AuditInfo) -> dict[str, Any]:
    """Bring a terminated customer back under SPEC 2.4 (SPEC 2.9 `dunning customer
    reactivate`): ``reactivated``; ``not_terminated`` changes nothing."""
    found = await get_customer_with_class(ctx.conn, customer_id)
    if found is None:
        raise NotFound(f"unknown customer {customer_id!r}")
    customer, _ = found
    command = ReactivateCustomer(customer.id, actor=actor_of(audit, customer.id))
    try:
        outcome = await customers.reactivate(await ctx.client(), ctx.settings.task_queue,
                                             command, delivery=uuid4().hex)
    except UpdateRefused as err:
        raise OperationError(str(err)) from None
    except (RPCError, RuntimeError) as err:
        raise Unavailable(f"{customer.id} is not reactivated: Temporal is not reachable "
                          f"({err}); run the same command again") from None
    return {"status": outcome.status, "customer_id": customer.id,
            "service_state": outcome.service_state, "reason": outcome.reason}
