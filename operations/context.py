"""What an operation needs: settings, one database connection, a Temporal client on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import psycopg
from temporalio.client import Client

from client.connect import connect
from db.rows import AuditInfo
from domain.ledger.payments import Actor
from settings import Settings


@dataclass
class Context:
    settings: Settings
    conn: psycopg.AsyncConnection
    _client: Client | None = field(default=None, repr=False)

    async def client(self) -> Client:
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client


@asynccontextmanager
async def open_context(settings: Settings, client: Client | None = None) -> AsyncIterator[Context]:
    # Autocommit: each db function opens its own transaction where it needs one.
    async with await psycopg.AsyncConnection.connect(settings.database_url,
                                                     autocommit=True) as conn:
        yield Context(settings=settings, conn=conn, _client=client)


def actor_of(audit: AuditInfo | None, on_behalf_of: str | None = None) -> Actor | None:
    """Who asks, as the workflows carry it (the audit record's actor, realm and reason)."""
    if audit is None:
        return None
    return Actor(name=audit.actor, realm=audit.realm, reason=audit.reason,
                 request_id=audit.request_id, on_behalf_of=on_behalf_of)
