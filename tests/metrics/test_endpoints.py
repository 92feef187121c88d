"""Every metric the README lists moves when its event happens, on the `/metrics` of the
process where it happens, read over HTTP (issue 9, item 7).

Real processes: `temporal server start-dev`, `dunning worker --metrics-port N`,
`dunning api`, PostgreSQL and an SMTP server that refuses one recipient for good.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities import metrics
from activities.metrics import MetricsServer
from api.signatures import sign
from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.context import open_context
from operations.customers import add
from operations.errors import OperationError
from operations.invoices import IssueRequest, issue_invoice
from settings import load_settings
from tests.support.faults import FaultySmtp
from tests.support.ports import free_port
from tests.support.processes import (
    BIN,
    dunning,
    stop,
    temporal_dev_server,
    wait_for_port,
)
from tests.support.stack import ADMIN

SECRET = "metrics-secret"
REFUSED = "refused@example.com"


@pytest.fixture(scope="module")
def dev_server() -> Iterator[str]:
    with temporal_dev_server() as address:
        yield address


@pytest.fixture
def refusing_smtp() -> Iterator[FaultySmtp]:
    smtp = FaultySmtp()
    smtp.script[REFUSED] = ["550 5.1.1 no such mailbox"] * 50
    smtp.start()
    try:
        yield smtp
    finally:
        smtp.stop()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when it is not there yet."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def scrape(url: str) -> str:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def wait_for_sample(url: str, name: str, at_least: float, timeout: float = 60,
                    **labels: str) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = scrape(url)
        except httpx.HTTPError:
            text = ""
        if sample(text, name, **labels) >= at_least:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{name}{labels} did not reach {at_least} on {url}:\n{text[-3000:]}")


@contextmanager
def process(env: dict[str, str], log_path: Path, *args: str) -> Iterator[subprocess.Popen[Any]]:
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(BIN / "dunning"), *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def test_each_metric_moves_on_the_endpoint_of_its_process(
    dev_server: str, database_url: str, refusing_smtp: FaultySmtp, tmp_path: Path
) -> None:
    worker_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({
        "DUNNING_DATABASE_URL": database_url,
        "DUNNING_TEMPORAL_ADDRESS": dev_server,
        "DUNNING_TASK_QUEUE": f"metrics-{uuid.uuid4().hex[:10]}",
        "DUNNING_SMTP_HOST": refusing_smtp.host,
        "DUNNING_SMTP_PORT": str(refusing_smtp.port),
        "DUNNING_WEBHOOK_SECRETS": f"acme={SECRET}",
        "DUNNING_ACTOR": "metrics-test",
    })
    # Ids unique in the module: the dev server outlives the test.
    ana, bob = f"c-ana-{uuid.uuid4().hex[:8]}", f"c-bob-{uuid.uuid4().hex[:8]}"
    dunning(env, "class", "set", "EasyCall", "--currency", "USD", "--threshold", "10.00",
            "--reminders", "3d", "--grace", "2s", "--warning", "1s")
    dunning(env, "customer", "add", ana, "--name", "Ana", "--email", "ana@example.com",
            "--class", "EasyCall")
    dunning(env, "customer", "add", bob, "--name", "Bob", "--email", REFUSED,
            "--class", "EasyCall")
    worker_url = f"http://127.0.0.1:{worker_port}/metrics"
    api = f"http://127.0.0.1:{api_port}"
    now = datetime.now(UTC).replace(microsecond=0)
    with process(env, tmp_path / "worker.log", "worker", "--metrics-port", str(worker_port)), \
            process(env, tmp_path / "api.log", "api", "--port", str(api_port)):
        wait_for_port(worker_port)
        # The SDK's own metrics, from the worker's client and pollers, on the same target.
        text = wait_for_sample(worker_url, "temporal_request", 1, operation="GetSystemInfo")
        assert "dunning_notifications_total" in text or "dunning_service_changes" in text

        for customer in (ana, bob):
            dunning(env, "invoice", "issue", "--customer", customer, "--number", "INV-1",
                    "--charges", "20.00", "--issued", (now - timedelta(days=1)).isoformat(),
                    "--due", (now + timedelta(seconds=2)).isoformat())
        # Ana's mail is delivered, Bob's refused for good (550): both in the worker.
        wait_for_sample(worker_url, "dunning_notifications_total", 1,
                        kind="invoice_issued", outcome="sent")
        wait_for_sample(worker_url, "dunning_notifications_total", 1,
                        kind="invoice_issued", outcome="failed")
        # Both are suspended once their invoices pass the suspension time.
        text = wait_for_sample(worker_url, "dunning_service_changes_total", 2,
                               state="suspended")
        assert sample(text, "dunning_service_changes_total", state="active") == 0
        assert sample(text, "temporal_request", operation="PollWorkflowTaskQueue") \
            + sample(text, "temporal_long_request", operation="PollWorkflowTaskQueue") > 0

        wait_for_port(api_port)
        body = json.dumps({"payment_id": f"pay-{uuid.uuid4().hex[:8]}", "processor": "acme",
                           "customer_id": ana, "amount": "20.00", "currency": "USD",
                           "received_at": now.isoformat()}).encode()
        headers = {"Content-Type": "application/json",
                   "Dunning-Signature": sign(SECRET, body, math.floor(time.time()))}
        paid = httpx.post(f"{api}/v1/payments", content=body, headers=headers, timeout=30)
        assert paid.status_code in (200, 201, 202), paid.text
        wrong = httpx.post(f"{api}/v1/payments", content=body, timeout=10, headers={
            **headers, "Dunning-Signature": sign("not-the-secret", body, math.floor(time.time()))})
        assert wrong.status_code == 401

        # Payments and signature failures happen in the API and are served there.
        api_text = scrape(f"{api}/metrics")
        assert sample(api_text, "dunning_payments_total", outcome="accepted") == 1
        assert sample(api_text, "dunning_webhook_signature_failures_total") == 1
        # The payment resumes Ana's service: the worker applies it, once.
        text = wait_for_sample(worker_url, "dunning_service_changes_total", 1, state="active")
        time.sleep(1)
        text = scrape(worker_url)
        assert sample(text, "dunning_service_changes_total", state="active") == 1
        assert sample(text, "dunning_service_changes_total", state="suspended") == 2


async def test_workflow_start_failures_are_counted(database_url: str, dev_server: str) -> None:
    """A start that fails for good, read from the worker's endpoint (the in-process
    MetricsServer is the one `dunning worker --metrics-port` runs)."""
    server = MetricsServer("127.0.0.1", 0).start()
    try:
        before = sample(scrape(server.url), "dunning_workflow_start_failures_total")
        settings = load_settings(database_url=database_url,
                                 temporal_address=f"127.0.0.1:{free_port()}")  # nobody there
        async with open_context(settings) as ctx:
            await set_class(ctx, ClassChange(name="Plain", currency="USD", threshold="1.00"),
                            ADMIN)
            await add(ctx, NewCustomer(id="c-start", name="Cy", email="cy@example.com",
                                       class_name="Plain"), ADMIN)
            request = IssueRequest(customer_id="c-start", number="I-1", charges="5.00",
                                   issued="2026-05-01T00:00:00+00:00", due="2026-06-01")
            with pytest.raises(OperationError, match="not reachable"):
                await issue_invoice(ctx, request, ADMIN)
        assert sample(scrape(server.url),
                      "dunning_workflow_start_failures_total") == before + 1

        # Temporal answers but refuses the start (a namespace it does not have).
        refused = settings.model_copy(update={"temporal_address": dev_server,
                                              "temporal_namespace": "no-such-namespace"})
        async with open_context(refused) as ctx:
            with pytest.raises(OperationError, match="could not be started"):
                await issue_invoice(ctx, request, ADMIN)
        assert sample(scrape(server.url),
                      "dunning_workflow_start_failures_total") == before + 2
        assert metrics.WORKFLOW_START_FAILURES._value.get() >= 2
    finally:
        server.stop()


def _two_free_ports() -> int:
    """A port P with P + 1 free too (`--processes 2` serves P and P + 1)."""
    import socket

    for _ in range(50):
        base = free_port()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", base + 1)) != 0:
                return base
    raise AssertionError("no two consecutive free ports")


def test_each_worker_process_serves_its_own_port(dev_server: str, database_url: str,
                                                 smtp_sink, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({"DUNNING_DATABASE_URL": database_url, "DUNNING_TEMPORAL_ADDRESS": dev_server,
                "DUNNING_TASK_QUEUE": f"metrics-{uuid.uuid4().hex[:10]}",
                "DUNNING_SMTP_PORT": str(smtp_sink.port)})
    too_high = dunning(env, "worker", "--processes", "2", "--metrics-port", "65535",
                       check=False)
    assert too_high.returncode == 1 and "65535" in too_high.stderr
    assert too_high.stderr.strip().count("\n") == 0

    base = _two_free_ports()
    with process(env, tmp_path / "workers.log", "worker", "--processes", "2",
                 "--metrics-port", str(base)):
        for port in (base, base + 1):
            wait_for_port(port)
            # Each process has its own SDK runtime: its own client's requests.
            wait_for_sample(f"http://127.0.0.1:{port}/metrics", "temporal_request", 1,
                            operation="GetSystemInfo")
