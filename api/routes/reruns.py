"""Finance re-runs (SPEC 2.3) through the RerunWorkflow.

A real re-run answers 202 at once with the workflow id (it may take long for a large
class; follow it in the Temporal UI). A dry run changes nothing, so it waits up to
``DRY_RUN_WAIT_SECONDS`` for its results and answers 200 with them; if it takes longer it
answers 202 like a real run (``done: false``) and keeps running.

Realm ``admin`` only (finance, SPEC 1); every other realm gets 403, before the body is
looked at. A class re-run is not scoped to one customer, and a class's policy is finance's,
not a reseller's or a customer's; a re-run of one customer is refused the same way, so the
answer never depends on (nor reveals) whose customer the id is. The billing system's
``system`` realm feeds data and has no business re-evaluating it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from api.deps import audit_info, run_operation
from api.models import RerunIn, RerunOut, problem
from api.scopes import admin_only
from client.reruns import rerun_result
from db.classes import get_class
from db.customers import get_customer_with_class
from domain.money import currency, format_amount
from operations.context import Context
from operations.errors import NotFound
from operations.reruns import rerun_document, start_rerun
from settings import ApiIdentity

router = APIRouter(tags=["re-runs"])

DRY_RUN_WAIT_SECONDS = 20.0


@router.post(
    "/v1/reruns", status_code=status.HTTP_202_ACCEPTED, response_model=RerunOut,
    summary="Re-evaluate a class or a customer (finance; realm admin)",
    description="Realm `admin` only: any other realm gets 403 whatever the class or "
                "customer. The request is audited (`rerun.start`); a dry run is not.",
    responses={
        200: {"model": RerunOut, "description": "Dry run finished: its results (nothing "
              "changed)"},
        202: {"description": "Re-run started (or dry run still running): follow the "
              "workflow"},
        401: problem("Missing or unknown bearer token", "missing or unknown bearer token"),
        403: problem("The token's realm is not admin (system, reseller and customer may "
                     "not start re-runs)", "realm 'reseller' may not do this"),
        404: problem("Unknown class or customer", "unknown class 'residential'"),
        503: problem("Database or Temporal unreachable",
                     "service temporarily unavailable; retry later"),
    },
)
async def post_rerun(body: RerunIn, request: Request, response: Response,
                     identity: ApiIdentity = Depends(admin_only)) -> RerunOut:
    audit = audit_info(request, identity, body.reason)

    async def start(ctx: Context) -> tuple[str | None, dict[str, Any]]:
        code = await _currency(ctx, body)  # None when unknown: start_rerun says which
        return code, await start_rerun(ctx, body.class_name, body.customer_id, body.dry_run,
                                       audit, wait=False)

    try:
        code, started = await run_operation(request, start)
    except NotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
    assert code is not None  # start_rerun refused unknown classes and customers
    if body.dry_run:
        # Waited for after the operation: no database connection held meanwhile.
        try:
            progress = await asyncio.wait_for(
                rerun_result(request.app.state.client, started["workflow_id"]),
                DRY_RUN_WAIT_SECONDS)
        except TimeoutError:
            pass  # still running: 202 with done=false
        else:
            response.status_code = status.HTTP_200_OK
            started = rerun_document(started["workflow_id"], True, progress)
    return _out(started, code)


async def _currency(ctx: Context, body: RerunIn) -> str | None:
    """Results carry minor units; the API speaks decimal strings of the class currency."""
    if body.class_name is not None:
        klass = await get_class(ctx.conn, body.class_name)
    else:
        found = await get_customer_with_class(ctx.conn, str(body.customer_id))
        klass = found[1] if found else None
    return klass.currency if klass else None


def _out(started: dict[str, Any], code: str) -> RerunOut:
    cur = currency(code)
    results = [
        {**result, "changes": [{**change, "remaining": format_amount(change["remaining"], cur)}
                               for change in result["changes"]]}
        for result in started["results"]
    ]
    return RerunOut.model_validate({**started, "results": results})
