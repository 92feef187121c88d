"""The worker: runs Dunning's workflows and activities against a Temporal server.

Settings, templates and drivers live here and in ``activities/``; the workflow sandbox only
ever sees ``workflows/`` and ``domain/``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import build_activities
from activities.notifications.mailer import SmtpConfig, SmtpMailer
from activities.notifications.message import Sender
from settings import Settings, get_settings
from workflows import search_attributes
from workflows.customer import CustomerWorkflow
from workflows.invoice import InvoiceWorkflow
from workflows.rerun import RerunWorkflow

log = logging.getLogger("dunning.worker")

WORKFLOWS = (InvoiceWorkflow, CustomerWorkflow, RerunWorkflow)
# Deterministic, side-effect-free modules the workflows import (see the before-stop hook).
PURE_MODULES = ("domain", "workflows.payloads", "workflows.policies",
                "workflows.search_attributes")

async def ensure_search_attributes(
    client: Client, keys: Sequence[SearchAttributeKey] = search_attributes.ALL
) -> list[str]:
    """Register the search attributes the server does not know yet; returns those added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    # The SDK's index types carry the server's enum values.
    missing = {k.name: IndexedValueType.ValueType(int(k.indexed_value_type))
               for k in keys if k.name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
        log.info("registered search attributes: %s", ", ".join(sorted(missing)))
    return sorted(missing)


async def connect_client(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


def open_pool(conninfo: str, *, max_size: int = 10) -> AsyncConnectionPool:
    return AsyncConnectionPool(conninfo, min_size=1, max_size=max_size, open=False,
                               kwargs={"autocommit": True})


@dataclass
class WorkerResources:
    pool: AsyncConnectionPool
    mailer: SmtpMailer


def build_worker(client: Client, task_queue: str, resources: WorkerResources,
                 settings: Settings, **worker_options: object) -> Worker:
    activities = build_activities(
        pool=resources.pool, mailer=resources.mailer, client=client, task_queue=task_queue,
        company=Sender.from_settings(settings), provisioning_url=settings.provisioning_url,
    )
    options: dict[str, object] = {
        "max_cached_workflows": settings.worker_cache_size,
        # The pure modules load once for all workflows instead of once per sandboxed
        # instance (profiled: instance creation was a fifth of the worker's time).
        "workflow_runner": SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_MODULES)),
        **worker_options,
    }
    return Worker(client, task_queue=task_queue, workflows=list(WORKFLOWS),
                  activities=activities, **options)  # type: ignore[arg-type]


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    # Handlers first: a SIGTERM while connecting must still mean "stop cleanly".
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect_client(settings)
    await ensure_search_attributes(client)
    async with AsyncExitStack() as stack:
        pool = open_pool(settings.database_url)
        await pool.open(wait=True)
        stack.push_async_callback(pool.close)
        mailer = SmtpMailer(SmtpConfig.from_settings(settings), pool_size=settings.smtp_pool_size)
        stack.push_async_callback(mailer.close)
        worker = build_worker(client, settings.task_queue, WorkerResources(pool, mailer), settings)
        log.info("worker polling task queue %r on %s", settings.task_queue,
                 settings.temporal_address)
        async with worker:
            await stop.wait()
            log.info("stopping: finishing running activities")
        log.info("worker stopped")


def main(settings: Settings | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
