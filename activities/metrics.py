"""Prometheus metrics of the worker and the API (SPEC 4.3 `/metrics`).

Counters live in the process where their event happens: payments and webhook signature
failures in the API (`dunning api`, its `/metrics`), notifications and service changes in
the worker (`dunning worker --metrics-port N`, its own `/metrics`). Workflow start failures
are counted wherever an invoice workflow start fails (the worker's reopen activity; a
`dunning invoice issue` process exits with an error instead, having no endpoint).

The worker's endpoint also carries the Temporal SDK's own metrics (``temporal_*``): the
SDK's Rust core exports them on a loopback port of its own, and the worker's handler
appends that text, so operators scrape one target per worker process.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

log = logging.getLogger("dunning.metrics")

PAYMENTS = Counter("dunning_payments_total", "Payments received, by outcome",
                   ["outcome"])  # accepted | duplicate | unmatched | rejected | conflict
NOTIFICATIONS = Counter("dunning_notifications_total", "Notifications, by kind and outcome",
                        ["kind", "outcome"])  # sent | failed
SERVICE_CHANGES = Counter("dunning_service_changes_total", "Suspensions and resumptions",
                          ["state"])  # suspended | active
WORKFLOW_START_FAILURES = Counter("dunning_workflow_start_failures_total",
                                  "Invoice workflows that could not be started")

SDK_FETCH_TIMEOUT_SECONDS = 2.0
_BIND_ATTEMPTS = 5


class MetricsBindError(OSError):
    """The worker's metrics endpoint could not listen on its address."""


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sdk_metrics_runtime() -> tuple[Runtime, str]:
    """A Temporal runtime exporting the SDK's metrics on a free loopback port, and the URL.

    The exporter binds in Rust and cannot report an ephemeral port back, so we pick a free
    one and try again if another process took it in between.
    """
    error: ValueError | None = None
    for _ in range(_BIND_ATTEMPTS):
        address = f"127.0.0.1:{_free_loopback_port()}"
        try:
            runtime = Runtime(telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=address)))
        except ValueError as err:  # "Address already in use"
            error = err
            continue
        return runtime, f"http://{address}/metrics"
    assert error is not None
    raise error


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sdk_url: str | None = None


class MetricsServer:
    """`GET /metrics`: this process's prometheus_client registry, then the SDK's text."""

    def __init__(self, host: str, port: int) -> None:
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as err:
            raise MetricsBindError(
                f"cannot serve worker metrics on {host}:{port}: {err.strerror or err}"
            ) from None
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def sdk_url(self) -> str | None:
        return self._server.sdk_url

    @sdk_url.setter
    def sdk_url(self, url: str | None) -> None:
        self._server.sdk_url = url

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a loop that never ran otherwise
            self._server.shutdown()
        self._server.server_close()


def scrape_text(sdk_url: str | None) -> bytes:
    """The exposition text of this process: our counters, then the SDK's (distinct names:
    ``temporal_*``), so concatenating the two documents stays one valid document."""
    body = generate_latest(REGISTRY)
    if sdk_url is None:
        return body
    try:
        response = httpx.get(sdk_url, timeout=SDK_FETCH_TIMEOUT_SECONDS)
        response.raise_for_status()
        sdk = response.content
    except httpx.HTTPError as err:
        # Our own counters are still worth serving; say why the SDK's are missing.
        log.warning("Temporal SDK metrics unavailable from %s: %s", sdk_url, err)
        return body + b"# Temporal SDK metrics unavailable\n"
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return body + sdk


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        body = scrape_text(self.server.sdk_url)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # a scrape every few seconds would drown the worker's log


def serve_worker_metrics(host: str, port: int) -> MetricsServer:
    """Start the worker's endpoint with the SDK's metrics merged in.

    Makes the SDK runtime the process default, so it must run before the first Temporal
    client of the process is connected: every client (and so the worker) then reports.
    """
    server = MetricsServer(host, port)  # bind first: a taken port fails before anything
    try:
        runtime, sdk_url = sdk_metrics_runtime()
    except BaseException:
        server.stop()
        raise
    Runtime.set_default(runtime, error_if_already_set=False)
    server.sdk_url = sdk_url
    return server.start()
