"""Benchmark: a reseller walks every page of GET /v1/subscriptions (SPEC 2.8, 4.3).

Setup, in a fresh database: one reseller with --subscriptions subscriptions (customers of
2 accounts x 5 subscriptions each), plus as many again of another reseller and of direct
customers, so that the scope filter has rows to skip. The walk: every page at the default
limit, as that reseller (audited: one record per customer per page), through the real app
in-process (httpx's ASGI transport; no Temporal, these reads do not use it). It checks that
every subscription comes back exactly once, then prints per-page time (p50, p95, max) and
the total.

    .venv/bin/python -m bench.subscriptions_walk [--subscriptions 2500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import psycopg

from api.app import create_app
from bench.common import ADMIN, admin_database_url, fresh_database, percentile
from db.customers import NewCustomer, add_customer
from db.subscriptions import set_reseller
from operations.classes import ClassChange, set_class
from operations.context import open_context
from operations.subscriptions import DEFAULT_LIMIT
from settings import ApiIdentity, Settings, load_settings

RESELLER, OTHER = "r-bench", "r-other"
TOKEN = "t-bench"
ACCOUNTS, PER_ACCOUNT = 2, 5


class _NoTemporal:
    """The app's Temporal client, which these reads must never touch."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Temporal must not be used here (client.{name})")


# ------------------------------------------------------------------------------ setup
async def seed(settings: Settings, count: int) -> set[str]:
    """``count`` subscriptions for each of RESELLER, OTHER and direct customers; returns
    RESELLER's subscription ids."""
    per_customer = ACCOUNTS * PER_ACCOUNT
    customers = -(-count // per_customer)
    mine: set[str] = set()
    async with open_context(settings) as ctx:
        await set_class(ctx, ClassChange(name="residential", currency="USD", threshold="0"),
                        ADMIN)
        for reseller in (RESELLER, OTHER, None):
            prefix = reseller or "direct"
            ids = [f"{prefix}-c{n:05d}" for n in range(customers)]
            for customer_id in ids:
                await add_customer(ctx.conn, NewCustomer(customer_id, "Bench", "b@bench.test",
                                                         "residential"), ADMIN)
                if reseller is not None:
                    await set_reseller(ctx.conn, customer_id, reseller, ADMIN)
            subs = await _insert_rows(ctx.conn, ids, count)
            if reseller == RESELLER:
                mine = subs
        await ctx.conn.execute("ANALYZE")
    return mine


async def _insert_rows(conn: psycopg.AsyncConnection, customers: list[str],
                       count: int) -> set[str]:
    accounts = [(f"{c}-a{a}", c) for c in customers for a in range(ACCOUNTS)]
    subs = [(f"{account}-s{s}", customer, account) for account, customer in accounts
            for s in range(PER_ACCOUNT)][:count]
    async with conn.cursor() as cur:
        await cur.executemany("INSERT INTO accounts (id, customer_id) VALUES (%s, %s)",
                              accounts)
        await cur.executemany(
            "INSERT INTO subscriptions (id, customer_id, account_id, product, fee, currency,"
            " starts) VALUES (%s, %s, %s, 'Essentials', 2000, 'USD', '2026-01-01')", subs)
    return {sub_id for sub_id, _, _ in subs}


# ------------------------------------------------------------------------------- walk
async def walk(http: httpx.AsyncClient) -> tuple[list[float], Counter[str]]:
    """Seconds per page and how often each subscription id came back."""
    seen: Counter[str] = Counter()
    times: list[float] = []
    cursor: str | None = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        started = time.perf_counter()
        response = await http.get("/v1/subscriptions", params=params,
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response.json()
        seen.update(s["subscription_id"] for s in body["subscriptions"])
        cursor = body["next_cursor"]
        if cursor is None:
            return times, seen


def report(round_no: int, times: list[float], seen: Counter[str], mine: set[str]) -> None:
    once = set(seen) == mine and all(n == 1 for n in seen.values())
    p50, p95 = (percentile(times, p) or 0.0 for p in (50, 95))
    print(f"round {round_no}: {len(times)} pages of {DEFAULT_LIMIT}, {sum(seen.values())} "
          f"subscriptions, each exactly once: {'yes' if once else 'NO'}; per page "
          f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {max(times) * 1000:.1f} ms;"
          f" total {sum(times) * 1000:.0f} ms", flush=True)
    if not once:
        raise SystemExit("the walk did not return every subscription exactly once")


async def main(count: int, rounds: int) -> None:
    with admin_database_url() as admin, fresh_database(admin, "subs") as url:
        settings = load_settings(database_url=url).model_copy(update={
            "api_tokens": {TOKEN: ApiIdentity("bench-reseller", "reseller", RESELLER)}})
        started = time.monotonic()
        mine = await seed(settings, count)
        print(f"setup: {len(mine)} subscriptions of {RESELLER} (and {2 * count} others) in "
              f"{time.monotonic() - started:.1f}s", flush=True)
        app = create_app(settings, client=_NoTemporal())  # type: ignore[arg-type]
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                for round_no in range(1, rounds + 1):
                    report(round_no, *await walk(http), mine)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.subscriptions, args.rounds))
