"""`dunning subscriptions CUSTOMER_ID [--month YYYY-MM] [--json]` as a user runs it: a real
process on a real database (SPEC 2.8, 4.2)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator

import psycopg
import pytest

from api.app import create_app
from settings import Settings, load_settings
from tests.api.conftest import _NoTemporal, serve
from tests.api.test_subscriptions import (
    CUSTOMERS,
    JUNE,
    TOKENS,
    add_customers,
    audit_rows,
    context,
    johns_june,
    seed_john,
)
from tests.support.processes import dunning


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
        yield c


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url)


@pytest.fixture
async def env(conn: psycopg.AsyncConnection, settings: Settings,
              database_url: str) -> dict[str, str]:
    await add_customers(context(conn, settings), CUSTOMERS)
    await seed_john(conn, JUNE)
    return {**os.environ, "DUNNING_DATABASE_URL": database_url, "DUNNING_ACTOR": "carla"}


async def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(dunning, env, "subscriptions", *args, check=False)


async def test_the_seeds_john_owes_75_dollars_in_a_readable_table(env: dict[str, str]) -> None:
    result = await run(env, "john", "--month", "2026-06")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "john (USD), 2026-06: service active",
        "  ACCOUNT  SUBSCRIPTION  PRODUCT          FEE  EXPECTED  STATUS  NOTE",
        "  john-1   ess-1         Essentials     20.00     20.00  active",
        "  john-1   netflix       Netflix        10.99      0.00  active  free until 2026-06-30",
        "  john-1                 account total            20.00",
        "  john-2   ess-2         Essentials     20.00     20.00  active",
        "  john-2   hbo           HBO            15.00     15.00  active",
        "  john-2                 account total            35.00",
        "  john-3   ess-3         Essentials     20.00     20.00  active",
        "  john-3                 account total            20.00",
        "  total 75.00 USD",
    ]


async def test_json_is_the_document_of_the_api(env: dict[str, str], settings: Settings) -> None:
    result = await run(env, "john", "--month", "2026-06", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == johns_june()
    assert document["total"] == "75.00"
    assert [a["total"] for a in document["accounts"]] == ["20.00", "35.00", "20.00"]
    app = create_app(settings.model_copy(update={"api_tokens": TOKENS}),
                     client=_NoTemporal())  # type: ignore[arg-type]
    async for api in serve(app):
        response = await api.get("/v1/customers/john/subscriptions?month=2026-06", "t-admin")
        assert response.json() == document


async def test_the_read_is_audited_on_behalf_of_the_customer(
        env: dict[str, str], conn: psycopg.AsyncConnection) -> None:
    assert (await run(env, "john", "--month", "2026-06", "--reason", "portal call")
            ).returncode == 0
    assert await audit_rows(conn) == [
        ("carla", "admin", "subscriptions.read", "customer:john", "john", "portal call", None)]


async def test_the_month_defaults_to_the_current_one(env: dict[str, str]) -> None:
    from datetime import UTC, datetime

    from domain.subscriptions.charge import Month

    document = json.loads((await run(env, "jane", "--json")).stdout)
    assert document["month"] == str(Month.containing(datetime.now(UTC), "UTC"))
    assert (document["accounts"], document["total"]) == ([], "0.00")


@pytest.mark.parametrize(("args", "message"), [
    (("john", "--month", "2026-13"),
     "error: month '2026-13' does not exist; use YYYY-MM, e.g. 2026-05"),
    (("john", "--month", "June"),
     "error: month 'June' is not understood; use YYYY-MM, e.g. 2026-05"),
    (("nobody",), "error: unknown customer 'nobody'"),
])
async def test_errors_are_one_line_and_a_non_zero_exit(
        env: dict[str, str], conn: psycopg.AsyncConnection, args: tuple[str, ...],
        message: str) -> None:
    result = await run(env, *args)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", message + "\n")
    assert await audit_rows(conn) == []
