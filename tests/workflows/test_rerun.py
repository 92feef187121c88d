"""Finance re-runs after a threshold change (SPEC 2.3): dry run, then the real thing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.customers import NewCustomer
from domain.ids import customer_workflow_id
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice
from operations.reruns import start_rerun
from tests.support.histories import record_history
from tests.support.stack import ADMIN, Stack


async def test_threshold_change_then_rerun_resumes_the_right_customers(stack: Stack) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await stack.call(set_class, ClassChange(name="Mobile", currency="USD", threshold="10.00",
                                            grace="1d"), ADMIN)
    for cid, charges in (("m-small", "15.00"), ("m-big", "40.00")):
        await stack.call(add, NewCustomer(id=cid, name=cid, email=f"{cid}@example.com",
                                          class_name="Mobile"), ADMIN)
        await stack.call(issue_invoice, IssueRequest(
            customer_id=cid, number="N-1", charges=charges,
            issued=(now - timedelta(days=20)).isoformat(),
            due=(now - timedelta(days=5)).isoformat()), ADMIN)

    async def both_suspended() -> bool:
        return [await stack.service_state(c) for c in ("m-small", "m-big")] == [
            "suspended", "suspended"]

    await stack.wait_for(both_suspended, what="both customers suspended")

    await stack.call(set_class, ClassChange(name="Mobile", threshold="20.00"), ADMIN)

    dry = await stack.call(start_rerun, "Mobile", None, True, ADMIN, wait=True)
    assert dry["dry_run"] is True
    assert dry["scanned"] == 2 and dry["changed_customers"] == 1
    (only,) = dry["results"]
    assert only["customer_id"] == "m-small"
    assert (only["service_before"], only["service_after"]) == ("suspended", "active")
    assert [(c["number"], c["before_status"], c["after_status"]) for c in only["changes"]] == [
        ("N-1", "collect", "do_not_collect")]
    # A dry run changes nothing.
    assert await stack.service_state("m-small") == "suspended"
    rows = await stack.query_rows(
        "SELECT collection_status FROM invoices WHERE customer_id = 'm-small'")
    assert rows == [("collect",)]

    real = await stack.call(start_rerun, "Mobile", None, False, ADMIN, wait=True)
    assert real["changed_customers"] == 1
    assert await stack.service_state("m-small") == "active"
    assert await stack.service_state("m-big") == "suspended"
    audit = await stack.query_rows(
        "SELECT action, on_behalf_of FROM audit_log WHERE action IN ('rerun.start',"
        " 'customer.rerun') ORDER BY id")
    assert ("rerun.start", None) in audit and ("customer.rerun", "m-small") in audit
    await record_history(stack.client, real["workflow_id"], "rerun_class")
    # A dry run then a real re-run in one customer history (the dry-run-keeps-published-state
    # patch).
    await record_history(stack.client, customer_workflow_id("m-small"), "customer_dry_run")
