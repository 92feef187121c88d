"""domain.ids: one quoting rule for every workflow id, update id and notification key."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import ids
from domain.ledger import commands, payments
from domain.notifications import catalog
from workflows.collection import payloads as collection_payloads
from workflows.ledger import payloads as ledger_payloads

TRICKY = ["k", "k:x", "x:1", "1", "50%", "%35", "a b", "a+b", "a%20b", ":", "%", " "]


def test_plain_ids_read_as_they_are() -> None:
    assert ids.invoice_workflow_id("c1", "INV-06") == "invoice:c1:INV-06"
    assert ids.customer_workflow_id("c_1.x~") == "customer:c_1.x~"
    assert catalog.invoice_notification_key("c1", "INV-06", "due_reminder:3d") == (
        "invoice:c1:INV-06:due_reminder:3d")
    assert catalog.payment_receipt_key("card", "p1") == "payment:card:p1:payment_received"
    assert catalog.service_notification_key("c1", 7, "service_suspended") == (
        "service:c1:7:service_suspended")
    assert ids.payment_update_id("card", "p1") == "payment:card:p1"
    assert ids.reversal_update_id("card", "p1") == "reversal:card:p1"
    assert ids.assignment_update_id("card", "p1") == "assign:card:p1"
    assert ids.invoice_update_id("c1", "INV-06", "d1") == "issue:c1:INV-06:d1"
    assert ids.rerun_child_workflow_id("rerun-class-x-1", "c1") == "rerun:rerun-class-x-1:c1"
    assert catalog.resend_key("payment:card:p1:payment_received", 2) == (
        "payment:card:p1:payment_received:resend:2")


def test_separators_percent_and_spaces_are_quoted() -> None:
    assert catalog.invoice_notification_key("k", "x:1", "overdue") == "invoice:k:x%3A1:overdue"
    assert catalog.invoice_notification_key("k:x", "1", "overdue") == "invoice:k%3Ax:1:overdue"
    # "%" itself is quoted, so a literal "%3A" cannot pass for a quoted ":".
    assert ids.payment_update_id("a%3Ab", "c") != ids.payment_update_id("a:b", "c")
    assert ids.customer_workflow_id("a b") == "customer:a%20b"


# Each builder over its free parts (the step and the kind are ours, never user input).
BUILDERS = {
    "invoice_workflow_id": ids.invoice_workflow_id,
    "customer_workflow_id": ids.customer_workflow_id,
    "invoice_notification_key": lambda a, b: catalog.invoice_notification_key(a, b, "overdue"),
    "payment_receipt_key": catalog.payment_receipt_key,
    "service_notification_key": lambda a: catalog.service_notification_key(a, 1, "service_resumed"),
    "payment_update_id": ids.payment_update_id,
    "reversal_update_id": ids.reversal_update_id,
    "assignment_update_id": ids.assignment_update_id,
    "invoice_update_id": ids.invoice_update_id,
    "rerun_child_workflow_id": ids.rerun_child_workflow_id,
}
ONE_PART = {"customer_workflow_id", "service_notification_key"}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_tricky_parts_never_collide(name: str) -> None:
    build = BUILDERS[name]
    if name in ONE_PART:
        assert len({build(a) for a in TRICKY}) == len(TRICKY)
    else:
        pairs = [(a, b) for a in TRICKY for b in TRICKY]
        assert len({build(a, b) for a, b in pairs}) == len(pairs)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@given(a=st.text(), b=st.text(), c=st.text(), d=st.text())
def test_distinct_parts_give_distinct_ids(name: str, a: str, b: str, c: str, d: str) -> None:
    build = BUILDERS[name]
    if name in ONE_PART:
        assert a == c or build(a) != build(c)
    elif (a, b) != (c, d):
        assert build(a, b) != build(c, d)


@given(customer=st.text(), number=st.text(), event=st.integers(min_value=0))
def test_invoice_and_service_keys_of_one_customer_differ(customer: str, number: str,
                                                         event: int) -> None:
    steps = {catalog.invoice_notification_key(customer, number, s)
             for s in ("invoice_issued", "due_reminder:3d", "overdue", "suspension_warning")}
    assert len(steps) == 4
    assert catalog.service_notification_key(customer, event, "service_suspended") not in steps


def test_the_payload_modules_re_export_the_domain_types_never_copies() -> None:
    """Shared types are aliases: the update's input is the activity's input is the
    ledger's command, the same class object in every layer."""
    for module in (ledger_payloads, collection_payloads):
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, type) and value.__module__.startswith("domain."):
                assert getattr(importlib.import_module(value.__module__), name) is value
    assert ledger_payloads.IssueInvoice is commands.IssueInvoice
    assert ledger_payloads.ApplyPayment is payments.ApplyPayment
    assert collection_payloads.ReevaluationOutcome is commands.ReevaluationOutcome
