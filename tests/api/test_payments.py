"""The payment webhook and reversals end to end: real PostgreSQL, Temporal and worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType

from db.customers import NewCustomer
from db.rows import AuditInfo
from domain.ids import customer_workflow_id
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.payments import PaymentRequest, post_payment
from tests.api.conftest import ACME_NEW, ACME_OLD, Api, payment_body, unique
from tests.support.stack import ADMIN, Stack


async def payments(stack: Stack) -> list[tuple]:
    return await stack.query_rows(
        "SELECT processor, payment_id, customer_id, amount, currency, status, source"
        " FROM payments ORDER BY id")


async def unmatched(stack: Stack) -> list[tuple]:
    return await stack.query_rows(
        "SELECT processor, payment_id, customer_ref, amount, currency FROM unmatched_payments")


async def test_signed_payment_is_202_then_duplicate_then_conflict(
        api: Api, stack: Stack, customer: str) -> None:
    body = payment_body(customer, payment_id="pay-1")
    first = await api.pay(body)
    assert first.status_code == 202, first.text
    assert first.json() == {"status": "accepted", "processor": "acme", "payment_id": "pay-1"}
    # Answered only once recorded: the row is there when the answer arrives.
    assert await payments(stack) == [("acme", "pay-1", customer, 1500, "USD", "applied", "api")]

    again = await api.pay(body)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"

    other = await api.pay({**body, "amount": "16.00"})
    assert other.status_code == 409, other.text
    assert "other details" in other.json()["detail"]
    assert len(await payments(stack)) == 1


async def test_rotated_secrets_each_sign_valid_payments(api: Api, stack: Stack,
                                                        customer: str) -> None:
    old = await api.pay(payment_body(customer, payment_id="pay-old", amount="1.00"), secret=ACME_OLD)
    new = await api.pay(payment_body(customer, payment_id="pay-new", amount="2.00"), secret=ACME_NEW)
    both = await api.pay(payment_body(customer, payment_id="pay-both", amount="3.00"),
                         secret=[ACME_OLD, ACME_NEW])
    assert [r.status_code for r in (old, new, both)] == [202, 202, 202]
    assert sorted(row[1] for row in await payments(stack)) == ["pay-both", "pay-new", "pay-old"]


async def test_currency_other_than_the_class_is_422_nothing_recorded(
        api: Api, stack: Stack, customer: str) -> None:
    response = await api.pay(payment_body(customer, currency="EUR"))
    assert response.status_code == 422, response.text
    assert "does not match currency USD" in response.json()["detail"][0]["msg"]
    assert await payments(stack) == [] and await unmatched(stack) == []


async def test_invalid_amounts_are_422_nothing_recorded(api: Api, stack: Stack,
                                                        customer: str) -> None:
    for amount in ("-5.00", "10.001", "NaN", 15.0, "1000000000001"):
        response = await api.pay(payment_body(customer, amount=amount))
        assert response.status_code == 422, (amount, response.text)
    # Also for a customer nobody knows: refused, not stored as unmatched.
    response = await api.pay(payment_body(unique("c-unknown"), amount="10.001"))
    assert response.status_code == 422
    assert await payments(stack) == [] and await unmatched(stack) == []


async def test_unknown_customer_is_stored_unmatched(api: Api, stack: Stack) -> None:
    nobody = unique("c-nobody")
    body = payment_body(nobody, payment_id="pay-u", amount="12.50")
    response = await api.pay(body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "unmatched"
    assert await unmatched(stack) == [("acme", "pay-u", nobody, "12.50", "USD")]
    assert (await api.pay(body)).json()["status"] == "duplicate"
    assert (await api.pay({**body, "amount": "13.00"})).status_code == 409
    # A processor is not a person: as for the payments it applies, no audit record.
    assert await stack.query_rows("SELECT 1 FROM audit_log WHERE target LIKE 'unmatched:%%'"
                                  ) == []


async def test_payment_posted_by_hand_for_unknown_customer_is_audited(stack: Stack) -> None:
    """SPEC 2.7: `dunning payment post` (what it calls, with the audit it passes) for a
    customer nobody knows stores it unmatched and audits it in the same transaction."""
    nobody = unique("c-nobody")
    request = PaymentRequest(processor="manual", payment_id="pay-hand", customer_id=nobody,
                             amount="12.50", currency="USD", received_at=None, source="cli")
    by_hand = AuditInfo(actor="ana-finance", realm="admin", reason="bank statement line 7",
                        request_id="req-hand-1")
    assert (await stack.call(post_payment, request, by_hand))["status"] == "unmatched"
    audit = await stack.query_rows(
        "SELECT actor, realm, reason, request_id, action, target, on_behalf_of,"
        " after->>'customer_ref', after->>'amount' FROM audit_log"
        " WHERE target = 'unmatched:manual/pay-hand'")
    assert audit == [("ana-finance", "admin", "bank statement line 7", "req-hand-1",
                      "payment.post", "unmatched:manual/pay-hand", None, nobody, "12.50")]
    # Posted again: a duplicate changed nothing, so nothing more is audited.
    assert (await stack.call(post_payment, request, by_hand))["status"] == "duplicate"
    assert len(await stack.query_rows("SELECT 1 FROM audit_log WHERE target ="
                                      " 'unmatched:manual/pay-hand'")) == 1


async def test_concurrent_identical_deliveries_record_one_payment(
        api: Api, stack: Stack, customer: str) -> None:
    """SPEC 4.3: of identical deliveries sent at once exactly one is `accepted`; every other
    one is `200 duplicate`, answered only once the first one's payment is committed."""
    body = payment_body(customer, payment_id="pay-storm")
    deliveries = 30

    async def deliver() -> tuple[int, str, int]:
        answer = await api.pay(body)
        # Committed when the answer arrives (a duplicate must never come first). psycopg
        # serialises the queries of concurrent tasks on the stack's one connection.
        rows = len(await stack.query_rows("SELECT 1 FROM payments WHERE payment_id = %s",
                                          "pay-storm"))
        return answer.status_code, answer.json().get("status", answer.text), rows

    answers = await asyncio.gather(*(deliver() for _ in range(deliveries)))
    outcomes = sorted((code, status) for code, status, _ in answers)
    assert outcomes == [(200, "duplicate")] * (deliveries - 1) + [(202, "accepted")], answers
    assert all(rows == 1 for _, _, rows in answers), answers
    assert len(await payments(stack)) == 1
    # Each delivery was decided by the ledger transaction itself (the one duplicate rule,
    # under the payment's lock), one after the other: one update each, never more than
    # one in flight (the workflow admits only ~10), none refused.
    history = await stack.client.get_workflow_handle(
        customer_workflow_id(customer)).fetch_history()
    updates = [e for e in history.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert len(updates) == deliveries, updates


async def test_signed_reversal_reverses_the_payment(api: Api, stack: Stack,
                                                    customer: str) -> None:
    assert (await api.pay(payment_body(customer, payment_id="pay-r"))).status_code == 202
    response = await api.signed("/v1/payments/acme/pay-r/reversal", {"reason": "chargeback"},
                                **{"X-Request-ID": "rev-1"})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "reversed", "processor": "acme", "payment_id": "pay-r"}
    rows = await stack.query_rows(
        "SELECT status, reversed_at IS NOT NULL FROM payments WHERE payment_id = 'pay-r'")
    assert rows == [("reversed", True)]
    audit = await stack.query_rows(
        "SELECT actor, realm, reason, on_behalf_of FROM audit_log WHERE request_id = 'rev-1'")
    assert ("processor:acme", "system", "chargeback", customer) in audit

    # An empty body is fine too; a second reversal changes nothing.
    again = await api.signed("/v1/payments/acme/pay-r/reversal", b"")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "already_reversed"


async def test_reversal_of_an_unknown_payment_is_404(api: Api) -> None:
    response = await api.signed("/v1/payments/acme/pay-none/reversal", {})
    assert response.status_code == 404, response.text
    assert "unknown payment" in response.json()["detail"]


async def test_metrics_count_payment_outcomes(api: Api, customer: str) -> None:
    await api.pay(payment_body(customer, payment_id="pay-m"))
    await api.pay(payment_body(customer, amount="NaN"))
    text = (await api.http.get("/metrics")).text
    assert 'dunning_payments_total{outcome="accepted"}' in text
    assert 'dunning_payments_total{outcome="rejected"}' in text


async def test_received_at_as_a_date_is_midnight_in_the_class_time_zone(
        api: Api, stack: Stack) -> None:
    # SPEC 2.5: a date means the start of that day where the customer's class is.
    await stack.call(set_class, ClassChange(name="sao-paulo", currency="USD", threshold="10.00",
                                            timezone="America/Sao_Paulo"), ADMIN)
    customer = unique("c-sp")
    await stack.call(add, NewCustomer(id=customer, name="Bia", email="bia@example.com",
                                      class_name="sao-paulo"), ADMIN)
    known = await api.pay(payment_body(customer, payment_id="pay-d", received_at="2026-07-02"))
    assert known.status_code == 202, known.text
    # Nobody knows this customer's zone: a date starts in UTC.
    nobody = await api.pay(payment_body(unique("c-nobody"), payment_id="pay-dn",
                                        received_at="2026-07-02"))
    assert nobody.json()["status"] == "unmatched"
    rows = await stack.query_rows(
        "SELECT payment_id, received_at FROM payments WHERE payment_id = 'pay-d'"
        " UNION ALL SELECT payment_id, received_at FROM unmatched_payments")
    assert sorted(rows) == [("pay-d", datetime(2026, 7, 2, 3, tzinfo=UTC)),
                            ("pay-dn", datetime(2026, 7, 2, tzinfo=UTC))]


async def test_openapi_says_received_at_is_a_date_or_a_date_time(bare_api: Api) -> None:
    schema = bare_api.app.openapi()["components"]["schemas"]["PaymentIn"]
    forms = schema["properties"]["received_at"]["anyOf"]
    assert {f.get("format", f["type"]) for f in forms} == {"date", "date-time", "null"}
