"""`dunning dev --demo`, part two: the past-due chain (late fee, working time, hold,
termination; SPEC 2.9-2.11) on a policy that counts in days, played in seconds by moving
the customer's workflow clocks with `dunning clock advance` (the dev server skips time).

Class EasyCall-SP: threshold 10.00, late fee 2% after 5d, grace 8d, terminate after 30d,
mon-fri 09:00-18:00, America/Sao_Paulo. A June invoice of 20.00 due on a Thursday gets a
0.40 fee five days after D (20.40, collect); S falls on a Saturday, so the suspension
happens on Monday 09:00 and its warning on Friday 09:00. A payment of 10.40 leaves 10.00:
resumed; its reversal suspends again; a hold with --resume resumes; releasing it the next
day suspends again; 30 days later, with no payment, the customer is terminated.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

ZONE = "America/Sao_Paulo"
CLASS = "EasyCall-SP"
POLICY = ["--currency", "BRL", "--threshold", "10.00", "--timezone", ZONE,
          "--language", "pt-BR", "--grace", "8d", "--warning", "1d", "--late-fee", "2%",
          "--late-fee-after", "5d", "--terminate-after", "30d", "--working-days", "mon-fri",
          "--working-hours", "09:00-18:00", "--from-name", "EasyCall",
          "--from-address", "no-reply@easycall.com", "--reply-to", "support@easycall.com"]


def june_due(today: date) -> date:
    """A Thursday at least a week ahead: room for the reminders before it."""
    due = today + timedelta(days=7)
    return due + timedelta(days=(3 - due.weekday()) % 7)


class PastDueChain:
    def __init__(self, dunning: Callable[..., Any], out: Callable[[str], None],
                 actor: list[str], suffix: str, today: date | None = None) -> None:
        self.dunning = dunning
        self.out = out
        self.actor = actor
        self.customer = f"chain-{suffix}"
        self.today = today or datetime.now(ZoneInfo(ZONE)).date()

    def play(self) -> str:
        """Play the story; returns the customer's id."""
        c = self.customer
        self.out(f"the past-due chain (SPEC 2.9-2.11), class {CLASS}, customer {c}")
        self.dunning("class", "set", CLASS, *POLICY, *self.actor)
        self.dunning("customer", "add", c, "--name", "Maria Souza", "--email",
                     f"{c}@example.com.br", "--class", CLASS, *self.actor)
        due = june_due(self.today)
        d = datetime(due.year, due.month, due.day, tzinfo=ZoneInfo(ZONE)) + timedelta(days=1)
        doc = self.dunning("invoice", "issue", "--customer", c, "--number", "INV-06",
                           "--charges", "20.00", "--issued", datetime.now(ZoneInfo(ZONE))
                           .replace(microsecond=0).isoformat(), "--due", due.isoformat(),
                           *self.actor, parse=True)
        self.out(f"{c}: issued INV-06, 20.00 BRL due {due:%A %Y-%m-%d}, amount due "
                 f"{doc['amount_due']} → {doc['collection_status']}")
        self._advance("--to", (d + timedelta(days=5, hours=1)).isoformat())
        inv = self._status()["invoices"][0]
        self.out(f"{c}: late fee {inv['late_fee']}, remaining {inv['remaining']}, "
                 f"{inv['collection_status']}; suspension at {inv['suspension_at']} "
                 f"({(inv.get('suspension_moved') or {}).get('why', 'not moved')})")
        monday = d + timedelta(days=10, hours=9)
        self._advance("--to", (monday + timedelta(hours=1)).isoformat())
        self._say(self.dunning("payment", "post", "--customer", c, "--amount", "10.40",
                               "--payment-id", f"{c}-pay", "--processor", "demo",
                               *self.actor, parse=True), "payment of 10.40")
        self._say(self.dunning("payment", "reverse", "--payment-id", f"{c}-pay",
                               "--processor", "demo", *self.actor, parse=True),
                  "its reversal")
        self._say(self.dunning("hold", c, "--resume", *self.actor, parse=True),
                  "hold with --resume")
        self._advance("--by", "1d")
        self._say(self.dunning("hold", "release", c, *self.actor, parse=True),
                  "hold released the next day")
        self._advance("--by", "31d")
        status = self._status()
        self.out(f"{c}: service {status['service_state']}, balance {status['balance']} "
                 f"{status['currency']}")
        return c

    def _advance(self, *how: str) -> None:
        doc = self.dunning("clock", "advance", self.customer, *how, *self.actor, parse=True)
        self.out(f"{self.customer}: clock moved to {doc['now']} ({' '.join(how)})")
        for stop in doc["stops"]:
            self.out(f"    {stop['at']}  {stop['event'].rsplit(': ', 1)[-1]}")

    def _status(self) -> dict[str, Any]:
        return self.dunning("status", self.customer, parse=True)

    def _say(self, doc: dict[str, Any], what: str) -> None:
        balance = f", balance {doc['balance']}" if "balance" in doc else ""
        self.out(f"{self.customer}: {what}: {doc['status']}; service "
                 f"{doc['service_state']}{balance}")
