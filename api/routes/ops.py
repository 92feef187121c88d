"""Health and metrics for operators and load balancers."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from api.models import Health

router = APIRouter(tags=["operations"])
log = logging.getLogger("dunning.api")

CHECK_TIMEOUT_SECONDS = 3.0


@router.get(
    "/healthz", response_model=Health, summary="Database and Temporal reachable?",
    responses={200: {"description": "Both reachable"},
               503: {"model": Health, "description": "One of them is not",
                     "content": {"application/json": {"example": {
                         "status": "unavailable", "database": "ok",
                         "temporal": "unavailable"}}}}},
)
async def healthz(request: Request, response: Response) -> Health:
    database, temporal = await asyncio.gather(_database_ok(request), _temporal_ok(request))
    healthy = database and temporal
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if healthy else "unavailable",
                  database="ok" if database else "unavailable",
                  temporal="ok" if temporal else "unavailable")


async def _database_ok(request: Request) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with request.app.state.pool.connection() as conn:
                await conn.execute("SELECT 1")
        return True
    except Exception as err:  # any failure means "not healthy"; say why in the log
        log.warning("health: database unavailable: %s", type(err).__name__)
        return False


async def _temporal_ok(request: Request) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return bool(await request.app.state.client.service_client.check_health(
                timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS)))
    except Exception as err:
        log.warning("health: temporal unavailable: %s", type(err).__name__)
        return False


@router.get(
    "/metrics", summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"description": "Prometheus text format",
                     "content": {"text/plain": {"schema": {"type": "string"}, "example":
                                 'dunning_payments_total{outcome="accepted"} 3.0\n'}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
