"""Real servers for the fault tests: a Temporal dev server process (real time, no time
skipping, so races and restarts happen as in production), PostgreSQL and SMTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import pytest
from temporalio.client import Client

from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.customers import add
from tests.support.faults import FaultySmtp
from tests.support.processes import temporal_dev_server
from tests.support.stack import ADMIN, Stack, running_stack


@pytest.fixture(scope="session")
def dev_server() -> Iterator[str]:
    with temporal_dev_server() as address:
        yield address


@pytest.fixture(scope="session")
async def dev_client(dev_server: str) -> Client:
    return await Client.connect(dev_server)


@pytest.fixture
def faulty_smtp() -> Iterator[FaultySmtp]:
    smtp = FaultySmtp()
    smtp.start()
    try:
        yield smtp
    finally:
        smtp.stop()


def process_env(database_url: str, temporal_address: str, smtp_host: str, smtp_port: int,
                task_queue: str | None = None) -> dict[str, str]:
    """The environment of a `dunning` process (worker or command) for one test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({
        "DUNNING_DATABASE_URL": database_url,
        "DUNNING_TEMPORAL_ADDRESS": temporal_address,
        "DUNNING_TASK_QUEUE": task_queue or f"faults-{uuid.uuid4().hex[:10]}",
        "DUNNING_SMTP_HOST": smtp_host,
        "DUNNING_SMTP_PORT": str(smtp_port),
        "DUNNING_MAIL_FROM_ADDRESS": "billing@dunning.test",
        "DUNNING_ACTOR": "faults-finance",
    })
    return env


async def real_time_stack(client: Client, database_url: str, smtp_host: str,
                          smtp_port: int) -> AsyncIterator[Stack]:
    """The product with an in-process worker against the real-time dev server."""
    env = SimpleNamespace(client=client)
    async with running_stack(env, database_url, smtp_host, smtp_port) as stack:  # type: ignore[arg-type]
        yield stack


@pytest.fixture
async def stack(dev_client, database_url, smtp_sink) -> AsyncIterator[Stack]:
    async for s in real_time_stack(dev_client, database_url, smtp_sink.host, smtp_sink.port):
        yield s


async def add_customers(stack: Stack, ids: list[str], *, class_name: str = "residential",
                        threshold: str = "0", grace: str = "0d", receipts: bool = True,
                        **class_options: str) -> None:
    await stack.call(set_class, ClassChange(
        name=class_name, currency="USD", threshold=threshold, grace=grace, warning="0s",
        reminders="1s", payment_receipts=receipts, from_name="EasyCall",
        from_address="no-reply@easycall.test", reply_to="support@easycall.test",
        **class_options), ADMIN)
    for customer_id in ids:
        await stack.call(add, NewCustomer(id=customer_id, name=f"Name {customer_id}",
                                          email=f"{_local(customer_id)}@example.com",
                                          class_name=class_name), ADMIN)


def _local(customer_id: str) -> str:
    return "".join(ch for ch in customer_id if ch.isalnum()) or "x"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
