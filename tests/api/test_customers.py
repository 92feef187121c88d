"""GET /v1/customers/{id}: the SPEC 4.2 document, bearer tokens, audited reads."""

from __future__ import annotations

from tests.api.conftest import ADMIN_TOKEN, CLASS, SYSTEM_TOKEN, Api, payment_body
from tests.support.stack import Stack


async def test_customer_status_requires_a_token(api: Api, customer: str) -> None:
    assert (await api.get(f"/v1/customers/{customer}")).status_code == 401


async def test_admin_reads_the_status_document_and_the_read_is_audited(
        api: Api, stack: Stack, customer: str) -> None:
    assert (await api.pay(payment_body(customer, amount="5.00"))).status_code == 202
    response = await api.get(f"/v1/customers/{customer}", ADMIN_TOKEN,
                             **{"X-Request-ID": "read-1"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == "read-1"
    assert response.json() == {"customer_id": customer, "class": CLASS, "currency": "USD",
                               "service_state": "active", "balance": "-5.00", "hold": None,
                               "invoices": []}
    rows = await stack.query_rows(
        "SELECT actor, realm, action, target, on_behalf_of, reason, request_id FROM audit_log"
        " WHERE action = 'customer.read'")
    assert rows == [("ana-finance", "admin", "customer.read", f"customer:{customer}", customer,
                     "api read", "read-1")]


async def test_system_token_may_read(api: Api, customer: str) -> None:
    response = await api.get(f"/v1/customers/{customer}", SYSTEM_TOKEN)
    assert response.status_code == 200
    assert response.json()["customer_id"] == customer


async def test_unknown_customer_is_404_and_not_audited(api: Api, stack: Stack) -> None:
    response = await api.get("/v1/customers/c-nobody", ADMIN_TOKEN)
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown customer 'c-nobody'"}
    assert await stack.query_rows("SELECT 1 FROM audit_log WHERE action = 'customer.read'") == []
