"""Customer classes: currency, threshold, sender, language, time zone and dunning policy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.audit import class_target, record_audit
from db.errors import ClassCurrencyLocked, InvalidValue
from db.rows import AuditEntry, AuditInfo, ClassRow, columns
from domain.collection.policy import ClassPolicy, LateFee
from domain.collection.schedule import Policy
from domain.collection.working_time import WorkingTime
from domain.money import currency as lookup_currency


@dataclass(frozen=True)
class ClassSpec:
    """Every setting of a class; defaults equal the schema's. Money in minor units.

    To change some settings of an existing class: ``replace(class_spec(row), threshold=...)``.
    """

    name: str
    currency: str
    threshold: int = 0
    from_address: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    language: str = "en"
    timezone: str = "UTC"
    reminders_seconds: tuple[int, ...] = (259200,)
    grace_seconds: int = 0
    warning_seconds: int = 86400
    payment_receipts: bool = True
    late_fee_fixed: int | None = None
    late_fee_basis_points: int | None = None
    late_fee_after_seconds: int = 0
    terminate_after_seconds: int | None = None
    working_days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    working_start_minute: int = 0
    working_end_minute: int = 1440
    holidays: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        # Sets, stored sorted: the same policy given in another order is "unchanged".
        object.__setattr__(self, "working_days", tuple(sorted(set(self.working_days))))
        object.__setattr__(self, "holidays", tuple(sorted(set(self.holidays))))


_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ClassSpec))


@dataclass(frozen=True)
class UpsertClassResult:
    status: Literal["created", "updated", "unchanged"]
    before: ClassRow | None
    after: ClassRow


def class_spec(row: ClassRow) -> ClassSpec:
    """The settings of a stored class, to be changed with ``dataclasses.replace``."""
    return ClassSpec(**{name: getattr(row, name) for name in _SPEC_FIELDS})


async def get_class(conn: AsyncConnection, name: str) -> ClassRow | None:
    query = sql.SQL("SELECT {} FROM customer_classes WHERE name = %s").format(columns(ClassRow))
    async with conn.cursor(row_factory=class_row(ClassRow)) as cur:
        await cur.execute(query, (name,))
        return await cur.fetchone()


async def upsert_class(
    conn: AsyncConnection, spec: ClassSpec, audit: AuditInfo
) -> UpsertClassResult:
    """Create or replace a class and audit it, in one transaction.

    Raises MoneyError for an unknown currency, InvalidValue for an unknown time zone,
    ClassCurrencyLocked when the currency would change under existing invoices, payments
    or subscriptions.
    """
    _validate(spec)
    async with conn.transaction():
        before = await _get_for_update(conn, spec.name)
        if before is not None and class_spec(before) == spec:
            return UpsertClassResult("unchanged", before, before)
        if before is not None and before.currency != spec.currency and await _has_money(
            conn, spec.name
        ):
            raise ClassCurrencyLocked(spec.name, before.currency, spec.currency)
        # Tuples would be adapted as records; the array columns take lists.
        values = [list(v) if isinstance(v, tuple) else v
                  for v in (getattr(spec, name) for name in _SPEC_FIELDS)]
        query = sql.SQL(
            "INSERT INTO customer_classes ({cols}) VALUES ({params})"
            " ON CONFLICT (name) DO UPDATE SET {updates}"
            " RETURNING {ret}"
        ).format(
            cols=sql.SQL(", ").join(map(sql.Identifier, _SPEC_FIELDS)),
            params=sql.SQL(", ").join(sql.Placeholder() * len(_SPEC_FIELDS)),
            updates=sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in _SPEC_FIELDS[1:]
            ),
            ret=columns(ClassRow),
        )
        async with conn.cursor(row_factory=class_row(ClassRow)) as cur:
            await cur.execute(query, values)
            after = await cur.fetchone()
        assert after is not None
        action = "class.create" if before is None else "class.update"
        await record_audit(conn, AuditEntry.of(audit, action, class_target(spec.name),
                                               before=before, after=after))
        return UpsertClassResult("created" if before is None else "updated", before, after)


def _validate(spec: ClassSpec) -> None:
    if not spec.name.strip():
        raise InvalidValue("class name must not be empty")
    lookup_currency(spec.currency)  # MoneyError with a clear message for unknown codes
    if spec.threshold < 0:
        raise InvalidValue("threshold must be >= 0")
    if spec.language not in ("en", "es", "pt-BR"):
        raise InvalidValue(f"language must be en, es or pt-BR, not '{spec.language}'")
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"unknown time zone '{spec.timezone}'") from None
    if any(r < 0 for r in spec.reminders_seconds) or spec.grace_seconds < 0 \
            or spec.warning_seconds < 0:
        raise InvalidValue("reminders, grace and warning must not be negative")
    try:
        policy_of(spec)  # the domain's invariants of a policy, stated once there
    except ValueError as err:
        raise InvalidValue(str(err)) from None


def policy_of(klass: ClassRow | ClassSpec) -> ClassPolicy:
    """The class's whole policy as the domain reads it (SPEC 2.5, 2.9, 2.10)."""
    fee = None
    if klass.late_fee_fixed is not None or klass.late_fee_basis_points is not None:
        fee = LateFee(fixed=klass.late_fee_fixed, basis_points=klass.late_fee_basis_points)
    return ClassPolicy(
        schedule=Policy(
            reminders=tuple(timedelta(seconds=s) for s in klass.reminders_seconds),
            grace=timedelta(seconds=klass.grace_seconds),
            warning=timedelta(seconds=klass.warning_seconds),
        ),
        timezone=klass.timezone,
        working=WorkingTime(days=frozenset(klass.working_days),
                            start_minute=klass.working_start_minute,
                            end_minute=klass.working_end_minute,
                            holidays=frozenset(klass.holidays)),
        late_fee=fee,
        late_fee_after=timedelta(seconds=klass.late_fee_after_seconds),
        terminate_after=(None if klass.terminate_after_seconds is None
                         else timedelta(seconds=klass.terminate_after_seconds)),
    )


async def _get_for_update(conn: AsyncConnection, name: str) -> ClassRow | None:
    query = sql.SQL("SELECT {} FROM customer_classes WHERE name = %s FOR UPDATE").format(
        columns(ClassRow)
    )
    async with conn.cursor(row_factory=class_row(ClassRow)) as cur:
        await cur.execute(query, (name,))
        return await cur.fetchone()


async def _has_money(conn: AsyncConnection, name: str) -> bool:
    cur = await conn.execute(
        """
        SELECT EXISTS (SELECT 1 FROM customers c
                        WHERE c.class_name = %(name)s
                          AND (EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id)
                               OR EXISTS (SELECT 1 FROM payments p WHERE p.customer_id = c.id)
                               OR EXISTS (SELECT 1 FROM subscriptions s
                                          WHERE s.customer_id = c.id)))
        """,
        {"name": name},
    )
    row = await cur.fetchone()
    return bool(row and row[0])
