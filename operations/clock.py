"""`dunning clock`: read and move one customer's workflow clocks, on a Temporal server that
skips time (the dev server `dunning dev` starts). For demos and end-to-end tests of
stories that last weeks; a production server refuses (``client.clock``).

Moving time changes what happens next (fees, suspensions, terminations come due), so a
move is audited (``clock.advance``) with where the clock was and where it went.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.service import RPCError

from client import clock
from db.audit import customer_target, record_audit
from db.customers import get_customer_with_class
from db.rows import AuditEntry, AuditInfo
from domain.when import format_duration, parse_duration, parse_when
from operations.context import Context
from operations.errors import NotFound, OperationError, Unavailable


async def show_clock(ctx: Context, customer_id: str) -> dict[str, Any]:
    zone = await _customer(ctx, customer_id)
    try:
        found = await clock.clocks(await ctx.client(), customer_id)
    except clock.ClockError as err:
        raise OperationError(str(err)) from None
    except (RPCError, RuntimeError) as err:
        raise Unavailable(f"Temporal is not reachable ({err})") from None
    return {"customer_id": customer_id, "now": _iso(found[0].now, zone),
            "workflows": [_workflow(c, zone) for c in found]}


async def advance_clock(ctx: Context, customer_id: str, audit: AuditInfo, *,
                        by: str | None = None, to: str | None = None) -> dict[str, Any]:
    """Move the customer's workflows ``by`` a duration or ``to`` a WHEN (the class's time
    zone), stopping at every event on the way."""
    if (by is None) == (to is None):
        raise OperationError("give exactly one of --by DURATION or --to WHEN", "by")
    zone = await _customer(ctx, customer_id)
    client = await ctx.client()
    try:
        before = (await clock.clocks(client, customer_id))[0].now
        try:
            target = before + parse_duration(by) if by is not None else parse_when(
                to or "", zone.key, "--to")
        except ValueError as err:
            raise OperationError(str(err), "by" if by is not None else "to") from None
        if target <= before:
            raise OperationError(f"--to {to} is not after the customer's clock "
                                 f"({_iso(before, zone)}); time only moves forward", "to")
        moved = await clock.advance(client, customer_id, target)
    except clock.ClockError as err:
        raise OperationError(str(err)) from None
    except (RPCError, RuntimeError) as err:
        raise Unavailable(f"the clock did not move: Temporal is not reachable ({err})"
                          ) from None
    await record_audit(ctx.conn, AuditEntry.of(
        audit, "clock.advance", customer_target(customer_id), on_behalf_of=customer_id,
        before={"now": _iso(before, zone)},
        after={"now": _iso(moved.now, zone), "by": format_duration(timedelta(
            seconds=round((target - before).total_seconds())))}))
    return {"customer_id": customer_id, "from": _iso(before, zone),
            "now": _iso(moved.now, zone),
            "stops": [{"at": _iso(at, zone), "event": what} for at, what in moved.stops]}


async def _customer(ctx: Context, customer_id: str) -> ZoneInfo:
    """The customer's class's time zone: times read and printed there, as finance reads
    the class's policy."""
    found = await get_customer_with_class(ctx.conn, customer_id)
    if found is None:
        raise NotFound(f"unknown customer {customer_id!r}")
    return ZoneInfo(found[1].timezone)


def _workflow(c: clock.WorkflowClock, zone: ZoneInfo) -> dict[str, Any]:
    return {"workflow_id": c.workflow_id, "now": _iso(c.now, zone), "next_event": c.next_event,
            "next_event_at": _iso(c.next_event_at, zone) if c.next_event_at else None}


def _iso(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds")
