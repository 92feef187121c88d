"""Workers for tests that swap activities: the workflows' queue and its effects queue.

The product's workflows schedule mail and provisioning on ``effects_task_queue(queue)``
(worker.Workers polls both). A test that registers doubles under the real activity names
serves the same doubles on both queues, so it need not know which queue each one is on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from domain.ids import effects_task_queue


@asynccontextmanager
async def workers(client: Client, *, task_queue: str, workflows: Sequence[type] = (),
                  activities: Sequence[Callable[..., Any]] = (), **options: Any
                  ) -> AsyncIterator[Worker]:
    """The workflow worker (yielded) and, when there are activities, an effects worker."""
    async with AsyncExitStack() as stack:
        worker = await stack.enter_async_context(Worker(
            client, task_queue=task_queue, workflows=list(workflows),
            activities=list(activities), **options))
        if activities:
            await stack.enter_async_context(Worker(
                client, task_queue=effects_task_queue(task_queue),
                activities=list(activities)))
        yield worker
