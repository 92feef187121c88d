"""SPEC 2.9's late fee in the ledger fold: a fee is an entry of its invoice that raises its
open amount from the instant it is charged; payments pay it oldest first; waiving it is
folding again without it; one per invoice."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.collection.evaluation import evaluate
from domain.ledger.allocation import FeeEntry, InvoiceEntry, Ledger, PaymentEntry, build_ledger
from tests.unit.test_allocation import instants

T0 = datetime(2026, 5, 1, tzinfo=UTC)
History = tuple[list[InvoiceEntry], list[PaymentEntry], list[FeeEntry]]


@st.composite
def histories_with_fees(draw: st.DrawFn) -> History:
    count = draw(st.integers(min_value=0, max_value=5))
    numbers = draw(st.permutations([f"INV-{i}" for i in range(count)]))
    invoices = [InvoiceEntry(n, draw(instants()), draw(st.integers(0, 40))) for n in numbers]
    payments = [PaymentEntry(f"pay-{j}", draw(instants()), draw(st.integers(1, 50)))
                for j in range(draw(st.integers(0, 5)))]
    fees = []
    for invoice in invoices:
        if draw(st.booleans()):
            later = invoice.issued_at + timedelta(hours=draw(st.integers(0, 12)))
            fees.append(FeeEntry(invoice.number, later, draw(st.integers(1, 30))))
    return invoices, payments, fees


def by_number(ledger: Ledger) -> dict[str, object]:
    return {b.number: b for b in ledger.invoices}


@given(histories_with_fees())
def test_money_is_conserved_fees_included(history: History) -> None:
    invoices, payments, fees = history
    ledger = build_ledger(invoices, payments, fees)
    charged = sum(i.new_charges for i in invoices) + sum(f.amount for f in fees)
    paid = sum(p.amount for p in payments)
    assert ledger.balance == charged - paid
    assert sum(a.amount for a in ledger.allocations) + ledger.credit == paid
    assert sum(b.open_amount for b in ledger.invoices) == charged - (paid - ledger.credit)
    assert sum(b.fees for b in ledger.invoices) == sum(f.amount for f in fees)
    for balance in ledger.invoices:
        assert 0 <= balance.open_amount <= balance.new_charges + balance.fees


@given(histories_with_fees(), st.data())
def test_charging_then_waiving_equals_never_charging(history: History, data: st.DataObject
                                                     ) -> None:
    invoices, payments, fees = history
    never = build_ledger(invoices, payments)
    # Charge every fee, then waive them one by one in any order: each waiver is a fold
    # without that fee, and once all are waived the ledger is exactly the one never charged.
    remaining_fees = list(fees)
    build_ledger(invoices, payments, remaining_fees)
    while remaining_fees:
        remaining_fees.pop(data.draw(st.integers(0, len(remaining_fees) - 1)))
        build_ledger(invoices, payments, remaining_fees)
    assert build_ledger(invoices, payments, remaining_fees) == never
    assert build_ledger(invoices, payments, ()) == never


@given(histories_with_fees())
def test_a_fee_changes_nothing_before_it_and_never_lowers_a_remaining(history: History
                                                                      ) -> None:
    invoices, payments, fees = history
    without = build_ledger(invoices, payments)
    charged = build_ledger(invoices, payments, fees)
    for number, balance in by_number(charged).items():
        assert balance.remaining >= by_number(without)[number].remaining  # type: ignore[attr-defined]
    if fees:
        first = min(f.charged_at for f in fees)
        for invoice in invoices:
            if invoice.issued_at <= first:  # issued before any fee (ties: invoices first)
                assert by_number(charged)[invoice.number].previous_balance == by_number(  # type: ignore[attr-defined]
                    without)[invoice.number].previous_balance  # type: ignore[attr-defined]


@given(histories_with_fees())
def test_remaining_is_the_open_amounts_of_this_invoice_and_every_older_one(
        history: History) -> None:
    ledger = build_ledger(*history)
    open_so_far = 0
    for balance in ledger.invoices:
        open_so_far += balance.open_amount
        assert balance.remaining == open_so_far


def test_a_fee_is_charged_once_per_invoice() -> None:
    invoice = InvoiceEntry("INV-06", T0, 2000)
    fee = FeeEntry("INV-06", T0 + timedelta(days=9), 40)
    with pytest.raises(ValueError, match="duplicate late fee of invoice 'INV-06'"):
        build_ledger([invoice], [], [fee, fee])
    with pytest.raises(ValueError, match="late fee of unknown invoice 'INV-07'"):
        build_ledger([invoice], [], [FeeEntry("INV-07", T0, 40)])
    with pytest.raises(ValueError, match="charged before the invoice was issued"):
        build_ledger([invoice], [], [FeeEntry("INV-06", T0 - timedelta(seconds=1), 40)])
    with pytest.raises(ValueError, match="must be positive"):
        FeeEntry("INV-06", T0, 0)


def test_the_issues_worked_example_fee_and_payment() -> None:
    """20.00 due, a 2% fee (0.40) five days after D: remaining 20.40, collect over 10.00;
    a payment of 10.40 leaves 10.00, do_not_collect; without the fee the ledger is the one
    never charged."""
    june = InvoiceEntry("INV-06", T0, 2000)
    fee = FeeEntry("INV-06", T0 + timedelta(days=9), 40)
    charged = build_ledger([june], [], [fee])
    assert (charged.invoices[0].remaining, charged.balance) == (2040, 2040)
    assert evaluate(charged, 1000)[0].collection_status == "collect"
    paid = build_ledger([june], [PaymentEntry("p", T0 + timedelta(days=10), 1040)], [fee])
    assert (paid.invoices[0].remaining, paid.invoices[0].received) == (1000, 1040)
    assert evaluate(paid, 1000)[0].collection_status == "do_not_collect"
    assert build_ledger([june], [], []) == build_ledger([june], [])


def test_a_fee_is_paid_oldest_first_with_its_invoice() -> None:
    may = InvoiceEntry("MAY", T0, 1000)
    june = InvoiceEntry("JUNE", T0 + timedelta(days=30), 1000)
    may_fee = FeeEntry("MAY", T0 + timedelta(days=40), 100)
    ledger = build_ledger([may, june], [PaymentEntry("p", T0 + timedelta(days=41), 1100)],
                          [may_fee])
    invoices = by_number(ledger)
    assert invoices["MAY"].open_amount == 0  # type: ignore[attr-defined]
    assert invoices["JUNE"].open_amount == 1000  # type: ignore[attr-defined]
    # A fee and a payment at the same instant: the payment pays the fee too.
    same = build_ledger([may], [PaymentEntry("p", T0 + timedelta(days=40), 1100)], [may_fee])
    assert (same.invoices[0].open_amount, same.credit) == (0, 0)


def test_credit_held_when_a_fee_is_charged_pays_it_at_once() -> None:
    may = InvoiceEntry("MAY", T0, 1000)
    ledger = build_ledger([may], [PaymentEntry("p", T0 + timedelta(days=1), 1500)],
                          [FeeEntry("MAY", T0 + timedelta(days=2), 100)])
    assert (ledger.invoices[0].open_amount, ledger.credit, ledger.balance) == (0, 400, -400)
