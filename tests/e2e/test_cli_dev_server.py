"""A user's session against real servers: `temporal server start-dev`, PostgreSQL, SMTP.

The worked example in real time with durations in seconds, driven only through the
`dunning` command and a `dunning worker` process (issue "lifecycle", Done when).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.processes import (
    dunning,
    dunning_json,
    dunning_worker,
    temporal_dev_server,
    user_env,
    wait_until,
)


@pytest.fixture
def env(database_url, smtp_sink):
    with temporal_dev_server() as address:
        yield user_env(database_url, address, smtp_sink, "dunning-e2e")


def test_suspension_and_resumption_through_the_cli(env, smtp_sink, tmp_path) -> None:
    assert "database is up to date" in dunning(env, "db", "migrate").stdout
    dunning(env, "class", "set", "EasyCall", "--currency", "USD", "--threshold", "10.00",
            "--from-name", "EasyCall", "--from-address", "no-reply@easycall.com",
            "--reply-to", "support@easycall.com", "--reminders", "3d", "--grace", "6s",
            "--warning", "3s", "--reason", "e2e setup")
    dunning(env, "customer", "add", "c1", "--name", "Ana", "--email", "ana@example.com",
            "--class", "EasyCall")
    now = datetime.now(UTC).replace(microsecond=0)
    with dunning_worker(env, tmp_path / "worker.log"):
        may = dunning_json(env, "invoice", "issue", "--customer", "c1", "--number", "INV-05",
                           "--charges", "10.00", "--issued", (now - timedelta(days=40)).isoformat(),
                           "--due", (now - timedelta(days=10)).date().isoformat())
        assert (may["amount_due"], may["collection_status"]) == ("10.00", "do_not_collect")
        june = dunning_json(env, "invoice", "issue", "--customer", "c1", "--number", "INV-06",
                            "--charges", "10.00", "--issued", (now - timedelta(days=1)).isoformat(),
                            # Steps 3 s apart: a busy machine may lag a second, and a
                            # warning whose time passed while a later step is due is
                            # rightly skipped (SPEC 2.5), which would not be this story.
                            "--due", (now + timedelta(seconds=6)).isoformat())
        assert (june["amount_due"], june["collection_status"]) == ("20.00", "collect")

        def status():
            return dunning_json(env, "status", "c1")

        suspended = wait_until(lambda: (s := status())["service_state"] == "suspended" and s,
                               45, "suspension")
        assert suspended["balance"] == "20.00"

        paid = dunning_json(env, "payment", "post", "--customer", "c1", "--amount", "15.00",
                            "--payment-id", "pay-15", "--processor", "card")
        assert paid["status"] == "accepted"
        assert paid["service_state"] == "active"
        after = status()
        assert after["service_state"] == "active"
        assert after["balance"] == "5.00"
        june_row = next(i for i in after["invoices"] if i["number"] == "INV-06")
        assert (june_row["remaining"], june_row["collection_status"],
                june_row["payment_status"], june_row["overdue"]) == (
            "5.00", "do_not_collect", "partially_paid", True)

        # Posting the same payment again changes nothing.
        again = dunning_json(env, "payment", "post", "--customer", "c1", "--amount", "15.00",
                             "--payment-id", "pay-15", "--processor", "card")
        assert again["status"] == "duplicate"

        wait_until(lambda: len(smtp_sink.to("ana@example.com")) >= 7, 30, "the mails")

        # A server that does not skip time refuses to move a customer's clock, in one line.
        refused = dunning(env, "clock", "advance", "c1", "--by", "1d", check=False)
        assert refused.returncode != 0 and refused.stderr.strip().count("\n") == 0
        assert "does not skip time" in refused.stderr, refused.stderr
        neither = dunning(env, "clock", "advance", "c1", check=False)
        assert "exactly one of --by DURATION or --to WHEN" in neither.stderr
        past = dunning(env, "clock", "advance", "c1", "--to", "2020-01-01", check=False)
        assert "time only moves forward" in past.stderr, past.stderr
        shown = dunning_json(env, "clock", "show", "c1")
        assert shown["workflows"][0]["workflow_id"] == "customer:c1"
    kinds = sorted(m["Subject"] for m in smtp_sink.to("ana@example.com"))
    assert len(kinds) == 7, kinds  # 2 issued, overdue, warning, suspended, received, resumed
    for message in smtp_sink.to("ana@example.com"):
        assert message["From"].addresses[0].addr_spec == "no-reply@easycall.com"
        assert str(message["Reply-To"]) == "support@easycall.com"
    listed = dunning_json(env, "notifications", "list", "--customer", "c1")
    assert len(listed) == 7 and {n["status"] for n in listed} == {"sent"}
    overdue_key = next(n["key"] for n in listed if n["kind"] == "overdue")
    resent = dunning_json(env, "notifications", "resend", overdue_key, "--reason", "lost mail")
    assert resent["key"] == f"{overdue_key}:resend:1" and resent["status"] == "sent"
    assert len(smtp_sink.to("ana@example.com")) == 8
    assert dunning_json(env, "notifications", "list", "--status", "failed") == []
    audit = dunning_json(env, "audit", "--customer", "c1")
    actions = {a["action"] for a in audit}
    assert {"invoice.issue", "payment.post", "notification.resend", "customer.read"} <= actions
    assert all(a["actor"] == "e2e-finance" for a in audit if a["action"] == "invoice.issue")


def test_errors_are_one_line_and_nothing_is_written(env) -> None:
    dunning(env, "class", "set", "C", "--currency", "JPY", "--threshold", "0")
    dunning(env, "customer", "add", "c2", "--name", "B", "--email", "b@example.com",
            "--class", "C")
    bad = dunning(env, "invoice", "issue", "--customer", "c2", "--number", "I1", "--charges",
                  "10.5", "--issued", "2026-01-01T00:00:00+00:00", "--due", "2026-02-01",
                  check=False)
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0
    assert "decimal" in bad.stderr and "JPY" in bad.stderr
    unknown = dunning(env, "status", "nobody", check=False)
    assert unknown.returncode != 0 and "unknown customer" in unknown.stderr
    status = dunning_json(env, "status", "c2")
    assert status["invoices"] == []
