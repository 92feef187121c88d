"""What an operation needs: settings, one database connection, a Temporal client on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import psycopg
from temporalio.client import Client

from client.connect import connect
from db.audit import customer_target, record_audit
from db.rows import AuditEntry, AuditInfo
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


# Realms whose reads of a customer's data are audited (SPEC 2.7, 2.8). A customer reading
# itself and the billing system's feed are not: neither is a person acting for a customer.
AUDITED_READ_REALMS = frozenset({"admin", "reseller"})
READ_ACTION = "customer.read"


def read_entry(audit: AuditInfo, customer_id: str, action: str = READ_ACTION,
               target: str | None = None) -> AuditEntry:
    """The audit record of a read of ``customer_id``'s data, ``on_behalf_of`` that customer
    (the same record ``customer_status`` writes for ``GET /v1/customers/{id}``).
    ``target`` defaults to ``customer:ID``."""
    return AuditEntry.of(audit, action, target or customer_target(customer_id),
                         on_behalf_of=customer_id)


async def record_read(ctx: Context, audit: AuditInfo | None, customer_id: str,
                      action: str = READ_ACTION, target: str | None = None) -> None:
    """Record a read in the caller's transaction; nothing when ``audit`` is None (the realm's
    reads are not audited). Call it inside the transaction that reads, so the read and its
    record commit together (SPEC 2.7)."""
    if audit is not None:
        await record_audit(ctx.conn, read_entry(audit, customer_id, action, target))
