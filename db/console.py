"""Reads of the finance console (SPEC 4.6): search, a customer's timeline, and the lists
(unmatched payments, notifications by status, audit log), each one page at a time.

Every list is a keyset page: ``limit + 1`` rows are read after the previous page's last
key, so a page costs the same on page 1 and page 500, and each query is served by an
index of migration 006 (or an older one). The scope filters (``reseller_id``,
``customer_id``) are the caller's realm (``api.scopes.list_filter``): None means no filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from db.rows import AuditRecord, InvoiceRow, UnmatchedRow, columns

# Every list reads at most this many rows per page (plus one to see if more follow).
MAX_PAGE = 200


def like_prefix(text: str) -> str:
    """``text`` as a LIKE prefix pattern, lower case, its wildcards taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    return limit + 1


# ------------------------------------------------------------------------------- search
@dataclass(frozen=True)
class FoundCustomer:
    id: str
    name: str
    email: str
    class_name: str
    currency: str
    service_state: str
    balance: int
    reseller_id: str | None
    matched: str  # what matched: id, name, email or "invoice NUMBER"


async def search_customers(conn: AsyncConnection, text: str, *, reseller_id: str | None,
                           customer_id: str | None, after: str | None,
                           limit: int) -> list[FoundCustomer]:
    """Customers whose id, name or email starts with ``text`` (any case), or with an
    invoice whose number does; all customers when ``text`` is empty. In id order, after
    the id ``after``; ``limit + 1`` rows at most.

    Each branch is an index range scan (customers_lower_*_idx, invoices_lower_number_idx)
    bounded by LIMIT, so the cost does not grow with the number of customers."""
    query, params = search_query(text, reseller_id=reseller_id, customer_id=customer_id,
                                 after=after, limit=limit)
    async with conn.cursor(row_factory=class_row(FoundCustomer)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def search_query(text: str, *, reseller_id: str | None, customer_id: str | None,
                 after: str | None, limit: int) -> tuple[sql.Composed, dict[str, Any]]:
    """The SQL of ``search_customers`` and its parameters (tests EXPLAIN it)."""
    params: dict[str, Any] = {"reseller": reseller_id, "customer": customer_id,
                              "after": after, "rows": _limit(limit)}
    scope = sql.SQL(
        "(%(reseller)s::text IS NULL OR c.reseller_id = %(reseller)s)"
        " AND (%(customer)s::text IS NULL OR c.id = %(customer)s)"
        " AND (%(after)s::text IS NULL OR c.id > %(after)s)")
    # Each branch reads the columns shown, so the result needs no second visit to
    # customers (a join back would make the planner scan them for a wide prefix).
    shown = sql.SQL("c.id, c.name, c.email, c.class_name, c.service_state, c.balance,"
                    " c.reseller_id")
    if not text.strip():
        branches = [sql.SQL("SELECT {shown}, 'id' AS matched FROM customers c WHERE {scope}"
                            " ORDER BY c.id LIMIT %(rows)s").format(shown=shown, scope=scope)]
    else:
        params["pattern"] = like_prefix(text.strip())
        branches = [
            sql.SQL("SELECT {shown}, {label} AS matched FROM customers c WHERE lower(c.{col})"
                    " LIKE %(pattern)s AND {scope} ORDER BY c.id LIMIT %(rows)s").format(
                shown=shown, label=sql.Literal(col), col=sql.Identifier(col), scope=scope)
            for col in ("id", "name", "email")
        ]
        branches.append(sql.SQL(
            "SELECT {shown}, 'invoice ' || min(i.number) AS matched FROM invoices i"
            " JOIN customers c ON c.id = i.customer_id"
            " WHERE lower(i.number) LIKE %(pattern)s AND {scope}"
            " GROUP BY c.id ORDER BY c.id LIMIT %(rows)s").format(shown=shown, scope=scope))
    query = sql.SQL(
        """
        WITH hits AS ({branches}),
             firsts AS (SELECT DISTINCT ON (id) * FROM hits ORDER BY id, matched
                        LIMIT %(rows)s)
        SELECT f.id, f.name, f.email, f.class_name, k.currency, f.service_state, f.balance,
               f.reseller_id, f.matched
          FROM firsts f
          JOIN customer_classes k ON k.name = f.class_name
         ORDER BY f.id
        """
    ).format(branches=sql.SQL(" UNION ALL ").join(
        sql.SQL("({})").format(b) for b in branches))
    return query, params


# ----------------------------------------------------------------------------- timeline
@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str  # invoice, payment, reversal, service, mail, fee, fee_waiver
    title: str  # invoice number (also of a fee), payment id, new service state, mail kind
    amount: int | None
    status: str | None  # a mail's or payment's status, an invoice's collection status
    detail: str | None  # why / causes / last error / processor
    key: str  # an id unique within the kind (a mail's key, for a resend)


TimelineKey = tuple[datetime, str, str]  # (at, kind, key): a timeline event's place


async def customer_timeline(conn: AsyncConnection, customer_id: str, *,
                            before: TimelineKey | None, limit: int) -> list[TimelineEvent]:
    """The customer's invoices, payments, reversals, service events, mails and late fees
    (charged, and waived: SPEC 2.9), newest first (at, kind, key descending), strictly
    before the event ``before``; ``limit + 1`` rows at most. Each source is read by its
    (customer, time) index (fees: by customer, see below) and bounded by the same limit
    before the merge; events at the same instant are told apart by kind and key, so
    no page boundary loses one."""
    rows = _limit(limit)
    at, kind, key = before if before else (None, None, None)
    # Per source: before the cursor's instant, or at it and before it by (kind, key).
    # Every fragment below is a constant of this function; values go in as parameters.
    after_cursor = sql.SQL(
        "(%(at)s::timestamptz IS NULL OR {t} < %(at)s"
        " OR ({t} = %(at)s AND ({kind}, {key}) < (%(kind)s, %(key)s)))")

    def source(select: str, where: str, t: str, kind_sql: str, key_sql: str) -> sql.Composed:
        time_col, key_col = sql.SQL(t), sql.SQL(key_sql)  # type: ignore[arg-type]
        return sql.SQL("(SELECT {select} {where} AND {cond}"
                       " ORDER BY {t} DESC, {key} DESC LIMIT %(rows)s)").format(
            select=sql.SQL(select), where=sql.SQL(where), t=time_col,  # type: ignore[arg-type]
            key=key_col, cond=after_cursor.format(t=time_col, kind=sql.SQL(kind_sql),  # type: ignore[arg-type]
                                                  key=key_col))

    parts = [
        source("issued_at AS at, 'invoice' AS kind, number AS title, new_charges AS amount,"
               " collection_status AS status, payment_status AS detail, number AS key",
               "FROM invoices WHERE customer_id = %(c)s", "issued_at", "'invoice'", "number"),
        source("received_at, 'payment', payment_id, amount, status, processor,"
               " processor || '/' || payment_id",
               "FROM payments WHERE customer_id = %(c)s", "received_at", "'payment'",
               "(processor || '/' || payment_id)"),
        source("reversed_at, 'reversal', payment_id, amount, 'reversed', processor,"
               " processor || '/' || payment_id",
               "FROM payments WHERE customer_id = %(c)s AND status = 'reversed'",
               "reversed_at", "'reversal'", "(processor || '/' || payment_id)"),
        source("occurred_at, 'service', state, NULL::bigint, state,"
               " reason || CASE WHEN cardinality(causes) > 0"
               " THEN ' (' || array_to_string(causes, ', ') || ')' ELSE '' END,"
               " lpad(id::text, 20, '0')",
               "FROM service_events WHERE customer_id = %(c)s", "occurred_at", "'service'",
               "lpad(id::text, 20, '0')"),
        source("created_at, 'mail', kind, NULL::bigint, status,"
               " coalesce(last_error, invoice_number), key",
               "FROM notifications WHERE customer_id = %(c)s", "created_at", "'mail'", "key"),
        # Late fees have no (customer, time) index, only late_fees_customer_idx: at most one
        # fee per invoice, so a customer has no more fees than invoices and reading all of
        # its fees before the sort stays small; no new index (and migration) is needed.
        # A fee is keyed by its invoice's number (once per invoice, migration 009).
        source("f.charged_at, 'fee', i.number, f.amount, 'charged', NULL::text, i.number",
               "FROM late_fees f JOIN invoices i ON i.id = f.invoice_id"
               " WHERE f.customer_id = %(c)s", "f.charged_at", "'fee'", "i.number"),
        source("f.waived_at, 'fee_waiver', i.number, f.amount, 'waived', NULL::text,"
               " i.number",
               "FROM late_fees f JOIN invoices i ON i.id = f.invoice_id"
               " WHERE f.customer_id = %(c)s AND f.waived_at IS NOT NULL", "f.waived_at",
               "'fee_waiver'", "i.number"),
    ]
    query = sql.SQL(
        "WITH events AS ({parts})"
        " SELECT at, kind, title, amount, status, detail, key FROM events"
        " ORDER BY at DESC, kind DESC, key DESC LIMIT %(rows)s").format(
        parts=sql.SQL(" UNION ALL ").join(parts))
    async with conn.cursor(row_factory=class_row(TimelineEvent)) as cur:
        await cur.execute(query, {"c": customer_id, "at": at, "kind": kind, "key": key,
                                  "rows": rows})
        return await cur.fetchall()


async def invoices_page(conn: AsyncConnection, customer_id: str, *,
                        before: tuple[datetime, str] | None,
                        limit: int) -> list[InvoiceRow]:
    """The customer's invoices newest first (issue time, then number: the fold's order,
    backwards, on invoices_customer_issued_idx), before ``before``; ``limit + 1`` rows."""
    at, number = before if before else (None, None)
    query = sql.SQL(
        "SELECT {} FROM invoices WHERE customer_id = %(c)s"
        " AND (%(at)s::timestamptz IS NULL OR (issued_at, number) < (%(at)s, %(number)s))"
        " ORDER BY issued_at DESC, number DESC LIMIT %(rows)s").format(columns(InvoiceRow))
    async with conn.cursor(row_factory=class_row(InvoiceRow)) as cur:
        await cur.execute(query, {"c": customer_id, "at": at, "number": number,
                                  "rows": _limit(limit)})
        return await cur.fetchall()


@dataclass(frozen=True)
class InvoiceFee:
    """An invoice's late fee (SPEC 2.9), waived or not (``invoices.fees`` counts only the
    unwaived one; the page shows both)."""

    invoice_id: int
    amount: int
    charged_at: datetime
    waived_at: datetime | None

    @property
    def waived(self) -> bool:
        return self.waived_at is not None


async def invoice_fees(conn: AsyncConnection, invoice_ids: list[int]) -> dict[int, InvoiceFee]:
    """The late fees of these invoices by invoice id (none: not charged). One lookup per
    invoice on late_fees_once_per_invoice's unique index."""
    if not invoice_ids:
        return {}
    async with conn.cursor(row_factory=class_row(InvoiceFee)) as cur:
        await cur.execute("SELECT invoice_id, amount, charged_at, waived_at FROM late_fees"
                          " WHERE invoice_id = ANY(%s)", (invoice_ids,))
        return {fee.invoice_id: fee for fee in await cur.fetchall()}


# ---------------------------------------------------------------------------- unmatched
async def unmatched_page(conn: AsyncConnection, *, status: str | None, after: int | None,
                         limit: int) -> list[UnmatchedRow]:
    """Unmatched payments oldest first (``status`` None: assigned ones too)."""
    query = sql.SQL(
        "SELECT {} FROM unmatched_payments"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        "   AND (%(after)s::bigint IS NULL OR id > %(after)s)"
        " ORDER BY id LIMIT %(rows)s").format(columns(UnmatchedRow))
    async with conn.cursor(row_factory=class_row(UnmatchedRow)) as cur:
        await cur.execute(query, {"status": status, "after": after, "rows": _limit(limit)})
        return await cur.fetchall()


# ------------------------------------------------------------------------ notifications
@dataclass(frozen=True)
class NotificationLine:
    key: str
    kind: str
    customer_id: str
    customer_name: str
    invoice_number: str | None
    to_address: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    resend_of: str | None


async def notifications_page(conn: AsyncConnection, *, status: str,
                             reseller_id: str | None, customer_id: str | None,
                             after: tuple[datetime, str] | None,
                             limit: int) -> list[NotificationLine]:
    """Notifications of one status, newest first (notifications_status_created_idx),
    after the (created_at, key) of the previous page's last line."""
    after_at, after_key = after if after else (None, None)
    query = """
        SELECT n.key, n.kind, n.customer_id, c.name AS customer_name, n.invoice_number,
               n.to_address, n.status, n.attempts, n.last_error, n.created_at, n.sent_at,
               n.resend_of
          FROM notifications n JOIN customers c ON c.id = n.customer_id
         WHERE n.status = %(status)s
           AND (%(reseller)s::text IS NULL OR c.reseller_id = %(reseller)s)
           AND (%(customer)s::text IS NULL OR n.customer_id = %(customer)s)
           AND (%(after_at)s::timestamptz IS NULL
                OR (n.created_at, n.key) < (%(after_at)s, %(after_key)s)
                   AND n.created_at <= %(after_at)s)
         ORDER BY n.created_at DESC, n.key DESC
         LIMIT %(rows)s
    """
    async with conn.cursor(row_factory=class_row(NotificationLine)) as cur:
        await cur.execute(query, {"status": status, "reseller": reseller_id,
                                  "customer": customer_id, "after_at": after_at,
                                  "after_key": after_key, "rows": _limit(limit)})
        return await cur.fetchall()


async def notification_counts(conn: AsyncConnection, *, reseller_id: str | None,
                              customer_id: str | None,
                              statuses: tuple[str, ...]) -> dict[str, int]:
    """How many notifications have each of ``statuses`` (the unsent ones: a partial index
    keeps these counts cheap; ``sent`` is never counted)."""
    cur = await conn.execute(
        """
        SELECT n.status, count(*) FROM notifications n JOIN customers c ON c.id = n.customer_id
         WHERE n.status = ANY(%(statuses)s) AND n.status <> 'sent'
           AND (%(reseller)s::text IS NULL OR c.reseller_id = %(reseller)s)
           AND (%(customer)s::text IS NULL OR n.customer_id = %(customer)s)
         GROUP BY n.status
        """, {"statuses": list(statuses), "reseller": reseller_id, "customer": customer_id})
    return {str(status): int(count) for status, count in await cur.fetchall()}


async def notification_customer(conn: AsyncConnection, key: str) -> str | None:
    """The customer a notification was sent to (to scope a resend), or None."""
    cur = await conn.execute("SELECT customer_id FROM notifications WHERE key = %s", (key,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


# -------------------------------------------------------------------------------- audit
@dataclass(frozen=True)
class AuditFilter:
    customer_id: str | None = None  # on behalf of, or about (target customer:ID)
    actor: str | None = None
    action: str | None = None
    realm: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def audit_page(conn: AsyncConnection, where: AuditFilter, *, before: int | None,
                     limit: int) -> list[AuditRecord]:
    """Audit records newest first (by id), before the id ``before``."""
    query = sql.SQL(
        """
        SELECT {cols} FROM audit_log
         WHERE (%(customer)s::text IS NULL OR on_behalf_of = %(customer)s
                OR target = 'customer:' || %(customer)s)
           AND (%(actor)s::text IS NULL OR actor = %(actor)s)
           AND (%(action)s::text IS NULL OR action = %(action)s)
           AND (%(realm)s::text IS NULL OR realm = %(realm)s)
           AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
           AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
           AND (%(before)s::bigint IS NULL OR id < %(before)s)
         ORDER BY id DESC
         LIMIT %(rows)s
        """).format(cols=columns(AuditRecord))
    async with conn.cursor(row_factory=class_row(AuditRecord)) as cur:
        await cur.execute(query, {
            "customer": where.customer_id, "actor": where.actor, "action": where.action,
            "realm": where.realm, "since": where.since, "until": where.until,
            "before": before, "rows": _limit(limit)})
        return await cur.fetchall()


async def audit_actions(conn: AsyncConnection) -> list[str]:
    """The actions recorded so far (the filter's choices), via audit_log_action_idx."""
    cur = await conn.execute(
        """
        WITH RECURSIVE actions(action) AS (
            (SELECT action FROM audit_log ORDER BY action LIMIT 1)
            UNION ALL
            SELECT (SELECT a.action FROM audit_log a WHERE a.action > actions.action
                     ORDER BY a.action LIMIT 1)
              FROM actions WHERE actions.action IS NOT NULL
        )
        SELECT action FROM actions WHERE action IS NOT NULL
        """)
    return [str(row[0]) for row in await cur.fetchall()]


async def class_names(conn: AsyncConnection) -> list[str]:
    """Every customer class (the re-run form's choices)."""
    cur = await conn.execute("SELECT name FROM customer_classes ORDER BY name")
    return [str(row[0]) for row in await cur.fetchall()]


__all__ = ["MAX_PAGE", "AuditFilter", "FoundCustomer", "InvoiceFee", "NotificationLine",
           "TimelineEvent", "TimelineKey", "audit_actions", "audit_page", "class_names",
           "customer_timeline", "invoice_fees", "invoices_page",
           "like_prefix", "notification_counts",
           "notification_customer", "notifications_page",
           "search_customers", "search_query", "unmatched_page"]
