"""The payment webhook and reversals end to end: real PostgreSQL, Temporal and worker."""

from __future__ import annotations

import asyncio

from tests.api.conftest import ACME_NEW, ACME_OLD, Api, payment_body, unique
from tests.support.stack import Stack


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


async def test_concurrent_identical_deliveries_record_one_payment(
        api: Api, stack: Stack, customer: str) -> None:
    body = payment_body(customer, payment_id="pay-storm")
    answers = await asyncio.gather(*(api.pay(body) for _ in range(50)))
    assert {a.status_code for a in answers} <= {200, 202}, [a.text for a in answers]
    assert {a.json()["status"] for a in answers} <= {"accepted", "duplicate"}
    assert len(await payments(stack)) == 1


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
