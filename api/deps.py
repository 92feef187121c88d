"""Per-request helpers: an operations Context on a pooled connection, who is asking."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, get_args

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError

from db.rows import AuditInfo, Realm
from operations.context import Context
from settings import ApiIdentity

# Processors time out after about 30 s and retry; answer first, with 503 (payments are
# idempotent by id, so the retry is safe even if the first attempt completes later).
OPERATION_TIMEOUT_SECONDS = 25.0
UNAVAILABLE = "service temporarily unavailable; retry later"
# The realms an audit record may carry (the audit_log.realm CHECK).
AUDIT_REALMS = frozenset(get_args(Realm))

T = TypeVar("T")


def unavailable() -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNAVAILABLE,
                         headers={"Retry-After": "5"})


async def run_operation(request: Request, operation: Callable[[Context], Awaitable[T]]) -> T:
    """Run ``operation`` with a Context on a pooled connection, bounded in time.

    The connection is taken only here, once the request is authenticated and valid, so
    refused requests never wait for (or hold) one. The operation runs in its own task:
    on timeout only that task is cancelled. (The Temporal SDK turns a cancelled update
    call into its own WorkflowUpdateRPCTimeoutOrCancelledError, so an ``asyncio.timeout``
    around it in the request's task would leave that task marked as cancelling.)
    """
    state = request.app.state

    async def run() -> T:
        async with state.pool.connection() as conn:
            return await operation(Context(settings=state.settings, conn=conn,
                                           _client=state.client))

    try:
        return await asyncio.wait_for(run(), OPERATION_TIMEOUT_SECONDS)
    except TimeoutError:
        raise unavailable() from None


def request_id(request: Request) -> str:
    return str(request.state.request_id)


def audit_info(request: Request, identity: ApiIdentity, reason: str | None) -> AuditInfo:
    """Who acts, for an audit record. The audit trail knows the realms admin, reseller and
    system (SPEC 2.7); a customer-realm token is never audited, so asking is a bug."""
    if identity.realm not in AUDIT_REALMS:
        raise ValueError(f"realm {identity.realm!r} is not audited")
    return AuditInfo(actor=identity.actor, realm=identity.realm,  # type: ignore[arg-type]
                     reason=reason, request_id=request_id(request))


def invalid(error: Exception) -> RequestValidationError:
    """A refusal by operations/domain (needs the database, e.g. the class currency) in the
    same 422 shape as a field error, so clients parse one format."""
    field = getattr(error, "field", None)  # domain.ledger.payments.InvalidPayment names it
    return RequestValidationError([{
        "type": "value_error", "loc": ("body", field) if field else ("body",),
        "msg": str(error), "input": None,
    }])
