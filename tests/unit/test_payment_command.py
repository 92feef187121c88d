"""ApplyPayment.build: the one place a payment is checked (SPEC 2.1), and only there."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.ledger.payments import Actor, ApplyPayment, InvalidPayment
from domain.money import MoneyError

ROOT = Path(__file__).resolve().parents[2]


def build(**changes: object) -> ApplyPayment:
    values: dict[str, object] = dict(
        processor="acme", payment_id="p1", customer_id="c1", amount="15.00", currency="USD",
        class_currency="USD", class_name="residential", received_at=None, tz="UTC",
        source="api")
    values.update(changes)
    return ApplyPayment.build(**values)  # type: ignore[arg-type]


def test_a_valid_payment_is_built_in_minor_units() -> None:
    cmd = build(received_at="2026-07-02T09:30:00+02:00", actor=Actor("alice"))
    assert (cmd.amount, cmd.currency, cmd.source) == (1500, "USD", "api")
    assert cmd.received_at == datetime(2026, 7, 2, 7, 30, tzinfo=UTC)
    assert cmd.actor == Actor("alice")
    with pytest.raises(AttributeError):
        cmd.amount = 1  # type: ignore[misc]  # frozen


def test_no_currency_means_the_class_currency_and_its_exponent() -> None:
    assert build(currency=None, class_currency="JPY", amount="1500").amount == 1500
    assert build(currency="BHD", class_currency="BHD", amount="1.250").amount == 1250


def test_a_date_starts_the_day_in_the_class_time_zone() -> None:
    cmd = build(received_at="2026-07-02", tz="America/Sao_Paulo")
    assert cmd.received_at == datetime(2026, 7, 2, 3, 0, tzinfo=UTC)
    assert build(received_at=None).received_at is None
    assert build(received_at=datetime(2026, 7, 2, tzinfo=UTC)).received_at is not None


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"amount": "10.001"}, "amount", "3 decimal places; USD allows 2"),
    ({"amount": "NaN"}, "amount", "not a number"),
    ({"amount": "Infinity"}, "amount", "not a number"),
    ({"amount": "-5.00"}, "amount", "negative"),
    ({"amount": "0.00"}, "amount", "greater than zero"),
    ({"amount": "1000000000000.01"}, "amount", "exceeds the maximum of"),
    ({"amount": "1e3"}, "amount", "exponent"),
    ({"currency": "EUR"}, "currency",
     "currency EUR does not match currency USD of class 'residential'"),
    ({"currency": "ZZZ"}, "currency", "unknown currency 'ZZZ'"),
    ({"received_at": "2026-07-02T09:30:00"}, "received_at", "has a time but no UTC offset"),
    ({"received_at": "yesterday"}, "received_at", "not a valid date"),
    ({"received_at": datetime(2026, 7, 2)}, "received_at", "needs a UTC offset"),
    ({"processor": " "}, None, "processor and payment id must not be empty"),
    ({"payment_id": ""}, None, "processor and payment id must not be empty"),
])
def test_each_refusal_has_spec_2_1s_message(changes: dict[str, object], field: str | None,
                                           message: str) -> None:
    with pytest.raises(InvalidPayment, match=re.escape(message)) as err:
        build(**changes)
    assert err.value.field == field
    assert isinstance(err.value, MoneyError)  # every edge already reports these


# --- each check in one place ------------------------------------------------------------

PAYMENT_PATH = ["api", "client", "operations/payments.py", "activities/ledger/transactions.py",
                "workflows", "db/ledger/transactions.py", "db/ledger/unmatched.py",
                "domain/ledger/payments.py", "cli.py"]


def _sources() -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in PAYMENT_PATH:
        path = ROOT / entry
        for file in ([path] if path.is_file() else sorted(path.rglob("*.py"))):
            found[str(file.relative_to(ROOT))] = file.read_text()
    return found


def _where(pattern: str) -> list[str]:
    return sorted(name for name, text in _sources().items() if re.search(pattern, text))


def test_a_payments_amount_is_parsed_in_one_place() -> None:
    assert _where(r"\bparse_amount\(") == ["domain/ledger/payments.py"]


def test_a_payments_currency_is_checked_against_its_class_in_one_place() -> None:
    assert _where(r"does not match currency") == ["domain/ledger/payments.py"]
    assert _where(r"CurrencyMismatch\(") == []  # the ledger's guard is the schema's trigger


def test_received_at_is_parsed_in_one_place() -> None:
    assert _where(r"\bparse_when\(") == ["domain/ledger/payments.py"]
    payment_in = _sources()["api/models.py"].split("class PaymentIn")[1].split("\nclass ")[0]
    assert "WhenText | None" in payment_in and "When |" not in payment_in


def test_the_fingerprint_and_the_duplicate_rule_live_in_the_ledger() -> None:
    assert _where(r"\bpayment_hash\(") == ["db/ledger/transactions.py"]
    assert _where(r"def known_payment\b") == ["db/ledger/transactions.py"]
    assert _where(r"\"duplicate\" if") == ["db/ledger/transactions.py"]
    # Asked once per payment, under the payment's lock, by the ledger itself: never by
    # the edge before it.
    assert _where(r"\bknown_payment\(") == ["db/ledger/transactions.py",
                                             "db/ledger/unmatched.py"]


def test_a_payment_has_four_shapes() -> None:
    """HTTP or CLI input -> command -> outcome -> answer: no layer has a type of its own
    for a payment's result, and the activity hands the transaction's outcome back as is."""
    for gone in ("ApplyPaymentResult", "AssignUnmatchedResult", "LedgerActivityInput",
                 "LedgerActivityResult", "PostPaymentResult"):
        assert _where(gone) == [], gone
    assert _where(r"-> PaymentOutcome") == [
        "activities/ledger/transactions.py", "client/customers.py",
        "db/ledger/transactions.py", "workflows/ledger/customer.py"]
    activity = _sources()["activities/ledger/transactions.py"]
    assert "return await ledger.apply_payment(conn, command, token=_token())" in activity
