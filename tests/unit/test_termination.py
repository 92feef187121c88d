"""The termination rule (SPEC 2.9) in the domain: suspended without a break for the class's
terminate-after, not while on hold, final for the service decision until reactivated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.collection.evaluation import (
    CollectionStatus,
    ServiceState,
    SuspensionCandidate,
    decide_service,
)
from domain.collection.policy import ClassPolicy, decide_termination
from domain.hold import Hold

T0 = datetime(2026, 6, 15, 12, tzinfo=UTC)
THIRTY = ClassPolicy(terminate_after=timedelta(days=30))


def decide(policy: ClassPolicy = THIRTY, *, state: str = "suspended",
           since: datetime | None = T0, hold: Hold | None = None,
           now: datetime = T0 + timedelta(days=30)):
    return decide_termination(policy, service_state=state, suspended_since=since, hold=hold,
                              now=now)


def test_thirty_days_after_the_suspension_exactly() -> None:
    due = decide(now=T0 + timedelta(days=30) - timedelta(seconds=1))
    assert (due.terminate, due.due_at) == (False, T0 + timedelta(days=30))
    now = decide()
    assert now.terminate and now.due_at is None
    assert now.reason == ("suspended without a break since 2026-06-15T12:00:00+00:00 "
                          "(terminate after 30d)")


def test_nothing_to_wait_for_without_terminate_after_or_a_suspension() -> None:
    assert decide(ClassPolicy()).due_at is None and not decide(ClassPolicy()).terminate
    for state in ("active", "terminated"):
        assert not decide(state=state).terminate and decide(state=state).due_at is None


def test_not_while_on_hold_and_at_once_when_it_ends() -> None:
    hold = Hold(placed_at=T0 + timedelta(days=1), until=None, reason="dispute", actor="ana")
    held = decide(hold=hold, now=T0 + timedelta(days=40))
    assert (held.terminate, held.due_at) == (False, None)
    assert held.reason.startswith("held: customer on hold")
    assert decide(hold=None, now=T0 + timedelta(days=40)).terminate


@given(st.integers(1, 90), st.integers(0, 200))
def test_terminates_iff_suspended_that_long(days: int, elapsed_hours: int) -> None:
    policy = ClassPolicy(terminate_after=timedelta(days=days))
    decision = decide(policy, now=T0 + timedelta(hours=elapsed_hours * 12))
    assert decision.terminate == (timedelta(hours=elapsed_hours * 12) >= timedelta(days=days))


@given(st.lists(st.builds(
    SuspensionCandidate, number=st.text("AB", min_size=1, max_size=2),
    past_suspension_time=st.booleans(),
    collection_status=st.sampled_from(list(CollectionStatus)),
    remaining=st.integers(0, 3000)), max_size=4), st.booleans())
def test_terminated_is_final_whatever_is_paid(candidates: list, held: bool) -> None:
    decision = decide_service(candidates, held=held, current=ServiceState.TERMINATED)
    assert decision.state == ServiceState.TERMINATED
