"""The billing system's feed (SPEC 2.8, 4.3): POST /v1/invoices, PUT /v1/customers/{id},
PUT /v1/accounts/{id}, PUT /v1/subscriptions/{id}.

Created / duplicate / conflict for invoices; created / unchanged / replaced for the PUTs;
422 field errors naming the field; 403 for realms other than system and admin; one
transaction (a refusal leaves every table as it was); one audit record per write.

The PUTs and every refusal run on the database only (``bare_api``: Temporal would fail the
test if touched); invoices that are really issued run on the full stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import psycopg
import pytest

from operations.classes import ClassChange, set_class
from operations.context import Context
from settings import load_settings
from tests.api.conftest import (
    ADMIN_TOKEN,
    CLASS,
    RESELLER_TOKEN,
    SYSTEM_TOKEN,
    Api,
    _NoTemporal,
    unique,
)
from tests.db.conftest import snapshot
from tests.support.stack import ADMIN, Stack

EURO, NEW_YORK = "euro", "new-york"
SYSTEM_ACTOR = "billing-sync"  # SYSTEM_TOKEN's identity in tests/api/conftest.py
FEED_TABLES = ("customer_classes", "customers", "accounts", "subscriptions", "invoices",
               "audit_log")


def customer_body(**changes: Any) -> dict[str, Any]:
    return {"name": "John Example", "email": "john@example.com", "class": CLASS,
            "language": "en", "reseller_id": "r-rita", **changes}


def subscription_body(**changes: Any) -> dict[str, Any]:
    return {"account_id": "a1", "product": "Essentials", "fee": "20.00",
            "starts": "2026-06-01", **changes}


async def send(api: Api, method: str, path: str, body: Any, token: str = SYSTEM_TOKEN,
               **headers: str) -> httpx.Response:
    return await api.http.request(method, path, json=body,
                                  headers={"Authorization": f"Bearer {token}", **headers})


async def feed_audit(conn: psycopg.AsyncConnection) -> list[tuple[Any, ...]]:
    """The records the feed wrote (the set-up's own are ADMIN's)."""
    cur = await conn.execute(
        "SELECT actor, realm, action, target, on_behalf_of, before, after, request_id"
        " FROM audit_log WHERE actor <> %s ORDER BY id", (ADMIN.actor,))
    return await cur.fetchall()


def field_error(response: httpx.Response, field: str) -> str:
    """The message of the 422 error at ``body.field`` (FastAPI's field-error shape)."""
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    found = [e for e in errors if tuple(e["loc"]) == ("body", field)]
    assert found, errors
    return str(found[0]["msg"])


async def setup_classes(ctx: Context) -> None:
    await set_class(ctx, ClassChange(name=CLASS, currency="USD", threshold="10.00"), ADMIN)
    await set_class(ctx, ClassChange(name=EURO, currency="EUR", threshold="0"), ADMIN)
    await set_class(ctx, ClassChange(name=NEW_YORK, currency="USD", threshold="0",
                                     timezone="America/New_York"), ADMIN)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
        yield c


@pytest.fixture
async def feed(bare_api: Api, conn: psycopg.AsyncConnection, database_url: str) -> Api:
    """The API on the database only, with the classes in place."""
    ctx = Context(settings=load_settings(database_url=database_url), conn=conn,
                  _client=_NoTemporal())  # type: ignore[arg-type]
    await setup_classes(ctx)
    return bare_api


@pytest.fixture
async def john(feed: Api) -> Api:
    """Customer c1 with account a1."""
    assert (await send(feed, "PUT", "/v1/customers/c1", customer_body())).status_code == 201
    response = await send(feed, "PUT", "/v1/accounts/a1", {"customer_id": "c1"})
    assert response.status_code == 201, response.text
    return feed


# ---------------------------------------------------------------------------- customers
async def test_put_customer_created_unchanged_replaced_each_audited_once(
        feed: Api, conn: psycopg.AsyncConnection) -> None:
    created = await send(feed, "PUT", "/v1/customers/c1", customer_body(),
                         **{"X-Request-ID": "feed-1"})
    assert created.status_code == 201, created.text
    document = {"id": "c1", "name": "John Example", "email": "john@example.com",
                "class": CLASS, "language": "en", "reseller_id": "r-rita"}
    assert created.json() == {"status": "created", "customer": document}

    again = await send(feed, "PUT", "/v1/customers/c1", customer_body())
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "unchanged", "customer": document}

    # A replacement is the whole record: absent language and reseller mean none.
    body = {"name": "John Example", "email": "john@new.example", "class": CLASS}
    replaced = await send(feed, "PUT", "/v1/customers/c1", body, **{"X-Request-ID": "feed-2"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"status": "replaced", "customer": {
        **document, "email": "john@new.example", "language": None, "reseller_id": None}}

    records = await feed_audit(conn)
    assert [r[:5] + r[7:] for r in records] == [
        (SYSTEM_ACTOR, "system", "customer.create", "customer:c1", "c1", "feed-1"),
        (SYSTEM_ACTOR, "system", "customer.replace", "customer:c1", "c1", "feed-2"),
    ]
    (_, create_before, create_after), (_, before, after) = (r[4:7] for r in records)
    assert create_before is None and create_after["reseller_id"] == "r-rita"
    assert (before["email"], before["reseller_id"]) == ("john@example.com", "r-rita")
    assert (after["email"], after["reseller_id"], after["language"]) == (
        "john@new.example", None, None)


async def test_put_customer_by_admin_is_audited_as_admin(
        feed: Api, conn: psycopg.AsyncConnection) -> None:
    body = customer_body(reason="new contract")
    response = await send(feed, "PUT", "/v1/customers/c1", body, ADMIN_TOKEN)
    assert response.status_code == 201, response.text
    cur = await conn.execute("SELECT actor, realm, reason FROM audit_log WHERE target = %s"
                             " AND action = 'customer.create'", ("customer:c1",))
    assert await cur.fetchall() == [("ana-finance", "admin", "new contract")]


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"email": "not-an-address"}, "email", "pattern"),
    ({"email": "a@b\nc"}, "email", ""),
    ({"name": "John\nExample"}, "name", "control characters"),
    ({"name": ""}, "name", "at least 1 character"),
    ({"language": "fr"}, "language", "'en', 'es' or 'pt-BR'"),
    ({"class": None}, "class", ""),
    ({"class": "no-such-class"}, "class", "unknown customer class 'no-such-class'"),
    ({"reseller_id": "  "}, "reseller_id", "visible character"),
    ({"extra": 1}, "extra", "Extra inputs are not permitted"),
])
async def test_put_customer_field_errors_write_nothing(
        feed: Api, conn: psycopg.AsyncConnection, changes: dict[str, Any], field: str,
        message: str) -> None:
    before = await snapshot(conn, FEED_TABLES)
    response = await send(feed, "PUT", "/v1/customers/c1", customer_body(**changes))
    assert message in field_error(response, field)
    assert await snapshot(conn, FEED_TABLES) == before


async def test_missing_customer_field_is_named(feed: Api) -> None:
    body = customer_body()
    del body["email"]
    assert field_error(await send(feed, "PUT", "/v1/customers/c1", body), "email") == (
        "Field required")


async def test_a_class_of_another_currency_is_refused_once_there_are_subscriptions(
        john: Api, conn: psycopg.AsyncConnection) -> None:
    response = await send(john, "PUT", "/v1/subscriptions/s1", subscription_body())
    assert response.status_code == 201, response.text
    before = await snapshot(conn, FEED_TABLES)
    response = await send(john, "PUT", "/v1/customers/c1", customer_body(**{"class": EURO}))
    assert "another currency" in field_error(response, "class")
    assert await snapshot(conn, FEED_TABLES) == before  # one transaction: nothing half-done
    # Without subscriptions (or invoices, payments) the move is a replacement like any other.
    response = await send(john, "PUT", "/v1/customers/c2", customer_body())
    assert response.status_code == 201
    response = await send(john, "PUT", "/v1/customers/c2", customer_body(**{"class": EURO}))
    assert response.status_code == 200 and response.json()["status"] == "replaced"


# ----------------------------------------------------------------------------- accounts
async def test_put_account_created_unchanged_replaced_each_audited_once(
        feed: Api, conn: psycopg.AsyncConnection) -> None:
    assert (await send(feed, "PUT", "/v1/customers/c1", customer_body())).status_code == 201
    path = "/v1/accounts/a1"
    created = await send(feed, "PUT", path, {"customer_id": "c1", "name": "John's phone"})
    assert created.status_code == 201, created.text
    assert created.json() == {"status": "created", "account": {
        "id": "a1", "customer_id": "c1", "name": "John's phone"}}
    again = await send(feed, "PUT", path, {"customer_id": "c1", "name": "John's phone"})
    assert (again.status_code, again.json()["status"]) == (200, "unchanged")
    renamed = await send(feed, "PUT", path, {"customer_id": "c1", "name": "Family line"})
    assert (renamed.status_code, renamed.json()["status"]) == (200, "replaced")
    records = [r for r in await feed_audit(conn) if r[2] == "account.put"]
    assert [(r[0], r[1], r[3], r[4]) for r in records] == [
        (SYSTEM_ACTOR, "system", "account:a1", "c1")] * 2
    assert records[0][5] is None and records[0][6]["name"] == "John's phone"
    assert (records[1][5]["name"], records[1][6]["name"]) == ("John's phone", "Family line")


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"customer_id": "c9"}, "customer_id", "customer c9 not found"),
    ({"customer_id": "c2"}, "customer_id", "belongs to another customer"),
    ({"customer_id": "c1", "name": "two\nlines"}, "name", "control characters"),
    ({"name": "no customer"}, "customer_id", "Field required"),
])
async def test_put_account_refusals_write_nothing(
        john: Api, conn: psycopg.AsyncConnection, body: dict[str, Any], field: str,
        message: str) -> None:
    assert (await send(john, "PUT", "/v1/customers/c2", customer_body())).status_code == 201
    before = await snapshot(conn, FEED_TABLES)
    response = await send(john, "PUT", "/v1/accounts/a1", body)
    assert message in field_error(response, field)
    assert await snapshot(conn, FEED_TABLES) == before


# ------------------------------------------------------------------------ subscriptions
async def test_put_subscription_created_unchanged_replaced_each_audited_once(
        john: Api, conn: psycopg.AsyncConnection) -> None:
    path = "/v1/subscriptions/s1"
    created = await send(john, "PUT", path, subscription_body())
    assert created.status_code == 201, created.text
    document = {"id": "s1", "customer_id": "c1", "account_id": "a1", "product": "Essentials",
                "fee": "20.00", "currency": "USD", "starts": "2026-06-01", "ends": None,
                "free_until": None, "status": "active"}
    assert created.json() == {"status": "created", "subscription": document}
    # The currency stated (the class's) is the same subscription as the currency implied.
    again = await send(john, "PUT", path, subscription_body(currency="USD"))
    assert again.status_code == 200
    assert again.json() == {"status": "unchanged", "subscription": document}
    closed = await send(john, "PUT", path, subscription_body(
        fee="15.50", ends="2026-06-20", free_until="2026-06-05", status="closed"))
    assert closed.status_code == 200, closed.text
    assert closed.json() == {"status": "replaced", "subscription": {
        **document, "fee": "15.50", "ends": "2026-06-20", "free_until": "2026-06-05",
        "status": "closed"}}
    records = [r for r in await feed_audit(conn) if r[2] == "subscription.put"]
    assert [(r[0], r[1], r[3], r[4]) for r in records] == [
        (SYSTEM_ACTOR, "system", "subscription:s1", "c1")] * 2
    assert (records[1][5]["fee"], records[1][6]["fee"]) == (2000, 1550)  # minor units
    rows = await (await conn.execute(
        "SELECT fee, currency, starts, ends, free_until, status FROM subscriptions")).fetchall()
    assert rows == [(1550, "USD", date(2026, 6, 1), date(2026, 6, 20), date(2026, 6, 5),
                     "closed")]


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"fee": "-5.00"}, "fee", "must not be negative"),
    ({"fee": "20.001"}, "fee", "3 decimal places; USD allows 2"),
    ({"fee": "1000000000000.01"}, "fee", "exceeds the maximum"),
    ({"fee": "NaN"}, "fee", "not a number"),
    ({"fee": 20.0}, "fee", "valid string"),
    ({"ends": "2026-05-31"}, "ends", "end 2026-05-31 is before start 2026-06-01"),
    ({"currency": "EUR"}, "currency", "does not match currency USD"),
    ({"currency": "usd"}, "currency", "pattern"),
    ({"currency": "ZZZ"}, "currency", "unknown currency"),
    ({"account_id": "a9"}, "account_id", "account a9 not found"),
    ({"status": "closed"}, "ends", "a closed subscription must have an end"),
    ({"status": "paused"}, "status", "'active' or 'closed'"),
    ({"starts": "2026-06-01T09:00:00"}, "starts", "no UTC offset"),
    ({"starts": "June 1st"}, "starts", "not a valid date"),
    ({"starts": "9999-12-31T23:00:00-05:00"}, "starts", "out of range"),
    ({"free_until": 20260601}, "free_until", "ISO 8601"),
    ({"product": ""}, "product", "at least 1 character"),
    ({"product": "Essentials\n"}, "product", "control characters"),
])
async def test_put_subscription_refusals_name_the_field_and_write_nothing(
        john: Api, conn: psycopg.AsyncConnection, changes: dict[str, Any], field: str,
        message: str) -> None:
    # s1 exists under c1/a1; b1 is an account of another customer, c2.
    assert (await send(john, "PUT", "/v1/subscriptions/s1", subscription_body())).status_code \
        == 201
    assert (await send(john, "PUT", "/v1/customers/c2", customer_body())).status_code == 201
    assert (await send(john, "PUT", "/v1/accounts/b1", {"customer_id": "c2"})).status_code \
        == 201
    before = await snapshot(conn, FEED_TABLES)
    response = await send(john, "PUT", "/v1/subscriptions/s1", subscription_body(**changes))
    assert message in field_error(response, field)
    # And a new one refused the same way: nothing created either.
    response = await send(john, "PUT", "/v1/subscriptions/s2", subscription_body(**changes))
    assert message in field_error(response, field)
    assert await snapshot(conn, FEED_TABLES) == before


async def test_a_subscription_never_moves_to_another_customer(
        john: Api, conn: psycopg.AsyncConnection) -> None:
    assert (await send(john, "PUT", "/v1/subscriptions/s1", subscription_body())).status_code \
        == 201
    assert (await send(john, "PUT", "/v1/customers/c2", customer_body())).status_code == 201
    assert (await send(john, "PUT", "/v1/accounts/b1", {"customer_id": "c2"})).status_code \
        == 201
    before = await snapshot(conn, FEED_TABLES)
    response = await send(john, "PUT", "/v1/subscriptions/s1", subscription_body(account_id="b1"))
    # The customer is the account's, so the account is the field at fault.
    assert "belongs to another customer" in field_error(response, "account_id")
    assert await snapshot(conn, FEED_TABLES) == before


async def test_subscription_days_are_in_the_class_time_zone(
        feed: Api, conn: psycopg.AsyncConnection) -> None:
    body = customer_body(**{"class": NEW_YORK})
    assert (await send(feed, "PUT", "/v1/customers/ny1", body)).status_code == 201
    assert (await send(feed, "PUT", "/v1/accounts/ny-a", {"customer_id": "ny1"})
            ).status_code == 201
    # 02:00 UTC on 1 June is still 31 May in New York; a plain date is that date.
    response = await send(feed, "PUT", "/v1/subscriptions/ny-s", subscription_body(
        account_id="ny-a", starts="2026-06-01T02:00:00Z", ends="2026-06-30"))
    assert response.status_code == 201, response.text
    assert (response.json()["subscription"]["starts"],
            response.json()["subscription"]["ends"]) == ("2026-05-31", "2026-06-30")


async def test_an_oversized_body_is_413_and_writes_nothing(
        john: Api, conn: psycopg.AsyncConnection) -> None:
    before = await snapshot(conn, FEED_TABLES)
    response = await send(john, "PUT", "/v1/subscriptions/s1",
                          subscription_body(product="x" * 70_000))
    assert response.status_code == 413, response.text
    assert await snapshot(conn, FEED_TABLES) == before


# ------------------------------------------------------------------------------ realms
FEED_CALLS = [
    ("POST", "/v1/invoices", {"customer_id": "c1", "number": "INV-1", "charges": "10.00",
                              "issued": "2026-06-01", "due": "2026-06-30"}),
    ("PUT", "/v1/customers/c1", customer_body(email="other@example.com")),
    ("PUT", "/v1/accounts/a2", {"customer_id": "c1"}),
    ("PUT", "/v1/subscriptions/s1", subscription_body()),
]


@pytest.mark.parametrize(("method", "path", "body"), FEED_CALLS,
                         ids=[f"{m} {p}" for m, p, _ in FEED_CALLS])
async def test_a_reseller_may_not_feed_even_a_valid_body(
        john: Api, conn: psycopg.AsyncConnection, method: str, path: str,
        body: dict[str, Any]) -> None:
    before = await snapshot(conn, FEED_TABLES)
    response = await send(john, method, path, body, RESELLER_TOKEN)
    assert response.status_code == 403, response.text
    assert response.json() == {"detail": "realm 'reseller' may not do this"}
    assert await snapshot(conn, FEED_TABLES) == before


# ---------------------------------------------------------------------------- invoices
def invoice_body(customer_id: str, **changes: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "number": "INV-06", "charges": "10.00",
            "issued": "2026-06-01", "due": "2026-06-30", **changes}


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"customer_id": "c-nobody"}, "customer_id", "unknown customer 'c-nobody'"),
    ({"charges": "-5.00"}, "charges", "negative"),
    ({"charges": "10.001"}, "charges", "3 decimal places; USD allows 2"),
    ({"charges": 10}, "charges", "valid string"),
    ({"issued": "2026-06-01T09:30:00"}, "issued", "no UTC offset"),
    ({"issued": "yesterday"}, "issued", "not a valid date"),
    ({"due": "2026-06-30T12:00:00"}, "due", "no UTC offset"),
    ({"due": "end of month"}, "due", "must be a date"),
    ({"due": "9999-12-31"}, "due", "out of range"),
    ({"issued": "9999-12-31T23:00:00-05:00"}, "issued", "out of range"),
    ({"number": " "}, "number", "visible character"),
    ({"number": None}, "number", ""),
])
async def test_invoice_refusals_name_the_field_and_never_reach_temporal(
        john: Api, conn: psycopg.AsyncConnection, changes: dict[str, Any], field: str,
        message: str) -> None:
    # bare_api's Temporal client fails the test if anything reaches it.
    before = await snapshot(conn, FEED_TABLES)
    response = await send(john, "POST", "/v1/invoices", {**invoice_body("c1"), **changes})
    assert message in field_error(response, field)
    assert await snapshot(conn, FEED_TABLES) == before


async def test_invoice_created_then_duplicate_then_conflict(api: Api, stack: Stack,
                                                            customer: str) -> None:
    body = invoice_body(customer)
    created = await send(api, "POST", "/v1/invoices", body, **{"X-Request-ID": "inv-1"})
    assert created.status_code == 201, created.text
    document = created.json()
    assert {k: document[k] for k in ("status", "customer_id", "number", "currency",
                                     "new_charges", "amount_due", "payment_status")} == {
        "status": "created", "customer_id": customer, "number": "INV-06", "currency": "USD",
        "new_charges": "10.00", "amount_due": "10.00", "payment_status": "unpaid"}
    # A plain date is the start of that day in the class time zone (UTC here); due is
    # overdue from the next midnight.
    rows = await stack.query_rows(
        "SELECT issued_at, overdue_at FROM invoices WHERE customer_id = %s", customer)
    assert rows == [(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))]

    # The same invoice again: 200 duplicate, nothing changed, no second audit record.
    again = await send(api, "POST", "/v1/invoices", body)
    assert again.status_code == 200, again.text
    assert again.json() == {**document, "status": "duplicate", "workflow": again.json()[
        "workflow"]}
    # Same number, other content: 409 naming what differs.
    other = await send(api, "POST", "/v1/invoices", invoice_body(customer, charges="12.00"))
    assert other.status_code == 409, other.text
    assert "new_charges" in other.json()["detail"]
    assert "due_text" not in other.json()["detail"]
    records = await stack.query_rows(
        "SELECT actor, realm, action, target, on_behalf_of, request_id FROM audit_log"
        " WHERE action = 'invoice.issue'")
    assert records == [(SYSTEM_ACTOR, "system", "invoice.issue",
                        f"invoice:{customer}/INV-06", customer, "inv-1")]
    amounts = await stack.query_rows(
        "SELECT count(*), sum(new_charges) FROM invoices WHERE customer_id = %s", customer)
    assert amounts == [(1, 1000)]


async def test_an_invoice_through_the_feed_is_the_cli_s_invoice(
        api: Api, stack: Stack, customer: str) -> None:
    """Issued by the feed, the same invoice issued by the CLI's operation is a duplicate:
    one ledger command, whoever sends it."""
    from operations.invoices import IssueRequest, issue_invoice

    assert (await send(api, "POST", "/v1/invoices", invoice_body(customer))).status_code == 201
    request = IssueRequest(customer_id=customer, number="INV-06", charges="10.00",
                           issued="2026-06-01", due="2026-06-30")
    document = await stack.call(issue_invoice, request, ADMIN)
    assert document["status"] == "exists"


async def test_the_admin_realm_may_issue_invoices(api: Api, stack: Stack,
                                                  customer: str) -> None:
    number = unique("INV")
    response = await send(api, "POST", "/v1/invoices", invoice_body(customer, number=number,
                                                                     reason="by hand"),
                          ADMIN_TOKEN)
    assert response.status_code == 201, response.text
    assert await stack.query_rows(
        "SELECT actor, realm, reason FROM audit_log WHERE action = 'invoice.issue'") == [
        ("ana-finance", "admin", "by hand")]
