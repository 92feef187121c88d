"""SPEC 5, the worked example, at the domain level and with exact figures.

Class threshold $10.00. May invoice: new charges $10.00, amount due $10.00 -> do_not_collect
(10 does not exceed 10); its card payment fails; the customer keeps service. June invoice:
new charges $10.00, amount due $20.00 -> collect; due reminder, overdue notice, suspension at
S. After suspension the customer pays $15.00: May first (paid), June's remaining becomes
$5.00 -> do_not_collect; no overdue collect invoice is left, so the service resumes at once.
"""

from datetime import UTC, datetime, timedelta

from domain.collection.evaluation import (
    CollectionStatus,
    PaymentStatus,
    ServiceDecision,
    ServiceState,
    SuspensionCandidate,
    decide_service,
    evaluate,
)
from domain.collection.schedule import (
    Policy,
    StepDecision,
    StepKind,
    decide_steps,
    plan_steps,
    suspension_instant,
)
from domain.ledger.allocation import Allocation, InvoiceEntry, Ledger, PaymentEntry, build_ledger
from domain.money import currency, format_amount, parse_amount
from domain.when import overdue_instant, parse_due

USD = currency("USD")
THRESHOLD = parse_amount("10.00", USD)
POLICY = Policy()  # reminder 3d before D, warning 1d before S, grace 0d

MAY = InvoiceEntry("INV-2026-05", datetime(2026, 5, 1, 9, tzinfo=UTC), parse_amount("10.00", USD))
JUNE = InvoiceEntry("INV-2026-06", datetime(2026, 6, 1, 9, tzinfo=UTC), parse_amount("10.00", USD))
MAY_D = overdue_instant(parse_due("2026-05-31"))
JUNE_D = overdue_instant(parse_due("2026-06-30"))
JUNE_S = suspension_instant(JUNE_D, POLICY)
PAID_AT = JUNE_S + timedelta(days=2, hours=3)
PAYMENT = PaymentEntry("stripe:pi_15", PAID_AT, parse_amount("15.00", USD))


def candidates(ledger: Ledger, now: datetime) -> list[SuspensionCandidate]:
    suspend_at = {
        MAY.number: suspension_instant(MAY_D, POLICY),
        JUNE.number: JUNE_S,
    }
    return [
        SuspensionCandidate(e.number, now >= suspend_at[e.number], e.collection_status,
                            e.remaining)
        for e in evaluate(ledger, THRESHOLD)
    ]


def test_figures_of_the_example() -> None:
    assert THRESHOLD == 1000
    assert format_amount(THRESHOLD, USD) == "10.00"
    assert MAY_D == datetime(2026, 6, 1, tzinfo=UTC)
    assert JUNE_D == JUNE_S == datetime(2026, 7, 1, tzinfo=UTC)


def test_may_is_not_collected_and_keeps_service() -> None:
    ledger = build_ledger([MAY], [])  # the card payment failed: no payment is recorded
    may = next(b for b in ledger.invoices if b.number == MAY.number)
    assert (may.amount_due, may.remaining) == (1000, 1000)
    assert format_amount(may.amount_due, USD) == "10.00"
    (evaluation,) = evaluate(ledger, THRESHOLD)
    assert evaluation.collection_status == CollectionStatus.DO_NOT_COLLECT  # 10 is not > 10
    assert evaluation.payment_status == PaymentStatus.UNPAID
    # Well past May's suspension time, before June exists: service stays active.
    assert decide_service(candidates(ledger, MAY_D + timedelta(days=10))) == ServiceDecision(
        ServiceState.ACTIVE, ()
    )


def test_june_carries_may_forward_and_is_collected() -> None:
    ledger = build_ledger([MAY, JUNE], [])
    june = next(b for b in ledger.invoices if b.number == JUNE.number)
    assert (june.previous_balance, june.amount_due, june.remaining) == (1000, 2000, 2000)
    assert format_amount(june.amount_due, USD) == "20.00"
    may_eval, june_eval = evaluate(ledger, THRESHOLD)
    assert may_eval.collection_status == CollectionStatus.DO_NOT_COLLECT
    assert june_eval.collection_status == CollectionStatus.COLLECT
    assert june_eval.payment_status == PaymentStatus.UNPAID


def test_june_reminder_overdue_notice_and_suspension() -> None:
    steps = plan_steps(JUNE_D, POLICY)
    reminder, warning, overdue, suspension = steps
    keys = ["due_reminder:3d", "suspension_warning", "overdue", "suspension"]
    assert [s.key for s in steps] == keys
    # The workflow sleeps towards each step and wakes on time.
    assert decide_steps(steps, reminder.at, reminder.at) == ((reminder, StepDecision.RUN),)
    assert decide_steps(steps[1:], warning.at, warning.at) == ((warning, StepDecision.RUN),)
    assert decide_steps(steps[2:], JUNE_D, JUNE_D) == (
        (overdue, StepDecision.RUN),
        (suspension, StepDecision.RUN),
    )
    assert suspension.kind == StepKind.SUSPENSION and suspension.at == JUNE_S

    ledger = build_ledger([MAY, JUNE], [])
    decision = decide_service(candidates(ledger, JUNE_S + timedelta(hours=1)))
    assert decision == ServiceDecision(ServiceState.SUSPENDED, (JUNE.number,))
    assert MAY.number not in decision.causes  # May is never a cause: do_not_collect


def test_paying_15_after_suspension_pays_may_and_resumes_service() -> None:
    ledger = build_ledger([MAY, JUNE], [PAYMENT])
    assert ledger.allocations == (
        Allocation(PAYMENT.key, MAY.number, 1000),
        Allocation(PAYMENT.key, JUNE.number, 500),
    )
    may_eval, june_eval = evaluate(ledger, THRESHOLD)
    assert (may_eval.remaining, may_eval.payment_status) == (0, PaymentStatus.PAID)
    assert june_eval.remaining == 500
    assert format_amount(june_eval.remaining, USD) == "5.00"
    assert june_eval.collection_status == CollectionStatus.DO_NOT_COLLECT
    assert june_eval.payment_status == PaymentStatus.PARTIALLY_PAID
    # Resumes at once: at the very instant the payment is applied, not at a later step.
    assert decide_service(candidates(ledger, PAID_AT)) == ServiceDecision(ServiceState.ACTIVE, ())
    assert (ledger.balance, ledger.credit) == (500, 0)
    assert format_amount(ledger.balance, USD) == "5.00"
