"""The HTTP API (SPEC 4.3): ``create_app(settings)`` builds it, ``api.server`` runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg_pool import PoolTimeout
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities.metrics import PAYMENTS
from api.console import install as install_console
from api.deps import unavailable
from api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from api.routes import customers, feed, ops, payments, reruns, subscriptions
from client.connect import connect
from db.pool import open_pool
from settings import Settings

log = logging.getLogger("dunning.api")

MAX_BODY_BYTES = 64 * 1024  # a payment is a few hundred bytes; refuse floods early (413)
POOL_SIZE = 20
POOL_OPEN_TIMEOUT_SECONDS = 10.0
PAYMENT_WEBHOOK = "/v1/payments"

DESCRIPTION = """\
Payment webhook for processors (signed with `Dunning-Signature`), reversals, customer
status and finance re-runs (bearer tokens), health and Prometheus metrics.

Every answer carries `X-Request-ID` (the one sent, when it is 1-128 characters of
`A-Z a-z 0-9 . _ : -`, else a generated one); audit records store it. Request bodies are
JSON (`Content-Type: application/json`) of at most 64 KiB.
"""


def create_app(settings: Settings, *, client: Client | None = None) -> FastAPI:
    """The application; its lifespan opens a connection pool and (unless given) a Temporal
    client, both kept on ``app.state`` for the requests."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings.database_url, max_size=POOL_SIZE)
        # Fail at start on a wrong URL; later outages show in /healthz and as 503s.
        await pool.open(wait=True, timeout=POOL_OPEN_TIMEOUT_SECONDS)
        try:
            app.state.client = client or await connect(settings)
            app.state.pool = pool
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Dunning API", version="1", description=DESCRIPTION, lifespan=lifespan,
        openapi_tags=[
            {"name": "payments", "description": "Signed by the payment processor"},
            {"name": "customers", "description": "Bearer token, any realm within its scope "
                                                 "(else 404 as if the customer did not exist)"},
            {"name": "re-runs", "description": "Bearer token; realm admin only"},
            {"name": "subscriptions", "description": "Bearer token, any realm within its "
                                                     "scope (SPEC 2.8)"},
            {"name": "feed", "description": "Bearer token; realms system (the billing "
                                            "system) and admin; audited"},
            {"name": "operations", "description": "Health and metrics, no authentication"},
        ],
    )
    app.state.settings = settings
    # Added last = outermost: the request id is set before the body limit may answer 413.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestIdMiddleware)
    app.add_exception_handler(RequestValidationError, _validation_failed)
    for outage in (RPCError, RPCTimeoutOrCancelledError, psycopg.OperationalError,
                   PoolTimeout):
        app.add_exception_handler(outage, _unavailable)
    for module in (payments, customers, subscriptions, feed, reruns, ops):
        app.include_router(module.router)
    install_console(app)
    return app


async def _validation_failed(request: Request, exc: Exception) -> Response:
    if request.method == "POST" and request.url.path == PAYMENT_WEBHOOK:
        PAYMENTS.labels("rejected").inc()
    return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]


async def _unavailable(request: Request, exc: Exception) -> Response:
    # Processors retry on 5xx; payments are idempotent by id, so a retry is safe.
    log.warning("%s %s: dependency unavailable: %s (request %s)", request.method,
                request.url.path, type(exc).__name__, getattr(request.state, "request_id", "-"))
    error = unavailable()
    return JSONResponse({"detail": error.detail}, status_code=error.status_code,
                        headers=error.headers)
