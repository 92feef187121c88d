"""The past-due chain's worked example (issue 13, SPEC 2.9-2.11), as a user types it: every
step through the `dunning` command and a `dunning worker` process, against the real
Temporal dev server with time skipping (`dunning clock advance` moves the customer's
workflows from event to event), PostgreSQL and SMTP.

Class EasyCall: threshold 10.00, late fee 2% after 5d, grace 8d, terminate after 30d,
mon-fri 09:00-18:00, America/Sao_Paulo. A June invoice of 20.00 due on a Thursday:
D is Friday 00:00; the fee of 0.40 at D + 5d (Wednesday) makes 20.40, collect;
S = D + 8d is a Saturday, so the suspension moves to Monday 09:00 and its warning (1d
before: a Sunday) goes out on Friday 09:00. A payment of 10.40 leaves 10.00
(do_not_collect): resumed; its reversal suspends again at once; a hold with --resume
resumes; releasing it the next day suspends again at once; 30 days later, with no
payment, the customer is terminated.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from devstack.chain import PastDueChain, june_due
from domain.ids import invoice_workflow_id
from tests.support.processes import dunning, dunning_json, dunning_worker, user_env, wait_until

ZONE = ZoneInfo("America/Sao_Paulo")
CUSTOMER = "c-chain"
EMAIL = "ana@chain.test"


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def close(actual: datetime, expected: datetime, slack: timedelta = timedelta(minutes=1)):
    """A workflow's clock runs on in real time between moves: seconds, not minutes."""
    assert timedelta(0) <= actual - expected < slack, (actual, expected)


@pytest.fixture
def env(temporal_env, database_url, smtp_sink):
    return user_env(database_url, temporal_env.client.service_client.config.target_host,
                    smtp_sink, f"chain-{uuid.uuid4().hex[:8]}")


def service_events(database_url: str) -> list[tuple[str, str, datetime]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT state, reason, occurred_at FROM service_events WHERE customer_id = %s"
            " ORDER BY id", (CUSTOMER,)).fetchall()


def test_the_past_due_chain_through_the_cli(env, temporal_env, database_url, smtp_sink,
                                            tmp_path) -> None:
    dunning(env, "class", "set", "EasyCall", "--currency", "BRL", "--threshold", "10.00",
            "--timezone", "America/Sao_Paulo", "--grace", "8d", "--late-fee", "2%",
            "--late-fee-after", "5d", "--terminate-after", "30d", "--working-days", "mon-fri",
            "--working-hours", "09:00-18:00", "--from-name", "EasyCall",
            "--from-address", "no-reply@easycall.com", "--reason", "e2e setup")
    dunning(env, "customer", "add", CUSTOMER, "--name", "Ana", "--email", EMAIL,
            "--class", "EasyCall")
    due = june_due(datetime.now(ZONE).date())  # a Thursday at least a week ahead
    assert due.weekday() == 3
    d = local(due + timedelta(days=1))  # D: Friday 00:00
    fee_at, warning_at = d + timedelta(days=5), local(due + timedelta(days=8), 9)
    suspension_at = local(due + timedelta(days=11), 9)  # S = Saturday: Monday 09:00
    assert (fee_at.weekday(), warning_at.weekday(), suspension_at.weekday()) == (2, 4, 0)

    with dunning_worker(env, tmp_path / "worker.log"):
        june = dunning_json(env, "invoice", "issue", "--customer", CUSTOMER, "--number",
                            "INV-06", "--charges", "20.00", "--issued",
                            datetime.now(UTC).replace(microsecond=0).isoformat(),
                            "--due", due.isoformat())
        assert (june["amount_due"], june["collection_status"]) == ("20.00", "collect")

        # D + 5d: the late fee, 2% of 20.00.
        moved = dunning_json(env, "clock", "advance", CUSTOMER, "--to",
                             (fee_at + timedelta(hours=1)).isoformat(), "--reason", "e2e")
        stops = [(at(s["at"]), s["event"].rsplit(": ", 1)[-1]) for s in moved["stops"]]
        # The overdue notice, due at D (Friday 00:00), waits for working time (SPEC 2.10).
        assert stops[-2:] == [(local(due + timedelta(days=1), 9), "overdue"),
                              (fee_at, "late_fee")], stops
        status = dunning_json(env, "status", CUSTOMER)
        invoice = status["invoices"][0]
        assert (invoice["remaining"], invoice["late_fee"], invoice["collection_status"],
                status["service_state"]) == ("20.40", "0.40", "collect", "active")
        assert at(invoice["suspension_at"]) == suspension_at
        assert invoice["suspension_moved"]["from"] == local(due + timedelta(days=9)).astimezone(
            UTC).isoformat()

        # The warning on Friday 09:00, the suspension on Monday 09:00.
        moved = dunning_json(env, "clock", "advance", CUSTOMER, "--to",
                             (suspension_at + timedelta(hours=1)).isoformat(), "--reason", "e2e")
        stops = [(at(s["at"]), s["event"].rsplit(": ", 1)[-1]) for s in moved["stops"]]
        assert (warning_at, "suspension_warning") in stops
        assert stops[-1] == (suspension_at, "suspension")
        assert dunning_json(env, "status", CUSTOMER)["service_state"] == "suspended"
        events = service_events(database_url)
        assert [(s, r) for s, r, _ in events] == [("suspended", events[0][1])]
        close(events[0][2], suspension_at)

        paid = dunning_json(env, "payment", "post", "--customer", CUSTOMER, "--amount",
                            "10.40", "--payment-id", "pay-1040", "--processor", "card")
        assert (paid["status"], paid["service_state"], paid["balance"]) == (
            "accepted", "active", "10.00")
        invoice = dunning_json(env, "status", CUSTOMER)["invoices"][0]
        assert (invoice["remaining"], invoice["collection_status"]) == (
            "10.00", "do_not_collect")

        reversed_ = dunning_json(env, "payment", "reverse", "--payment-id", "pay-1040",
                                 "--processor", "card", "--reason", "chargeback")
        assert (reversed_["status"], reversed_["service_state"]) == ("reversed", "suspended")

        held = dunning_json(env, "hold", CUSTOMER, "--resume", "--reason", "customer disputes")
        assert (held["status"], held["service_state"]) == ("placed", "active")
        assert held["hold"]["until"] is None

        dunning_json(env, "clock", "advance", CUSTOMER, "--by", "1d", "--reason", "e2e")
        released = dunning_json(env, "hold", "release", CUSTOMER, "--reason", "resolved")
        assert (released["status"], released["service_state"]) == ("released", "suspended")
        release_at = service_events(database_url)[-1][2]

        # With no payment: terminated 30 days after that suspension.
        moved = dunning_json(env, "clock", "advance", CUSTOMER, "--by", "31d", "--reason",
                             "e2e")
        assert moved["stops"][-1]["event"] == "termination"
        # The stop is printed to the second; the timer is release + 30d exactly.
        assert abs(at(moved["stops"][-1]["at"]) - (release_at + timedelta(days=30))) < \
            timedelta(seconds=1)
        final = dunning_json(env, "status", CUSTOMER)
        assert (final["service_state"], final["balance"]) == ("terminated", "20.40")

        # Final for dunning: an invoice issued now is billed, never dunned.
        july = dunning_json(env, "invoice", "issue", "--customer", CUSTOMER, "--number",
                            "INV-07", "--charges", "5.00", "--issued", moved["now"],
                            "--due", moved["now"])
        assert july["workflow"] == "started"
        ended = temporal_env.client.get_workflow_handle(
            invoice_workflow_id(CUSTOMER, "INV-07"))
        assert (asyncio.run(ended.result()))["outcome"] == "terminated"

        events = service_events(database_url)
        assert [(s, r) for s, r, _ in events][1:] == [
            ("active", events[1][1]), ("suspended", events[2][1]), ("active", "hold"),
            ("suspended", "hold released"), ("terminated", events[5][1])]
        close(events[5][2], events[4][2] + timedelta(days=30), timedelta(seconds=5))
        assert events[4][2] - events[3][2] >= timedelta(days=1)

        expected = ["invoice_issued", "due_reminder", "late_fee_charged", "overdue",
                    "suspension_warning", "service_suspended", "payment_received",
                    "service_resumed", "service_suspended", "service_resumed",
                    "service_suspended", "service_terminated", "invoice_issued"]

        def mails_sent() -> list[dict]:
            listed = dunning_json(env, "notifications", "list", "--customer", CUSTOMER)
            done = len(listed) >= len(expected) and all(n["status"] == "sent" for n in listed)
            return listed if done else []

        listed = wait_until(mails_sent, 60, "every mail sent")
    assert sorted(n["kind"] for n in listed) == sorted(expected)
    received = smtp_sink.to(EMAIL)
    assert len(received) == len(expected)
    subjects = {m["X-Dunning-Kind"]: m["Subject"] for m in received}
    assert subjects["late_fee_charged"] == "A late fee of R$0.40 was added to invoice INV-06"
    assert all(m["From"].addresses[0].addr_spec == "no-reply@easycall.com" for m in received)
    actions = [a["action"] for a in dunning_json(env, "audit", "--customer", CUSTOMER)]
    for action in ("clock.advance", "payment.reverse", "customer.hold",
                   "customer.hold_release"):
        assert action in actions, actions


def test_the_demo_plays_the_chain(env, tmp_path) -> None:
    """`dunning dev --demo`'s second part, with the real CLI, worker and servers."""
    lines: list[str] = []

    def run(*args: str, parse: bool = False):
        return dunning_json(env, *args) if parse else dunning(env, *args).stdout

    with dunning_worker(env, tmp_path / "worker.log"):
        customer = PastDueChain(run, lines.append, ["--reason", "demo"], "t1").play()
    text = "\n".join(lines)
    assert customer == "chain-t1"
    for expected in (
            "amount due 20.00 → collect",
            "late fee 0.40, remaining 20.40, collect",
            "09:00:00-03:00  suspension_warning", "09:00:00-03:00  suspension",
            "payment of 10.40: accepted; service active, balance 10.00",
            "its reversal: reversed; service suspended",
            "hold with --resume: placed; service active",
            "hold released the next day: released; service suspended",
            "termination", "service terminated, balance 20.40 BRL"):
        assert expected in text, text

