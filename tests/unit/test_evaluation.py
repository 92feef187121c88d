"""SPEC 2.3 (collection and payment status) and 2.4 (service state)."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.collection.evaluation import (
    CollectionStatus,
    InvoiceEvaluation,
    PaymentStatus,
    ServiceDecision,
    ServiceState,
    SuspensionCandidate,
    collection_status,
    decide_service,
    evaluate,
    payment_status,
)
from domain.ledger.allocation import (
    InvoiceBalance,
    InvoiceEntry,
    Ledger,
    PaymentEntry,
    build_ledger,
)

COLLECT, DO_NOT_COLLECT = CollectionStatus.COLLECT, CollectionStatus.DO_NOT_COLLECT
T0 = datetime(2026, 7, 1, tzinfo=UTC)


def balance_of(ledger: Ledger, number: str) -> InvoiceBalance:
    return next(b for b in ledger.invoices if b.number == number)


@pytest.mark.parametrize(
    ("remaining", "threshold", "status"),
    [
        (1001, 1000, COLLECT),
        (1000, 1000, DO_NOT_COLLECT),  # equal to the threshold is do_not_collect
        (999, 1000, DO_NOT_COLLECT),
        (0, 1000, DO_NOT_COLLECT),
        (1, 0, COLLECT),  # threshold 0 collects any unpaid amount
        (0, 0, DO_NOT_COLLECT),
    ],
)
def test_collection_status(remaining: int, threshold: int, status: CollectionStatus) -> None:
    assert collection_status(remaining, threshold) == status


def test_collection_status_refuses_negative_inputs() -> None:
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        collection_status(10, -1)
    with pytest.raises(ValueError, match="remaining amount cannot be negative"):
        collection_status(-1, 0)


def test_status_values_are_the_wire_strings() -> None:
    assert [s.value for s in CollectionStatus] == ["collect", "do_not_collect"]
    assert [s.value for s in PaymentStatus] == ["unpaid", "partially_paid", "paid"]
    assert [s.value for s in ServiceState] == ["active", "suspended", "terminated"]
    assert CollectionStatus.COLLECT == "collect"


def balance(remaining: int, received: int) -> InvoiceBalance:
    return InvoiceBalance(
        number="A",
        issued_at=T0,
        new_charges=1000,
        previous_balance=0,
        amount_due=1000,
        open_amount=remaining,
        remaining=remaining,
        received=received,
    )


@pytest.mark.parametrize(
    ("remaining", "received", "status"),
    [
        (1000, 0, PaymentStatus.UNPAID),
        (400, 600, PaymentStatus.PARTIALLY_PAID),
        (0, 1000, PaymentStatus.PAID),
        (0, 0, PaymentStatus.PAID),  # nothing to pay (zero charges, or paid by credit)
    ],
)
def test_payment_status(remaining: int, received: int, status: PaymentStatus) -> None:
    assert payment_status(balance(remaining, received)) == status


def test_invoice_with_nothing_of_its_own_paid_but_older_debt_is_unpaid() -> None:
    ledger = build_ledger(
        [InvoiceEntry("A", T0, 1000), InvoiceEntry("B", T0 + timedelta(days=30), 1000)],
        [PaymentEntry("p", T0 + timedelta(days=31), 400)],
    )
    # The payment went to A (oldest first); B has received nothing and owes A's rest too.
    assert payment_status(balance_of(ledger, "A")) == PaymentStatus.PARTIALLY_PAID
    assert payment_status(balance_of(ledger, "B")) == PaymentStatus.UNPAID


def test_evaluate_every_invoice_oldest_first() -> None:
    ledger = build_ledger(
        [InvoiceEntry("B", T0 + timedelta(days=30), 500), InvoiceEntry("A", T0, 1000)],
        [PaymentEntry("p", T0 + timedelta(days=1), 1000)],
    )
    assert evaluate(ledger, threshold=499) == (
        InvoiceEvaluation("A", 1000, 0, DO_NOT_COLLECT, PaymentStatus.PAID),
        InvoiceEvaluation("B", 500, 500, COLLECT, PaymentStatus.UNPAID),
    )
    assert evaluate(ledger, threshold=500)[1].collection_status == DO_NOT_COLLECT


def candidate(
    number: str, suspend_at: datetime, status: CollectionStatus = COLLECT, remaining: int = 500
) -> tuple[str, datetime, CollectionStatus, int]:
    return (number, suspend_at, status, remaining)


def decide_at(specs: list[tuple[str, datetime, CollectionStatus, int]],
              now: datetime) -> ServiceDecision:
    """The decision when every invoice's workflow has seen the same clock reach ``now``.

    S itself counts as past."""
    return decide_service([SuspensionCandidate(n, now >= s, st, r)
                           for n, s, st, r in specs])


def test_past_suspension_time_and_collect_suspends() -> None:
    decision = decide_at([candidate("JUN", T0)], T0 + timedelta(hours=1))
    assert decision == ServiceDecision(ServiceState.SUSPENDED, ("JUN",))


def test_at_exactly_the_suspension_time_suspends() -> None:
    assert decide_at([candidate("JUN", T0)], T0).state == ServiceState.SUSPENDED


def test_before_the_suspension_time_is_active() -> None:
    decision = decide_at([candidate("JUN", T0)], T0 - timedelta(seconds=1))
    assert decision == ServiceDecision(ServiceState.ACTIVE, ())


def test_do_not_collect_never_suspends() -> None:
    decision = decide_at([candidate("MAY", T0, DO_NOT_COLLECT)], T0 + timedelta(days=90))
    assert decision == ServiceDecision(ServiceState.ACTIVE, ())


def test_nothing_remaining_never_suspends() -> None:
    decision = decide_at([candidate("MAY", T0, remaining=0)], T0 + timedelta(days=1))
    assert decision.state == ServiceState.ACTIVE


def test_causes_are_only_the_collect_invoices_past_their_time_in_given_order() -> None:
    now = T0 + timedelta(days=10)
    decision = decide_at(
        [
            candidate("MAR", T0 - timedelta(days=60)),
            candidate("APR", T0 - timedelta(days=30), DO_NOT_COLLECT),
            candidate("MAY", T0),
            candidate("JUN", T0 + timedelta(days=30)),  # not yet
        ],
        now,
    )
    assert decision == ServiceDecision(ServiceState.SUSPENDED, ("MAR", "MAY"))


def test_statuses_read_back_as_plain_strings_still_count() -> None:
    plain = SuspensionCandidate("JUN", True, "collect", 500)  # type: ignore[arg-type]
    assert decide_service([plain]).causes == ("JUN",)


def test_no_invoices_is_active() -> None:
    assert decide_service([]) == ServiceDecision(ServiceState.ACTIVE, ())
