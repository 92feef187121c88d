"""`dunning class set` with the past-due chain and working time, and `dunning class show`
printing the whole policy as a timeline (SPEC 2.9, 2.10, 4.2), as a user runs them."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from tests.support.processes import dunning, dunning_json

ACTOR = "cli-finance"
ISSUE_13 = ("--currency", "BRL", "--threshold", "10.00", "--timezone", "America/Sao_Paulo",
            "--grace", "8d", "--late-fee", "2%", "--late-fee-after", "5d",
            "--terminate-after", "30d", "--working-days", "mon-fri",
            "--working-hours", "09:00-18:00")


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({"DUNNING_DATABASE_URL": database_url, "DUNNING_ACTOR": ACTOR})
    return env


def refused(env: dict[str, str], *args: str) -> str:
    result = dunning(env, *args, check=False)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


async def audit_actions(database_url: str) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT actor, action FROM audit_log WHERE target = "
                                 "'class:EasyCall' ORDER BY id")
        return await cur.fetchall()  # type: ignore[return-value]


async def test_class_set_stores_the_policy_and_show_prints_the_issue_timeline(
        env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    created = dunning_json(env, "class", "set", "EasyCall", *ISSUE_13, "--reason", "policy")
    assert created["status"] == "created"
    policy = {k: created["class"][k] for k in (
        "late_fee", "late_fee_after", "terminate_after", "working_days", "working_hours",
        "holidays")}
    assert policy == {"late_fee": "2%", "late_fee_after": "5d", "terminate_after": "30d",
                      "working_days": "mon-fri", "working_hours": "09:00-18:00",
                      "holidays": []}
    shown = dunning_json(env, "class", "show", "EasyCall", "--due", "2026-06-04")
    steps = {e["step"]: (e["local"], e["at"]) for e in shown["sample"]["timeline"]}
    assert steps == {
        "due_reminder:3d": ("Tuesday 2026-06-02 09:00", "2026-06-02T12:00:00+00:00"),
        "overdue": ("Friday 2026-06-05 09:00", "2026-06-05T12:00:00+00:00"),
        "late_fee": ("Wednesday 2026-06-10 00:00", "2026-06-10T03:00:00+00:00"),
        "suspension_warning": ("Friday 2026-06-12 09:00", "2026-06-12T12:00:00+00:00"),
        "suspension": ("Monday 2026-06-15 09:00", "2026-06-15T12:00:00+00:00"),
        "termination": ("Wednesday 2026-07-15 09:00", "2026-07-15T12:00:00+00:00"),
    }
    text = dunning(env, "class", "show", "EasyCall", "--due", "2026-06-04").stdout
    assert "late fee: 2% of the remaining amount, charged 5d after D" in text
    assert "working time: mon-fri 09:00-18:00; holidays: none" in text
    assert ("Monday 2026-06-15 09:00  suspension          S Saturday 2026-06-13 00:00 is "
            "outside working days mon-fri; moved to the next start of working time, "
            "Monday 2026-06-15 09:00") in text

    csv = tmp_path / "holidays.csv"
    csv.write_text("date,name\n2026-06-15,Corpus Christi (moved)\n2026-06-16,x\n")
    changed = dunning_json(env, "class", "set", "EasyCall", "--holidays-file", str(csv),
                           "--holiday", "2026-06-17", "--late-fee", "5.00")
    assert changed["status"] == "updated"
    assert changed["class"]["holidays"] == ["2026-06-15", "2026-06-16", "2026-06-17"]
    assert changed["class"]["late_fee"] == "5.00"
    shown = dunning_json(env, "class", "show", "EasyCall", "--due", "2026-06-04")
    moved = {e["step"]: e for e in shown["sample"]["timeline"]}
    assert moved["suspension"]["local"] == "Thursday 2026-06-18 09:00"  # after the holidays
    assert "which is a holiday" in moved["suspension_warning"]["why"]
    assert await audit_actions(database_url) == [(ACTOR, "class.create"),
                                                 (ACTOR, "class.update")]


@pytest.mark.parametrize(("args", "message"), [
    (("--late-fee", "2.555%"), "error: --late-fee: late fee '2.555%' is not a percentage"),
    (("--late-fee", "5.001"), "error: --late-fee: amount '5.001' has 3 decimal places; "
                              "BRL allows 2"),
    (("--late-fee-after", "-1d"), "error: --late-fee-after: duration '-1d' is negative"),
    (("--terminate-after", "0d"), "error: --terminate-after: terminate-after must be more"),
    (("--working-days", "mon-fry"), "error: --working-days: working days 'mon-fry': 'fry'"),
    (("--working-hours", "18:00-09:00"), "error: --working-hours: working hours "
                                         "'18:00-09:00' must start before they end"),
    (("--holiday", "2026-13-01"), "error: --holiday: holiday '2026-13-01' is not a date"),
    (("--holidays-file", "/nonexistent/holidays.csv"), "error: --holidays-file: cannot read"),
])
async def test_class_set_refuses_with_the_option_named(env: dict[str, str], database_url: str,
                                                       args: tuple[str, ...],
                                                       message: str) -> None:
    dunning(env, "class", "set", "EasyCall", "--currency", "BRL")
    assert refused(env, "class", "set", "EasyCall", *args).startswith(message)
    assert await audit_actions(database_url) == [(ACTOR, "class.create")]  # nothing changed


def test_a_bad_holidays_file_names_its_line(env: dict[str, str], tmp_path: Path) -> None:
    csv = tmp_path / "holidays.csv"
    csv.write_text("2026-12-24\n2026-12-31\n25/12/2026\n")
    assert refused(env, "class", "set", "EasyCall", "--currency", "BRL", "--holidays-file",
                   str(csv)) == ("error: --holidays-file: holidays file line 3: '25/12/2026' "
                                 "is not a date like 2026-12-25")


def test_late_fee_and_termination_can_be_removed(env: dict[str, str]) -> None:
    dunning(env, "class", "set", "EasyCall", *ISSUE_13)
    cleared = dunning_json(env, "class", "set", "EasyCall", "--late-fee", "none",
                           "--terminate-after", "never")
    assert (cleared["class"]["late_fee"], cleared["class"]["terminate_after"]) == (None, None)
    text = dunning(env, "class", "show", "EasyCall").stdout
    assert "late fee: none" in text and "termination: never" in text
    assert "late_fee" not in text.split("timeline")[1]


def test_fee_waive_for_an_unknown_customer_is_one_line(env: dict[str, str]) -> None:
    assert refused(env, "fee", "waive", "--customer", "nobody", "--invoice", "INV-1") == (
        "error: unknown customer 'nobody'")
