"""Realms and scopes of bearer tokens (SPEC 2.7, 2.8, 4.3): which endpoints a realm may use
and which customers it sees.

- ``admin``: every endpoint, every customer.
- ``system`` (the billing system's feed): the feed endpoints, and it may read every
  customer (as before realms had scopes).
- ``reseller`` (scope = reseller id): reads of the customers whose ``reseller_id`` is the
  scope; a direct customer (no reseller) is outside every reseller's scope.
- ``customer`` (scope = customer id): reads of that one customer.

Realm refusals answer 403 (``feed_caller``, ``admin_only``): they do not depend on the
customer, so they reveal nothing. A customer outside the caller's scope answers exactly
the 404 of a customer that does not exist (``not_found``), after the same database work
(``in_scope`` always runs one ``customer_scope`` query, whatever the realm), so neither
the body nor the time tells the two apart. Nothing is audited for either.

Reads through the admin and reseller realms are audited with ``on_behalf_of`` the customer
(``audited_read``, ``read_audit``; the record itself: ``operations.context.record_read`` or
``read_entry``, in the reading transaction). Customer-realm and system reads are not.

Typical use in a route::

    identity: ApiIdentity = Depends(reader)
    audit = read_audit(request, identity)          # None: not audited
    async def read(ctx):
        async with ctx.conn.transaction():
            await ensure_in_scope(ctx.conn, identity, customer_id)   # else 404
            ...read...
            await record_read(ctx, audit, customer_id, "subscriptions.read")
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from psycopg import AsyncConnection

from api.auth import FEED_REALMS, caller, forbidden
from api.deps import audit_info
from db.errors import UnknownCustomer
from db.rows import AuditInfo
from db.subscriptions import CustomerScope, customer_scope
from domain.ledger.payments import Actor
from operations.context import AUDITED_READ_REALMS, actor_of, read_entry, record_read
from settings import ApiIdentity

__all__ = [
    "AUDITED_READ_REALMS", "FEED_REALMS", "READ_REASON", "AdminOnly", "FeedCaller", "Reader",
    "admin_only", "audited_read", "ensure_in_scope", "feed_caller", "in_scope",
    "list_filter", "not_found", "read_actor", "read_audit", "read_entry", "record_read",
    "reader", "sees",
]

# The reason stored on read audit records (as GET /v1/customers/{id} always did).
READ_REASON = "api read"


# ------------------------------------------------------------------------------ scope
def sees(identity: ApiIdentity, scope: CustomerScope) -> bool:
    """Whether ``identity`` may see the (existing) customer described by ``scope``."""
    match identity.realm:
        case "admin" | "system":
            return True
        case "reseller":
            return identity.scope is not None and scope.visible_to_reseller(identity.scope)
        case "customer":
            return identity.scope is not None and scope.customer_id == identity.scope
        case _:
            return False  # an unknown realm sees nothing (fail closed)


async def in_scope(conn: AsyncConnection, identity: ApiIdentity, customer_id: str) -> bool:
    """The customer exists and ``identity`` may see it.

    admin/system: it exists; reseller: it exists and its reseller_id is the scope;
    customer: ``customer_id`` is the scope and it exists. Always exactly one query (also for
    a customer token asking for another id), so in and out of scope cost the same.
    """
    found = await customer_scope(conn, customer_id)
    return found is not None and sees(identity, found)


def not_found(customer_id: str) -> HTTPException:
    """The 404 of a customer that does not exist, ``{"detail": "unknown customer '<id>'"}``;
    answered for one outside the caller's scope too, so the two are indistinguishable."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(UnknownCustomer(customer_id)))


async def ensure_in_scope(conn: AsyncConnection, identity: ApiIdentity,
                          customer_id: str) -> None:
    """``in_scope`` or raise ``not_found(customer_id)``."""
    if not await in_scope(conn, identity, customer_id):
        raise not_found(customer_id)


def list_filter(identity: ApiIdentity) -> tuple[str | None, str | None]:
    """``(reseller_id, customer_id)`` to filter a list endpoint by: admin/system
    ``(None, None)`` (everything), reseller ``(scope, None)``, customer ``(None, scope)``.
    An unknown realm raises ValueError rather than seeing everything."""
    match identity.realm:
        case "admin" | "system":
            return None, None
        case "reseller":
            return identity.scope, None
        case "customer":
            return None, identity.scope
    raise ValueError(f"no list scope for realm {identity.realm!r}")


# ------------------------------------------------------------------------------ audit
def audited_read(identity: ApiIdentity) -> bool:
    """Reads through the admin and reseller realms are audited (SPEC 2.7, 2.8)."""
    return identity.realm in AUDITED_READ_REALMS


def read_audit(request: Request, identity: ApiIdentity,
               reason: str | None = READ_REASON) -> AuditInfo | None:
    """Who reads, for the read's audit record (actor, realm, reason, request id); None when
    this realm's reads are not audited. ``on_behalf_of`` is set per customer by
    ``read_entry`` / ``record_read`` (and by ``customer_status``)."""
    return audit_info(request, identity, reason) if audited_read(identity) else None


def read_actor(request: Request, identity: ApiIdentity, customer_id: str,
               reason: str | None = READ_REASON) -> Actor | None:
    """The same as an ``Actor`` (as workflows carry it) with ``on_behalf_of=customer_id``;
    None when not audited."""
    return actor_of(read_audit(request, identity, reason), on_behalf_of=customer_id)


# ----------------------------------------------------------------------- dependencies
async def reader(identity: ApiIdentity = Depends(caller)) -> ApiIdentity:
    """Any realm with a valid token (401 otherwise); scope with ``in_scope``/``list_filter``."""
    return identity


async def feed_caller(identity: ApiIdentity = Depends(caller)) -> ApiIdentity:
    """The billing system's feed: realm ``system`` or ``admin``, else 403."""
    if identity.realm not in FEED_REALMS:
        raise forbidden(identity)
    return identity


async def admin_only(identity: ApiIdentity = Depends(caller)) -> ApiIdentity:
    """Realm ``admin``, else 403."""
    if identity.realm != "admin":
        raise forbidden(identity)
    return identity


Reader = Annotated[ApiIdentity, Depends(reader)]
FeedCaller = Annotated[ApiIdentity, Depends(feed_caller)]
AdminOnly = Annotated[ApiIdentity, Depends(admin_only)]
