"""The worker: runs Dunning's workflows and activities against a Temporal server.

Settings, templates and drivers live here and in ``activities/``; the workflow sandbox only
ever sees ``workflows/`` and ``domain/``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import build_activities
from activities.metrics import serve_worker_metrics
from activities.notifications.mailer import SmtpConfig, SmtpMailer
from activities.notifications.message import Sender
from client.connect import ensure_search_attributes
from db.pool import open_pool
from domain.ids import effects_task_queue
from settings import Settings, get_settings
from workflows.collection.invoice import InvoiceWorkflow
from workflows.collection.rerun import RerunWorkflow
from workflows.ledger.customer import CustomerWorkflow

log = logging.getLogger("dunning.worker")

WORKFLOWS = (InvoiceWorkflow, CustomerWorkflow, RerunWorkflow)
# Deterministic, side-effect-free modules the workflows import (see the before-stop hook).
PURE_MODULES = ("domain", "workflows.ledger.payloads", "workflows.collection.payloads",
                "workflows.notifications.payloads", "workflows.policies",
                "workflows.search_attributes")

async def connect_client(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


@dataclass
class WorkerResources:
    pool: AsyncConnectionPool
    mailer: SmtpMailer


class Workers:
    """The process's two workers, run together: one polls the workflows' task queue
    (workflows, ledger transactions, invoice checks), the other the effects queue (mail
    and provisioning) with slots of its own, so mail never delays a payment."""

    def __init__(self, workflow: Worker, effects: Worker) -> None:
        self.workflow = workflow
        self.effects = effects
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Workers:
        await self._stack.enter_async_context(self.workflow)
        await self._stack.enter_async_context(self.effects)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def build_worker(client: Client, task_queue: str, resources: WorkerResources,
                 settings: Settings, **worker_options: object) -> Workers:
    activities = build_activities(
        pool=resources.pool, mailer=resources.mailer, client=client, task_queue=task_queue,
        company=Sender.from_settings(settings), provisioning_url=settings.provisioning_url,
    )
    tuned = tuning(settings)
    options: dict[str, object] = {
        "max_cached_workflows": settings.worker_cache_size,
        # The pure modules load once for all workflows instead of once per sandboxed
        # instance (profiled: instance creation was a fifth of the worker's time).
        "workflow_runner": SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_MODULES))
        if settings.worker_sandbox else UnsandboxedWorkflowRunner(),
        **tuned.workflow,
        **worker_options,
    }
    workflow_worker = Worker(client, task_queue=task_queue, workflows=list(WORKFLOWS),
                             activities=activities.workflow, **options)  # type: ignore[arg-type]
    effects_worker = Worker(client, task_queue=effects_task_queue(task_queue),
                            activities=activities.effects, **tuned.effects)  # type: ignore[arg-type]
    return Workers(workflow_worker, effects_worker)


@dataclass(frozen=True)
class Tuning:
    workflow: dict[str, int]
    effects: dict[str, int]


def tuning(settings: Settings) -> Tuning:
    """The worker options the settings set (the SDK's defaults for the rest)."""
    def given(**options: int | None) -> dict[str, int]:
        return {name: value for name, value in options.items() if value is not None}

    workflow = given(
        max_concurrent_workflow_tasks=settings.worker_workflow_task_slots,
        max_concurrent_activities=settings.worker_activity_slots,
        max_concurrent_local_activities=settings.worker_local_activity_slots,
        max_concurrent_workflow_task_polls=settings.worker_workflow_task_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_task_pollers)
    effects = given(max_concurrent_activities=settings.worker_activity_slots,
                    max_concurrent_activity_task_polls=settings.worker_activity_task_pollers)
    return Tuning(workflow, effects)


async def run_worker(settings: Settings | None = None, *,
                     metrics_port: int | None = None) -> None:
    """Poll until SIGTERM/SIGINT; with a metrics port (the argument, else the setting),
    serve `/metrics` there for the whole run."""
    settings = settings or get_settings()
    port = metrics_port or settings.worker_metrics_port
    # Before any client connects: the endpoint's SDK runtime becomes the process default.
    metrics = serve_worker_metrics(settings.worker_metrics_host, port) if port else None
    if metrics is not None:
        log.info("worker metrics at %s", metrics.url)
    try:
        await _poll(settings)
    finally:
        if metrics is not None:
            metrics.stop()


async def _poll(settings: Settings) -> None:
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


def main(settings: Settings | None = None, *, metrics_port: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_worker(settings, metrics_port=metrics_port))


if __name__ == "__main__":
    main()
