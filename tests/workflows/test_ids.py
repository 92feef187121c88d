"""Workflow ids: derived from customer and invoice number, never ambiguous (SPEC 3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.ids import customer_workflow_id, invoice_workflow_id


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
