"""The raw Temporal baseline: trivial workflows on the same server, in the same run.

`python -m bench.baseline ADDRESS TASK_QUEUE` runs their worker (a separate process, as the
product's worker is); `start_noops`, `update_entities` and `start_sleeper` drive them, with
the raw Temporal client (the product goes through ``client``: the comparison).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker


@activity.defn
async def noop() -> None:
    return None


@workflow.defn
class NoopWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class EntityWorkflow:
    def __init__(self) -> None:
        self.count = 0

    @workflow.update
    async def bump(self, payment_id: str) -> int:
        self.count += 1
        return self.count

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn
class SleeperWorkflow:
    """An open workflow waiting on a far timer, with a query (long_lived's baseline)."""

    @workflow.query
    def status(self) -> str:
        return "sleeping"

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(days=365))


async def start_sleeper(client: Client, task_queue: str, i: int) -> str:
    """Start the i-th SleeperWorkflow (long_lived's baseline); returns its id."""
    wid = f"sleep-{task_queue}-{i}"
    await client.start_workflow(SleeperWorkflow.run, id=wid, task_queue=task_queue)
    return wid


async def start_noops(client: Client, task_queue: str, n: int, concurrency: int
                      ) -> tuple[float, list[float]]:
    """Start n NoopWorkflows; (seconds until all completed, start-to-close latencies)."""
    from bench.common import run_concurrently, until

    submitted: dict[str, datetime] = {}
    t0 = time.monotonic()

    async def start(_: object, i: int) -> None:
        wid = f"noop-{task_queue}-{i}"
        submitted[wid] = datetime.now(UTC)
        await client.start_workflow(NoopWorkflow.run, id=wid, task_queue=task_queue)

    await run_concurrently(range(n), [None] * concurrency, start)
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Completed'"

    async def done() -> bool:
        return (await client.count_workflows(query)).count >= n

    t1 = await until(done, 600, "baseline workflows")
    latencies = [(wf.close_time - submitted[wf.id]).total_seconds()
                 async for wf in client.list_workflows(query) if wf.close_time]
    return t1 - t0, latencies


async def update_entities(client: Client, task_queue: str, n: int, entities: int,
                          concurrency: int) -> tuple[float, list[float]]:
    """n update-with-start calls spread over `entities` EntityWorkflows."""
    from bench.common import run_concurrently

    latencies: list[float] = []
    order = [(i % entities, i) for i in range(n)]
    t0 = time.monotonic()

    async def update(_: object, item: tuple[int, int]) -> None:
        entity, i = item
        start = WithStartWorkflowOperation(
            EntityWorkflow.run, id=f"entity-{task_queue}-{entity}", task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        began = time.monotonic()
        await client.execute_update_with_start_workflow(
            EntityWorkflow.bump, f"p-{i}", start_workflow_operation=start, id=f"u-{i}")
        latencies.append(time.monotonic() - began)

    await run_concurrently(order, [None] * concurrency, update)
    return time.monotonic() - t0, latencies


async def _main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(client, task_queue=task_queue,
                    workflows=[NoopWorkflow, EntityWorkflow, SleeperWorkflow],
                    activities=[noop])
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
