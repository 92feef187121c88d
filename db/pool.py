"""The connection pool every process (worker, API) opens on the Dunning database."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


def open_pool(conninfo: str, *, max_size: int = 10) -> AsyncConnectionPool:
    # Autocommit: every ledger function opens its own transaction (or savepoint), so an
    # idle connection never sits inside one.
    return AsyncConnectionPool(conninfo, min_size=1, max_size=max_size, open=False,
                               kwargs={"autocommit": True})
