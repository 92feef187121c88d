"""Outcomes survive the JSON round trip used for idempotency tokens (db/ledger/tokens.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from db.codec import dumps, from_jsonable, to_jsonable
from domain.ledger.commands import (
    InvoiceChange,
    IssuedInvoice,
    IssueOutcome,
    ReevaluationOutcome,
)
from domain.ledger.effects import InvoiceFacts, ServiceTransition
from domain.ledger.payments import PaymentAllocation, PaymentOutcome

NOW = datetime(2024, 7, 2, 10, 0, tzinfo=UTC)


def test_payment_outcome_round_trips() -> None:
    result = PaymentOutcome(
        status="accepted", service_state="active", balance=500,
        changed=[InvoiceFacts("INV-06", 500, "do_not_collect", "partially_paid", False)],
        transition=ServiceTransition("active", [], 7), class_name="residential",
        service_before="suspended", credit=0,
        allocations=[PaymentAllocation("INV-05", 1000), PaymentAllocation("INV-06", 500)],
    )
    data = json.loads(dumps(result))
    assert data == to_jsonable(result)
    assert from_jsonable(PaymentOutcome, data) == result


def test_outcomes_with_nested_rows_and_datetimes_round_trip() -> None:
    issued = IssueOutcome(
        status="created", service_state="active", balance=1000,
        invoice=IssuedInvoice("c1", "INV-05", 1000, 0, 1000, 1000, "do_not_collect",
                              "unpaid", NOW, NOW, NOW))
    rerun = ReevaluationOutcome(
        customer_id="c1", dry_run=True, service_before="active", service_after="suspended",
        changes=[InvoiceChange("INV-06", "do_not_collect", "collect", 500)])
    for value in (issued, rerun):
        assert from_jsonable(type(value), json.loads(dumps(value))) == value


def test_none_fields_round_trip() -> None:
    result = PaymentOutcome("conflict", "active", 0)
    assert from_jsonable(PaymentOutcome, json.loads(dumps(result))) == result
