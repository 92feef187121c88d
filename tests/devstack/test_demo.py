"""The demo drives the product only through the `dunning` CLI of SPEC 4.2. A stand-in CLI
records every call and plays the status changes of the worked example."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from devstack.demo import CLASSES, Demo, DemoUrls
from tests.support.ports import free_port

FAKE_CLI = r'''
import json, sys
from pathlib import Path
state = Path(sys.argv[1]); args = sys.argv[2:]
calls = state / "calls.jsonl"
with calls.open("a") as f:
    f.write(json.dumps(args) + "\n")
def out(doc):
    print(json.dumps(doc))
if args[:2] == ["invoice", "issue"]:
    number = args[args.index("--number") + 1]
    out({"amount_due": "10.00" if number == "INV-05" else "20.00", "currency": "USD",
         "collection_status": "do_not_collect" if number == "INV-05" else "collect"})
elif args[0] == "status":
    customer = args[1]
    paid = (state / f"paid-{customer}").exists()
    seen = state / f"seen-{customer}"
    polls = int(seen.read_text()) + 1 if seen.exists() else 1
    seen.write_text(str(polls))
    suspended = polls >= 2 and not paid
    june = ("5.00", "do_not_collect", "partially_paid") if paid else ("20.00", "collect", "unpaid")
    out({"customer_id": customer, "currency": "USD", "balance": "5.00" if paid else "20.00",
         "service_state": "suspended" if suspended else "active",
         "invoices": [
            {"number": "INV-05", "amount_due": "10.00",
             "remaining": "0.00" if paid else "10.00", "collection_status": "do_not_collect",
             "payment_status": "paid" if paid else "unpaid", "overdue": True},
            {"number": "INV-06", "amount_due": "20.00", "remaining": june[0],
             "collection_status": june[1], "payment_status": june[2], "overdue": True}]})
elif args[:2] == ["payment", "post"]:
    customer = args[args.index("--customer") + 1]
    (state / f"paid-{customer}").write_text("1")
    out({"status": "accepted", "service_state": "active", "balance": "5.00"})
else:
    print("ok")
'''


def _calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


def test_the_worked_example_through_the_cli(tmp_path: Path) -> None:
    script = tmp_path / "fake_dunning.py"
    script.write_text(FAKE_CLI)
    lines: list[str] = []
    demo = Demo(
        cli=[sys.executable, str(script), str(tmp_path)],
        env=dict(os.environ),
        urls=DemoUrls("http://127.0.0.1:8233", f"http://127.0.0.1:{free_port()}",
                      "http://127.0.0.1:8000"),
        stop=threading.Event(),
        out=lines.append,
        suffix="t1",
        poll_seconds=0.05,
        mail_grace=0,
        past_due_chain=False,  # played against the real servers in tests/e2e
    )
    assert demo.run(), lines
    calls = _calls(tmp_path)
    mutating = [c for c in calls if c[0] in ("class", "customer", "invoice", "payment")]
    for call in mutating:
        assert "--actor" in call and "--reason" in call, call
    easy = next(c for c in calls if c[:3] == ["class", "set", "EasyCall"])
    for flag, value in [("--currency", "USD"), ("--threshold", "10.00"),
                        ("--from-address", "no-reply@easycall.com"), ("--from-name", "EasyCall"),
                        ("--reply-to", "support@easycall.com"), ("--language", "en"),
                        ("--reminders", "20s"), ("--warning", "10s"), ("--grace", "30s")]:
        assert easy[easy.index(flag) + 1] == value
    mega = next(c for c in calls if c[:3] == ["class", "set", "MegaStar"])
    assert mega[mega.index("--currency") + 1] == "BRL"
    assert mega[mega.index("--language") + 1] == "pt-BR"
    # Fresh ids per run: a restart never collides with the kept data.
    customers = [c[2] for c in calls if c[:2] == ["customer", "add"]]
    assert customers == [f"{c.customer_prefix}-t1" for c in CLASSES]
    issues = [c for c in calls if c[:2] == ["invoice", "issue"]]
    assert [c[c.index("--number") + 1] for c in issues] == ["INV-05", "INV-06"] * 2
    for call in issues:
        assert call[call.index("--charges") + 1] == "10.00"
        assert call[call.index("--issued") + 1].endswith("+00:00")
        assert "--json" in call
    payments = [c for c in calls if c[:2] == ["payment", "post"]]
    assert len(payments) == 2
    for call in payments:
        assert call[call.index("--amount") + 1] == "15.00"
        assert call[call.index("--processor") + 1] == "demo"
        assert call[call.index("--payment-id") + 1].startswith("demo-pay-")
    # Payment only after the status showed the suspension.
    first_payment = calls.index(payments[0])
    assert any(c[0] == "status" for c in calls[:first_payment])
    text = "\n".join(lines)
    assert "service active → suspended" in text and "service suspended → active" in text
    assert 'CustomerId%3D%22easycall-t1%22' in text
    # Each demo customer's page in the finance console.
    assert "Console: http://127.0.0.1:8000/console/customers/easycall-t1" in text
    assert "Console: http://127.0.0.1:8000/console/customers/megastar-t1" in text


def test_a_failing_command_is_reported_not_raised(tmp_path: Path) -> None:
    lines: list[str] = []
    demo = Demo(cli=[sys.executable, "-c", "import sys; sys.exit('error: no such class')"],
                env=dict(os.environ), urls=DemoUrls("u", "http://127.0.0.1:9", "a"),
                stop=threading.Event(), out=lines.append, suffix="t2")
    assert demo.run() is False
    assert any("failed: error: no such class" in line for line in lines)
