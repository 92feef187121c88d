"""The hold's rules (SPEC 2.11) in the domain: what it pauses, the service decision under
it (no suspension; a suspended customer stays suspended unless resumed; payments still
resume it), the late fee under it, and the hold's own checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.collection.evaluation import (
    CollectionStatus,
    ServiceState,
    SuspensionCandidate,
    decide_service,
)
from domain.collection.policy import ClassPolicy, LateFee, decide_late_fee
from domain.hold import PAUSED, Hold, ended, held_step, pauses
from domain.notifications.catalog import StepKind

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
HOLD = Hold(placed_at=T0, until=T0 + timedelta(days=3), reason="dispute", actor="ana")
OPEN = Hold(placed_at=T0, until=None, reason="in hospital", actor="ana")

candidates = st.lists(st.builds(
    SuspensionCandidate, number=st.text("ABC", min_size=1, max_size=3),
    past_suspension_time=st.booleans(),
    collection_status=st.sampled_from(list(CollectionStatus)),
    remaining=st.integers(0, 5000)), max_size=5)
states = st.sampled_from([ServiceState.ACTIVE, ServiceState.SUSPENDED])


def test_a_hold_pauses_every_dunning_action_and_nothing_else() -> None:
    for kind in (StepKind.DUE_REMINDER, StepKind.OVERDUE, StepKind.SUSPENSION_WARNING,
                 StepKind.LATE_FEE, StepKind.SUSPENSION):
        assert pauses(HOLD, kind) and held_step(HOLD, kind) == f"held: {HOLD.describe()}"
    assert pauses(HOLD, "termination")
    for event in ("invoice_issued", "payment_received", "service_resumed", "reversal"):
        assert not pauses(HOLD, event) and held_step(HOLD, event) is None
    assert not any(pauses(None, action) for action in PAUSED)


def test_describe_says_until_when_why_and_who() -> None:
    assert HOLD.describe() == (
        "customer on hold until 2026-06-04T12:00:00+00:00 (dispute, by ana)")
    assert OPEN.describe() == "customer on hold until released (in hospital, by ana)"


def test_a_hold_needs_a_reason_and_a_future_until() -> None:
    with pytest.raises(ValueError, match="reason"):
        Hold(placed_at=T0, until=None, reason=" ", actor="ana")
    with pytest.raises(ValueError, match="one line"):
        Hold(placed_at=T0, until=None, reason="a\nb", actor="ana")
    with pytest.raises(ValueError, match="already passed"):
        Hold(placed_at=T0, until=T0, reason="x", actor="ana")
    with pytest.raises(ValueError, match="timezone-aware"):
        Hold(placed_at=T0, until=datetime(2026, 7, 1), reason="x", actor="ana")


def test_a_hold_ends_at_its_until_and_an_open_one_never_by_itself() -> None:
    assert not ended(HOLD, T0 + timedelta(days=3) - timedelta(seconds=1))
    assert ended(HOLD, T0 + timedelta(days=3))
    assert not ended(OPEN, T0 + timedelta(days=3650))
    assert not ended(None, T0)


@given(candidates, states)
def test_without_a_hold_the_state_is_the_causes_alone(cs: list, current: ServiceState) -> None:
    plain = decide_service(cs)
    assert decide_service(cs, held=False, current=current) == plain


@given(candidates)
def test_a_hold_never_suspends_an_active_customer(cs: list) -> None:
    decision = decide_service(cs, held=True, current=ServiceState.ACTIVE)
    assert decision.state == ServiceState.ACTIVE and decision.causes == ()


@given(candidates)
def test_a_held_suspended_customer_stays_suspended_while_a_cause_remains(cs: list) -> None:
    held = decide_service(cs, held=True, current=ServiceState.SUSPENDED)
    # Exactly what 2.4 says without the hold: payments and reversals work as usual, so the
    # last cause paid resumes it, and a cause left keeps it suspended.
    assert held == decide_service(cs)


@given(candidates)
def test_the_hold_ends_then_a_due_suspension_happens_at_once(cs: list) -> None:
    during = decide_service(cs, held=True, current=ServiceState.ACTIVE)
    after = decide_service(cs, held=False, current=during.state)
    assert after == decide_service(cs)  # the causes alone, at once


def test_the_issues_hold_with_resume_then_release() -> None:
    june = [SuspensionCandidate("JUNE", True, CollectionStatus.COLLECT, 2040)]
    assert decide_service(june).state == ServiceState.SUSPENDED
    # --resume: decided as if active, under the hold: active at once.
    assert decide_service(june, held=True, current=ServiceState.ACTIVE).state == "active"
    # Without --resume: stays suspended.
    assert decide_service(june, held=True, current=ServiceState.SUSPENDED).state == "suspended"
    # Released the next day: suspended again at once.
    assert decide_service(june, held=False, current=ServiceState.ACTIVE).causes == ("JUNE",)


def test_no_late_fee_while_held_and_the_reason_says_so() -> None:
    policy = ClassPolicy(late_fee=LateFee(basis_points=200))
    held = decide_late_fee(policy, collection_status="collect", remaining=2000,
                           charged_before=False, hold=HOLD)
    assert (held.amount, held.reason) == (0, f"held: {HOLD.describe()}")
    free = decide_late_fee(policy, collection_status="collect", remaining=2000,
                           charged_before=False, hold=None)
    assert free.amount == 40
