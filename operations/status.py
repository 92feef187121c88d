"""The status document of SPEC 4.2 (`dunning status`, `GET /v1/customers/{id}`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from db.collection.status import customer_status as status_document
from db.rows import AuditInfo
from operations.context import Context


async def customer_status(ctx: Context, customer_id: str, *, audit: AuditInfo | None,
                          now: datetime | None = None) -> dict[str, Any]:
    """``audit`` is given for reads through the admin interfaces (SPEC 2.7)."""
    return await status_document(ctx.conn, customer_id, now or datetime.now(UTC), audit=audit)
