"""PUT and DELETE /v1/customers/{id}/hold: finance holds a customer (SPEC 2.11, 4.3) through
its workflow; realm admin, audited, 404 for an unknown customer, 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import ADMIN_TOKEN, RESELLER_TOKEN, Api
from tests.support.stack import Stack

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Request-ID": "hold-1"}


async def test_hold_then_release_shows_in_the_status_and_is_audited(
        api: Api, stack: Stack, customer: str) -> None:
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    response = await api.http.put(f"/v1/customers/{customer}/hold", headers=HEADERS, json={
        "reason": "disputed invoice", "until": until.isoformat(), "resume": True})
    assert response.status_code == 200, response.text
    document = response.json()
    assert (document["status"], document["customer_id"], document["service_state"]) == (
        "placed", customer, "active")
    assert document["hold"]["until"] == until.isoformat()
    assert (document["hold"]["reason"], document["hold"]["actor"]) == (
        "disputed invoice", "ana-finance")
    status = (await api.http.get(f"/v1/customers/{customer}", headers=HEADERS)).json()
    assert status["hold"] == document["hold"]
    released = await api.http.request("DELETE", f"/v1/customers/{customer}/hold",
                                      headers=HEADERS, json={"reason": "settled"})
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["hold"]) == ("released", None)
    again = await api.http.delete(f"/v1/customers/{customer}/hold", headers=HEADERS)
    assert again.status_code == 200 and again.json()["status"] == "not_held"
    audit = await stack.query_rows(
        "SELECT action, actor, realm, on_behalf_of, reason FROM audit_log"
        " WHERE action IN ('customer.hold', 'customer.hold_release') ORDER BY id")
    assert audit == [
        ("customer.hold", "ana-finance", "admin", customer, "disputed invoice"),
        ("customer.hold_release", "ana-finance", "admin", customer, "settled")]


async def test_refusals(api: Api, customer: str) -> None:
    path = f"/v1/customers/{customer}/hold"
    missing = await api.http.put("/v1/customers/nobody/hold", headers=HEADERS,
                                 json={"reason": "x"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "unknown customer 'nobody'"}
    assert (await api.http.put(path, headers=HEADERS, json={})).status_code == 422
    bad = await api.http.put(path, headers=HEADERS, json={"reason": "x", "until": "soon"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "until"]
    past = await api.http.put(path, headers=HEADERS, json={"reason": "x",
                                                           "until": "2020-01-01"})
    assert past.status_code == 422 and "already passed" in past.text
    reseller = await api.http.put(path, json={"reason": "x"},
                                  headers={"Authorization": f"Bearer {RESELLER_TOKEN}"})
    assert reseller.status_code == 403
