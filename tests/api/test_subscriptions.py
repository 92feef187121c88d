"""Subscription reads over HTTP (SPEC 2.8, 4.3): the consolidated view with the seed's exact
figures, the paginated list (stable under inserts), realms, scopes and audit records.

The database is real; Temporal is never touched (these reads do not use it).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from api.app import create_app
from db.customers import NewCustomer
from db.subscriptions import (
    AccountSpec,
    SubscriptionSpec,
    put_account,
    put_subscription,
    set_reseller,
)
from domain.subscriptions.charge import Month
from operations.classes import ClassChange, set_class
from operations.context import Context
from operations.customers import add
from operations.subscriptions import DEFAULT_LIMIT, MAX_LIMIT, consolidated_view
from settings import ApiIdentity, Settings, load_settings
from tests.api.conftest import SECRETS, Api, _NoTemporal, serve
from tests.support.stack import ADMIN

JUNE = Month(2026, 6)
JOHNS_RESELLER, OTHER_RESELLER = "r-john", "r-other"
# token -> identity of every caller here.
TOKENS = {
    "t-admin": ApiIdentity("ana-finance", "admin"),
    "t-system": ApiIdentity("billing-sync", "system"),
    "t-rj": ApiIdentity("rita", "reseller", JOHNS_RESELLER),
    "t-ro": ApiIdentity("rolf", "reseller", OTHER_RESELLER),
    "t-john": ApiIdentity("john", "customer", "john"),
}
# customer -> reseller; "direct" is nobody's.
CUSTOMERS = {"john": JOHNS_RESELLER, "jane": JOHNS_RESELLER, "mark": OTHER_RESELLER,
             "direct": None}


# ------------------------------------------------------------------------------ seed
def context(conn: psycopg.AsyncConnection, settings: Settings) -> Context:
    return Context(settings=settings, conn=conn, _client=_NoTemporal())  # type: ignore[arg-type]


async def add_customers(ctx: Context, customers: dict[str, str | None], *,
                        class_name: str = "residential", currency: str = "USD",
                        timezone: str = "UTC") -> None:
    await set_class(ctx, ClassChange(name=class_name, currency=currency, threshold="0",
                                     timezone=timezone), ADMIN)
    for customer_id, reseller in customers.items():
        await add(ctx, NewCustomer(id=customer_id, name=f"Name of {customer_id}",
                                   email=f"{customer_id}@example.com", class_name=class_name),
                  ADMIN)
        if reseller is not None:
            await set_reseller(ctx.conn, customer_id, reseller, ADMIN)


async def put(conn: psycopg.AsyncConnection, sub_id: str, customer: str, account: str, *,
              fee: int = 2000, product: str = "Essentials", currency: str = "USD",
              starts: date = date(2026, 1, 1), **changes: Any) -> None:
    await put_subscription(conn, SubscriptionSpec(
        id=sub_id, customer_id=customer, account_id=account, product=product, fee=fee,
        currency=currency, starts=starts, **changes), ADMIN)


async def seed_john(conn: psycopg.AsyncConnection, month: Month) -> None:
    """The seed's John: three accounts, each with a $20.00 Essentials; a Netflix bonus free
    for all of ``month`` and one $15.00 HBO (SPEC 2.8)."""
    for n in (1, 2, 3):
        await put_account(conn, AccountSpec(f"john-{n}", "john", f"Line {n}"), ADMIN)
        await put(conn, f"ess-{n}", "john", f"john-{n}")
    await put(conn, "netflix", "john", "john-1", fee=1099, product="Netflix",
              free_until=month.last_day)
    await put(conn, "hbo", "john", "john-2", fee=1500, product="HBO")


def line(sub_id: str, account: str, product: str, fee: str, charge: str, days: int, *,
         free_until: str | None = None, service_state: str = "active") -> dict[str, Any]:
    return {"subscription_id": sub_id, "customer_id": "john", "account_id": account,
            "product": product, "fee": fee, "expected_charge": charge, "charged_days": days,
            "starts": "2026-01-01", "ends": None, "free_until": free_until,
            "status": "active", "service_state": service_state}


def johns_june(service_state: str = "active") -> dict[str, Any]:
    """The seed's view for June 2026, every figure exact."""
    def account(n: int, total: str, *subs: dict[str, Any]) -> dict[str, Any]:
        return {"account_id": f"john-{n}", "name": f"Line {n}", "service_state": service_state,
                "subscriptions": list(subs), "total": total}

    kw = {"service_state": service_state}
    return {
        "customer_id": "john", "currency": "USD", "month": "2026-06",
        "service_state": service_state,
        "accounts": [
            account(1, "20.00", line("ess-1", "john-1", "Essentials", "20.00", "20.00", 30, **kw),
                    line("netflix", "john-1", "Netflix", "10.99", "0.00", 0,
                         free_until="2026-06-30", **kw)),
            account(2, "35.00", line("ess-2", "john-2", "Essentials", "20.00", "20.00", 30, **kw),
                    line("hbo", "john-2", "HBO", "15.00", "15.00", 30, **kw)),
            account(3, "20.00", line("ess-3", "john-3", "Essentials", "20.00", "20.00", 30, **kw)),
        ],
        "total": "75.00",
    }


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
        yield c


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url).model_copy(
        update={"webhook_secrets": SECRETS, "api_tokens": TOKENS})


@pytest.fixture
async def world(conn: psycopg.AsyncConnection, settings: Settings) -> None:
    """John (seeded for June 2026) and jane of reseller r-john, mark of r-other, a direct
    customer; jane, mark and direct with one or two subscriptions each."""
    await add_customers(context(conn, settings), CUSTOMERS)
    await seed_john(conn, JUNE)
    for customer, count in (("jane", 2), ("mark", 1), ("direct", 1)):
        await put_account(conn, AccountSpec(f"{customer}-1", customer), ADMIN)
        for n in range(count):
            await put(conn, f"{customer}-s{n}", customer, f"{customer}-1", fee=1000)


@pytest.fixture
async def api(settings: Settings, world: None) -> AsyncIterator[Api]:
    async for served in serve(create_app(settings, client=_NoTemporal())):  # type: ignore[arg-type]
        yield served


async def audit_rows(conn: psycopg.AsyncConnection) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "SELECT actor, realm, action, target, on_behalf_of, reason, request_id FROM audit_log"
        " WHERE actor <> %s ORDER BY id", (ADMIN.actor,))  # the seed's records are ADMIN's
    return await cur.fetchall()


# ----------------------------------------------------------------- consolidated view
@pytest.mark.parametrize("token", ["t-admin", "t-rj", "t-john", "t-system"])
async def test_the_seeds_john_owes_75_dollars_for_every_realm_in_scope(
        api: Api, token: str) -> None:
    response = await api.get("/v1/customers/john/subscriptions?month=2026-06", token)
    assert response.status_code == 200, response.text
    assert response.json() == johns_june()


async def test_another_reseller_gets_the_404_of_a_missing_customer(api: Api) -> None:
    outside = await api.get("/v1/customers/john/subscriptions?month=2026-06", "t-ro")
    missing = await api.get("/v1/customers/jxyz/subscriptions?month=2026-06", "t-ro")
    assert outside.status_code == missing.status_code == 404
    assert outside.json() == {"detail": "unknown customer 'john'"}
    assert outside.content.replace(b"john", b"jxyz") == missing.content
    # A customer token asking for someone else, and anyone asking for nobody: the same.
    assert (await api.get("/v1/customers/jane/subscriptions", "t-john")).status_code == 404
    assert (await api.get("/v1/customers/nobody/subscriptions", "t-admin")).json() == {
        "detail": "unknown customer 'nobody'"}


async def test_the_month_defaults_to_the_current_one(
        api: Api, conn: psycopg.AsyncConnection) -> None:
    # A bonus free for the whole current month, as in the seed's story ("free this month").
    now = Month.containing(datetime.now(UTC), "UTC")
    await conn.execute("UPDATE subscriptions SET free_until = %s WHERE id = 'netflix'",
                       (now.last_day,))
    document = (await api.get("/v1/customers/john/subscriptions", "t-john")).json()
    assert (document["month"], document["total"]) == (str(now), "75.00")
    assert [a["total"] for a in document["accounts"]] == ["20.00", "35.00", "20.00"]


async def test_the_default_month_is_read_in_the_class_time_zone(
        conn: psycopg.AsyncConnection, settings: Settings) -> None:
    ctx = context(conn, settings)
    await add_customers(ctx, {"ny": None}, class_name="east", timezone="America/New_York")
    # 03:00 UTC on 1 March is still 22:00 on 28 February in New York.
    view = await consolidated_view(ctx, "ny", month=None, audit=None,
                                   now=datetime(2026, 3, 1, 3, tzinfo=UTC))
    assert (view["month"], view["accounts"], view["total"]) == ("2026-02", [], "0.00")


async def test_a_suspended_customers_subscriptions_show_as_suspended(
        api: Api, conn: psycopg.AsyncConnection) -> None:
    await conn.execute("UPDATE customers SET service_state = 'suspended' WHERE id = 'john'")
    response = await api.get("/v1/customers/john/subscriptions?month=2026-06", "t-admin")
    assert response.json() == johns_june("suspended")


async def test_pro_rating_closed_and_the_currency_exponent(
        conn: psycopg.AsyncConnection, settings: Settings) -> None:
    ctx = context(conn, settings)
    await add_customers(ctx, {"kenji": None}, class_name="tokyo", currency="JPY")
    await add_customers(ctx, {"amir": None}, class_name="manama", currency="BHD")
    await put_account(conn, AccountSpec("k-1", "kenji"), ADMIN)
    await put_account(conn, AccountSpec("a-1", "amir"), ADMIN)
    # June 16..30: 15 of 30 days; closed on June 10: 10 of 30 days; a month that is over.
    await put(conn, "late", "kenji", "k-1", fee=3000, currency="JPY", starts=date(2026, 6, 16))
    await put(conn, "gone", "kenji", "k-1", fee=3000, currency="JPY", ends=date(2026, 6, 10),
              status="closed")
    await put(conn, "old", "kenji", "k-1", fee=3000, currency="JPY", ends=date(2026, 5, 31),
              status="closed")
    await put(conn, "bhd", "amir", "a-1", fee=12345, currency="BHD")
    kenji = await consolidated_view(ctx, "kenji", month=JUNE, audit=None)
    assert [(s["subscription_id"], s["fee"], s["charged_days"], s["expected_charge"],
             s["status"]) for s in kenji["accounts"][0]["subscriptions"]] == [
        ("gone", "3000", 10, "1000", "closed"), ("late", "3000", 15, "1500", "active"),
        ("old", "3000", 0, "0", "closed")]
    assert (kenji["accounts"][0]["total"], kenji["total"]) == ("2500", "2500")
    amir = await consolidated_view(ctx, "amir", month=JUNE, audit=None)
    assert (amir["currency"], amir["total"]) == ("BHD", "12.345")


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "june", "2026-6", "", "2026-06-01",
                                   "0000-01"])
async def test_a_bad_month_is_a_422_field_error(api: Api, month: str) -> None:
    for path in ("/v1/customers/john/subscriptions", "/v1/subscriptions"):
        response = await api.http.get(path, params={"month": month},
                                      headers={"Authorization": "Bearer t-admin"})
        assert response.status_code == 422, (path, month, response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", "month"]
        assert "YYYY-MM" in error["msg"] or "at most 7" in error["msg"], error


async def test_admin_and_reseller_views_are_audited_customer_and_system_views_are_not(
        api: Api, conn: psycopg.AsyncConnection) -> None:
    for token in ("t-john", "t-system", "t-ro"):  # not audited; the last is a 404
        await api.get("/v1/customers/john/subscriptions", token)
    assert await audit_rows(conn) == []
    await api.get("/v1/customers/john/subscriptions", "t-admin", **{"X-Request-ID": "v-1"})
    await api.get("/v1/customers/john/subscriptions", "t-rj", **{"X-Request-ID": "v-2"})
    assert await audit_rows(conn) == [
        ("ana-finance", "admin", "subscriptions.read", "customer:john", "john", "api read",
         "v-1"),
        ("rita", "reseller", "subscriptions.read", "customer:john", "john", "api read",
         "v-2")]


async def test_a_customer_without_accounts_has_an_empty_view(api: Api,
                                                              conn: psycopg.AsyncConnection,
                                                              settings: Settings) -> None:
    await add_customers(context(conn, settings), {"newbie": JOHNS_RESELLER})
    response = await api.get("/v1/customers/newbie/subscriptions?month=2026-06", "t-rj")
    assert response.json() == {"customer_id": "newbie", "currency": "USD", "month": "2026-06",
                               "service_state": "active", "accounts": [], "total": "0.00"}


# ------------------------------------------------------------------------------ list
async def page(api: Api, token: str, **params: Any) -> dict[str, Any]:
    response = await api.http.get("/v1/subscriptions", params=params,
                                  headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def walk(api: Api, token: str, between: Any = None, **params: Any
               ) -> list[dict[str, Any]]:
    """Every page in turn; ``between(n)`` runs after page n."""
    pages, cursor = [], None
    while True:
        body = await page(api, token, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        if between is not None:
            await between(len(pages))


def ids(pages: list[dict[str, Any]]) -> list[str]:
    return [s["subscription_id"] for p in pages for s in p["subscriptions"]]


ALL_IDS = ["direct-s0", "jane-s0", "jane-s1", "ess-1", "netflix", "ess-2", "hbo", "ess-3",
           "mark-s0"]  # customer, account, id order


async def test_the_list_walks_every_subscription_once_in_a_stable_order(api: Api) -> None:
    pages = await walk(api, "t-admin", month="2026-06", limit=2)
    assert ids(pages) == ALL_IDS
    assert [len(p["subscriptions"]) for p in pages] == [2, 2, 2, 2, 1]  # no empty last page
    assert all(p["month"] == "2026-06" for p in pages)
    # The same walk again gives the same pages, cursors included.
    assert await walk(api, "t-admin", month="2026-06", limit=2) == pages
    single = await page(api, "t-admin", month="2026-06")
    assert ids([single]) == ALL_IDS and single["next_cursor"] is None


async def test_each_page_carries_its_customers_whole_month_total(api: Api) -> None:
    pages = await walk(api, "t-rj", month="2026-06", limit=2)
    assert ids(pages) == ["jane-s0", "jane-s1", "ess-1", "netflix", "ess-2", "hbo", "ess-3"]
    totals = [{c["customer_id"]: c["total"] for c in p["customers"]} for p in pages]
    # John spans three pages; each shows his whole $75.00, not the page's part of it.
    assert totals == [{"jane": "20.00"}, {"john": "75.00"}, {"john": "75.00"},
                      {"john": "75.00"}]
    assert pages[1]["customers"] == [{"customer_id": "john", "currency": "USD",
                                      "month": "2026-06", "service_state": "active",
                                      "total": "75.00"}]
    johns = [s for p in pages for s in p["subscriptions"] if s["customer_id"] == "john"]
    expected = [s for a in johns_june()["accounts"] for s in a["subscriptions"]]
    assert johns == [s | {"month": "2026-06"} for s in expected]


async def test_the_walk_survives_rows_added_between_pages(
        api: Api, conn: psycopg.AsyncConnection, settings: Settings) -> None:
    added: list[str] = []

    async def insert(after_page: int) -> None:
        # Before the cursor (jane, "a-" sorts first), at it (john) and after it (a new
        # customer "zoe" of the same reseller): none may shift or repeat the others.
        for customer, account in (("jane", "jane-1"), ("john", "john-2"), ("zoe", "zoe-1")):
            sub_id = f"{'a' if customer == 'jane' else 'z'}-new-{after_page}-{customer}"
            await put(conn, sub_id, customer, account)
            added.append(sub_id)

    await add_customers(context(conn, settings), {"zoe": JOHNS_RESELLER})
    await put_account(conn, AccountSpec("zoe-1", "zoe"), ADMIN)
    before = ids(await walk(api, "t-rj", limit=2))
    seen = ids(await walk(api, "t-rj", insert, limit=2))
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert [s for s in seen if s in before] == before, "a row existing throughout was skipped"
    assert set(seen) - set(before) <= set(added)
    assert added and set(added) - set(seen)  # rows added behind the cursor are not seen


async def test_the_customer_filter(api: Api) -> None:
    johns = ["ess-1", "netflix", "ess-2", "hbo", "ess-3"]
    assert ids([await page(api, "t-admin", customer_id="john")]) == johns
    assert ids([await page(api, "t-rj", customer_id="john")]) == johns
    assert ids([await page(api, "t-john", customer_id="john")]) == johns
    # Outside the scope the filter finds nothing, exactly like a customer without any.
    for token, customer in (("t-ro", "john"), ("t-john", "jane"), ("t-admin", "nobody")):
        body = await page(api, token, customer_id=customer)
        assert body == {"month": None, "subscriptions": [], "customers": [],
                        "next_cursor": None}


@pytest.mark.parametrize(("token", "seen"), [
    ("t-admin", ALL_IDS), ("t-system", ALL_IDS),
    ("t-rj", ["jane-s0", "jane-s1", "ess-1", "netflix", "ess-2", "hbo", "ess-3"]),
    ("t-ro", ["mark-s0"]),
    ("t-john", ["ess-1", "netflix", "ess-2", "hbo", "ess-3"]),
])
async def test_the_list_holds_only_the_callers_scope(api: Api, token: str,
                                                     seen: list[str]) -> None:
    pages = await walk(api, token, limit=3)
    assert ids(pages) == seen
    customers = {c["customer_id"] for p in pages for c in p["customers"]}
    assert customers == {s.split("-")[0] if "-s" in s else "john" for s in seen}


async def test_the_list_defaults_to_each_customers_current_month(api: Api) -> None:
    body = await page(api, "t-admin")
    now = str(Month.containing(datetime.now(UTC), "UTC"))
    assert body["month"] is None
    assert {c["month"] for c in body["customers"]} == {s["month"] for s in
                                                       body["subscriptions"]} == {now}


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": MAX_LIMIT + 1}, "limit"), ({"limit": "ten"}, "limit"),
    ({"limit": -1}, "limit"),
    ({"cursor": "not a cursor"}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'["only","two"]').decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'{"a":1}').decode()}, "cursor"),
    ({"cursor": "x" * 3000}, "cursor"),
    ({"customer_id": ""}, "customer_id"), ({"customer_id": "a\tb"}, "customer_id"),
])
async def test_bad_list_parameters_are_422_field_errors(api: Api, params: dict[str, Any],
                                                        field: str) -> None:
    response = await api.http.get("/v1/subscriptions", params=params,
                                  headers={"Authorization": "Bearer t-admin"})
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


async def test_the_limit_bounds_are_accepted(api: Api) -> None:
    assert len((await page(api, "t-admin", limit=1))["subscriptions"]) == 1
    assert len((await page(api, "t-admin", limit=MAX_LIMIT))["subscriptions"]) == 9
    assert DEFAULT_LIMIT <= MAX_LIMIT


async def test_list_reads_are_audited_per_customer_for_admin_and_reseller_only(
        api: Api, conn: psycopg.AsyncConnection) -> None:
    await walk(api, "t-john", limit=2)
    await walk(api, "t-system", limit=2)
    assert await audit_rows(conn) == []
    await walk(api, "t-rj", limit=2)  # pages: jane | john | john | john
    rows = await audit_rows(conn)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("rita", "reseller", "subscriptions.list", "jane"),
        *[("rita", "reseller", "subscriptions.list", "john")] * 3]
    assert all(r[3] == f"customer:{r[4]}" for r in rows)


async def test_no_token_is_401(api: Api) -> None:
    for path in ("/v1/subscriptions", "/v1/customers/john/subscriptions"):
        response = await api.get(path)
        assert response.status_code == 401
        assert response.json() == {"detail": "missing or unknown bearer token"}
