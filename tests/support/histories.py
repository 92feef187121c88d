"""Recorded workflow histories for the replay test (tests/workflows/test_replay.py).

Scenario tests call ``record_history``; with DUNNING_RECORD_HISTORIES=1 the history is
written to tests/workflows/histories/<name>.json (commit it), otherwise nothing happens.
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import Client

HISTORIES = Path(__file__).resolve().parent.parent / "workflows" / "histories"


async def record_history(client: Client, workflow_id: str, name: str) -> None:
    if os.environ.get("DUNNING_RECORD_HISTORIES") != "1":
        return
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    HISTORIES.mkdir(parents=True, exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json(), encoding="utf-8")
