"""The dev server gets every search attribute: by start-dev's flags, and through the
operator service when a server lacks them (older CLI, existing state)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from devstack.temporal import search_attribute_flags, start_dev_argv, temporal_cli, wait_until_ready
from tests.support.ports import free_port
from workflows.search_attributes import ALL


def test_start_dev_registers_all_seven(tmp_path: Path) -> None:
    argv = start_dev_argv(tmp_path, 7233, 8233)
    assert argv[1:3] == ["server", "start-dev"]
    assert argv[argv.index("--db-filename") + 1] == str(tmp_path.resolve() / "temporal.db")
    assert argv[argv.index("--ip") + 1] == "127.0.0.1"
    assert argv[argv.index("--ui-port") + 1] == "8233"
    pairs = search_attribute_flags()[1::2]
    assert pairs == [
        "CustomerId=Keyword", "CustomerClass=Keyword", "InvoiceNumber=Keyword",
        "CollectionStatus=Keyword", "ServiceState=Keyword", "DueDate=Datetime", "OnHold=Bool",
    ]


def test_missing_attributes_are_added_through_the_operator_service(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
         "--headless", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        start_new_session=True, env=dict(os.environ),
    )
    try:
        added = wait_until_ready(f"127.0.0.1:{port}", 60, threading.Event(), server.poll)
        assert added == sorted(k.name for k in ALL)
        # A second time there is nothing left to add.
        assert wait_until_ready(f"127.0.0.1:{port}", 60, threading.Event(), server.poll) == []
    finally:
        server.terminate()
        server.wait(15)


def test_waiting_stops_when_the_server_dies(tmp_path: Path) -> None:
    import pytest

    from devstack.temporal import TemporalStartError

    with pytest.raises(TemporalStartError, match="exited with code 3"):
        wait_until_ready(f"127.0.0.1:{free_port()}", 30, threading.Event(), lambda: 3)
