"""`dunning customer add --reseller`, `customer set`, `account add`, `subscription set`,
run as a user runs them (a real `dunning` process on a real database; no Temporal needed).

They call the operations of the HTTP feed (operations/feed.py), so they create or replace
idempotently, refuse bad input with one line on stderr and a non-zero exit status, write
nothing then, and audit every change.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

from tests.db.conftest import snapshot
from tests.support.processes import dunning, dunning_json

ACTOR = "cli-finance"
TABLES = ("customers", "accounts", "subscriptions", "audit_log")


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({"DUNNING_DATABASE_URL": database_url, "DUNNING_ACTOR": ACTOR})
    dunning(env, "class", "set", "residential", "--currency", "USD", "--threshold", "10.00")
    return env


async def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        return await (await conn.execute(query, params)).fetchall()  # type: ignore[arg-type]


async def tables(database_url: str) -> dict[str, list[dict]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        return await snapshot(conn, TABLES)


def refused(env: dict[str, str], *args: str) -> str:
    """The one-line error of a refused command (exit status non-zero)."""
    result = dunning(env, *args, check=False)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def add_john(env: dict[str, str], *extra: str) -> Any:
    return dunning_json(env, "customer", "add", "c1", "--name", "John", "--email",
                        "john@example.com", "--class", "residential", *extra)


async def test_customer_add_with_a_reseller_is_idempotent(env: dict[str, str],
                                                          database_url: str) -> None:
    assert add_john(env, "--reseller", "r-rita") == {"status": "created", "customer_id": "c1"}
    assert add_john(env, "--reseller", "r-rita") == {"status": "exists", "customer_id": "c1"}
    before = await tables(database_url)
    error = refused(env, "customer", "add", "c1", "--name", "John", "--email",
                    "john@example.com", "--class", "residential", "--reseller", "r-other")
    assert error == "error: customer 'c1' already exists with other data; nothing changed"
    assert await tables(database_url) == before
    assert await rows(database_url, "SELECT reseller_id FROM customers") == [("r-rita",)]
    assert await rows(database_url, "SELECT actor, realm, action FROM audit_log"
                      " WHERE target = 'customer:c1'") == [(ACTOR, "admin", "customer.create")]


async def test_customer_set_changes_only_what_is_given(env: dict[str, str],
                                                       database_url: str) -> None:
    add_john(env, "--reseller", "r-rita", "--language", "es")
    changed = dunning_json(env, "customer", "set", "c1", "--email", "john@new.example",
                           "--reason", "moved")
    assert changed == {"status": "replaced", "customer": {
        "id": "c1", "name": "John", "email": "john@new.example", "class": "residential",
        "language": "es", "reseller_id": "r-rita"}}
    assert dunning_json(env, "customer", "set", "c1", "--email", "john@new.example")[
        "status"] == "unchanged"
    direct = dunning_json(env, "customer", "set", "c1", "--no-reseller", "--class-language")
    assert (direct["customer"]["reseller_id"], direct["customer"]["language"]) == (None, None)
    # A new customer needs what it cannot do without.
    created = dunning_json(env, "customer", "set", "c2", "--name", "Jane", "--email",
                           "jane@example.com", "--class", "residential", "--reseller", "r-1")
    assert (created["status"], created["customer"]["reseller_id"]) == ("created", "r-1")
    records = await rows(database_url, "SELECT action, reason, before->>'email',"
                         " after->>'email' FROM audit_log WHERE actor = %s AND target ="
                         " 'customer:c1' ORDER BY id", ACTOR)
    assert records == [("customer.create", None, None, "john@example.com"),
                       ("customer.replace", "moved", "john@example.com", "john@new.example"),
                       ("customer.replace", None, "john@new.example", "john@new.example")]


@pytest.mark.parametrize(("args", "message"), [
    (("c9", "--name", "Nobody"), "customer c9 does not exist; to create it give --email, "
                                 "--class"),
    (("c1", "--email", "not-an-address"), "email 'not-an-address' is not an address"),
    (("c1", "--language", "fr"), "language must be en, es or pt-BR, not 'fr'"),
    (("c1", "--email", "a@example.com\r\nBcc: victim@evil.test"), "is not an address"),
    (("c1", "--name", "Ana\r\nBcc: victim@evil.test"), "name must be a single line"),
    (("c1", "--class", "no-such-class"), "unknown customer class 'no-such-class'"),
    (("c1", "--reseller", "r-1", "--no-reseller"), "either --reseller or --no-reseller"),
])
async def test_customer_set_refusals_are_one_line_and_write_nothing(
        env: dict[str, str], database_url: str, args: tuple[str, ...], message: str) -> None:
    add_john(env)
    before = await tables(database_url)
    assert message in refused(env, "customer", "set", *args)
    assert await tables(database_url) == before


async def test_accounts_and_subscriptions_through_the_cli(env: dict[str, str],
                                                          database_url: str) -> None:
    add_john(env)
    account = dunning_json(env, "account", "add", "a1", "--customer", "c1", "--name", "phone")
    assert account == {"status": "created", "account": {"id": "a1", "customer_id": "c1",
                                                        "name": "phone"}}
    assert dunning_json(env, "account", "add", "a1", "--customer", "c1", "--name", "phone")[
        "status"] == "unchanged"
    args = ("subscription", "set", "s1", "--account", "a1", "--product", "Essentials",
            "--fee", "20.00", "--starts", "2026-06-01")
    created = dunning_json(env, *args)
    assert created == {"status": "created", "subscription": {
        "id": "s1", "customer_id": "c1", "account_id": "a1", "product": "Essentials",
        "fee": "20.00", "currency": "USD", "starts": "2026-06-01", "ends": None,
        "free_until": None, "status": "active"}}
    assert dunning_json(env, *args)["status"] == "unchanged"
    # Without --starts the stored start is kept: the same command stays idempotent.
    closed = dunning_json(env, "subscription", "set", "s1", "--account", "a1", "--product",
                          "Essentials", "--fee", "20.00", "--ends", "2026-06-15",
                          "--free-until", "2026-06-03", "--status", "closed")
    assert (closed["status"], closed["subscription"]["starts"],
            closed["subscription"]["ends"]) == ("replaced", "2026-06-01", "2026-06-15")
    text = dunning(env, *args).stdout.strip()
    assert text == "subscription s1: replaced, Essentials 20.00 USD from 2026-06-01"
    actions = await rows(database_url, "SELECT action, target FROM audit_log WHERE actor = %s"
                         " AND action NOT IN ('class.create', 'customer.create') ORDER BY id",
                         ACTOR)
    assert actions == [("account.put", "account:a1")] + [
        ("subscription.put", "subscription:s1")] * 3


@pytest.mark.parametrize(("changes", "message"), [
    ({"--fee": "-5.00"}, "fee '-5.00' must not be negative"),
    ({"--fee": "20.001"}, "3 decimal places; USD allows 2"),
    ({"--ends": "2026-05-01"}, "end 2026-05-01 is before start 2026-06-01"),
    ({"--currency": "EUR"}, "currency EUR does not match currency USD"),
    ({"--account": "a9"}, "account a9 not found"),
    ({"--status": "paused"}, "status must be active or closed, not 'paused'"),
    ({"--starts": "2026-06-01T10:00:00"}, "has a time but no UTC offset"),
])
async def test_subscription_set_refusals_are_one_line_and_write_nothing(
        env: dict[str, str], database_url: str, changes: dict[str, str],
        message: str) -> None:
    add_john(env)
    dunning(env, "account", "add", "a1", "--customer", "c1")
    options = {"--account": "a1", "--product": "Essentials", "--fee": "20.00",
               "--starts": "2026-06-01", **changes}
    before = await tables(database_url)
    error = refused(env, "subscription", "set", "s1",
                    *(part for item in options.items() for part in item))
    assert message in error
    assert await tables(database_url) == before


async def test_account_add_refusals(env: dict[str, str], database_url: str) -> None:
    add_john(env)
    before = await tables(database_url)
    assert refused(env, "account", "add", "a1", "--customer", "c9") == (
        "error: customer c9 not found")
    assert await tables(database_url) == before
