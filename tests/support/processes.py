"""Real processes for end-to-end tests: the Temporal dev server and `dunning` commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

BIN = Path(sys.executable).parent
SEARCH_ATTRIBUTES = ("CustomerId=Keyword", "CustomerClass=Keyword", "InvoiceNumber=Keyword",
                     "CollectionStatus=Keyword", "ServiceState=Keyword", "DueDate=Datetime",
                     "OnHold=Bool")


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@contextmanager
def temporal_dev_server(*, register: bool = True) -> Iterator[str]:
    """`temporal server start-dev` (headless, in memory), with our search attributes unless
    ``register`` is false (to check that the worker registers them itself)."""
    port = free_port()
    args = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(port), "--log-level", "error"]
    for attribute in SEARCH_ATTRIBUTES if register else ():
        args += ["--search-attribute", attribute]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        wait_for_port(port)
        wait_until_serving(f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


def wait_until_serving(address: str, timeout: float = 60.0) -> None:
    """The port opens before the frontend is healthy; clients connecting then fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check = subprocess.run([str(BIN / "temporal"), "operator", "cluster", "health",
                                "--address", address], capture_output=True, text=True,
                               timeout=30)
        if check.returncode == 0 and "SERVING" in check.stdout:
            return
        time.sleep(0.3)
    raise TimeoutError(f"Temporal at {address} not healthy after {timeout}s")


def stop(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def dunning(env: dict[str, str], *args: str, check: bool = True,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run one `dunning` command as a user would."""
    result = subprocess.run([str(BIN / "dunning"), *args], env=env, capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"dunning {' '.join(args)} failed ({result.returncode}): "
                             f"{result.stderr.strip()}")
    return result


def dunning_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(dunning(env, *args, "--json").stdout)


@contextmanager
def dunning_worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[Any]]:
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(BIN / "dunning"), "worker"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        stop(process)


def user_env(database_url: str, temporal_address: str, smtp: Any, task_queue: str
             ) -> dict[str, str]:
    """The environment a user's `dunning` commands and worker get: this machine's, with
    our own settings replaced (none inherited from the test run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({
        "DUNNING_DATABASE_URL": database_url,
        "DUNNING_TEMPORAL_ADDRESS": temporal_address,
        "DUNNING_TASK_QUEUE": task_queue,
        "DUNNING_SMTP_HOST": smtp.host,
        "DUNNING_SMTP_PORT": str(smtp.port),
        "DUNNING_ACTOR": "e2e-finance",
    })
    return env


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

