"""The product wired to real servers for a test: its own database, task queue and worker.

Operations go through the same functions the CLI and the API call (operations/), with the
time-skipping client of the test environment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.notifications.mailer import SmtpConfig, SmtpMailer
from db.pool import open_pool
from db.rows import AuditInfo
from operations.context import Context
from settings import Settings, load_settings
from worker import WorkerResources, build_worker

T = TypeVar("T")
ADMIN = AuditInfo(actor="test-finance", realm="admin", reason="test")


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: Client
    settings: Settings
    conn: psycopg.AsyncConnection

    @property
    def ctx(self) -> Context:
        return Context(settings=self.settings, conn=self.conn, _client=self.client)

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return await fn(self.ctx, *args, **kwargs)

    async def query_rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = await self.conn.execute(sql, params)  # type: ignore[arg-type]
        return await cur.fetchall()

    async def wait_for(self, predicate: Callable[[], Awaitable[bool]], *,
                       timeout: float = 60.0, what: str = "condition") -> None:
        """Poll real time (the workflows skip their own time meanwhile)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not await predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.2)

    async def service_state(self, customer_id: str) -> str:
        rows = await self.query_rows("SELECT service_state FROM customers WHERE id = %s",
                                     customer_id)
        return str(rows[0][0])

    async def notifications(self, customer_id: str) -> list[tuple[str, str, str]]:
        """(key, kind, status) of the customer's outbox rows, oldest first."""
        rows = await self.query_rows(
            "SELECT key, kind, status FROM notifications WHERE customer_id = %s"
            " ORDER BY created_at, key", customer_id)
        return [(str(k), str(kind), str(s)) for k, kind, s in rows]


def stack_settings(database_url: str, smtp_host: str, smtp_port: int, **overrides: Any
                   ) -> Settings:
    return load_settings(
        database_url=database_url, task_queue=f"test-{uuid.uuid4().hex[:12]}",
        smtp_host=smtp_host, smtp_port=smtp_port, mail_from_address="billing@dunning.test",
        mail_from_name="Dunning Billing", **overrides,
    )


@asynccontextmanager
async def running_stack(env: WorkflowEnvironment, database_url: str, smtp_host: str,
                        smtp_port: int, **worker_options: Any) -> AsyncIterator[Stack]:
    settings = stack_settings(database_url, smtp_host, smtp_port)
    pool = open_pool(database_url)
    await pool.open(wait=True)
    mailer = SmtpMailer(SmtpConfig.from_settings(settings))
    worker = build_worker(env.client, settings.task_queue, WorkerResources(pool, mailer),
                          settings, **worker_options)
    try:
        async with worker, await psycopg.AsyncConnection.connect(
            database_url, autocommit=True
        ) as conn:
            try:
                yield Stack(env=env, client=env.client, settings=settings, conn=conn)
            finally:
                await terminate_running(env.client, settings.task_queue)
    finally:
        await mailer.close()
        await pool.close()


async def terminate_running(client: Client, task_queue: str) -> None:
    """The Temporal server outlives the test: leave none of this test's workflows behind."""
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        try:
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate(
                reason="end of test")
        except RPCError:
            continue  # ended meanwhile
