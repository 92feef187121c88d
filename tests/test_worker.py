"""`dunning worker`: registers missing search attributes, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from tests.support.processes import dunning_worker, temporal_dev_server
from workflows.search_attributes import ALL


async def test_worker_registers_search_attributes_and_stops_on_sigterm(
    database_url, smtp_sink, tmp_path
) -> None:
    with temporal_dev_server(register=False) as address:
        env = {**os.environ, "DUNNING_DATABASE_URL": database_url,
               "DUNNING_TEMPORAL_ADDRESS": address, "DUNNING_SMTP_PORT": str(smtp_sink.port)}
        client = await Client.connect(address)
        with dunning_worker(env, tmp_path / "worker.log") as worker:
            names: set[str] = set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not {k.name for k in ALL} <= names:
                await asyncio.sleep(0.3)
                listed = await client.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace="default"))
                names = set(listed.custom_attributes)
            assert {k.name for k in ALL} <= names
            os.killpg(worker.pid, signal.SIGTERM)
            started = time.monotonic()
            assert worker.wait(20) == 0
            assert time.monotonic() - started < 20
        log = (tmp_path / "worker.log").read_text()
        assert "registered search attributes" in log and "worker stopped" in log


def test_tuning_settings_become_worker_options() -> None:
    """Unset: the SDK's defaults (no option passed); set: the option, on both workers
    where it applies (the effects worker has activities only)."""
    from settings import load_settings
    from worker import tuning

    assert tuning(load_settings(database_url="postgresql://x/y")).workflow == {}
    tuned = tuning(load_settings(
        database_url="postgresql://x/y", worker_workflow_task_slots=20,
        worker_workflow_task_pollers=8, worker_activity_slots=50,
        worker_activity_task_pollers=3, worker_local_activity_slots=40))
    assert tuned.workflow == {
        "max_concurrent_workflow_tasks": 20, "max_concurrent_workflow_task_polls": 8,
        "max_concurrent_activities": 50, "max_concurrent_activity_task_polls": 3,
        "max_concurrent_local_activities": 40}
    assert tuned.effects == {"max_concurrent_activities": 50,
                             "max_concurrent_activity_task_polls": 3}
