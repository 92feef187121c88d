"""Rows of the Dunning tables as frozen dataclasses, and who-did-it information for audits.

Field names equal column names, so ``psycopg.rows.class_row`` builds them and
``columns(Row)`` lists exactly what to SELECT (a column added later does not break them).
Money fields are ``int`` minor units of the customer's class currency.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from psycopg import sql

from domain.hold import Hold

Realm = Literal["admin", "reseller", "system"]
Language = Literal["en", "es", "pt-BR"]


def columns(row_type: type, table: str | None = None) -> sql.Composed:
    """``a, b, c`` (or ``t.a, t.b, t.c``) for the fields of a row dataclass."""
    names = [f.name for f in dataclasses.fields(row_type)]
    if table is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(table, n) for n in names)


@dataclass(frozen=True)
class ClassRow:
    name: str
    currency: str
    threshold: int
    from_address: str | None
    from_name: str | None
    reply_to: str | None
    language: str
    timezone: str
    reminders_seconds: tuple[int, ...]
    grace_seconds: int
    warning_seconds: int
    payment_receipts: bool
    created_at: datetime
    updated_at: datetime
    # 006: the past-due chain and working time (SPEC 2.9, 2.10); defaults are the schema's.
    late_fee_fixed: int | None = None
    late_fee_basis_points: int | None = None
    late_fee_after_seconds: int = 0
    terminate_after_seconds: int | None = None
    working_days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    working_start_minute: int = 0
    working_end_minute: int = 1440
    holidays: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        # Arrays arrive as lists; keep the row hashable and immutable.
        object.__setattr__(self, "reminders_seconds", tuple(self.reminders_seconds))
        object.__setattr__(self, "working_days", tuple(self.working_days))
        object.__setattr__(self, "holidays", tuple(self.holidays))


@dataclass(frozen=True)
class CustomerRow:
    id: str
    name: str
    email: str
    class_name: str
    language: str | None
    service_state: str
    service_changed_at: datetime | None
    balance: int
    credit: int
    created_at: datetime
    updated_at: datetime
    # 005; None: a direct customer. Defaulted so rows built by hand stay valid.
    reseller_id: str | None = None
    # 011: the hold in force (SPEC 2.11), all None when there is none; see ``hold``.
    hold_placed_at: datetime | None = None
    hold_until: datetime | None = None
    hold_reason: str | None = None
    hold_actor: str | None = None
    hold_resume: bool | None = None

    @property
    def hold(self) -> Hold | None:
        if self.hold_placed_at is None:
            return None
        return Hold(placed_at=self.hold_placed_at, until=self.hold_until,
                    reason=self.hold_reason or "", actor=self.hold_actor or "",
                    resume=bool(self.hold_resume))


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    customer_id: str
    number: str
    issued_at: datetime
    due_text: str
    overdue_at: datetime
    suspend_at: datetime
    new_charges: int
    previous_balance: int
    amount_due: int
    open_amount: int
    remaining: int
    received: int
    collection_status: str
    payment_status: str
    created_at: datetime
    updated_at: datetime
    # Set by the invoice's workflow when its timer for S fires (db/collection/invoices.py, 002).
    suspension_reached_at: datetime | None = None
    # 007: S and why, when working time moved the suspension to suspend_at (S').
    suspension_moved_from: datetime | None = None
    suspension_moved_why: str | None = None
    # 009: the late fee charged on it and not waived (SPEC 2.9), part of open_amount.
    fees: int = 0


@dataclass(frozen=True)
class PaymentRow:
    id: int
    processor: str
    payment_id: str
    customer_id: str
    amount: int
    currency: str
    received_at: datetime
    body_hash: str
    status: str
    reversed_at: datetime | None
    source: str
    created_at: datetime


@dataclass(frozen=True)
class UnmatchedRow:
    id: int
    processor: str
    payment_id: str
    customer_ref: str
    amount: str
    currency: str
    received_at: datetime
    body: dict[str, Any]
    body_hash: str
    status: str
    assigned_customer: str | None
    assigned_at: datetime | None
    assigned_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class ServiceEventRow:
    id: int
    customer_id: str
    state: str
    causes: tuple[str, ...]
    reason: str
    occurred_at: datetime
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "causes", tuple(self.causes))


@dataclass(frozen=True)
class AuditInfo:
    """Who asks, for the audit record a mutation writes in its own transaction (SPEC 2.7)."""

    actor: str
    realm: Realm = "admin"
    reason: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One audit record to insert; ``at`` None means the database's now()."""

    actor: str
    realm: Realm
    action: str
    target: str
    on_behalf_of: str | None = None
    before: Any = None
    after: Any = None
    reason: str | None = None
    request_id: str | None = None
    at: datetime | None = None

    @classmethod
    def of(cls, info: AuditInfo, action: str, target: str, *, on_behalf_of: str | None = None,
           before: Any = None, after: Any = None) -> AuditEntry:
        return cls(actor=info.actor, realm=info.realm, action=action, target=target,
                   on_behalf_of=on_behalf_of, before=before, after=after,
                   reason=info.reason, request_id=info.request_id)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    realm: str
    on_behalf_of: str | None
    action: str
    target: str
    before: Any
    after: Any
    reason: str | None
    request_id: str | None
