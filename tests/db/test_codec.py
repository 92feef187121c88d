"""Results survive the JSON round trip used for idempotency tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from db.codec import dumps, from_jsonable, to_jsonable
from db.ledger.fold import ServiceEvent
from db.ledger.transactions import ApplyPaymentResult, PaymentAllocation
from db.rows import PaymentRow
from domain.ledger.effects import InvoiceFacts

NOW = datetime(2024, 7, 2, 10, 0, tzinfo=UTC)


def test_apply_payment_result_round_trips() -> None:
    result = ApplyPaymentResult(
        status="accepted",
        payment=PaymentRow(1, "stripe", "p1", "c1", 1500, "USD", NOW, "0" * 64, "applied",
                           None, "api", NOW),
        allocations=(PaymentAllocation("INV-05", 1000), PaymentAllocation("INV-06", 500)),
        changes=(InvoiceFacts("INV-06", 500, "do_not_collect", "partially_paid", False),),
        service=ServiceEvent("active", "suspended", (), "paid", NOW, 7),
        customer_id="c1", currency="USD", balance=500, credit=0, service_state="active",
    )
    data = json.loads(dumps(result))
    assert data == to_jsonable(result)
    assert from_jsonable(ApplyPaymentResult, data) == result


def test_none_fields_round_trip() -> None:
    result = ApplyPaymentResult("conflict", None, (), (), None, "c1", "USD", 0, 0, "active")
    assert from_jsonable(ApplyPaymentResult, json.loads(dumps(result))) == result
