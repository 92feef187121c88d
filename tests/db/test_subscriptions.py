"""Accounts, subscriptions and resellers (SPEC 2.8): idempotent create-or-replace with
audit records, constraints that refuse bad states, keyset pages that survive inserts."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import date

import psycopg
import pytest
from psycopg import errors

import db.subscriptions as subs
from db.audit import list_audit
from db.errors import UnknownCustomer
from db.subscriptions import (
    MAX_PAGE,
    AccountSpec,
    CustomerScope,
    SubscriptionRefused,
    SubscriptionSpec,
    customer_scope,
    customer_subscriptions,
    get_subscription,
    page_cursor,
    put_account,
    put_subscription,
    set_reseller,
    subscriptions_of_customers,
    subscriptions_page,
)
from tests.db.conftest import ADMIN, SNAPSHOT_TABLES, setup_customer, snapshot

TABLES = (*SNAPSHOT_TABLES, "accounts", "subscriptions")
JUNE = date(2024, 6, 1)


def sub(sub_id: str = "s1", account: str = "a1", customer: str = "c1", **changes: object
        ) -> SubscriptionSpec:
    spec = SubscriptionSpec(id=sub_id, customer_id=customer, account_id=account,
                            product="Essentials", fee=2000, currency="USD", starts=JUNE)
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


async def two_customers(conn: psycopg.AsyncConnection) -> None:
    """c1 with accounts a1, a2; c2 with account b1; all USD."""
    await setup_customer(conn, "c1")
    await setup_customer(conn, "c2")
    for account, customer in (("a1", "c1"), ("a2", "c1"), ("b1", "c2")):
        await put_account(conn, AccountSpec(account, customer, f"line {account}"), ADMIN)


# ------------------------------------------------------------------------- idempotency
async def test_put_account_created_unchanged_replaced_and_audited(
    conn: psycopg.AsyncConnection,
) -> None:
    await setup_customer(conn)
    spec = AccountSpec("a1", "c1", "John's phone")
    created = await put_account(conn, spec, ADMIN)
    assert (created.status, created.before) == ("created", None)
    assert (created.after.id, created.after.customer_id, created.after.name) == (
        "a1", "c1", "John's phone")

    again = await put_account(conn, spec, ADMIN)
    assert again.status == "unchanged" and again.after == created.after

    renamed = await put_account(conn, dataclasses.replace(spec, name="Family"), ADMIN)
    assert renamed.status == "replaced"
    assert renamed.before == created.after and renamed.after.name == "Family"
    assert renamed.after.updated_at >= created.after.updated_at

    records = await list_audit(conn, target="account:a1")
    assert [r.action for r in records] == ["account.put", "account.put"]  # none for unchanged
    assert all(r.on_behalf_of == "c1" and r.actor == "alice" for r in records)
    assert records[0].before["name"] == "John's phone" and records[0].after["name"] == "Family"
    assert records[1].before is None and records[1].after["customer_id"] == "c1"
    assert (records[0].reason, records[0].request_id) == ("test", "req-1")


async def test_put_subscription_created_unchanged_replaced_and_audited(
    conn: psycopg.AsyncConnection,
) -> None:
    await two_customers(conn)
    created = await put_subscription(conn, sub(), ADMIN)
    assert (created.status, created.before) == ("created", None)
    row = created.after
    assert (row.fee, row.currency, row.starts, row.ends, row.free_until, row.status) == (
        2000, "USD", JUNE, None, None, "active")

    before = await snapshot(conn, TABLES)
    again = await put_subscription(conn, sub(), ADMIN)
    assert again.status == "unchanged" and again.after == row
    assert await snapshot(conn, TABLES) == before  # nothing written, not even updated_at

    closed = sub(fee=1500, ends=date(2024, 6, 20), status="closed",
                 free_until=date(2024, 6, 5))
    replaced = await put_subscription(conn, closed, ADMIN)
    assert replaced.status == "replaced" and replaced.before == row
    assert (replaced.after.fee, replaced.after.status) == (1500, "closed")
    assert await get_subscription(conn, "s1") == replaced.after
    assert (await put_subscription(conn, closed, ADMIN)).status == "unchanged"

    records = await list_audit(conn, target="subscription:s1")
    assert [r.action for r in records] == ["subscription.put", "subscription.put"]
    assert records[0].before["fee"] == 2000 and records[0].after["fee"] == 1500
    assert records[0].after["ends"] == "2024-06-20" and records[0].on_behalf_of == "c1"
    assert records[1].before is None


async def test_subscription_may_move_between_accounts_of_its_customer(
    conn: psycopg.AsyncConnection,
) -> None:
    await two_customers(conn)
    await put_subscription(conn, sub(account="a1"), ADMIN)
    moved = await put_subscription(conn, sub(account="a2"), ADMIN)
    assert moved.status == "replaced" and moved.after.account_id == "a2"


async def test_concurrent_first_puts_create_once(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as setup:
        await two_customers(setup)
    async with await psycopg.AsyncConnection.connect(database_url) as one, \
            await psycopg.AsyncConnection.connect(database_url) as two:
        results = await asyncio.gather(put_subscription(one, sub(), ADMIN),
                                       put_subscription(two, sub(), ADMIN))
        assert sorted(r.status for r in results) == ["created", "unchanged"]
        assert len(await list_audit(one, target="subscription:s1")) == 1


# -------------------------------------------------------------------------- refusals
REFUSALS = {
    "negative fee": (sub(fee=-1), "fee", "fee must not be negative"),
    "absurd fee": (sub(fee=10**12 * 100 + 1), "fee", "fee is above"),
    "fee not an int": (sub(fee="20.00"), "fee", "fee must be an integer"),
    "end before start": (sub(ends=date(2024, 5, 31)), "ends",
                         "end 2024-05-31 is before start 2024-06-01"),
    "closed without end": (sub(status="closed"), "ends", "a closed subscription must have an end"),
    "unknown status": (sub(status="paused"), "status", "status must be active or closed"),
    "wrong currency": (sub(currency="EUR"), "currency",
                       "currency EUR does not match currency USD"),
    "not a currency": (sub(currency="usd"), "currency", "upper case"),
    "unknown account": (sub(account="nope"), "account_id", "account nope of customer c1 not found"),
    "account of another customer": (sub(account="b1"), "account_id",
                                    "account b1 of customer c1 not found"),
    "unknown customer": (sub(customer="ghost"), "customer_id", "customer ghost not found"),
    "blank id": (sub(sub_id=" "), "id", "subscription id must not be empty"),
    "blank customer": (sub(customer=""), "customer_id", "customer id must not be empty"),
    "blank account": (sub(account=""), "account_id", "account id must not be empty"),
    "blank product": (sub(product="  "), "product", "product must not be empty"),
    "product on two lines": (sub(product="A\nBcc: x"), "product", "single line"),
    "start not a date": (sub(starts="2024-06-01"), "starts", "starts must be a date"),
}


@pytest.mark.parametrize("spec, field, message", REFUSALS.values(), ids=REFUSALS.keys())
async def test_put_subscription_refusals_write_nothing(
    conn: psycopg.AsyncConnection, spec: SubscriptionSpec, field: str, message: str,
) -> None:
    await two_customers(conn)
    before = await snapshot(conn, TABLES)
    with pytest.raises(SubscriptionRefused, match=message) as refused:
        await put_subscription(conn, spec, ADMIN)
    assert refused.value.field == field
    assert await snapshot(conn, TABLES) == before


async def test_subscription_cannot_move_to_another_customer(
    conn: psycopg.AsyncConnection,
) -> None:
    await two_customers(conn)
    await put_subscription(conn, sub(), ADMIN)
    before = await snapshot(conn, TABLES)
    with pytest.raises(SubscriptionRefused,
                       match="subscription s1 belongs to another customer and cannot move"
                             " to customer c2") as refused:
        await put_subscription(conn, sub(account="b1", customer="c2"), ADMIN)
    assert refused.value.field == "customer_id"
    assert await snapshot(conn, TABLES) == before


async def test_account_refusals(conn: psycopg.AsyncConnection) -> None:
    await two_customers(conn)
    before = await snapshot(conn, TABLES)
    cases = [
        (AccountSpec("a1", "c2"), "account a1 belongs to another customer", "customer_id"),
        (AccountSpec("z1", "ghost"), "customer ghost not found", "customer_id"),
        (AccountSpec(" ", "c1"), "account id must not be empty", "id"),
        (AccountSpec("z1", ""), "customer id must not be empty", "customer_id"),
        (AccountSpec("z1", "c1", "a\r\nb"), "single line", "name"),
    ]
    for spec, message, field in cases:
        with pytest.raises(SubscriptionRefused, match=message) as refused:
            await put_account(conn, spec, ADMIN)
        assert refused.value.field == field
    assert await snapshot(conn, TABLES) == before


DB_REFUSALS = {
    "subscriptions_fee_non_negative": {"fee": -1},
    "subscriptions_ends_after_start": {"ends": date(2024, 5, 1)},
    "subscriptions_closed_has_end": {"status": "closed"},
    "subscriptions_status": {"status": "paused"},
    "subscriptions_currency_matches_class": {"currency": "EUR"},
    "subscriptions_account_fkey": {"account_id": "b1"},
    "subscriptions_id_present": {"id": " "},
    "subscriptions_product_present": {"product": " "},
}


@pytest.mark.parametrize("constraint, changes", DB_REFUSALS.items(), ids=DB_REFUSALS.keys())
async def test_database_refusals_become_clear_messages(
    conn: psycopg.AsyncConnection, monkeypatch: pytest.MonkeyPatch, constraint: str,
    changes: dict,
) -> None:
    """With the early checks switched off, the schema itself refuses, and the refusal still
    reads well (what a concurrent change would meet)."""
    await two_customers(conn)

    async def no_refs(*args: object) -> None:
        return None

    monkeypatch.setattr(subs, "_validate_subscription", lambda spec: None)
    monkeypatch.setattr(subs, "_check_subscription_refs", no_refs)
    with pytest.raises(SubscriptionRefused) as refused:
        await put_subscription(conn, sub(**changes), ADMIN)
    assert isinstance(refused.value.__cause__, errors.IntegrityError)
    assert refused.value.__cause__.diag.constraint_name == constraint
    assert refused.value.field is not None
    assert "constraint" not in str(refused.value) and "violates" not in str(refused.value)
    assert await get_subscription(conn, changes.get("id", "s1")) is None


# ------------------------------------------------------------ the schema on its own
_INSERT = ("INSERT INTO subscriptions (id, customer_id, account_id, product, fee, currency,"
           " starts, ends, free_until, status) VALUES ")

# name -> (statement, the constraint that must refuse it; None: NOT NULL)
BAD_STATEMENTS: dict[str, tuple[str, str | None]] = {
    "negative fee": (
        _INSERT + "('s', 'c1', 'a1', 'p', -1, 'USD', '2024-06-01', NULL, NULL, 'active')",
        "subscriptions_fee_non_negative"),
    "end before start": (
        _INSERT + "('s', 'c1', 'a1', 'p', 1, 'USD', '2024-06-01', '2024-05-31', NULL, 'active')",
        "subscriptions_ends_after_start"),
    "wrong currency": (
        _INSERT + "('s', 'c1', 'a1', 'p', 1, 'EUR', '2024-06-01', NULL, NULL, 'active')",
        "subscriptions_currency_matches_class"),
    # The trigger runs before the CHECKs, so it is the one that speaks here.
    "lower-case currency": (
        _INSERT + "('s', 'c1', 'a1', 'p', 1, 'usd', '2024-06-01', NULL, NULL, 'active')",
        "subscriptions_currency_matches_class"),
    "account of another customer": (
        _INSERT + "('s', 'c1', 'b1', 'p', 1, 'USD', '2024-06-01', NULL, NULL, 'active')",
        "subscriptions_account_fkey"),
    "unknown account": (
        _INSERT + "('s', 'c1', 'zz', 'p', 1, 'USD', '2024-06-01', NULL, NULL, 'active')",
        "subscriptions_account_fkey"),
    "closed without end": (
        _INSERT + "('s', 'c1', 'a1', 'p', 1, 'USD', '2024-06-01', NULL, NULL, 'closed')",
        "subscriptions_closed_has_end"),
    "unknown status": (
        _INSERT + "('s', 'c1', 'a1', 'p', 1, 'USD', '2024-06-01', NULL, NULL, 'paused')",
        "subscriptions_status"),
    "no start": (
        _INSERT + "('s', 'c1', 'a1', 'p', 1, 'USD', NULL, NULL, NULL, 'active')", None),
    "blank subscription id": (
        _INSERT + "(' ', 'c1', 'a1', 'p', 1, 'USD', '2024-06-01', NULL, NULL, 'active')",
        "subscriptions_id_present"),
    "blank product": (
        _INSERT + "('s', 'c1', 'a1', '', 1, 'USD', '2024-06-01', NULL, NULL, 'active')",
        "subscriptions_product_present"),
    "blank account id": (
        "INSERT INTO accounts (id, customer_id) VALUES ('', 'c1')", "accounts_id_present"),
    "account of unknown customer": (
        "INSERT INTO accounts (id, customer_id) VALUES ('z', 'ghost')",
        "accounts_customer_id_fkey"),
    "account name on two lines": (
        "INSERT INTO accounts (id, customer_id, name) VALUES ('z', 'c1', E'a\\nb')",
        "accounts_name_single_line"),
    "blank reseller": (
        "UPDATE customers SET reseller_id = ' ' WHERE id = 'c1'", "customers_reseller_id_present"),
    "account moves customer": (
        "UPDATE accounts SET customer_id = 'c2' WHERE id = 'a2'", "accounts_customer_fixed"),
    "subscription moves customer": (
        "UPDATE subscriptions SET customer_id = 'c2', account_id = 'b1' WHERE id = 'live'",
        "subscriptions_customer_fixed"),
    "subscription currency changes": (
        "UPDATE subscriptions SET currency = 'EUR'", "subscriptions_currency_matches_class"),
    "class currency changes under subscriptions": (
        "UPDATE customer_classes SET currency = 'EUR' WHERE name = 'residential'",
        "customer_classes_currency_locked_by_subscriptions"),
    "customer moves to a class of another currency": (
        "UPDATE customers SET class_name = 'euro' WHERE id = 'c1'",
        "customers_class_currency_locked_by_subscriptions"),
    "account with subscriptions deleted": (
        "DELETE FROM accounts WHERE id = 'a1'", "subscriptions_account_fkey"),
}


@pytest.mark.parametrize("statement, constraint", BAD_STATEMENTS.values(),
                         ids=BAD_STATEMENTS.keys())
async def test_constraints_refuse_bad_rows(conn: psycopg.AsyncConnection, statement: str,
                                           constraint: str | None) -> None:
    await two_customers(conn)
    await setup_customer(conn, "e1", currency="EUR", class_name="euro")
    await put_subscription(conn, sub("live"), ADMIN)
    with pytest.raises(errors.IntegrityError) as refused:
        await conn.execute(statement)
    assert refused.value.diag.constraint_name == constraint


async def test_class_currency_may_change_without_subscriptions(
    conn: psycopg.AsyncConnection,
) -> None:
    await two_customers(conn)  # accounts, but no money and no subscriptions yet
    await conn.execute("UPDATE customer_classes SET currency = 'EUR'")
    await conn.execute("UPDATE customer_classes SET currency = 'USD'")


# --------------------------------------------------------------------------- resellers
async def test_set_reseller_and_scope(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn, "c1")
    assert await customer_scope(conn, "c1") == CustomerScope("c1", None)
    assert await customer_scope(conn, "ghost") is None

    first = await set_reseller(conn, "c1", "acme", ADMIN)
    assert (first.status, first.before, first.after) == ("updated", None, "acme")
    assert (await set_reseller(conn, "c1", "acme", ADMIN)).status == "unchanged"
    scope = await customer_scope(conn, "c1")
    assert scope == CustomerScope("c1", "acme")
    assert scope.visible_to_reseller("acme") and not scope.visible_to_reseller("other")
    assert not CustomerScope("c1", None).visible_to_reseller("acme")

    cleared = await set_reseller(conn, "c1", None, ADMIN)
    assert (cleared.status, cleared.before, cleared.after) == ("updated", "acme", None)

    records = [r for r in await list_audit(conn, customer_id="c1")
               if r.action == "customer.reseller"]
    assert [(r.before, r.after) for r in records] == [
        ({"reseller_id": "acme"}, {"reseller_id": None}),
        ({"reseller_id": None}, {"reseller_id": "acme"})]
    assert all(r.on_behalf_of == "c1" and r.target == "customer:c1" for r in records)

    with pytest.raises(UnknownCustomer):
        await set_reseller(conn, "ghost", "acme", ADMIN)
    with pytest.raises(SubscriptionRefused, match="reseller id must not be empty"):
        await set_reseller(conn, "c1", "  ", ADMIN)


# ------------------------------------------------------------------------------- reads
async def test_customer_subscriptions_groups_by_account_in_order(
    conn: psycopg.AsyncConnection,
) -> None:
    """The seed's John: three accounts with Essentials, a Netflix bonus, one HBO."""
    await setup_customer(conn, "john")
    await setup_customer(conn, "other")
    for account in ("john-3", "john-1", "john-2", "john-empty"):
        await put_account(conn, AccountSpec(account, "john"), ADMIN)
    await put_account(conn, AccountSpec("other-1", "other"), ADMIN)
    for n in (3, 1, 2):
        await put_subscription(conn, sub(f"ess-{n}", f"john-{n}", "john"), ADMIN)
    await put_subscription(conn, sub("netflix", "john-1", "john", product="Netflix", fee=1000,
                                     free_until=date(2024, 6, 30)), ADMIN)
    await put_subscription(conn, sub("hbo", "john-2", "john", product="HBO", fee=1500), ADMIN)
    await put_subscription(conn, sub("x", "other-1", "other"), ADMIN)

    view = await customer_subscriptions(conn, "john")
    assert [(a.id, [s.id for s in ss]) for a, ss in view] == [
        ("john-1", ["ess-1", "netflix"]), ("john-2", ["ess-2", "hbo"]), ("john-3", ["ess-3"]),
        ("john-empty", [])]
    assert all(s.customer_id == "john" and s.account_id == a.id for a, ss in view for s in ss)
    assert view[0][1][1].free_until == date(2024, 6, 30)
    assert await customer_subscriptions(conn, "ghost") == []

    both = await subscriptions_of_customers(conn, ["john", "other", "ghost"])
    assert [s.id for s in both["john"]] == ["ess-1", "netflix", "ess-2", "hbo", "ess-3"]
    assert [s.id for s in both["other"]] == ["x"] and "ghost" not in both


async def _populate(conn: psycopg.AsyncConnection, customers: dict[str, str | None],
                    per_account: int, accounts: int = 2) -> None:
    """Customers (id -> reseller) with ``accounts`` accounts of ``per_account``
    subscriptions each, inserted in a scrambled order."""
    for customer, reseller in customers.items():
        await setup_customer(conn, customer)
        if reseller is not None:
            await set_reseller(conn, customer, reseller, ADMIN)
    account_rows = [(f"{c}-acc{a}", c) for c in customers for a in range(accounts)]
    rows = [(f"s{n:05d}-{acc}", c, acc) for acc, c in account_rows for n in range(per_account)]
    rows.sort(key=lambda r: r[0][::-1])  # not in key order: the order must come from the query
    async with conn.cursor() as cur:
        await cur.executemany("INSERT INTO accounts (id, customer_id) VALUES (%s, %s)",
                              account_rows)
        await cur.executemany(
            "INSERT INTO subscriptions (id, customer_id, account_id, product, fee, currency,"
            " starts) VALUES (%s, %s, %s, 'Essentials', 2000, 'USD', '2024-06-01')", rows)
    await conn.commit()


async def _walk(conn: psycopg.AsyncConnection, limit: int, between=None, **scope: str | None
                ) -> list[tuple[str, str, str]]:
    keys: list[tuple[str, str, str]] = []
    after = None
    while True:
        page = await subscriptions_page(conn, reseller_id=scope.get("reseller_id"),
                                        customer_id=scope.get("customer_id"), after=after,
                                        limit=limit)
        keys.extend(page_cursor(s) for s in page)
        if len(page) < limit:
            return keys
        after = page_cursor(page[-1])
        if between is not None:
            await between(after)


async def _all_keys(conn: psycopg.AsyncConnection, reseller: str | None = None
                    ) -> list[tuple[str, str, str]]:
    query = ("SELECT s.customer_id, s.account_id, s.id FROM subscriptions s"
             " JOIN customers c ON c.id = s.customer_id"
             " WHERE %(r)s::text IS NULL OR c.reseller_id = %(r)s"
             " ORDER BY 1, 2, 3")
    cur = await conn.execute(query, {"r": reseller})
    return [tuple(row) for row in await cur.fetchall()]


@pytest.mark.parametrize("limit", [1, 3, 7, 40, MAX_PAGE])
async def test_walk_returns_each_row_once_in_order(conn: psycopg.AsyncConnection,
                                                   limit: int) -> None:
    await _populate(conn, {"c1": "acme", "c2": "other", "c3": None, "c4": "acme"},
                    per_account=5)
    everyone = await _walk(conn, limit)
    assert everyone == await _all_keys(conn) and len(everyone) == 40
    acme = await _walk(conn, limit, reseller_id="acme")
    assert acme == await _all_keys(conn, "acme") and {k[0] for k in acme} == {"c1", "c4"}
    assert await _walk(conn, limit, customer_id="c3") == [k for k in everyone if k[0] == "c3"]
    # A customer outside the reseller's scope gives nothing, like one that does not exist.
    assert await _walk(conn, limit, reseller_id="acme", customer_id="c2") == []
    assert await _walk(conn, limit, reseller_id="acme", customer_id="c4") == [
        k for k in everyone if k[0] == "c4"]
    assert await _walk(conn, limit, reseller_id="nobody") == []


async def test_walk_stays_correct_while_rows_are_inserted(conn: psycopg.AsyncConnection) -> None:
    await _populate(conn, {"c1": "acme", "c3": "acme", "c5": "acme", "x": "other"},
                    per_account=4)
    original = await _all_keys(conn, "acme")
    await setup_customer(conn, "c2")  # sorts between c1 and c3: joins the scope mid-walk
    await set_reseller(conn, "c2", "acme", ADMIN)
    await put_account(conn, AccountSpec("c2-acc0", "c2"), ADMIN)
    ahead: list[tuple[str, str, str]] = []  # in scope and after the cursor when inserted
    counter = iter(range(1000))

    async def insert_around(cursor: tuple[str, str, str]) -> None:
        # Around the cursor: one row behind it ("a-" sorts before "s0..."), one ahead in the
        # same account, one for c2 (ahead while the walk is in c1, behind after), one for
        # another reseller (never in scope).
        n = next(counter)
        for customer, account, sub_id in ((cursor[0], cursor[1], f"a-{n}"),
                                          (cursor[0], cursor[1], f"z-{n}"),
                                          ("c2", "c2-acc0", f"new-{n}"),
                                          ("x", "x-acc0", f"x-{n}")):
            await put_subscription(conn, sub(sub_id, account, customer), ADMIN)
            if customer != "x" and (customer, account, sub_id) > cursor:
                ahead.append((customer, account, sub_id))

    seen = await _walk(conn, 5, insert_around, reseller_id="acme")
    assert len(seen) == len(set(seen))  # nothing twice
    # Exactly: every row there all along, plus every in-scope row inserted ahead of the
    # cursor; nothing inserted behind it, nothing of the other reseller; one stable order.
    assert seen == sorted({*original, *ahead})
    assert any(k[0] == "c2" for k in ahead) and any(k[2].startswith("z-") for k in ahead)
    assert next(counter) > 5  # the walk really did insert between many pages


async def test_reseller_walk_of_2500_subscriptions(conn: psycopg.AsyncConnection) -> None:
    """The issue's "done when" at the data layer: 2,500 subscriptions of one reseller among
    others, walked page by page, each exactly once (time per page printed)."""
    resellers = {f"r{n:03d}": "big" for n in range(50)}  # 50 x 2 accounts x 25 = 2,500
    resellers |= {f"o{n:03d}": "small" for n in range(10)} | {"direct": None}
    await _populate(conn, resellers, per_account=25)
    started = time.perf_counter()
    seen = await _walk(conn, 100, reseller_id="big")
    elapsed = time.perf_counter() - started
    assert len(seen) == 2500 and len(set(seen)) == 2500
    assert seen == await _all_keys(conn, "big")
    print(f"\n2,500 subscriptions in 26 pages of 100: {elapsed / 26 * 1000:.2f} ms per page")


async def test_page_limit_is_bounded(conn: psycopg.AsyncConnection) -> None:
    for limit in (0, -1, MAX_PAGE + 1):
        with pytest.raises(ValueError, match="limit must be between 1 and"):
            await subscriptions_page(conn, reseller_id=None, customer_id=None, after=None,
                                     limit=limit)


async def test_page_query_uses_the_index(conn: psycopg.AsyncConnection) -> None:
    await _populate(conn, {f"c{n:03d}": "acme" for n in range(20)}, per_account=50)
    await conn.execute("ANALYZE subscriptions")
    await conn.execute("ANALYZE customers")
    cur = await conn.execute(
        "EXPLAIN SELECT s.id FROM subscriptions s WHERE (s.customer_id, s.account_id, s.id)"
        " > ('c005', 'c005-acc0', 's00010-c005-acc0')"
        " ORDER BY s.customer_id, s.account_id, s.id LIMIT 100")
    plan = "\n".join(row[0] for row in await cur.fetchall())
    assert "subscriptions_customer_account_idx" in plan and "Sort" not in plan
