"""The provisioning hook: idempotency key, success, permanent and transient failures."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.collection.provisioning import ProvisioningActivities
from workflows.collection.payloads import ApplyServiceStateInput


class Hook(BaseHTTPRequestHandler):
    calls: list[tuple[dict, str]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.calls.append((body, self.headers["Idempotency-Key"]))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    Hook.calls, Hook.status = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/service"
    server.shutdown()


INPUT = ApplyServiceStateInput(customer_id="c1", state="suspended", causes=["INV-06"],
                               event_id=7)


async def test_without_a_url_the_decision_is_only_logged() -> None:
    result = await ActivityEnvironment().run(ProvisioningActivities(None).apply_service_state,
                                             INPUT)
    assert (result.provisioned, result.detail) == (False, "logged")


async def test_hook_gets_the_event_with_an_idempotency_key(hook) -> None:
    result = await ActivityEnvironment().run(ProvisioningActivities(hook).apply_service_state,
                                             INPUT)
    assert result.provisioned
    assert Hook.calls == [({"customer_id": "c1", "state": "suspended", "causes": ["INV-06"],
                            "event_id": 7}, "service-event-7")]


async def test_a_refusal_is_not_retried_and_an_outage_is(hook) -> None:
    Hook.status = 400
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(ProvisioningActivities(hook).apply_service_state, INPUT)
    assert refused.value.non_retryable
    Hook.status = 503
    with pytest.raises(Exception) as outage:
        await ActivityEnvironment().run(ProvisioningActivities(hook).apply_service_state, INPUT)
    assert not getattr(outage.value, "non_retryable", False)
