"""Accounts, subscriptions and resellers (SPEC 2.8): the feed's writes and the reads behind
the consolidated view and the paginated list (SPEC 4.3).

Writes are create-or-replace and idempotent: ``put_account`` / ``put_subscription`` answer
``created``, ``replaced`` or ``unchanged`` (same content: nothing written, no audit record).
Each write and its audit record happen in one transaction (SPEC 2.7). Refusals raise
``SubscriptionRefused`` (a ``DbError``: nothing was written) whose ``field`` names the input
at fault, so the HTTP edge can answer a 422 field error.

Audit targets: ``account:ID``, ``subscription:ID``; records carry ``on_behalf_of`` = the
customer. Money is ``int`` minor units of the customer's class currency.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import class_row

from db.audit import customer_target, record_audit
from db.errors import DbError, UnknownCustomer
from db.rows import AuditEntry, AuditInfo, columns
from domain.money import MAX_MAJOR_UNITS, MoneyError
from domain.money import currency as lookup_currency

SubscriptionStatus = Literal["active", "closed"]
PutStatus = Literal["created", "replaced", "unchanged"]

# The largest page ``subscriptions_page`` serves; the HTTP edge picks its own default.
MAX_PAGE = 1000


# --------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class AccountRow:
    id: str
    customer_id: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SubscriptionRow:
    """``ends`` and ``free_until`` are inclusive last days, in the class's time zone."""

    id: str
    customer_id: str
    account_id: str
    product: str
    fee: int
    currency: str
    starts: date
    ends: date | None
    free_until: date | None
    status: str
    created_at: datetime
    updated_at: datetime


# -------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class AccountSpec:
    """What the feed says an account is; ``customer_id`` can never change once stored."""

    id: str
    customer_id: str
    name: str = ""


@dataclass(frozen=True)
class SubscriptionSpec:
    """What the feed says a subscription is. ``fee``: monthly, minor units of ``currency``,
    which must be the customer's class currency. ``ends`` / ``free_until``: inclusive."""

    id: str
    customer_id: str
    account_id: str
    product: str
    fee: int
    currency: str
    starts: date
    ends: date | None = None
    free_until: date | None = None
    status: SubscriptionStatus = "active"


RowT = TypeVar("RowT", AccountRow, SubscriptionRow)


@dataclass(frozen=True)
class PutResult(Generic[RowT]):
    """``before`` is None when created; when unchanged, ``before`` == ``after``."""

    status: PutStatus
    before: RowT | None
    after: RowT


@dataclass(frozen=True)
class SetResellerResult:
    status: Literal["updated", "unchanged"]
    before: str | None
    after: str | None


@dataclass(frozen=True)
class CustomerScope:
    """Who may see a customer: ``reseller_id`` None means a direct customer (admin only).

    ``customer_scope`` returns None for a customer that does not exist; the HTTP edge
    answers that and "outside your scope" identically (SPEC 2.8, 4.3).
    """

    customer_id: str
    reseller_id: str | None

    def visible_to_reseller(self, reseller_id: str) -> bool:
        return self.reseller_id is not None and self.reseller_id == reseller_id


class SubscriptionRefused(DbError):
    """An account, subscription or reseller write refused; nothing was written.

    ``field``: the input at fault (``"fee"``, ``"account_id"``, ...) or None.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_ACCOUNT_FIELDS = tuple(f.name for f in dataclasses.fields(AccountSpec))
_SUBSCRIPTION_FIELDS = tuple(f.name for f in dataclasses.fields(SubscriptionSpec))


def account_target(account_id: str) -> str:
    return f"account:{account_id}"


def subscription_target(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


def account_spec(row: AccountRow) -> AccountSpec:
    return AccountSpec(**{name: getattr(row, name) for name in _ACCOUNT_FIELDS})


def subscription_spec(row: SubscriptionRow) -> SubscriptionSpec:
    return SubscriptionSpec(**{name: getattr(row, name) for name in _SUBSCRIPTION_FIELDS})


# ------------------------------------------------------------------------------- writes
async def put_account(
    conn: AsyncConnection, spec: AccountSpec, audit: AuditInfo
) -> PutResult[AccountRow]:
    """Create or replace an account (and audit it) in one transaction; idempotent.

    Refused (SubscriptionRefused): a blank id, a name with a line break, an unknown
    customer, an account that already belongs to another customer.
    """
    _require_id(spec.id, "account id", "id")
    _require_id(spec.customer_id, "customer id", "customer_id")
    if "\n" in spec.name or "\r" in spec.name:
        raise SubscriptionRefused("account name must be a single line", "name")
    try:
        return await _put(conn, spec, audit, _ACCOUNTS)
    except errors.IntegrityError as err:
        raise _refusal(err, spec.customer_id, None) from err


async def put_subscription(
    conn: AsyncConnection, spec: SubscriptionSpec, audit: AuditInfo
) -> PutResult[SubscriptionRow]:
    """Create or replace a subscription (and audit it) in one transaction; idempotent.

    Refused (SubscriptionRefused): blank ids or product, a negative or absurd fee, an end
    before the start, closed without an end, an unknown status, a currency other than the
    class's, an unknown customer or account, an account of another customer, moving an
    existing subscription to another customer. Moving it to another account of the same
    customer is a replacement like any other.
    """
    _validate_subscription(spec)
    try:
        return await _put(conn, spec, audit, _SUBSCRIPTIONS)
    except errors.IntegrityError as err:
        # The checks above catch these first; this maps what a concurrent change (or a rule
        # only the database knows) refused into the same clear messages.
        raise _refusal(err, spec.customer_id, spec) from err


async def set_reseller(
    conn: AsyncConnection, customer_id: str, reseller_id: str | None, audit: AuditInfo
) -> SetResellerResult:
    """Put a customer under a reseller (None: a direct customer) and audit it.

    Raises UnknownCustomer for a missing customer, SubscriptionRefused for a blank id.
    Audit action ``customer.reseller`` with before/after ``{"reseller_id": ...}``.
    """
    if reseller_id is not None and not reseller_id.strip():
        raise SubscriptionRefused("reseller id must not be empty", "reseller_id")
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT reseller_id FROM customers WHERE id = %s FOR UPDATE", (customer_id,))
        row = await cur.fetchone()
        if row is None:
            raise UnknownCustomer(customer_id)
        before = row[0]
        if before == reseller_id:
            return SetResellerResult("unchanged", before, before)
        await conn.execute("UPDATE customers SET reseller_id = %s WHERE id = %s",
                           (reseller_id, customer_id))
        await record_audit(conn, AuditEntry.of(
            audit, "customer.reseller", customer_target(customer_id), on_behalf_of=customer_id,
            before={"reseller_id": before}, after={"reseller_id": reseller_id}))
        return SetResellerResult("updated", before, reseller_id)


# -------------------------------------------------------------------------------- reads
async def customer_scope(conn: AsyncConnection, customer_id: str) -> CustomerScope | None:
    """The customer's reseller for scope checks; None when the customer does not exist."""
    cur = await conn.execute("SELECT id, reseller_id FROM customers WHERE id = %s",
                             (customer_id,))
    row = await cur.fetchone()
    return None if row is None else CustomerScope(row[0], row[1])


async def get_account(conn: AsyncConnection, account_id: str) -> AccountRow | None:
    return await _get(conn, _ACCOUNTS, account_id, lock=False)


async def get_subscription(conn: AsyncConnection, subscription_id: str) -> SubscriptionRow | None:
    return await _get(conn, _SUBSCRIPTIONS, subscription_id, lock=False)


async def customer_subscriptions(
    conn: AsyncConnection, customer_id: str
) -> list[tuple[AccountRow, list[SubscriptionRow]]]:
    """Every account of the customer (by id) with its subscriptions (by id); accounts with
    none are included. Empty for a customer with no accounts or no such customer (check
    ``customer_scope`` first). One statement, so accounts and subscriptions are one
    snapshot."""
    query = sql.SQL(
        """
        SELECT {acols}, {scols}
          FROM accounts a
          LEFT JOIN subscriptions s ON s.customer_id = a.customer_id AND s.account_id = a.id
         WHERE a.customer_id = %s
         ORDER BY a.id, s.id
        """
    ).format(acols=columns(AccountRow, "a"), scols=columns(SubscriptionRow, "s"))
    width = len(dataclasses.fields(AccountRow))
    result: list[tuple[AccountRow, list[SubscriptionRow]]] = []
    cur = await conn.execute(query, (customer_id,))
    for row in await cur.fetchall():
        account = AccountRow(*row[:width])
        if not result or result[-1][0].id != account.id:
            result.append((account, []))
        if row[width] is not None:  # s.id: NULL only for an account with no subscriptions
            result[-1][1].append(SubscriptionRow(*row[width:]))
    return result


async def subscriptions_page(
    conn: AsyncConnection, *, reseller_id: str | None, customer_id: str | None,
    after: tuple[str, str, str] | None, limit: int,
) -> list[SubscriptionRow]:
    """One page of subscriptions in (customer_id, account_id, id) order.

    ``reseller_id``: only that reseller's customers; ``customer_id``: only that customer;
    both None: everyone (admin). ``after``: the (customer_id, account_id, id) of the last
    row of the previous page, None for the first page. A keyset, not an OFFSET: a row
    inserted or deleted elsewhere never shifts the rest, so a walk returns every row that
    exists throughout exactly once (rows added behind the cursor are simply not seen).
    A page shorter than ``limit`` is the last one.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    # Only the conditions that apply are written: "%s IS NULL OR ..." would leave the
    # planner a generic plan that cannot use the index once psycopg prepares the statement.
    where: list[sql.Composable] = []
    params: list[object] = []
    join = sql.SQL("")
    if reseller_id is not None:
        join = sql.SQL("JOIN customers c ON c.id = s.customer_id")
        where.append(sql.SQL("c.reseller_id = %s"))
        params.append(reseller_id)
    if customer_id is not None:
        where.append(sql.SQL("s.customer_id = %s"))
        params.append(customer_id)
    if after is not None:
        # Row comparison: exactly the index order, so it is one range scan.
        where.append(sql.SQL("(s.customer_id, s.account_id, s.id) > (%s, %s, %s)"))
        params.extend(after)
    params.append(limit)
    query = sql.SQL(
        "SELECT {cols} FROM subscriptions s {join} {where}"
        " ORDER BY s.customer_id, s.account_id, s.id LIMIT %s"
    ).format(
        cols=columns(SubscriptionRow, "s"),
        join=join,
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    async with conn.cursor(row_factory=class_row(SubscriptionRow)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def page_cursor(row: SubscriptionRow) -> tuple[str, str, str]:
    """The ``after`` key that continues a walk past ``row``."""
    return (row.customer_id, row.account_id, row.id)


async def subscriptions_of_customers(
    conn: AsyncConnection, customer_ids: Sequence[str]
) -> dict[str, list[SubscriptionRow]]:
    """All subscriptions of the given customers, in page order, keyed by customer (customers
    with none are absent): a page's per-customer totals cover the whole customer even when
    its subscriptions span pages."""
    query = sql.SQL(
        "SELECT {} FROM subscriptions WHERE customer_id = ANY(%s)"
        " ORDER BY customer_id, account_id, id"
    ).format(columns(SubscriptionRow))
    result: dict[str, list[SubscriptionRow]] = {}
    async with conn.cursor(row_factory=class_row(SubscriptionRow)) as cur:
        await cur.execute(query, (list(customer_ids),))
        for row in await cur.fetchall():
            result.setdefault(row.customer_id, []).append(row)
    return result


@dataclass(frozen=True)
class ViewCustomer:
    """What the consolidated view shows of a customer besides its subscriptions: its service
    state, and its class's currency (the amounts' exponent) and time zone (the default
    month)."""

    customer_id: str
    service_state: str
    currency: str
    timezone: str


async def view_customers(
    conn: AsyncConnection, customer_ids: Sequence[str]
) -> dict[str, ViewCustomer]:
    """``ViewCustomer`` of each given customer that exists, keyed by id, in one statement
    (a page names up to ``MAX_PAGE`` customers)."""
    query = """
        SELECT c.id AS customer_id, c.service_state, cc.currency, cc.timezone
          FROM customers c JOIN customer_classes cc ON cc.name = c.class_name
         WHERE c.id = ANY(%s)
    """
    async with conn.cursor(row_factory=class_row(ViewCustomer)) as cur:
        await cur.execute(query, (list(customer_ids),))
        return {row.customer_id: row for row in await cur.fetchall()}


# ----------------------------------------------------------------------------- internal
@dataclass(frozen=True)
class _Table:
    """What differs between the two create-or-replace writes."""

    name: str
    row: type
    spec_of: Callable[[Any], Any]  # row -> spec
    fields: tuple[str, ...]
    action: str
    target: Callable[[str], str]  # id -> audit target
    noun: str


_ACCOUNTS = _Table("accounts", AccountRow, account_spec, _ACCOUNT_FIELDS, "account.put",
                   account_target, "account")
_SUBSCRIPTIONS = _Table("subscriptions", SubscriptionRow, subscription_spec,
                        _SUBSCRIPTION_FIELDS, "subscription.put", subscription_target,
                        "subscription")


async def _put(conn: AsyncConnection, spec: Any, audit: AuditInfo, table: _Table) -> PutResult:
    async with conn.transaction():
        # Read under FOR SHARE of the customer and its class: the 005 triggers alone cannot
        # see a concurrent, uncommitted class or currency change, the lock makes it wait.
        klass_currency = await _customer_currency(conn, spec.customer_id)
        if klass_currency is None:
            raise SubscriptionRefused(f"customer {spec.customer_id} not found", "customer_id")
        if isinstance(spec, SubscriptionSpec):
            await _check_subscription_refs(conn, spec, klass_currency)
        # Twice at most: when a concurrent put creates the row between our read and our
        # insert, the insert does nothing and the second round replaces it under its lock.
        for _ in range(2):
            before = await _get(conn, table, spec.id, lock=True)
            if before is None:
                after = await _insert(conn, table, spec)
                if after is None:
                    continue
                status: PutStatus = "created"
            else:
                if before.customer_id != spec.customer_id:
                    raise SubscriptionRefused(
                        f"{table.noun} {spec.id} belongs to another customer and cannot move"
                        f" to customer {spec.customer_id}", "customer_id")
                if table.spec_of(before) == spec:
                    return PutResult("unchanged", before, before)
                after = await _update(conn, table, spec)
                status = "replaced"
            await record_audit(conn, AuditEntry.of(
                audit, table.action, table.target(spec.id),
                on_behalf_of=spec.customer_id, before=before, after=after))
            return PutResult(status, before, after)
        raise RuntimeError(f"{table.noun} {spec.id} kept changing under the write")


async def _customer_currency(conn: AsyncConnection, customer_id: str) -> str | None:
    cur = await conn.execute(
        """
        SELECT cc.currency FROM customers c JOIN customer_classes cc ON cc.name = c.class_name
         WHERE c.id = %s
           FOR SHARE OF c, cc
        """,
        (customer_id,),
    )
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def _check_subscription_refs(conn: AsyncConnection, spec: SubscriptionSpec,
                                   klass_currency: str) -> None:
    if spec.currency != klass_currency:
        raise SubscriptionRefused(
            f"currency {spec.currency} does not match currency {klass_currency} of customer"
            f" {spec.customer_id}'s class", "currency")
    # Another customer's account answers exactly like a missing one: the feed learns
    # nothing about accounts it did not name correctly.
    cur = await conn.execute(
        "SELECT 1 FROM accounts WHERE id = %s AND customer_id = %s",
        (spec.account_id, spec.customer_id))
    if await cur.fetchone() is None:
        raise _account_not_found(spec.account_id, spec.customer_id)


async def _get(conn: AsyncConnection, table: _Table, row_id: str, *, lock: bool) -> Any:
    query = sql.SQL("SELECT {cols} FROM {table} WHERE id = %s {lock}").format(
        cols=columns(table.row), table=sql.Identifier(table.name),
        lock=sql.SQL("FOR UPDATE" if lock else ""))
    async with conn.cursor(row_factory=class_row(table.row)) as cur:
        await cur.execute(query, (row_id,))
        return await cur.fetchone()


async def _insert(conn: AsyncConnection, table: _Table, spec: Any) -> Any:
    query = sql.SQL(
        "INSERT INTO {table} ({cols}) VALUES ({params}) ON CONFLICT (id) DO NOTHING"
        " RETURNING {ret}"
    ).format(
        table=sql.Identifier(table.name),
        cols=sql.SQL(", ").join(map(sql.Identifier, table.fields)),
        params=sql.SQL(", ").join(sql.Placeholder() * len(table.fields)),
        ret=columns(table.row),
    )
    async with conn.cursor(row_factory=class_row(table.row)) as cur:
        await cur.execute(query, [getattr(spec, name) for name in table.fields])
        return await cur.fetchone()


async def _update(conn: AsyncConnection, table: _Table, spec: Any) -> Any:
    settable = [name for name in table.fields if name != "id"]
    query = sql.SQL("UPDATE {table} SET {updates} WHERE id = %s RETURNING {ret}").format(
        table=sql.Identifier(table.name),
        updates=sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(name)) for name in settable),
        ret=columns(table.row),
    )
    async with conn.cursor(row_factory=class_row(table.row)) as cur:
        await cur.execute(query, [*(getattr(spec, name) for name in settable), spec.id])
        after = await cur.fetchone()
    assert after is not None  # locked FOR UPDATE by the caller
    return after


def _require_id(value: object, what: str, field: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SubscriptionRefused(f"{what} must not be empty", field)


def _validate_subscription(spec: SubscriptionSpec) -> None:
    """The schema's rules, checked first for a message naming the field at fault."""
    _require_id(spec.id, "subscription id", "id")
    _require_id(spec.customer_id, "customer id", "customer_id")
    _require_id(spec.account_id, "account id", "account_id")
    _require_id(spec.product, "product", "product")
    if "\n" in spec.product or "\r" in spec.product:
        raise SubscriptionRefused("product must be a single line", "product")
    try:
        cur = lookup_currency(spec.currency)
    except MoneyError as err:
        raise SubscriptionRefused(str(err), "currency") from None
    if not isinstance(spec.fee, int) or isinstance(spec.fee, bool):
        raise SubscriptionRefused(f"fee must be an integer of minor units, got {spec.fee!r}",
                                  "fee")
    if spec.fee < 0:
        raise SubscriptionRefused("fee must not be negative", "fee")
    if spec.fee > MAX_MAJOR_UNITS * 10**cur.exponent:  # SPEC 2.1: absurd magnitudes
        raise SubscriptionRefused(f"fee is above {MAX_MAJOR_UNITS} {spec.currency}", "fee")
    for name in ("starts", "ends", "free_until"):
        value = getattr(spec, name)
        # datetime is a date subclass; a time of day has no meaning here.
        if (value is not None or name == "starts") and (
                not isinstance(value, date) or isinstance(value, datetime)):
            raise SubscriptionRefused(f"{name} must be a date, got {value!r}", name)
    if spec.ends is not None and spec.ends < spec.starts:
        raise SubscriptionRefused(
            f"end {spec.ends.isoformat()} is before start {spec.starts.isoformat()}", "ends")
    if spec.status not in ("active", "closed"):
        raise SubscriptionRefused(f"status must be active or closed, not '{spec.status}'",
                                  "status")
    if spec.status == "closed" and spec.ends is None:
        raise SubscriptionRefused("a closed subscription must have an end", "ends")


def _account_not_found(account_id: str, customer_id: str) -> SubscriptionRefused:
    return SubscriptionRefused(f"account {account_id} of customer {customer_id} not found",
                               "account_id")


# Constraint name -> (message, field) for refusals the database made itself.
_CONSTRAINT_MESSAGES: dict[str, tuple[str, str | None]] = {
    "accounts_id_present": ("account id must not be empty", "id"),
    "accounts_name_single_line": ("account name must be a single line", "name"),
    "accounts_customer_id_fkey": ("customer {customer} not found", "customer_id"),
    "accounts_customer_fixed": ("the account belongs to another customer and cannot move"
                                " to customer {customer}", "customer_id"),
    "subscriptions_id_present": ("subscription id must not be empty", "id"),
    "subscriptions_product_present": ("product must not be empty", "product"),
    "subscriptions_product_single_line": ("product must be a single line", "product"),
    "subscriptions_fee_non_negative": ("fee must not be negative", "fee"),
    "subscriptions_currency_code": ("currency must be a 3-letter ISO 4217 code", "currency"),
    "subscriptions_currency_matches_class": (
        "currency does not match the currency of customer {customer}'s class", "currency"),
    "subscriptions_ends_after_start": ("end is before start", "ends"),
    "subscriptions_closed_has_end": ("a closed subscription must have an end", "ends"),
    "subscriptions_status": ("status must be active or closed", "status"),
    "subscriptions_customer_fixed": ("the subscription belongs to another customer and cannot"
                                     " move to customer {customer}", "customer_id"),
}


def _refusal(err: errors.IntegrityError, customer_id: str,
             spec: SubscriptionSpec | None) -> SubscriptionRefused:
    constraint = err.diag.constraint_name or ""
    if constraint == "subscriptions_account_fkey" and spec is not None:
        return _account_not_found(spec.account_id, customer_id)
    if constraint in _CONSTRAINT_MESSAGES:
        message, field = _CONSTRAINT_MESSAGES[constraint]
        return SubscriptionRefused(message.format(customer=customer_id), field)
    # Not one of ours (e.g. a future constraint): still a refusal, with the server's words.
    return SubscriptionRefused(err.diag.message_primary or str(err))
