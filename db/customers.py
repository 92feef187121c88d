"""Customers: add and read. Balance, credit and service state are written by
db/ledger/transactions.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.audit import customer_target, record_audit
from db.classes import get_class
from db.errors import InvalidValue, UnknownClass
from db.rows import AuditEntry, AuditInfo, ClassRow, CustomerRow, columns


@dataclass(frozen=True)
class NewCustomer:
    id: str
    name: str
    email: str
    class_name: str
    language: str | None = None  # None: the class default applies


@dataclass(frozen=True)
class AddCustomerResult:
    """``exists``: same data already stored; ``conflict``: same id, other data (nothing written)."""

    status: Literal["created", "exists", "conflict"]
    customer: CustomerRow


async def get_customer(conn: AsyncConnection, customer_id: str) -> CustomerRow | None:
    query = sql.SQL("SELECT {} FROM customers WHERE id = %s").format(columns(CustomerRow))
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(query, (customer_id,))
        return await cur.fetchone()


async def get_customer_with_class(
    conn: AsyncConnection, customer_id: str
) -> tuple[CustomerRow, ClassRow] | None:
    """The customer and its class (sender, language, currency, policy), or None."""
    customer = await get_customer(conn, customer_id)
    if customer is None:
        return None
    klass = await get_class(conn, customer.class_name)
    assert klass is not None  # foreign key
    return customer, klass


async def add_customer(
    conn: AsyncConnection, new: NewCustomer, audit: AuditInfo
) -> AddCustomerResult:
    """Insert a customer and its audit record in one transaction; idempotent by id."""
    if not new.id.strip():
        raise InvalidValue("customer id must not be empty")
    if new.language is not None and new.language not in ("en", "es", "pt-BR"):
        raise InvalidValue(f"language must be en, es or pt-BR, not '{new.language}'")
    async with conn.transaction():
        if await get_class(conn, new.class_name) is None:
            raise UnknownClass(new.class_name)
        query = sql.SQL(
            "INSERT INTO customers (id, name, email, class_name, language)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING {}"
        ).format(columns(CustomerRow))
        async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
            await cur.execute(query, (new.id, new.name, new.email, new.class_name, new.language))
            created = await cur.fetchone()
        if created is None:
            existing = await get_customer(conn, new.id)
            assert existing is not None
            same = (existing.name, existing.email, existing.class_name, existing.language) == (
                new.name, new.email, new.class_name, new.language)
            return AddCustomerResult("exists" if same else "conflict", existing)
        await record_audit(conn, AuditEntry.of(audit, "customer.create", customer_target(new.id),
                                               on_behalf_of=new.id, after=created))
        return AddCustomerResult("created", created)
