"""Idempotency of retried operations (customer_operations).

Temporal may run an activity again after its first attempt committed. The first attempt
stores its result under the activity's token in the same transaction as its writes; a
retry finds it and returns it unchanged, so the caller sees "accepted" rather than
"duplicate" and the same service transition.
"""

from __future__ import annotations

from typing import TypeVar

from psycopg import AsyncConnection

from db.codec import from_jsonable, jsonb
from db.errors import TokenReused

T = TypeVar("T")


async def stored_result(conn: AsyncConnection, token: str | None, kind: str,
                        result_type: type[T]) -> T | None:
    """The result stored under ``token`` by an earlier attempt, else None."""
    if token is None:
        return None
    cur = await conn.execute(
        "SELECT kind, result FROM customer_operations WHERE token = %s", (token,)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    if row[0] != kind:
        raise TokenReused(token, row[0], kind)
    return from_jsonable(result_type, row[1])


async def store_result(conn: AsyncConnection, token: str | None, kind: str,
                       customer_id: str | None, result: object) -> None:
    """Record ``result`` under ``token`` in the caller's transaction (no-op without a token)."""
    if token is None:
        return
    await conn.execute(
        "INSERT INTO customer_operations (token, customer_id, kind, result)"
        " VALUES (%s, %s, %s, %s)",
        (token, customer_id, kind, jsonb(result)),
    )
