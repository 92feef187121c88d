"""Invoices, payments and balance-forward allocation (SPEC 2.2).

A customer's whole money state is one pure fold, ``build_ledger(invoices, payments)``: the
database stores its output and recomputes it whenever an input changes. Keeping it a
function of its inputs (rather than a sequence of updates) is what makes a reversal exact:
reversing a payment is folding again without it (db/ledger/fold.py).

The rules, all applied in ``build_ledger`` and nowhere else:

- Events happen in instant order: invoice ``issued_at``, payment ``received_at``. At the
  same instant invoices come first, so a payment stamped with an invoice's issue time counts
  as received *after* that invoice was issued. Invoices among themselves go by
  (issued_at, number); payments at the same instant keep the order the caller gave.
- An invoice's own open amount starts at its new charges. A payment reduces open amounts
  oldest invoice first (issued_at, then number). Money left when every invoice is paid is
  unapplied credit, kept per source payment, oldest first.
- When an invoice is issued, existing credit is applied to it at once, oldest credit first.
- previous balance = open amounts of older invoices - credit, just before the invoice is
  issued (one of the two is always 0); amount due = previous balance + new charges;
  remaining = max(0, amount due - payments received after issue)
          = open amounts of this invoice and every older one.

- A late fee (SPEC 2.9) is an entry of its invoice, at most one per invoice, charged at an
  instant at or after the invoice's issue: from that instant it raises the invoice's open
  amount (and so its remaining and the balance); payments pay it like any other open
  amount, and credit held at that instant is applied to it at once. At the same instant
  invoices come first, then fees, then payments. Waiving a fee is folding again without it.

All amounts are integer minor units of the customer's one currency.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class InvoiceEntry:
    """An invoice as issued: its number is unique per customer, new charges >= 0."""

    number: str
    issued_at: datetime
    new_charges: int

    def __post_init__(self) -> None:
        _require_aware(self.issued_at, f"invoice {self.number!r} issued_at")
        _require_int(self.new_charges, f"invoice {self.number!r} new_charges")
        if self.new_charges < 0:
            raise ValueError(f"invoice {self.number!r} has negative new charges")


@dataclass(frozen=True)
class PaymentEntry:
    """A payment as received; ``key`` identifies it (e.g. "stripe:pi_123"), amount > 0."""

    key: str
    received_at: datetime
    amount: int

    def __post_init__(self) -> None:
        _require_aware(self.received_at, f"payment {self.key!r} received_at")
        _require_int(self.amount, f"payment {self.key!r} amount")
        if self.amount <= 0:
            raise ValueError(f"payment {self.key!r} amount must be positive")


@dataclass(frozen=True)
class FeeEntry:
    """A late fee charged on an invoice (SPEC 2.9); amount > 0, at most one per invoice."""

    invoice_number: str
    charged_at: datetime
    amount: int

    def __post_init__(self) -> None:
        _require_aware(self.charged_at, f"fee of invoice {self.invoice_number!r} charged_at")
        _require_int(self.amount, f"fee of invoice {self.invoice_number!r} amount")
        if self.amount <= 0:
            raise ValueError(f"fee of invoice {self.invoice_number!r} must be positive")


@dataclass(frozen=True)
class Allocation:
    """Money of one payment applied to one invoice.

    Credit applied to a later invoice is also an Allocation of the payment it came from,
    so every unit of every payment can be traced to an invoice or to ``Ledger.credit``.
    """

    payment_key: str
    invoice_number: str
    amount: int


@dataclass(frozen=True)
class InvoiceBalance:
    """One invoice after the fold; field meanings are in the module docstring."""

    number: str
    issued_at: datetime
    new_charges: int
    previous_balance: int
    amount_due: int
    open_amount: int
    remaining: int
    received: int
    fees: int = 0  # the late fee charged on it (SPEC 2.9); part of open_amount until paid


@dataclass(frozen=True)
class Ledger:
    """A customer's money state: invoices oldest first, allocations in the order they happened."""

    invoices: tuple[InvoiceBalance, ...]
    allocations: tuple[Allocation, ...]
    credit: int
    balance: int


def build_ledger(invoices: Iterable[InvoiceEntry], payments: Iterable[PaymentEntry],
                 fees: Iterable[FeeEntry] = ()) -> Ledger:
    """Fold invoices, late fees and payments, in the order they happened, into a Ledger."""
    ordered_invoices = sorted(invoices, key=lambda inv: (inv.issued_at, inv.number))
    # sorted() is stable, so payments at the same instant keep the order they were recorded.
    ordered_payments = sorted(payments, key=lambda pay: pay.received_at)
    ordered_fees = sorted(fees, key=lambda fee: (fee.charged_at, fee.invoice_number))
    _require_unique([inv.number for inv in ordered_invoices], "invoice number")
    _require_unique([pay.key for pay in ordered_payments], "payment key")
    # Once per invoice (SPEC 2.9): a second fee is a bug upstream, never a second charge.
    _require_unique([fee.invoice_number for fee in ordered_fees], "late fee of invoice")
    issued = {inv.number: inv.issued_at for inv in ordered_invoices}
    for fee in ordered_fees:
        if fee.invoice_number not in issued:
            raise ValueError(f"late fee of unknown invoice {fee.invoice_number!r}")
        if fee.charged_at < issued[fee.invoice_number]:
            raise ValueError(f"late fee of invoice {fee.invoice_number!r} charged before "
                             "the invoice was issued")

    # One timeline: at the same instant invoices, then fees, then payments (stable).
    events: list[tuple[datetime, int, int, InvoiceEntry | FeeEntry | PaymentEntry]] = [
        *((inv.issued_at, 0, i, inv) for i, inv in enumerate(ordered_invoices)),
        *((fee.charged_at, 1, i, fee) for i, fee in enumerate(ordered_fees)),
        *((pay.received_at, 2, i, pay) for i, pay in enumerate(ordered_payments)),
    ]
    fold = _Fold()
    for _, _, _, event in sorted(events, key=lambda e: (e[0], e[1], e[2])):
        if isinstance(event, InvoiceEntry):
            fold.issue(event)
        elif isinstance(event, FeeEntry):
            fold.charge(event)
        else:
            fold.receive(event)
    return fold.result()


@dataclass
class _CreditLot:
    """Unapplied money of one payment; mutable, lives only inside a fold."""

    payment_key: str
    amount: int


class _Fold:
    """The mutable state of one build_ledger run; never escapes it."""

    def __init__(self) -> None:
        self.entries: list[InvoiceEntry] = []  # oldest first, the allocation order
        self.previous_balance: dict[str, int] = {}
        self.open: dict[str, int] = {}
        self.received: dict[str, int] = {}
        self.fees: dict[str, int] = {}
        self.credit: deque[_CreditLot] = deque()  # oldest first
        self.allocations: list[Allocation] = []

    def issue(self, entry: InvoiceEntry) -> None:
        self.previous_balance[entry.number] = sum(self.open.values()) - self._credit_total()
        self.entries.append(entry)
        self.open[entry.number] = entry.new_charges
        self.received[entry.number] = 0
        self._apply_credit(entry.number)

    def charge(self, fee: FeeEntry) -> None:
        self.open[fee.invoice_number] += fee.amount
        self.fees[fee.invoice_number] = fee.amount
        self._apply_credit(fee.invoice_number)

    def _apply_credit(self, number: str) -> None:
        while self.credit and self.open[number] > 0:
            lot = self.credit[0]
            applied = min(lot.amount, self.open[number])
            self._allocate(lot.payment_key, number, applied)
            lot.amount -= applied
            if lot.amount == 0:
                self.credit.popleft()

    def receive(self, payment: PaymentEntry) -> None:
        left = payment.amount
        for entry in self.entries:
            if left == 0:
                break
            applied = min(left, self.open[entry.number])
            if applied > 0:
                self._allocate(payment.key, entry.number, applied)
                left -= applied
        if left > 0:
            self.credit.append(_CreditLot(payment.key, left))

    def _allocate(self, payment_key: str, number: str, amount: int) -> None:
        self.allocations.append(Allocation(payment_key, number, amount))
        self.open[number] -= amount
        self.received[number] += amount

    def _credit_total(self) -> int:
        return sum(lot.amount for lot in self.credit)

    def result(self) -> Ledger:
        balances = []
        open_so_far = 0  # open amounts of this invoice and every older one
        for entry in self.entries:
            open_so_far += self.open[entry.number]
            previous = self.previous_balance[entry.number]
            balances.append(
                InvoiceBalance(
                    number=entry.number,
                    issued_at=entry.issued_at,
                    new_charges=entry.new_charges,
                    previous_balance=previous,
                    amount_due=previous + entry.new_charges,
                    open_amount=self.open[entry.number],
                    remaining=open_so_far,
                    received=self.received[entry.number],
                    fees=self.fees.get(entry.number, 0),
                )
            )
        credit = self._credit_total()
        return Ledger(
            invoices=tuple(balances),
            allocations=tuple(self.allocations),
            credit=credit,
            balance=sum(self.open.values()) - credit,
        )


def _require_aware(value: datetime, what: str) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {value!r}")
    # A naive datetime cannot be ordered against aware ones, and guessing its zone would
    # silently move a payment before or after an invoice.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")


def _require_int(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} must be an int of minor units, got {value!r}")


def _require_unique(values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)
