"""domain/ is standard library only and runs inside the Temporal workflow sandbox.

This module is itself imported by the sandbox (it defines the probe workflow), so its
top-level imports are kept to the standard library, temporalio and domain: no pytest.
"""

import ast
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from temporalio import workflow

from domain import money, when
from domain.collection import evaluation, policy, schedule, timeline
from domain.ledger import allocation


def _probe() -> str:
    """Exercise every pure rule once; run at import time, so inside the sandbox too."""
    at = datetime(2026, 5, 1, tzinfo=UTC)
    usd = money.currency("USD")
    ledger = allocation.build_ledger(
        [allocation.InvoiceEntry("INV-1", at, money.parse_amount("10.00", usd))],
        [allocation.PaymentEntry("p1", at + timedelta(days=1), 500)],
    )
    statuses = evaluation.evaluate(ledger, threshold=0)
    due = when.overdue_instant(when.parse_due("2026-05-31"))
    steps = schedule.plan_steps(due, schedule.Policy(reminders=(when.parse_duration("3d"),)))
    decided = schedule.decide_steps(steps, due, None)
    # The default policy in UTC: no tz database lookup, which the sandbox refuses.
    moved = timeline.timeline(policy.ClassPolicy(), due, now=due)
    return (f"{money.format_amount(ledger.balance, usd)} {statuses[0].payment_status} "
            f"{decided} {len(moved)}")


_PROBED_AT_IMPORT = _probe()


@workflow.defn(sandboxed=True)
class DomainProbeWorkflow:
    @workflow.run
    async def run(self) -> str:
        return _PROBED_AT_IMPORT


def test_domain_imports_only_the_standard_library() -> None:
    # Path work stays inside the test: the sandbox forbids it at import time (file I/O).
    domain_dir = Path(__file__).resolve().parents[2] / "domain"
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(domain_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in stdlib or root in {"domain", "__future__"}, (
                    f"{path.name} imports {root!r}; domain/ must stay standard-library only"
                )


async def test_domain_runs_inside_the_workflow_sandbox() -> None:
    # prepare_workflow is what a Worker does at start-up to validate a workflow: it
    # re-imports this module, and so domain/, inside a fresh sandbox. No server is needed,
    # only a running event loop (hence async).
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    definition = workflow._Definition.must_from_class(DomainProbeWorkflow)
    SandboxedWorkflowRunner().prepare_workflow(definition)


def test_probe_result_is_meaningful() -> None:
    assert _PROBED_AT_IMPORT.startswith("5.00 partially_paid")
    assert date(2026, 5, 31) == when.parse_due("2026-05-31")


def test_domain_values_cross_temporal_payloads() -> None:
    # Workflows and activities exchange these; the default converter must round-trip them.
    from temporalio.converter import DataConverter

    converter = DataConverter.default.payload_converter
    at = datetime(2026, 7, 1, tzinfo=UTC)
    ledger = allocation.build_ledger(
        [allocation.InvoiceEntry("A", at, 1000)],
        [allocation.PaymentEntry("p", at + timedelta(days=1), 1500)],
    )
    values: list[tuple[object, object]] = [
        (ledger, allocation.Ledger),
        (evaluation.evaluate(ledger, 0), tuple[evaluation.InvoiceEvaluation, ...]),
        (
            evaluation.SuspensionCandidate("A", True, evaluation.CollectionStatus.COLLECT, 5),
            evaluation.SuspensionCandidate,
        ),
        (
            evaluation.ServiceDecision(evaluation.ServiceState.SUSPENDED, ("A",)),
            evaluation.ServiceDecision,
        ),
        (schedule.plan_steps(at, schedule.Policy()), tuple[schedule.Step, ...]),
    ]
    for value, type_hint in values:
        payloads = converter.to_payloads([value])
        assert converter.from_payloads(payloads, [type_hint]) == [value]
