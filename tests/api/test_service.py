"""Health, metrics, the OpenAPI document, and the lifespan connecting its own client."""

from __future__ import annotations

import gc

from api import deps
from api.app import create_app
from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.context import open_context
from operations.customers import add
from settings import load_settings
from tests.api.conftest import Api, api_settings, payment_body, serve, unique
from tests.support.stack import ADMIN, Stack

EXPECTED = {
    ("post", "/v1/payments"): {"200", "202", "401", "409", "413", "422", "503"},
    ("post", "/v1/payments/{processor}/{payment_id}/reversal"):
        {"200", "401", "404", "413", "422", "503"},
    # No 403: every realm may read a customer within its scope (else 404).
    ("get", "/v1/customers/{customer_id}"): {"200", "401", "404", "422", "503"},
    ("get", "/v1/customers/{customer_id}/subscriptions"): {"200", "401", "404", "422", "503"},
    # A list: out-of-scope subscriptions are simply not in it (no 404).
    ("get", "/v1/subscriptions"): {"200", "401", "422", "503"},
    ("post", "/v1/reruns"): {"200", "202", "401", "403", "404", "422", "503"},
    # The billing system's feed (realms system, admin): 403 for others, 201 when created.
    ("post", "/v1/invoices"): {"200", "201", "401", "403", "409", "413", "422", "503"},
    ("put", "/v1/customers/{customer_id}"): {"200", "201", "401", "403", "413", "422", "503"},
    ("put", "/v1/accounts/{account_id}"): {"200", "201", "401", "403", "413", "422", "503"},
    ("put", "/v1/subscriptions/{subscription_id}"):
        {"200", "201", "401", "403", "413", "422", "503"},
    # Finance waives a late fee (SPEC 2.9): realm admin only.
    ("post", "/v1/customers/{customer_id}/invoices/{number}/fee-waiver"):
        {"200", "401", "403", "404", "422", "503"},
    # Finance holds a customer and releases it (SPEC 2.11): realm admin only.
    ("put", "/v1/customers/{customer_id}/hold"): {"200", "401", "403", "404", "422", "503"},
    ("delete", "/v1/customers/{customer_id}/hold"):
        {"200", "401", "403", "404", "422", "503"},
    ("get", "/healthz"): {"200", "503"},
    ("get", "/metrics"): {"200"},
}


async def test_healthz_is_200_when_database_and_temporal_answer(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_healthz_is_503_when_the_database_is_gone(api: Api) -> None:
    await api.app.state.pool.close()
    response = await api.http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


async def test_metrics_are_prometheus_text(api: Api) -> None:
    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE dunning_payments_total counter" in response.text


async def test_openapi_lists_every_path_with_its_status_codes(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()
    found = {(method, path): set(operation["responses"])
             for path, operations in document["paths"].items()
             for method, operation in operations.items()}
    assert found == EXPECTED
    for (method, path), codes in found.items():
        for code in codes:
            answer = document["paths"][path][method]["responses"][code]
            media = next(iter(answer["content"].values()))  # every answer has a body schema
            assert media["schema"], (method, path, code)
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {"type": "http", "scheme": "bearer",
                                      "description": schemes["BearerToken"]["description"]}
    assert schemes["DunningSignature"]["in"] == "header"
    assert schemes["DunningSignature"]["name"] == "Dunning-Signature"
    paths = document["paths"]
    assert paths["/v1/payments"]["post"]["security"] == [{"DunningSignature": []}]
    assert paths["/v1/reruns"]["post"]["security"] == [{"BearerToken": []}]
    schemas = document["components"]["schemas"]
    for name in ("PaymentIn", "PaymentOut", "CustomerStatus", "RerunIn", "RerunOut", "Problem"):
        assert schemas[name].get("examples"), name
    assert schemas["PaymentIn"]["properties"]["amount"]["type"] == "string"
    assert paths["/v1/payments"]["post"]["responses"]["409"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/Problem"}


async def test_lifespan_connects_its_own_temporal_client(stack: Stack) -> None:
    target = stack.client.service_client.config.target_host
    settings = api_settings(stack.settings).model_copy(update={"temporal_address": target})
    async for api in serve(create_app(settings)):
        assert api.app.state.client is not stack.client
        assert (await api.http.get("/healthz")).status_code == 200


async def test_a_payment_stuck_in_temporal_answers_503(temporal_env, database_url,
                                                        monkeypatch) -> None:
    # No worker polls this task queue: the customer workflow never takes the update.
    monkeypatch.setattr(deps, "OPERATION_TIMEOUT_SECONDS", 0.5)
    settings = api_settings(load_settings(database_url=database_url,
                                          task_queue=unique("no-worker")))
    customer_id = unique("c-stuck")
    async with open_context(settings, temporal_env.client) as ctx:
        await set_class(ctx, ClassChange(name="k", currency="USD", threshold="0"), ADMIN)
        await add(ctx, NewCustomer(id=customer_id, name="S", email="s@example.com",
                                   class_name="k"), ADMIN)
    async for api in serve(create_app(settings, client=temporal_env.client)):
        response = await api.pay(payment_body(customer_id))
        # The SDK leaves the cancelled RPC's future unretrieved; collect it now, while no
        # ast.parse runs (3.11's traceback formatting re-enters ast.parse from the
        # finalizer's log and breaks an outer parse, e.g. pytest's assertion rewriting).
        gc.collect()
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        assert response.json() == {"detail": "service temporarily unavailable; retry later"}
