"""Determinism guard: recorded histories of every workflow type must replay cleanly.

A change to workflow code that would break running workflows fails here. Re-record with
DUNNING_RECORD_HISTORIES=1 only for an intended, versioned change.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.support.histories import HISTORIES
from worker import WORKFLOWS

FILES = sorted(HISTORIES.glob("*.json"))


def test_histories_of_every_workflow_type_are_recorded() -> None:
    types = set()
    for path in FILES:
        history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
        types.add(history.events[0].workflow_execution_started_event_attributes.workflow_type.name)
    assert types == {w.__name__ for w in WORKFLOWS}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays(path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    await Replayer(workflows=list(WORKFLOWS)).replay_workflow(history)
