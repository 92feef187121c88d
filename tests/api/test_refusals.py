"""Requests refused before any operation runs: the database only, Temporal never touched.

401 for signatures and tokens, 403 for realms (404 outside a scope), 413 for floods, 422
for bodies; and in each case nothing is recorded.
"""

from __future__ import annotations

import math
import time

import psycopg
import pytest

from api.signatures import GENERIC_MESSAGE, compute
from tests.api.conftest import (
    ACME_NEW,
    ACME_OLD,
    GLOBEX,
    RESELLER_TOKEN,
    Api,
    encode,
    payment_body,
)


async def recorded(database_url: str) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT (SELECT count(*) FROM payments),"
                                 " (SELECT count(*) FROM unmatched_payments)")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    # One message whatever failed: an attacker learns nothing about which check it was.
    assert response.json() == {"detail": GENERIC_MESSAGE}
    assert response.headers["WWW-Authenticate"] == "Dunning-Signature"


def stamp() -> int:
    return math.floor(time.time())


@pytest.mark.parametrize("case", [
    "tampered body", "wrong secret", "missing header", "malformed header", "empty header",
    "signature of other timestamp", "301 s old", "301 s in the future",
    "other processor's secret", "unknown processor", "unsigned invalid body",
])
async def test_bad_signatures_are_401(bare_api: Api, database_url: str, case: str) -> None:
    body = payment_body("c1")
    raw = encode(body)
    t = stamp()
    match case:
        case "tampered body":
            signed = compute(ACME_NEW, t, raw)
            raw = encode({**body, "amount": "1500.00"})
            response = await bare_api.pay(raw, signature=f"t={t},v1={signed}")
        case "wrong secret":
            response = await bare_api.pay(raw, secret="not-the-secret")
        case "missing header":
            response = await bare_api.http.post("/v1/payments", content=raw,
                                                headers={"Content-Type": "application/json"})
        case "malformed header":
            response = await bare_api.pay(raw, signature=f"v1={compute(ACME_NEW, t, raw)}")
        case "empty header":
            response = await bare_api.pay(raw, signature="")
        case "signature of other timestamp":
            response = await bare_api.pay(raw, signature=f"t={t},v1={compute(ACME_NEW, t - 1, raw)}")
        case "301 s old":
            response = await bare_api.pay(raw, timestamp=t - 301)
        case "301 s in the future":
            # Rounded up: whatever time passes before the check, it stays > 300 s ahead.
            response = await bare_api.pay(raw, timestamp=math.ceil(time.time()) + 301)
        case "other processor's secret":
            response = await bare_api.pay(raw, secret=GLOBEX)  # body says acme
        case "unknown processor":
            response = await bare_api.pay(payment_body("c1", processor="initech"))
        case "unsigned invalid body":
            # 401 comes before 422: an unsigned request learns nothing about our fields.
            response = await bare_api.http.post("/v1/payments", content=b"{not json",
                                                headers={"Content-Type": "application/json"})
    assert_unauthorized(response)
    assert await recorded(database_url) == (0, 0)


async def test_reversal_signed_by_another_processor_is_401(bare_api: Api) -> None:
    response = await bare_api.signed("/v1/payments/acme/pay-1/reversal", {}, secret=GLOBEX)
    assert_unauthorized(response)
    response = await bare_api.signed("/v1/payments/initech/pay-1/reversal", {})
    assert_unauthorized(response)


async def test_secrets_never_reach_the_log(bare_api: Api, caplog) -> None:
    caplog.set_level("DEBUG")
    await bare_api.pay(payment_body("c1"), secret="not-the-secret")
    await bare_api.pay(payment_body("c1"), timestamp=stamp() - 1000)
    assert "signature" in caplog.text  # the refusal is logged, with its reason
    for secret in (ACME_OLD, ACME_NEW, GLOBEX):
        assert secret not in caplog.text


@pytest.mark.parametrize(("field", "value", "message"), [
    ("amount", "-5.00", "negative"),
    ("amount", "10.001", "3 decimal places; USD allows 2"),
    ("amount", "NaN", "not a number"),
    ("amount", "Infinity", "not a number"),
    ("amount", "1e3", "exponent"),
    ("amount", "0.00", "greater than zero"),
    ("amount", "1000000000000.01", "exceeds the maximum"),
    ("amount", 15.0, "valid string"),
    ("amount", 15, "valid string"),
    ("currency", "usd", "pattern"),
    ("currency", "XXX1", "pattern"),
    ("currency", "ZZZ", "unknown currency"),
    ("received_at", "2026-07-02T09:30:00", "no UTC offset; use e.g. 2026-05-01, "),
    ("received_at", 1780000000, "ISO 8601"),
    ("received_at", "yesterday", "not a valid date"),
    ("received_at", "2026-02-30", "not a valid date"),
    ("received_at", "9999-12-31T23:00:00-05:00", "out of range"),
    ("received_at", "0001-01-01T00:00:00+05:00", "out of range"),
    ("payment_id", "", "at least 1"),
    ("payment_id", "   ", "visible"),
    ("payment_id", "pay\n1", "control"),
    ("customer_id", "c" * 201, "at most 200"),
    ("customer_id", None, "valid string"),
    ("unexpected", "x", "Extra inputs"),
])
async def test_invalid_bodies_are_422_with_the_field(bare_api: Api, database_url: str,
                                                     field: str, value, message: str) -> None:
    response = await bare_api.pay({**payment_body("c1"), field: value})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == ["body", field] and message in e["msg"] for e in errors), errors
    assert await recorded(database_url) == (0, 0)


async def test_a_missing_field_and_non_json_are_422(bare_api: Api) -> None:
    body = payment_body("c1")
    del body["amount"]
    response = await bare_api.pay(body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "amount"]
    response = await bare_api.pay(b"{not json")
    assert response.status_code == 422
    response = await bare_api.pay(b"[]")
    assert response.status_code == 422


async def test_oversized_body_is_413(bare_api: Api, database_url: str) -> None:
    body = payment_body("c1", padding="x" * (64 * 1024))
    response = await bare_api.pay(body)
    assert response.status_code == 413
    assert "X-Request-ID" in response.headers
    assert await recorded(database_url) == (0, 0)


async def test_oversized_chunked_body_is_413(bare_api: Api) -> None:
    async def chunks():
        for _ in range(100):
            yield b"x" * 1024

    # No Content-Length: the limit counts the bytes as they arrive.
    response = await bare_api.http.post("/v1/payments", content=chunks(),
                                        headers={"Dunning-Signature": "t=1,v1=" + "a" * 64})
    assert response.status_code == 413


@pytest.mark.parametrize(("path", "method"), [
    ("/v1/customers/c1", "GET"), ("/v1/reruns", "POST")])
@pytest.mark.parametrize("authorization", [
    None, "Bearer", "Bearer nope", "Basic dG9rLWFkbWluOg==", "tok-admin", "Bearer tok-admin2"])
async def test_bearer_routes_without_a_known_token_are_401(
        bare_api: Api, path: str, method: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await bare_api.http.request(method, path, headers=headers,
                                           json={"customer_id": "c1", "reason": "x"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_reseller_may_not_rerun_and_sees_no_unknown_customer(
        bare_api: Api, database_url: str) -> None:
    # Realms have scopes now (SPEC 4.3): a reseller reads its own customers, and c1 is not
    # one (it does not exist), so the answer is the 404 of a missing customer, not a 403.
    response = await bare_api.get("/v1/customers/c1", RESELLER_TOKEN)
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown customer 'c1'"}
    # Re-runs are finance's (realm admin): 403 for a reseller, whatever the customer.
    response = await bare_api.http.post(
        "/v1/reruns", json={"customer_id": "c1", "reason": "x"},
        headers={"Authorization": f"Bearer {RESELLER_TOKEN}"})
    assert response.status_code == 403
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT count(*) FROM audit_log")).fetchone()
    assert rows == (0,)


@pytest.mark.parametrize("body", [
    {"reason": "x"},
    {"class_name": "a", "customer_id": "b", "reason": "x"},
    {"customer_id": "c1"},
    {"customer_id": "c1", "reason": ""},
    {"customer_id": "c1", "reason": "x", "dry_run": "yes"},
])
async def test_invalid_rerun_bodies_are_422(bare_api: Api, body) -> None:
    response = await bare_api.http.post("/v1/reruns", json=body,
                                        headers={"Authorization": "Bearer tok-admin"})
    assert response.status_code == 422, response.text


async def test_request_ids(bare_api: Api) -> None:
    response = await bare_api.get("/v1/customers/c1", **{"X-Request-ID": "req-42.a:b"})
    assert response.headers["X-Request-ID"] == "req-42.a:b"
    generated = (await bare_api.get("/v1/customers/c1")).headers["X-Request-ID"]
    assert len(generated) == 32
    # Ids unfit to store or log verbatim are replaced, not echoed.
    replaced = (await bare_api.get("/v1/customers/c1", **{"X-Request-ID": "a b<script>"}))
    assert replaced.headers["X-Request-ID"] not in ("a b<script>", generated)
