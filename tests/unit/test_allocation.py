"""SPEC 2.2: balance-forward allocation, as one pure fold (domain.ledger.allocation)."""

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.collection.evaluation import CollectionStatus, evaluate
from domain.ledger.allocation import (
    Allocation,
    InvoiceBalance,
    InvoiceEntry,
    Ledger,
    PaymentEntry,
    build_ledger,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def balance_of(ledger: Ledger, number: str) -> InvoiceBalance:
    return next(b for b in ledger.invoices if b.number == number)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


# ---------------------------------------------------------------------------------------
# Random histories. Instants come from a small range so that ties (an invoice and a payment
# at the same instant, two payments at once) are common; some are expressed in another
# UTC offset, which must not change their order.

SAO_PAULO_OFFSET = timezone(timedelta(hours=-3))


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    instant = T0 + timedelta(hours=draw(st.integers(min_value=0, max_value=12)))
    return instant.astimezone(SAO_PAULO_OFFSET) if draw(st.booleans()) else instant


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[InvoiceEntry], list[PaymentEntry]]:
    invoice_count = draw(st.integers(min_value=0, max_value=6))
    # Numbers in a random order, so the number tie-break is not the creation order.
    numbers = draw(st.permutations([f"INV-{i}" for i in range(invoice_count)]))
    invoices = [
        InvoiceEntry(number, draw(instants()), draw(st.integers(min_value=0, max_value=40)))
        for number in numbers
    ]
    payment_count = draw(st.integers(min_value=0, max_value=6))
    payments = [
        PaymentEntry(f"pay-{j}", draw(instants()), draw(st.integers(min_value=1, max_value=50)))
        for j in range(payment_count)
    ]
    return invoices, payments


History = tuple[list[InvoiceEntry], list[PaymentEntry]]


def age(invoice: InvoiceEntry) -> tuple[datetime, str]:
    return (invoice.issued_at, invoice.number)


def received_after_issue(payment: PaymentEntry, invoice: InvoiceEntry) -> bool:
    # At equal instants invoices come first, so such a payment counts as after the issue.
    return payment.received_at >= invoice.issued_at


# ---------------------------------------------------------------------------------------
# Properties


@given(histories())
def test_money_is_conserved(history: History) -> None:
    invoices, payments = history
    ledger = build_ledger(invoices, payments)
    paid = sum(p.amount for p in payments)
    assert paid == sum(a.amount for a in ledger.allocations) + ledger.credit
    assert ledger.credit >= 0
    for payment in payments:
        assert sum(a.amount for a in ledger.allocations if a.payment_key == payment.key) <= (
            payment.amount
        )
    assert ledger.balance == sum(i.new_charges for i in invoices) - paid
    assert ledger.balance == sum(b.open_amount for b in ledger.invoices) - ledger.credit


@given(histories())
def test_each_invoice_adds_up(history: History) -> None:
    invoices, payments = history
    ledger = build_ledger(invoices, payments)
    for balance in ledger.invoices:
        allocated = sum(a.amount for a in ledger.allocations if a.invoice_number == balance.number)
        assert balance.received == allocated
        assert balance.open_amount == balance.new_charges - balance.received
        assert 0 <= balance.open_amount <= balance.new_charges
        assert balance.amount_due == balance.previous_balance + balance.new_charges
    if ledger.credit > 0:
        # Credit only exists while nothing is open.
        assert all(b.open_amount == 0 for b in ledger.invoices)


@given(histories())
def test_invoices_oldest_first_and_previous_balance(history: History) -> None:
    invoices, payments = history
    ledger = build_ledger(invoices, payments)
    ordered = sorted(invoices, key=age)
    assert [b.number for b in ledger.invoices] == [i.number for i in ordered]
    for position, invoice in enumerate(ordered):
        # The outstanding balance just before the issue: everything billed by the older
        # invoices minus everything paid strictly before this invoice was issued.
        charged_before = sum(older.new_charges for older in ordered[:position])
        paid_before = sum(p.amount for p in payments if not received_after_issue(p, invoice))
        assert balance_of(ledger, invoice.number).previous_balance == charged_before - paid_before


@given(histories())
def test_remaining_both_definitions(history: History) -> None:
    invoices, payments = history
    ledger = build_ledger(invoices, payments)
    by_number = {i.number: i for i in invoices}
    open_so_far = 0
    for balance in ledger.invoices:
        invoice = by_number[balance.number]
        paid_after = sum(p.amount for p in payments if received_after_issue(p, invoice))
        assert balance.remaining == max(0, balance.amount_due - paid_after)
        open_so_far += balance.open_amount
        assert balance.remaining == open_so_far


def fold_order_payments(payments: list[PaymentEntry]) -> list[PaymentEntry]:
    return sorted(payments, key=lambda p: p.received_at)  # stable: ties keep given order


@given(histories())
def test_payments_go_to_the_oldest_open_invoice_first(history: History) -> None:
    invoices, payments = history
    ordered_payments = fold_order_payments(payments)
    for index, payment in enumerate(ordered_payments):
        issued = [i for i in invoices if i.issued_at <= payment.received_at]
        before = build_ledger(issued, ordered_payments[:index])
        after = build_ledger(issued, ordered_payments[: index + 1])
        # The fold only ever appends: history already written is never rewritten.
        assert after.allocations[: len(before.allocations)] == before.allocations
        new = after.allocations[len(before.allocations) :]
        assert all(a.payment_key == payment.key for a in new)
        assert sum(a.amount for a in new) + after.credit - before.credit == payment.amount
        ages = [b.number for b in after.invoices]
        targets = [ages.index(a.invoice_number) for a in new]
        assert targets == sorted(set(targets))  # each invoice once, oldest first
        for target in targets:
            # No money went to an invoice while an older one was still open.
            assert all(older.open_amount == 0 for older in after.invoices[:target])
        if after.credit > before.credit:
            assert all(b.open_amount == 0 for b in after.invoices)


@given(histories())
def test_credit_is_applied_when_an_invoice_is_issued(history: History) -> None:
    invoices, payments = history
    ordered_invoices = sorted(invoices, key=age)
    for index, invoice in enumerate(ordered_invoices):
        earlier_payments = [p for p in payments if not received_after_issue(p, invoice)]
        before = build_ledger(ordered_invoices[:index], earlier_payments)
        after = build_ledger(ordered_invoices[: index + 1], earlier_payments)
        new = after.allocations[len(before.allocations) :]
        assert after.allocations[: len(before.allocations)] == before.allocations
        assert all(a.invoice_number == invoice.number for a in new)
        applied = sum(a.amount for a in new)
        assert applied == min(before.credit, invoice.new_charges)
        assert after.credit == before.credit - applied


@given(histories(), st.randoms(use_true_random=False))
def test_input_order_of_invoices_does_not_matter(history: History, rnd: random.Random) -> None:
    invoices, payments = history
    shuffled = list(invoices)
    rnd.shuffle(shuffled)
    assert build_ledger(shuffled, payments) == build_ledger(invoices, payments)


THRESHOLDS = st.integers(min_value=0, max_value=100)


@given(histories(), THRESHOLDS, THRESHOLDS)
def test_collection_status_is_monotone_in_the_threshold(
    history: History, lower: int, higher: int
) -> None:
    lower, higher = sorted((lower, higher))
    ledger = build_ledger(*history)
    for strict, loose in zip(evaluate(ledger, higher), evaluate(ledger, lower), strict=True):
        if strict.collection_status == CollectionStatus.COLLECT:
            assert loose.collection_status == CollectionStatus.COLLECT


# ---------------------------------------------------------------------------------------
# Examples


def test_overpayment_becomes_credit_and_pays_the_next_invoice() -> None:
    may = InvoiceEntry("MAY", at(0), 1000)
    june = InvoiceEntry("JUN", at(30), 1000)
    payment = PaymentEntry("stripe:pi_1", at(10), 1500)

    ledger = build_ledger([may], [payment])
    assert ledger.credit == 500
    assert ledger.balance == -500
    assert balance_of(ledger, "MAY").remaining == 0

    ledger = build_ledger([may, june], [payment])
    assert ledger.allocations == (
        Allocation("stripe:pi_1", "MAY", 1000),
        Allocation("stripe:pi_1", "JUN", 500),
    )
    june_balance = balance_of(ledger, "JUN")
    assert june_balance.previous_balance == -500  # negative previous balance
    assert june_balance.amount_due == 500
    assert (june_balance.open_amount, june_balance.remaining, june_balance.received) == (
        500,
        500,
        500,
    )
    assert ledger.credit == 0
    assert ledger.balance == 500


def test_credit_larger_than_the_new_invoice() -> None:
    ledger = build_ledger(
        [InvoiceEntry("A", at(0), 100), InvoiceEntry("B", at(2), 300)],
        [PaymentEntry("p", at(1), 1000)],
    )
    b = balance_of(ledger, "B")
    assert (b.previous_balance, b.amount_due, b.remaining, b.open_amount) == (-900, -600, 0, 0)
    assert ledger.credit == 600
    assert ledger.balance == -600


def test_several_partial_payments() -> None:
    invoice = InvoiceEntry("INV-1", at(0), 1000)
    payments = [PaymentEntry(f"p{n}", at(n), 300) for n in (1, 2, 3)]
    ledger = build_ledger([invoice], payments)
    balance = balance_of(ledger, "INV-1")
    assert (balance.received, balance.open_amount, balance.remaining) == (900, 100, 100)
    assert [a.payment_key for a in ledger.allocations] == ["p1", "p2", "p3"]
    assert ledger.balance == 100


def test_credit_is_used_oldest_payment_first() -> None:
    ledger = build_ledger(
        [InvoiceEntry("A", at(0), 100), InvoiceEntry("B", at(5), 400)],
        [PaymentEntry("p1", at(1), 300), PaymentEntry("p2", at(2), 300)],
    )
    assert ledger.allocations == (
        Allocation("p1", "A", 100),
        Allocation("p1", "B", 200),
        Allocation("p2", "B", 200),
    )
    assert ledger.credit == 100  # what is left of p2


def test_payment_at_the_issue_instant_counts_as_after_the_issue() -> None:
    ledger = build_ledger(
        [InvoiceEntry("A", at(0), 100), InvoiceEntry("B", at(1), 100)],
        [PaymentEntry("p", at(1), 150)],
    )
    b = balance_of(ledger, "B")
    assert b.previous_balance == 100  # the payment is not in B's previous balance...
    assert b.amount_due == 200
    assert b.remaining == 50  # ...but is received after B was issued
    assert ledger.allocations == (Allocation("p", "A", 100), Allocation("p", "B", 50))


def test_same_instant_invoices_are_ordered_by_number() -> None:
    ledger = build_ledger(
        [InvoiceEntry("B", at(0), 100), InvoiceEntry("A", at(0), 100)],
        [PaymentEntry("p", at(1), 150)],
    )
    assert [b.number for b in ledger.invoices] == ["A", "B"]
    assert balance_of(ledger, "A").remaining == 0
    assert balance_of(ledger, "B").remaining == 50
    assert balance_of(ledger, "B").previous_balance == 100


def test_same_instant_payments_keep_their_recorded_order() -> None:
    invoice = InvoiceEntry("A", at(0), 100)
    second, first = PaymentEntry("second", at(1), 80), PaymentEntry("first", at(1), 80)
    ledger = build_ledger([invoice], [first, second])
    assert ledger.allocations == (Allocation("first", "A", 80), Allocation("second", "A", 20))
    ledger = build_ledger([invoice], [second, first])
    assert ledger.allocations == (Allocation("second", "A", 80), Allocation("first", "A", 20))


def test_instants_are_compared_across_offsets() -> None:
    # 23:00 at -03:00 on April 30 is 02:00 UTC on May 1: after an invoice issued at 01:00 UTC.
    late_evening = datetime(2026, 4, 30, 23, 0, tzinfo=SAO_PAULO_OFFSET)
    ledger = build_ledger(
        [InvoiceEntry("A", T0 + timedelta(hours=1), 100)],
        [PaymentEntry("p", late_evening, 100)],
    )
    assert balance_of(ledger, "A").previous_balance == 0
    assert balance_of(ledger, "A").remaining == 0


def test_reversal_takes_back_credit_already_applied_to_a_later_invoice() -> None:
    invoices = [InvoiceEntry("MAY", at(0), 1000), InvoiceEntry("JUN", at(30), 1000)]
    # A reversal folds again without the payment (db/ledger/fold.py): here p1 is reversed.
    ledger = build_ledger(invoices, [PaymentEntry("p2", at(40), 300)])
    assert ledger.allocations == (Allocation("p2", "MAY", 300),)
    assert balance_of(ledger, "JUN").amount_due == 2000
    assert balance_of(ledger, "JUN").remaining == 1700
    assert balance_of(ledger, "MAY").remaining == 700
    assert ledger.balance == 1700


def test_empty_ledger() -> None:
    assert build_ledger([], []) == Ledger(invoices=(), allocations=(), credit=0, balance=0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: build_ledger([InvoiceEntry("A", at(0), 1), InvoiceEntry("A", at(1), 2)], []),
            "duplicate invoice number 'A'",
        ),
        (
            lambda: build_ledger([], [PaymentEntry("p", at(0), 1), PaymentEntry("p", at(1), 1)]),
            "duplicate payment key 'p'",
        ),
        (lambda: InvoiceEntry("A", at(0), -1), "invoice 'A' has negative new charges"),
        (lambda: PaymentEntry("p", at(0), 0), "payment 'p' amount must be positive"),
        (lambda: PaymentEntry("p", at(0), -5), "payment 'p' amount must be positive"),
        (lambda: PaymentEntry("p", at(0), 1.5), "must be an int of minor units"),
        (lambda: PaymentEntry("p", at(0), True), "must be an int of minor units"),
        (lambda: InvoiceEntry("A", at(0), "10.00"), "must be an int of minor units"),
        (lambda: InvoiceEntry("A", datetime(2026, 5, 1), 1), "must be timezone-aware"),
        (lambda: PaymentEntry("p", datetime(2026, 5, 1), 1), "must be timezone-aware"),
    ],
)
def test_invalid_input(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
