"""The status document of SPEC 4.2 (`dunning status`, `GET /v1/customers/{id}`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from db.collection.status import customer_status as status_document
from db.rows import AuditInfo
from operations.context import Context


async def customer_status(ctx: Context, customer_id: str, *, audit: AuditInfo | None,
                          now: datetime | None = None) -> dict[str, Any]:
    """``audit`` is given for reads through the admin and reseller realms (SPEC 2.7, 2.8):
    the read then writes a ``customer.read`` record ``on_behalf_of`` the customer (see
    ``operations.context.read_entry``) in its own transaction. Scope checks are the
    caller's (``api.scopes``)."""
    return await status_document(ctx.conn, customer_id, now or datetime.now(UTC), audit=audit)
