"""Shared plumbing of the benchmarks: servers, worker processes, RSS sampling, the table.

Every benchmark starts its own Temporal dev server (in memory), a fresh PostgreSQL database
(``DUNNING_BENCH_DATABASE_URL`` as the admin URL, else the local server at 127.0.0.1:5432,
else an embedded pgserver) and an aiosmtpd sink that only counts messages. The sink and the
workers run in their own processes; worker RSS is sampled with psutil over the worker's
process tree (the bench driver is not included).
"""

from __future__ import annotations

import asyncio
import compileall
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
from psycopg import sql
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from client.connect import ensure_search_attributes
from db.migrate import migrate
from db.rows import AuditInfo
from operations.context import Context
from settings import Settings, load_settings
from tests.support.ports import free_port
from tests.support.processes import temporal_dev_server

ROOT = Path(__file__).resolve().parents[1]
ADMIN = AuditInfo(actor="bench", realm="admin", reason="benchmark")


# --------------------------------------------------------------------------- servers


def _sink_main(port: int, counter: Any, ready: Any) -> None:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
            with counter.get_lock():
                counter.value += 1
            return "250 2.0.0 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    signal.sigwait({signal.SIGTERM})
    controller.stop()


@contextmanager
def smtp_sink() -> Iterator[tuple[int, Any]]:
    """(port, shared counter) of an SMTP server in its own process."""
    mp = multiprocessing.get_context("spawn")
    port, counter, ready = free_port(), mp.Value("q", 0), mp.Event()
    proc = mp.Process(target=_sink_main, args=(port, counter, ready), daemon=True)
    proc.start()
    ready.wait(30)
    try:
        yield port, counter
    finally:
        proc.terminate()
        proc.join(10)


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextmanager
def admin_database_url() -> Iterator[str]:
    url = os.environ.get("DUNNING_BENCH_DATABASE_URL")
    if url:
        yield url
        return
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg.connect(local, connect_timeout=2).close()
        yield local
        return
    except psycopg.OperationalError:
        pass
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="dunning-bench-pg-"),
                                 cleanup_mode="delete")
    try:
        uri = server.get_uri("postgres")
        yield urlunsplit(urlsplit(uri)._replace(netloc="postgres@localhost"))
    finally:
        server.cleanup()


@contextmanager
def fresh_database(admin_url: str, label: str) -> Iterator[str]:
    name = f"dunning_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_db(admin_url, name)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


@dataclass
class Servers:
    address: str
    admin_url: str
    smtp_port: int
    sink: Any  # multiprocessing.Value: messages received
    client: Client

    @property
    def sink_count(self) -> int:
        return int(self.sink.value)

    def settings(self, database_url: str, task_queue: str) -> Settings:
        return load_settings(
            database_url=database_url, temporal_address=self.address, task_queue=task_queue,
            smtp_host="127.0.0.1", smtp_port=self.smtp_port,
            mail_from_address="billing@bench.test", mail_from_name="Bench Billing")

    def env(self, settings: Settings) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT),
                "DUNNING_DATABASE_URL": settings.database_url,
                "DUNNING_TEMPORAL_ADDRESS": settings.temporal_address,
                "DUNNING_TASK_QUEUE": settings.task_queue,
                "DUNNING_SMTP_HOST": settings.smtp_host,
                "DUNNING_SMTP_PORT": str(settings.smtp_port),
                "DUNNING_MAIL_FROM_ADDRESS": settings.mail_from_address,
                "DUNNING_MAIL_FROM_NAME": settings.mail_from_name}


# What the product's image holds as bytecode: pip compiles the installed packages. An
# editable install under PYTHONDONTWRITEBYTECODE=1 (this machine) has none, and every new
# sandboxed workflow instance then compiles workflows/ from source (docs/performance.md).
PACKAGES = ("activities", "api", "client", "db", "domain", "operations", "settings",
            "workflows", "cli.py", "worker.py", "worker_processes.py")


def compile_product() -> None:
    for name in PACKAGES:
        path = ROOT / name
        if path.is_dir():
            compileall.compile_dir(path, quiet=1)
        else:
            compileall.compile_file(path, quiet=1)


@asynccontextmanager
async def servers() -> AsyncIterator[Servers]:
    compile_product()
    with temporal_dev_server() as address, admin_database_url() as admin, \
            smtp_sink() as (port, counter):
        client = await Client.connect(address)
        # As the product's own commands do (client.connect): the benches start the product's
        # workflows through operations -> client, the baseline's with this raw client.
        await ensure_search_attributes(client)
        yield Servers(address, admin, port, counter, client)


# --------------------------------------------------------------------------- workers


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    peak_rss: int = 0
    samples: list[int] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def rss(self) -> int:
        """RSS of the worker's process tree (the supervisor and its worker processes)."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    async def _sample(self) -> None:
        while True:
            value = self.rss()
            self.peak_rss = max(self.peak_rss, value)
            self.samples.append(value)
            await asyncio.sleep(0.25)


async def wait_for_pollers(client: Client, task_queue: str, count: int,
                           limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        if len({p.identity for p in resp.pollers}) >= count:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no {count} worker(s) polling {task_queue} after {limit}s")


def _spawn(args: list[str], env: dict[str, str], log_path: Path
           ) -> tuple[subprocess.Popen[bytes], Any]:
    log = open(log_path, "wb")  # noqa: SIM115 (closed by worker_process)
    proc = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


@asynccontextmanager
async def worker_process(client: Client, args: list[str], env: dict[str, str],
                         task_queue: str, pollers: int = 1) -> AsyncIterator[WorkerProcess]:
    proc, log = _spawn(args, env, Path(tempfile.gettempdir()) / f"bench-worker-{task_queue}.log")
    worker = WorkerProcess(proc)
    try:
        await wait_for_pollers(client, task_queue, pollers)
        worker._task = asyncio.create_task(worker._sample())
        yield worker
    finally:
        if worker._task:
            worker._task.cancel()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def product_worker(servers: Servers, settings: Settings, processes: int = 1):
    code = f"from worker_processes import run_worker_processes; run_worker_processes({processes})"
    return worker_process(servers.client, ["-c", code], servers.env(settings),
                          settings.task_queue, pollers=processes)


def baseline_worker(servers: Servers, task_queue: str):
    return worker_process(servers.client, ["-m", "bench.baseline", servers.address, task_queue],
                          {**os.environ, "PYTHONPATH": str(ROOT)}, task_queue)


# --------------------------------------------------------------------------- driving


@asynccontextmanager
async def contexts(settings: Settings, client: Client, n: int) -> AsyncIterator[list[Context]]:
    """n operation contexts (one database connection each) sharing one Temporal client."""
    conns = [await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True)
             for _ in range(n)]
    try:
        yield [Context(settings=settings, conn=c, _client=client) for c in conns]
    finally:
        for c in conns:
            await c.close()


async def run_concurrently(items: Iterable[Any], workers: list[Any],
                           fn: Callable[[Any, Any], Awaitable[None]]) -> None:
    """fn(worker_resource, item) for every item, len(workers) at a time."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def loop(resource: Any) -> None:
        while not queue.empty():
            await fn(resource, queue.get_nowait())

    await asyncio.gather(*(loop(r) for r in workers))


async def until(predicate: Callable[[], Awaitable[bool]], limit: float,
                what: str, interval: float = 0.2) -> float:
    """Poll until true; returns time.monotonic() at the first true poll."""
    deadline = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
    return time.monotonic()


async def scalar(conn: psycopg.AsyncConnection, query: str, *params: Any) -> Any:
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    row = await cur.fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- results


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds
    peak_rss: int | None = None  # bytes
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def print_table(rows: list[Result], baseline: Result | None, title: str, *,
                rss_where: str = "worker process tree (separate process), psutil") -> None:
    print(f"\n{title}")
    header = (f"{'run':<34}{'count':>7}{'seconds':>9}{'rate/s':>9}{'ratio':>7}"
              f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'peak RSS MB':>13}  note")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r.rate / baseline.rate:.2f}" if baseline and baseline.rate else "-"
        pcts = [percentile(r.latencies, p) for p in (50, 95, 99)]
        cells = "".join(f"{v * 1000:>9.1f}" if v is not None else f"{'-':>9}" for v in pcts)
        rss = f"{r.peak_rss / 2**20:>13.0f}" if r.peak_rss else f"{'-':>13}"
        print(f"{r.name:<34}{r.count:>7}{r.seconds:>9.2f}{r.rate:>9.1f}{ratio:>7}{cells}{rss}"
              f"  {r.note}")
    print(f"(peak RSS: {rss_where})")
