"""Workflow ids: derived from customer and invoice number, never ambiguous (SPEC 3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.ids import (
    customer_workflow_id,
    invoice_workflow_id,
    transaction_token,
    update_transaction_id,
)


def test_readable_for_ordinary_ids() -> None:
    assert invoice_workflow_id("c1", "INV-06") == "invoice:c1:INV-06"
    assert customer_workflow_id("c1") == "customer:c1"


def test_hyphens_and_colons_do_not_collide() -> None:
    assert invoice_workflow_id("k", "x-1") != invoice_workflow_id("k-x", "1")
    assert invoice_workflow_id("k", "x:1") != invoice_workflow_id("k:x", "1")


@given(st.text(min_size=1), st.text(min_size=1), st.text(min_size=1), st.text(min_size=1))
def test_distinct_invoices_have_distinct_ids(c1: str, n1: str, c2: str, n2: str) -> None:
    if (c1, n1) != (c2, n2):
        assert invoice_workflow_id(c1, n1) != invoice_workflow_id(c2, n2)


def test_a_transaction_run_for_an_update_has_the_same_token_in_every_run() -> None:
    # The same delivery retried into the next run (after continue-as-new) must find the
    # result its first attempt committed.
    activity_id = update_transaction_id("payment:card:p1:d1", "apply_payment")
    assert transaction_token("run-1", activity_id) == transaction_token("run-2", activity_id)


def test_other_transactions_are_keyed_by_their_run() -> None:
    assert transaction_token("run-1", "3") == "run-1:3"
    assert transaction_token("run-1", "3") != transaction_token("run-2", "3")


@given(st.text(min_size=1), st.sampled_from(["apply_payment", "issue_invoice"]),
       st.uuids(), st.integers(min_value=1))
def test_update_tokens_never_meet_sequence_tokens(update_id: str, activity: str,
                                                  run_id: object, seq: int) -> None:
    # Run ids are UUIDs and the SDK's own activity ids sequence numbers.
    update_token = transaction_token(str(run_id), update_transaction_id(update_id, activity))
    assert update_token != transaction_token(str(run_id), str(seq))


@given(st.text(min_size=1), st.text(min_size=1))
def test_distinct_updates_have_distinct_transaction_ids(u1: str, u2: str) -> None:
    if u1 != u2:
        assert (update_transaction_id(u1, "apply_payment")
                != update_transaction_id(u2, "apply_payment"))
