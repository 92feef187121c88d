"""POST /v1/reruns: finance re-runs through the RerunWorkflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from operations.classes import ClassChange, set_class
from operations.invoices import IssueRequest, issue_invoice
from tests.api.conftest import ADMIN_TOKEN, CLASS, Api
from tests.support.stack import ADMIN, Stack


async def rerun(api: Api, body: dict) -> object:
    return await api.http.post("/v1/reruns", json=body,
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                        "X-Request-ID": "rerun-1"})


async def test_rerun_of_a_class_is_202_and_audited(api: Api, stack: Stack,
                                                   customer: str) -> None:
    response = await rerun(api, {"class_name": CLASS, "reason": "threshold changed"})
    assert response.status_code == 202, response.text
    document = response.json()
    assert document["workflow_id"].startswith(f"rerun-class-{CLASS}-")
    assert document["dry_run"] is False and document["done"] is False
    rows = await stack.query_rows(
        "SELECT actor, realm, reason, request_id FROM audit_log WHERE action = 'rerun.start'")
    assert rows == [("ana-finance", "admin", "threshold changed", "rerun-1")]


async def test_dry_run_of_a_customer_waits_for_its_results(api: Api, customer: str) -> None:
    response = await rerun(api, {"customer_id": customer, "dry_run": True, "reason": "check"})
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["dry_run"] is True and document["done"] is True
    assert document["scanned"] == 1


async def test_rerun_of_an_unknown_class_is_404(api: Api) -> None:
    response = await rerun(api, {"class_name": "nope", "reason": "x"})
    assert response.status_code == 404


async def test_dry_run_results_speak_decimal_strings(api: Api, stack: Stack,
                                                     customer: str) -> None:
    now = datetime.now(UTC)
    await stack.call(issue_invoice, IssueRequest(
        customer_id=customer, number="INV-1", charges="20.00", issued=now.isoformat(),
        due=(now + timedelta(days=10)).isoformat()), ADMIN)
    # 20.00 > 10.00 is collect; with a 30.00 threshold it would not be.
    await stack.call(set_class, ClassChange(name=CLASS, threshold="30.00"), ADMIN)
    response = await rerun(api, {"customer_id": customer, "dry_run": True, "reason": "check"})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["customer_id"] == customer and result["dry_run"] is True
    assert result["changes"] == [{"number": "INV-1", "before_status": "collect",
                                  "after_status": "do_not_collect", "remaining": "20.00"}]
    # A dry run changes nothing.
    rows = await stack.query_rows("SELECT collection_status FROM invoices WHERE number = 'INV-1'")
    assert rows == [("collect",)]
