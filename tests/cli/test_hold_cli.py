"""`dunning hold` and `dunning hold release` refuse bad input with one line on stderr,
before anything reaches Temporal or the database (a real `dunning` process; the hold itself
is exercised through the workflows in tests/workflows/test_hold_scenario.py)."""

from __future__ import annotations

import os

import pytest

from tests.support.processes import dunning


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({"DUNNING_DATABASE_URL": database_url, "DUNNING_ACTOR": "cli-finance",
                # Nothing listens here: a command that got as far as Temporal would fail.
                "DUNNING_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    dunning(env, "class", "set", "residential", "--currency", "USD", "--threshold", "10.00")
    dunning(env, "customer", "add", "c1", "--name", "John", "--email", "john@example.com",
            "--class", "residential")
    return env


def refused(env: dict[str, str], *args: str) -> str:
    result = dunning(env, *args, check=False)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_refusals_name_what_is_wrong(env: dict[str, str]) -> None:
    assert refused(env, "hold", "c1") == "error: a hold needs a reason: --reason"
    assert "unknown customer 'nobody'" in refused(env, "hold", "nobody", "--reason", "x")
    assert "--until 'soon' is not a valid date" in refused(
        env, "hold", "c1", "--reason", "x", "--until", "soon")
    assert "unknown customer 'nobody'" in refused(env, "hold", "release", "nobody")
    assert "not releasing" in refused(env, "hold", "release", "c1", "--resume")
    assert "did you mean `dunning hold release c2`" in refused(env, "hold", "c1", "c2")
