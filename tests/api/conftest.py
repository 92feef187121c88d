"""The API wired to real servers: the stack (PostgreSQL, Temporal, worker) or, for tests of
authentication and validation that must not depend on the workflows, the database only."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from api.signatures import sign
from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.customers import add
from settings import ApiIdentity, Settings, load_settings
from tests.support.stack import ADMIN, Stack, running_stack

# acme is rotating its secret: both are valid until the old one is removed.
ACME_OLD, ACME_NEW = "acme-old-secret", "acme-new-secret"
GLOBEX = "globex-secret"
SECRETS = {"acme": (SecretStr(ACME_OLD), SecretStr(ACME_NEW)),
           "globex": (SecretStr(GLOBEX),)}
ADMIN_TOKEN, SYSTEM_TOKEN, RESELLER_TOKEN = "tok-admin", "tok-system", "tok-reseller"
RESELLER = "r-rita"  # the reseller id RESELLER_TOKEN is scoped to
TOKENS = {ADMIN_TOKEN: ApiIdentity("ana-finance", "admin"),
          SYSTEM_TOKEN: ApiIdentity("billing-sync", "system"),
          RESELLER_TOKEN: ApiIdentity("rita-reseller", "reseller", RESELLER)}

CLASS = "residential"


def api_settings(base: Settings) -> Settings:
    return base.model_copy(update={"webhook_secrets": SECRETS, "api_tokens": TOKENS})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def payment_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"payment_id": unique("pay"), "processor": "acme",
            "customer_id": customer_id, "amount": "15.00", "currency": "USD",
            "received_at": "2026-07-02T09:30:00+00:00"}
    body.update(overrides)
    return body


def encode(body: dict[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@dataclass
class Api:
    http: httpx.AsyncClient
    app: FastAPI

    async def signed(self, path: str, body: dict[str, Any] | bytes, *,
                     secret: str | list[str] = ACME_NEW, timestamp: int | None = None,
                     signature: str | None = None, **headers: str) -> httpx.Response:
        """POST ``body`` signed as a processor would; ``signature`` overrides the header."""
        raw = encode(body)
        t = math.floor(time.time()) if timestamp is None else timestamp
        header = sign(secret, raw, t) if signature is None else signature
        return await self.http.post(path, content=raw, headers={
            "Content-Type": "application/json", "Dunning-Signature": header, **headers})

    async def pay(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await self.signed("/v1/payments", body, **kwargs)

    async def get(self, path: str, token: str | None = None, **headers: str) -> httpx.Response:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.get(path, headers=headers)


@pytest.fixture
async def stack(temporal_env, database_url, smtp_sink) -> AsyncIterator[Stack]:
    async with running_stack(temporal_env, database_url, smtp_sink.host, smtp_sink.port) as s:
        yield s


@pytest.fixture
async def customer(stack: Stack) -> str:
    """A new customer of a USD class. Its id is unique in the session: the Temporal server
    outlives each test, and a customer workflow left by an earlier test would still be
    bound to that test's task queue, whose worker is gone."""
    customer_id = unique("c-api")
    await stack.call(set_class, ClassChange(name=CLASS, currency="USD", threshold="10.00"),
                     ADMIN)
    await stack.call(add, NewCustomer(id=customer_id, name="Ana Example",
                                      email="ana@example.com", class_name=CLASS), ADMIN)
    return customer_id


async def serve(app: FastAPI) -> AsyncIterator[Api]:
    # httpx's ASGI transport does not run the lifespan: run it around the client.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunning.test") as c:
            yield Api(http=c, app=app)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    """The API of the full stack: its Temporal client, its task queue and worker."""
    app = create_app(api_settings(stack.settings), client=stack.client)
    async for served in serve(app):
        yield served


class _NoTemporal:
    """Stands in for the Temporal client where a test must never reach Temporal."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Temporal must not be used here (client.{name})")


@pytest.fixture
async def bare_api(database_url: str) -> AsyncIterator[Api]:
    """Database only: requests refused before any operation (401, 403, 413, 422)."""
    settings = api_settings(load_settings(database_url=database_url))
    app = create_app(settings, client=_NoTemporal())  # type: ignore[arg-type]
    async for served in serve(app):
        yield served
