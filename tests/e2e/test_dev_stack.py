"""SPEC 4.4: `dunning dev` starts the whole stack, Ctrl-C stops every process it started,
and a second start reuses the data.

Runs `python -m devstack` (the same `run_dev` that `dunning dev` calls) on free ports with a
private data directory and no DUNNING_* configuration, so the embedded PostgreSQL is used.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90
STOP_TIMEOUT = 30


class DevRun:
    def __init__(self, data_dir: Path, workdir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in ("temporal", "ui", "smtp", "mail", "api",
                                                     "worker_metrics")}
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.output = workdir / f"dev-{time.monotonic_ns()}.out"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack", "--data-dir", str(data_dir),
                 "--temporal-port", str(self.ports["temporal"]),
                 "--ui-port", str(self.ports["ui"]),
                 "--smtp-port", str(self.ports["smtp"]),
                 "--mail-port", str(self.ports["mail"]),
                 "--api-port", str(self.ports["api"]),
                 "--worker-metrics-port", str(self.ports["worker_metrics"])],
                cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # like a terminal: our signal reaches only `dev`
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_up(self) -> float:
        started = time.monotonic()
        deadline = started + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dev exited early:\n{self.text()}"
            if "Dunning dev stack is up" in self.text() and self._answers():
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"not up within {START_TIMEOUT}s:\n{self.text()}")

    def _answers(self) -> bool:
        try:
            ui = httpx.get(f"http://127.0.0.1:{self.ports['ui']}/", timeout=2)
            mail = httpx.get(f"http://127.0.0.1:{self.ports['mail']}/", timeout=2)
        except httpx.HTTPError:
            return False
        return ui.status_code == 200 and mail.status_code == 200

    def database_url(self) -> str:
        match = re.search(r"Database\s+(postgresql://\S+)", self.text())
        assert match, self.text()
        return match.group(1)

    def processes(self) -> list[psutil.Process]:
        """Everything this run started: its descendants and the (daemonised) postmaster."""
        found = psutil.Process(self.process.pid).children(recursive=True)
        pidfile = self.data_dir / "postgres" / "postmaster.pid"
        if pidfile.exists():
            found.append(psutil.Process(int(pidfile.read_text().split()[0])))
        return found

    def interrupt(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"dev did not stop within {STOP_TIMEOUT}s:\n{self.text()}")
        assert code == 0, self.text()
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.name()} {' '.join(proc.cmdline())}"
    except psutil.NoSuchProcess:  # e.g. a child that already exited and was reported
        return ""


def _leftovers(data_dir: Path, started: list[psutil.Process]) -> list[str]:
    time.sleep(0.5)
    left = [f"{p.pid} {_describe(p)[:120]}" for p in started if _alive(p)]
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and _alive(proc):
            left.append(f"{proc.pid} {cmdline[:120]}")
    return left


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def _wait_for_text(url: str, text: str, timeout: float = 30) -> None:
    """The worker serves /metrics before it connects; the SDK's counters follow."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        try:
            body = httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            body = ""
        if text in body:
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {url} after {timeout}s:\n{body[-2000:]}")


def test_dev_starts_everything_and_ctrl_c_stops_everything(workdir: Path) -> None:
    data_dir = workdir / "data"
    run = DevRun(data_dir, workdir)
    try:
        run.wait_up()
        started = run.processes()
        commands = [_describe(p) for p in started]
        assert any(c.startswith("temporal ") for c in commands), commands
        assert any(c.startswith("postgres ") for c in commands), commands
        assert any("devstack.mailcatcher" in c for c in commands), commands
        worker_metrics = f"http://127.0.0.1:{run.ports['worker_metrics']}/metrics"
        assert any(c.endswith(f" worker --metrics-port {run.ports['worker_metrics']}")
                   for c in commands), commands
        assert worker_metrics in run.text()
        _wait_for_text(worker_metrics, "temporal_request")
        health = httpx.get(f"http://127.0.0.1:{run.ports['api']}/healthz", timeout=5)
        assert health.status_code == 200
        # The product's database exists, and the search attributes are in Temporal.
        url = run.database_url()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE devstack_marker (run int)")
            conn.execute("INSERT INTO devstack_marker VALUES (1)")
        listing = subprocess.run(
            [str(Path(sys.executable).with_name("temporal")), "operator", "search-attribute",
             "list", "--address", f"127.0.0.1:{run.ports['temporal']}"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        for attribute in ("CustomerId", "CustomerClass", "InvoiceNumber", "CollectionStatus",
                          "ServiceState", "DueDate", "OnHold"):
            assert attribute in listing
        banner = run.text()
        console = f"http://127.0.0.1:{run.ports['api']}/console"
        for url_text in (f"http://127.0.0.1:{run.ports['ui']}",
                         f"http://127.0.0.1:{run.ports['mail']}", str(data_dir.resolve()),
                         console):
            assert url_text in banner
        # The console answers with its sign-in page, the dev token signs in.
        signin = httpx.get(f"{console}/signin", timeout=5)
        assert signin.status_code == 200 and "API token" in signin.text
        stop_seconds = run.interrupt()
    finally:
        run.kill()
    assert stop_seconds < STOP_TIMEOUT
    assert _leftovers(data_dir, started) == []

    # A second start reuses the data: same database content, same Temporal file.
    assert (data_dir / "temporal.db").exists()
    again = DevRun(data_dir, workdir)
    try:
        again.wait_up()
        assert "created database" not in again.text()
        with psycopg.connect(again.database_url()) as conn:
            assert conn.execute("SELECT run FROM devstack_marker").fetchall() == [(1,)]
        started = again.processes()
        again.interrupt()
    finally:
        again.kill()
    assert _leftovers(data_dir, started) == []
