"""Provisioning: tell the network that a customer's service is suspended or resumed.

Pluggable: by default the decision (already recorded in the database by the ledger
transaction) is only logged; with DUNNING_PROVISIONING_URL set, it is POSTed there with
an idempotency key, so a retried call never flips the service twice.
"""

from __future__ import annotations

import logging

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from workflows import policies
from workflows.collection.payloads import (
    APPLY_SERVICE_STATE,
    ApplyServiceStateInput,
    ApplyServiceStateResult,
)

log = logging.getLogger("dunning.provisioning")


class ProvisioningActivities:
    def __init__(self, url: str | None, http: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.http = http

    @activity.defn(name=APPLY_SERVICE_STATE)
    async def apply_service_state(self, input: ApplyServiceStateInput) -> ApplyServiceStateResult:
        # The customer workflow runs this once per transition (one service_events row);
        # counting on the first attempt only keeps retries of a failing hook from counting
        # one suspension several times, and a hook that refuses for good still counts:
        # the state changed in the database either way.
        if activity.info().attempt == 1:
            metrics.SERVICE_CHANGES.labels(input.state).inc()
        if not self.url:
            log.info("service of %s is now %s (causes: %s; event %s)", input.customer_id,
                     input.state, ", ".join(input.causes) or "-", input.event_id)
            return ApplyServiceStateResult(provisioned=False, detail="logged")
        http = self.http or httpx.AsyncClient(timeout=10)
        try:
            response = await http.post(
                self.url,
                json={"customer_id": input.customer_id, "state": input.state,
                      "causes": input.causes, "event_id": input.event_id},
                headers={"Idempotency-Key": f"service-event-{input.event_id}"},
            )
        finally:
            if self.http is None:
                await http.aclose()
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise ApplicationError(
                f"provisioning refused event {input.event_id}: HTTP {response.status_code}",
                type=policies.INVALID_INPUT, non_retryable=True)
        response.raise_for_status()  # 5xx, 408, 429: retried with backoff
        return ApplyServiceStateResult(provisioned=True, detail=f"HTTP {response.status_code}")
