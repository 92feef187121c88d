"""The consolidated view of a customer's subscriptions (SPEC 2.8, MR107
``get_accounts_subscriptions``) and the paginated list of every subscription in a scope
(SPEC 4.3): ``dunning subscriptions``, ``GET /v1/customers/{id}/subscriptions`` and
``GET /v1/subscriptions``.

Every figure comes from ``domain.subscriptions.charge``; this module only reads the rows,
hands them to it and formats the answer (amounts as decimal strings with the currency's
exponent, SPEC 2.1). Scope checks are the caller's (``api.scopes``); reads given an
``audit`` write their record ``on_behalf_of`` each customer read, in the reading
transaction (SPEC 2.7).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from db.errors import UnknownCustomer
from db.rows import AuditInfo
from db.subscriptions import (
    MAX_PAGE,
    AccountRow,
    SubscriptionRow,
    ViewCustomer,
    customer_subscriptions,
    page_cursor,
    subscriptions_of_customers,
    subscriptions_page,
    view_customers,
)
from domain.money import Currency, format_amount
from domain.money import currency as lookup_currency
from domain.subscriptions.charge import (
    Charge,
    Month,
    Subscription,
    SubscriptionStatus,
    charged_days,
    consolidate,
    expected_charge,
)
from operations.context import Context, record_read

DEFAULT_LIMIT = 100
# One row more than the limit is read to tell whether another page follows.
MAX_LIMIT = 500
assert MAX_LIMIT < MAX_PAGE

VIEW_ACTION = "subscriptions.read"
LIST_ACTION = "subscriptions.list"

Key = tuple[str, str, str]


class InvalidCursor(ValueError):
    """A cursor this API did not give out; ``field`` names the input for a 422."""

    field = "cursor"

    def __init__(self) -> None:
        super().__init__("cursor is not one this API gave out; pass next_cursor unchanged")


# ------------------------------------------------------------------------------ cursors
def encode_cursor(key: Key) -> str:
    """An opaque token for "after this row": callers must not build or read it."""
    raw = json.dumps(list(key), ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> Key:
    """The key ``encode_cursor`` wrote; InvalidCursor for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = json.loads(raw.decode())
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSON errors included
        raise InvalidCursor() from None
    if (not isinstance(key, list) or len(key) != 3
            or not all(isinstance(part, str) and part for part in key)):
        raise InvalidCursor()
    return (key[0], key[1], key[2])


# ------------------------------------------------------------------------------- months
def current_month(customer: ViewCustomer, now: datetime | None = None) -> Month:
    """The default month: the current one in the customer's class time zone (SPEC 2.8)."""
    return Month.containing(now or datetime.now(UTC), customer.timezone)


# -------------------------------------------------------------------------------- reads
@asynccontextmanager
async def _snapshot(conn: AsyncConnection) -> AsyncIterator[None]:
    """One transaction; REPEATABLE READ when it is the outermost one, so that a page's
    lines and its per-customer totals come from one snapshot. (Inside a caller's
    transaction the isolation is the caller's: it can no longer be set.)"""
    outermost = conn.info.transaction_status == TransactionStatus.IDLE
    async with conn.transaction():
        if outermost:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


async def consolidated_view(ctx: Context, customer_id: str, *, month: Month | None,
                            audit: AuditInfo | None,
                            now: datetime | None = None) -> dict[str, Any]:
    """Every account of the customer with its subscriptions and their expected charge for
    ``month`` (None: the current month in the class's time zone), totals per account and
    for the customer. Raises UnknownCustomer."""
    async with _snapshot(ctx.conn):
        customer = (await view_customers(ctx.conn, [customer_id])).get(customer_id)
        if customer is None:
            raise UnknownCustomer(customer_id)
        accounts = await customer_subscriptions(ctx.conn, customer_id)
        await record_read(ctx, audit, customer_id, VIEW_ACTION)
    return view_document(customer, accounts, month or current_month(customer, now))


@dataclass(frozen=True)
class ListQuery:
    """``reseller_id`` / ``scope_customer``: the caller's scope (``api.scopes.list_filter``);
    ``customer_id``: the caller's own filter, within that scope. ``month`` None: each
    customer's current month. ``after``: the previous page's ``next_cursor``, decoded
    (``decode_cursor``); None for the first page."""

    reseller_id: str | None = None
    scope_customer: str | None = None
    customer_id: str | None = None
    month: Month | None = None
    after: Key | None = None
    limit: int = DEFAULT_LIMIT


async def subscriptions_list(ctx: Context, query: ListQuery, *, audit: AuditInfo | None,
                             now: datetime | None = None) -> dict[str, Any]:
    """One page of every subscription in the scope, in a stable (customer, account, id)
    order, with the month's total of each customer on the page (over all of that
    customer's subscriptions, also those on other pages). Raises ValueError for a limit
    outside 1..MAX_LIMIT."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {query.limit}")
    customer_id = _narrowed(query.scope_customer, query.customer_id)
    if customer_id == "":
        return list_document([], {}, {}, query.month, None, now)
    async with _snapshot(ctx.conn):
        rows = await subscriptions_page(ctx.conn, reseller_id=query.reseller_id,
                                        customer_id=customer_id, after=query.after,
                                        limit=query.limit + 1)
        rows, more = rows[:query.limit], len(rows) > query.limit
        ids = list(dict.fromkeys(row.customer_id for row in rows))
        customers = await view_customers(ctx.conn, ids)
        everything = await subscriptions_of_customers(ctx.conn, ids)
        for each in ids:
            await record_read(ctx, audit, each, LIST_ACTION)
    next_cursor = encode_cursor(page_cursor(rows[-1])) if more else None
    return list_document(rows, customers, everything, query.month, next_cursor, now)


def _narrowed(scope_customer: str | None, wanted: str | None) -> str | None:
    """The customer to filter by; "" when the filter names a customer outside a customer
    token's scope (an empty page, as for any customer with no subscriptions)."""
    if scope_customer is None:
        return wanted
    return scope_customer if wanted in (None, scope_customer) else ""


# ----------------------------------------------------------------------------- documents
def subscription(row: SubscriptionRow) -> Subscription:
    """A stored row as the charge rule's value (which checks it once more)."""
    return Subscription(id=row.id, account_id=row.account_id, product=row.product,
                        fee=row.fee, starts=row.starts, ends=row.ends,
                        free_until=row.free_until,
                        status=cast(SubscriptionStatus, row.status))


def _line(charge: Charge, customer: ViewCustomer, cur: Currency) -> dict[str, Any]:
    sub = charge.subscription
    return {
        "subscription_id": sub.id,
        "customer_id": customer.customer_id,
        "account_id": sub.account_id,
        "product": sub.product,
        "fee": format_amount(sub.fee, cur),
        "expected_charge": format_amount(charge.amount, cur),
        "charged_days": charge.charged_days,
        "starts": sub.starts.isoformat(),
        "ends": sub.ends.isoformat() if sub.ends else None,
        "free_until": sub.free_until.isoformat() if sub.free_until else None,
        "status": sub.status,
        # SPEC 2.8: a suspended customer's subscriptions are shown as suspended.
        "service_state": customer.service_state,
    }


def view_document(customer: ViewCustomer,
                  accounts: Sequence[tuple[AccountRow, list[SubscriptionRow]]],
                  month: Month) -> dict[str, Any]:
    cur = lookup_currency(customer.currency)
    totals = consolidate({account.id: [subscription(r) for r in rows]
                          for account, rows in accounts}, month)
    return {
        "customer_id": customer.customer_id,
        "currency": customer.currency,
        "month": str(month),
        "service_state": customer.service_state,
        "accounts": [{
            "account_id": account.id,
            "name": account.name,
            "service_state": customer.service_state,
            "subscriptions": [_line(charge, customer, cur) for charge in total.charges],
            "total": format_amount(total.total, cur),
        } for (account, _), total in zip(accounts, totals.accounts, strict=True)],
        "total": format_amount(totals.total, cur),
    }


def _customer_total(customer: ViewCustomer, rows: Sequence[SubscriptionRow],
                    month: Month) -> dict[str, Any]:
    by_account: dict[str, list[Subscription]] = {}
    for row in rows:
        by_account.setdefault(row.account_id, []).append(subscription(row))
    return {
        "customer_id": customer.customer_id,
        "currency": customer.currency,
        "month": str(month),
        "service_state": customer.service_state,
        "total": format_amount(consolidate(by_account, month).total,
                               lookup_currency(customer.currency)),
    }


def list_document(rows: Sequence[SubscriptionRow], customers: dict[str, ViewCustomer],
                  everything: dict[str, list[SubscriptionRow]], month: Month | None,
                  next_cursor: str | None, now: datetime | None) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        customer = customers[row.customer_id]  # the FK: a subscription's customer exists
        its_month = month or current_month(customer, now)
        if row.customer_id not in totals:
            totals[row.customer_id] = _customer_total(
                customer, everything.get(row.customer_id, [row]), its_month)
        sub = subscription(row)
        charge = Charge(sub, charged_days(sub, its_month), expected_charge(sub, its_month))
        lines.append(_line(charge, customer, lookup_currency(customer.currency))
                     | {"month": str(its_month)})
    return {
        "month": None if month is None else str(month),
        "subscriptions": lines,
        "customers": list(totals.values()),
        "next_cursor": next_cursor,
    }
