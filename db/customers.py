"""Customers: add and read. Balance, credit and service state are written by
db/ledger/transactions.py."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from psycopg import AsyncConnection, errors, sql
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


# ------------------------------------------------------------------- create or replace
@dataclass(frozen=True)
class CustomerSpec:
    """What the billing system says a customer is (PUT /v1/customers/{id}): the whole
    record, so ``language`` None means the class default and ``reseller_id`` None a direct
    customer. Balance and service state are the ledger's, never part of it."""

    id: str
    name: str
    email: str
    class_name: str
    language: str | None = None
    reseller_id: str | None = None


@dataclass(frozen=True)
class PutCustomerResult:
    """``unchanged``: the same record is stored (nothing written, ``before`` == ``after``);
    ``conflict``: other data and no replacing asked (nothing written)."""

    status: Literal["created", "replaced", "unchanged", "conflict"]
    before: CustomerRow | None
    after: CustomerRow


class CustomerRefused(InvalidValue):
    """A customer write refused, nothing written; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


LANGUAGES = ("en", "es", "pt-BR")
# The customers_email_shape CHECK of 001, checked first for a message naming the field.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(CustomerSpec))
_SETTABLE = tuple(name for name in _SPEC_FIELDS if name != "id")
# Constraint -> field, for refusals only the database could make (a concurrent change).
_CUSTOMER_CONSTRAINTS = {
    "customers_id_present": "id", "customers_name_single_line": "name",
    "customers_email_shape": "email", "customers_language": "language",
    "customers_reseller_id_present": "reseller_id", "customers_class_name_fkey": "class_name",
}


def customer_spec(row: CustomerRow) -> CustomerSpec:
    return CustomerSpec(**{name: getattr(row, name) for name in _SPEC_FIELDS})


async def get_customer_for_update(conn: AsyncConnection, customer_id: str) -> CustomerRow | None:
    """The customer locked until the caller's transaction ends (call it inside one)."""
    query = sql.SQL("SELECT {} FROM customers WHERE id = %s FOR UPDATE").format(
        columns(CustomerRow))
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(query, (customer_id,))
        return await cur.fetchone()


async def put_customer(conn: AsyncConnection, spec: CustomerSpec, audit: AuditInfo, *,
                       replace: bool = True) -> PutCustomerResult:
    """Create or replace a customer and its audit record in one transaction; idempotent.

    ``replace`` False: an existing customer with other data is a ``conflict`` (as
    ``add_customer``). Audit: ``customer.create`` (after) or ``customer.replace``
    (before/after), ``on_behalf_of`` the customer; nothing for unchanged or conflict.
    Raises CustomerRefused (with ``field``) and UnknownClass; nothing is written then.
    A class of another currency is refused once the customer has invoices, payments or
    subscriptions (their amounts are in the old one).
    """
    check_customer_spec(spec)
    try:
        async with conn.transaction():
            if await get_class(conn, spec.class_name) is None:
                raise UnknownClass(spec.class_name)
            return await _put_customer(conn, spec, audit, replace)
    except errors.IntegrityError as err:
        raise _customer_refusal(err) from err


def check_customer_spec(spec: CustomerSpec) -> None:
    """The schema's rules on a customer, as refusals naming their field."""
    if not spec.id.strip():
        raise CustomerRefused("customer id must not be empty", "id")
    if not spec.name.strip():
        raise CustomerRefused("name must not be empty", "name")
    if "\n" in spec.name or "\r" in spec.name:
        raise CustomerRefused("name must be a single line", "name")
    if not re.fullmatch(EMAIL_PATTERN, spec.email):
        # repr: a value with a line break must not break the one-line error.
        raise CustomerRefused(f"email {spec.email!r} is not an address like ana@example.com",
                              "email")
    if spec.language is not None and spec.language not in LANGUAGES:
        raise CustomerRefused(f"language must be en, es or pt-BR, not {spec.language!r}",
                              "language")
    if spec.reseller_id is not None and not spec.reseller_id.strip():
        raise CustomerRefused("reseller id must not be empty", "reseller_id")


async def _put_customer(conn: AsyncConnection, spec: CustomerSpec, audit: AuditInfo,
                        replace: bool) -> PutCustomerResult:
    # Twice at most: a customer inserted by a concurrent PUT between our lock and our
    # insert is then locked and compared like any existing one.
    for _ in range(2):
        before = await get_customer_for_update(conn, spec.id)
        if before is None:
            created = await _insert_customer(conn, spec)
            if created is None:
                continue
            await record_audit(conn, AuditEntry.of(
                audit, "customer.create", customer_target(spec.id), on_behalf_of=spec.id,
                after=created))
            return PutCustomerResult("created", None, created)
        if customer_spec(before) == spec:
            return PutCustomerResult("unchanged", before, before)
        if not replace:
            return PutCustomerResult("conflict", before, before)
        after = await _update_customer(conn, spec)
        await record_audit(conn, AuditEntry.of(
            audit, "customer.replace", customer_target(spec.id), on_behalf_of=spec.id,
            before=before, after=after))
        return PutCustomerResult("replaced", before, after)
    raise RuntimeError(f"customer {spec.id} kept changing under the write")


async def _insert_customer(conn: AsyncConnection, spec: CustomerSpec) -> CustomerRow | None:
    query = sql.SQL(
        "INSERT INTO customers ({cols}) VALUES ({params}) ON CONFLICT (id) DO NOTHING"
        " RETURNING {ret}"
    ).format(cols=sql.SQL(", ").join(map(sql.Identifier, _SPEC_FIELDS)),
             params=sql.SQL(", ").join(sql.Placeholder() * len(_SPEC_FIELDS)),
             ret=columns(CustomerRow))
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(query, [getattr(spec, name) for name in _SPEC_FIELDS])
        return await cur.fetchone()


async def _update_customer(conn: AsyncConnection, spec: CustomerSpec) -> CustomerRow:
    query = sql.SQL("UPDATE customers SET {updates} WHERE id = %s RETURNING {ret}").format(
        updates=sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name))
                                   for name in _SETTABLE),
        ret=columns(CustomerRow))
    async with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        await cur.execute(query, [*(getattr(spec, name) for name in _SETTABLE), spec.id])
        after = await cur.fetchone()
    assert after is not None  # locked FOR UPDATE above
    return after


def _customer_refusal(err: errors.IntegrityError) -> CustomerRefused:
    constraint = err.diag.constraint_name or ""
    if constraint in _CUSTOMER_CONSTRAINTS:
        field = _CUSTOMER_CONSTRAINTS[constraint]
        return CustomerRefused(err.diag.message_primary or str(err), field)
    # The currency locks of 001 (invoices, payments) and 005 (subscriptions) are triggers
    # on a class change; their messages already say why.
    return CustomerRefused(err.diag.message_primary or str(err), "class_name")
