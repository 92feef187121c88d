"""Reading the audit trail (`dunning audit`)."""

from __future__ import annotations

from typing import Any

from db.audit import list_audit
from operations.context import Context


async def list_records(ctx: Context, customer_id: str | None, limit: int) -> list[dict[str, Any]]:
    records = await list_audit(ctx.conn, customer_id=customer_id, limit=limit)
    return [{"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "realm": r.realm,
             "on_behalf_of": r.on_behalf_of, "action": r.action, "target": r.target,
             "reason": r.reason, "request_id": r.request_id, "before": r.before,
             "after": r.after} for r in records]
