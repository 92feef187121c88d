"""The `dunning` command (SPEC 4.2).

Every command that changes something takes --actor (default DUNNING_ACTOR, then the OS
user) and --reason and writes an audit record; --json prints machine-readable output;
errors are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import typer

T = TypeVar("T")

app = typer.Typer(help="Dunning: collections and notifications on Temporal.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
class_app = typer.Typer(help="Customer classes: currency, threshold, sender, policy.",
                        no_args_is_help=True)
customer_app = typer.Typer(help="Customers.", no_args_is_help=True)
invoice_app = typer.Typer(help="Invoices.", no_args_is_help=True)
payment_app = typer.Typer(help="Payments, reversals and unmatched payments.",
                          no_args_is_help=True)
notifications_app = typer.Typer(help="The notification outbox.", no_args_is_help=True)
account_app = typer.Typer(help="Accounts of customers (the billing system's feed).",
                          no_args_is_help=True)
subscription_app = typer.Typer(help="Subscriptions of accounts (the billing system's feed).",
                               no_args_is_help=True)
fee_app = typer.Typer(help="Late fees (SPEC 2.9).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(class_app, name="class")
app.add_typer(customer_app, name="customer")
app.add_typer(invoice_app, name="invoice")
app.add_typer(payment_app, name="payment")
app.add_typer(notifications_app, name="notifications")
app.add_typer(account_app, name="account")
app.add_typer(subscription_app, name="subscription")
app.add_typer(fee_app, name="fee")
clock_app = typer.Typer(
    help="A customer's workflow clocks, on a Temporal server that skips time (`dunning dev`"
         "): for demos and tests of stories that last weeks.", no_args_is_help=True)
app.add_typer(clock_app, name="clock")

ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who does this (audit).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (audit).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


# --- plumbing ------------------------------------------------------------------------


def _settings():
    from settings import SettingsError, get_settings

    try:
        return get_settings()
    except SettingsError as err:
        _fail(str(err))


def _audit(actor: str | None, reason: str | None):
    from db.rows import AuditInfo

    name = actor or _settings().actor or getpass.getuser()
    return AuditInfo(actor=name, realm="admin", reason=reason)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _run(make: Callable[[Any], Awaitable[T]]) -> T:
    """Run one operation with a context; turn every expected failure into one line."""
    import psycopg
    from temporalio.service import RPCError

    from domain.money import MoneyError
    from operations.context import open_context
    from operations.errors import OperationError
    from settings import SettingsError

    async def go() -> T:
        async with open_context(_settings()) as ctx:
            return await make(ctx)

    try:
        return asyncio.run(go())
    except (OperationError, MoneyError, SettingsError, ValueError) as err:
        _fail(str(err))
    except psycopg.OperationalError as err:
        _fail(f"cannot reach the database: {str(err).splitlines()[0] if str(err) else err}")
    except psycopg.Error as err:
        _fail(f"database error: {str(err).splitlines()[0]}")
    except RPCError as err:
        _fail(f"Temporal error: {err}")
    except RuntimeError as err:
        if "connect" in str(err).lower():
            _fail(f"cannot reach Temporal at {_settings().temporal_address}: {err}")
        raise
    raise AssertionError("unreachable")


def _default(value: Any) -> Any:
    import dataclasses

    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


def _print(doc: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if as_json or text is None:
        typer.echo(json.dumps(doc, default=_default, ensure_ascii=False, indent=None
                              if as_json else 2))
    else:
        typer.echo(text(doc))


# --- db ------------------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending SQL migrations (safe to run twice or concurrently)."""
    import psycopg

    from db.migrate import ensure_database, migrate

    url = _settings().database_url
    try:
        if ensure_database(url):
            typer.echo("created the database")
        applied = migrate(url)
    except psycopg.OperationalError as err:
        _fail(f"cannot reach the database: {str(err).splitlines()[0]}")
    except psycopg.Error as err:
        _fail(f"migration failed: {str(err).splitlines()[0]}")
    typer.echo("applied: " + ", ".join(applied) if applied else "database is up to date")


# --- classes and customers -----------------------------------------------------------


@class_app.command("set")
def class_set(
    name: str,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 code, e.g. USD.")] = None,
    threshold: Annotated[str | None, typer.Option(help="Collection threshold, e.g. 10.00.")] = None,
    from_address: Annotated[str | None, typer.Option()] = None,
    from_name: Annotated[str | None, typer.Option()] = None,
    reply_to: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str | None, typer.Option(help="en, es or pt-BR.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Area/City, default UTC.")] = None,
    reminders: Annotated[str | None, typer.Option(help="e.g. 7d,3d")] = None,
    grace: Annotated[str | None, typer.Option(help="e.g. 0d")] = None,
    warning: Annotated[str | None, typer.Option(help="e.g. 1d")] = None,
    payment_receipts: Annotated[bool | None, typer.Option(
        "--payment-receipts/--no-payment-receipts")] = None,
    late_fee: Annotated[str | None, typer.Option(
        help="Fixed, e.g. 5.00 (class currency), or of the remaining amount, e.g. 2%; "
             "'none' removes it.")] = None,
    late_fee_after: Annotated[str | None, typer.Option(
        help="Charged this long after D, e.g. 5d (default 0d).")] = None,
    terminate_after: Annotated[str | None, typer.Option(
        help="Terminate after this long suspended without a break, e.g. 30d; "
             "'none': never.")] = None,
    working_days: Annotated[str | None, typer.Option(
        help="e.g. mon-fri or mon,wed,fri (default every day).")] = None,
    working_hours: Annotated[str | None, typer.Option(
        help="e.g. 09:00-18:00 (default 00:00-24:00).")] = None,
    holiday: Annotated[list[str] | None, typer.Option(
        help="A holiday, e.g. 2026-12-25; repeat it for more. Holidays given (with "
             "--holidays-file) replace the class's.")] = None,
    holidays_file: Annotated[str | None, typer.Option(
        help="A CSV whose first column is a date per holiday (a header row is fine).")] = None,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create or change a customer class (options not given keep their value)."""
    from operations.classes import ClassChange, class_document, set_class

    holidays_csv = None
    if holidays_file is not None:
        try:
            with open(holidays_file, encoding="utf-8-sig") as file:
                holidays_csv = file.read()
        except (OSError, UnicodeDecodeError) as err:
            _fail(f"--holidays-file: cannot read {holidays_file}: "
                  f"{getattr(err, 'strerror', None) or err}")
    change = ClassChange(name=name, currency=currency, threshold=threshold,
                         from_address=from_address, from_name=from_name, reply_to=reply_to,
                         language=language, timezone=timezone, reminders=reminders,
                         grace=grace, warning=warning, payment_receipts=payment_receipts,
                         late_fee=late_fee, late_fee_after=late_fee_after,
                         terminate_after=terminate_after, working_days=working_days,
                         working_hours=working_hours,
                         holidays=tuple(holiday) if holiday else None,
                         holidays_csv=holidays_csv)
    result = _run(lambda ctx: set_class(ctx, change, _audit(actor, reason)))
    doc = {"status": result.status, "class": class_document(result.after)}
    _print(doc, as_json, lambda d: f"class {name}: {d['status']}")


@class_app.command("show")
def class_show(
    name: str,
    due: Annotated[str | None, typer.Option(
        help="Due date of the sample invoice whose timeline is shown (default: two weeks "
             "from today).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a class and its whole policy as the timeline of a sample invoice."""
    from operations.classes import class_text, show_class

    _print(_run(lambda ctx: show_class(ctx, name, due)), as_json, class_text)


@customer_app.command("add")
def customer_add(
    customer_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str, typer.Option()],
    email: Annotated[str, typer.Option()],
    class_name: Annotated[str, typer.Option("--class")],
    language: Annotated[str | None, typer.Option(help="en, es or pt-BR.")] = None,
    reseller: Annotated[str | None, typer.Option(help="The reseller's id (default: a "
                                                      "direct customer).")] = None,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Add a customer to a class (the same again: exists; other data: refused)."""
    from db.customers import CustomerSpec
    from operations.feed import create_customer

    spec = CustomerSpec(id=customer_id, name=name, email=email, class_name=class_name,
                        language=language, reseller_id=reseller)
    doc = _run(lambda ctx: create_customer(ctx, spec, _audit(actor, reason)))
    _print({"status": doc["status"], "customer_id": customer_id}, as_json,
           lambda d: f"customer {customer_id}: {d['status']}")


@customer_app.command("reactivate")
def customer_reactivate(
    customer_id: Annotated[str, typer.Argument(metavar="ID")],
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Bring a terminated customer back (SPEC 2.9): its service is decided again under
    SPEC 2.4 and its open invoices get their lifecycles back. Audited."""
    from operations.holds import reactivate

    if not reason:
        _fail("a reactivation needs a reason: --reason")
    doc = _run(lambda ctx: reactivate(ctx, customer_id, _audit(actor, reason)))
    _print(doc, as_json, lambda d: f"{d['customer_id']}: {d['status']}; service "
                                   f"{d['service_state']}")


@customer_app.command("set")
def customer_set(
    customer_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    class_name: Annotated[str | None, typer.Option("--class")] = None,
    language: Annotated[str | None, typer.Option(help="en, es or pt-BR.")] = None,
    class_language: Annotated[bool, typer.Option(
        "--class-language", help="Drop the customer's own language: the class's applies.")
    ] = False,
    reseller: Annotated[str | None, typer.Option(help="The reseller's id.")] = None,
    no_reseller: Annotated[bool, typer.Option(
        "--no-reseller", help="Make it a direct customer (no reseller).")] = False,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create or change a customer (options not given keep their value; a new customer
    needs --name, --email and --class)."""
    from operations.feed import CustomerChange, set_customer

    change = CustomerChange(id=customer_id, name=name, email=email, class_name=class_name,
                            language=language, reseller_id=reseller, direct=no_reseller,
                            class_language=class_language)
    doc = _run(lambda ctx: set_customer(ctx, change, _audit(actor, reason)))
    _print(doc, as_json, lambda d: f"customer {customer_id}: {d['status']}")


@account_app.command("add")
def account_add(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT_ID")],
    customer: Annotated[str, typer.Option(help="The customer's id (never changes).")],
    name: Annotated[str, typer.Option(help="e.g. John's phone.")] = "",
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create or replace an account of a customer (the same again changes nothing)."""
    from db.subscriptions import AccountSpec
    from operations.feed import put_account_record

    spec = AccountSpec(id=account_id, customer_id=customer, name=name)
    doc = _run(lambda ctx: put_account_record(ctx, spec, _audit(actor, reason)))
    _print(doc, as_json, lambda d: f"account {account_id}: {d['status']}")


@subscription_app.command("set")
def subscription_set(
    subscription_id: Annotated[str, typer.Argument(metavar="SUBSCRIPTION_ID")],
    account: Annotated[str, typer.Option(help="The account's id.")],
    product: Annotated[str, typer.Option(help="Product name, e.g. Essentials.")],
    fee: Annotated[str, typer.Option(help="Monthly fee in the class currency, e.g. 20.00.")],
    starts: Annotated[str | None, typer.Option(
        help="First day: a date, or a date and time with offset (its day in the class time "
             "zone). Default: the stored start, else today.")] = None,
    ends: Annotated[str | None, typer.Option(help="Last day of service (inclusive).")] = None,
    free_until: Annotated[str | None, typer.Option(
        help="Last free day (inclusive).")] = None,
    status: Annotated[str, typer.Option("--status", help="active or closed (needs --ends).")
                      ] = "active",
    currency: Annotated[str | None, typer.Option(
        help="Must be the class currency (default).")] = None,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create or replace a subscription (options not given take their defaults)."""
    from operations.feed import SubscriptionInput, put_subscription_record

    given = SubscriptionInput(id=subscription_id, account_id=account, product=product, fee=fee,
                              starts=starts, ends=ends, free_until=free_until, status=status,
                              currency=currency)
    doc = _run(lambda ctx: put_subscription_record(ctx, given, _audit(actor, reason)))
    _print(doc, as_json, lambda d: (
        f"subscription {subscription_id}: {d['status']}, {d['subscription']['product']} "
        f"{d['subscription']['fee']} {d['subscription']['currency']} from "
        f"{d['subscription']['starts']}"))


# --- invoices and payments -----------------------------------------------------------


@invoice_app.command("issue")
def invoice_issue(
    customer: Annotated[str, typer.Option(help="Customer id.")],
    number: Annotated[str, typer.Option(help="Invoice number, unique per customer.")],
    charges: Annotated[str, typer.Option(help="New charges, e.g. 10.00.")],
    issued: Annotated[str, typer.Option(
        help="Issue date (start of that day in the class time zone) or ISO 8601 instant "
             "with offset, e.g. 2026-05-01 or 2026-05-01T09:30:00+02:00.")],
    due: Annotated[str, typer.Option(help="Due date (YYYY-MM-DD) or ISO 8601 instant.")],
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Issue an invoice by hand and start its collection workflow."""
    from operations.invoices import IssueRequest, issue_invoice

    request = IssueRequest(customer_id=customer, number=number, charges=charges,
                           issued=issued, due=due)
    doc = _run(lambda ctx: issue_invoice(ctx, request, _audit(actor, reason)))
    _print(doc, as_json, lambda d: (
        f"invoice {number}: {d['status']}, amount due {d['amount_due']} {d['currency']}, "
        f"{d['collection_status']}, workflow {d['workflow_id']}"))


@payment_app.command("post")
def payment_post(
    customer: Annotated[str, typer.Option(help="Customer id.")],
    amount: Annotated[str, typer.Option(help="Amount, e.g. 15.00.")],
    payment_id: Annotated[str, typer.Option(help="The processor's payment id.")],
    processor: Annotated[str, typer.Option(help="Who reports it.")] = "manual",
    received_at: Annotated[str | None, typer.Option(
        help="Date (start of that day in the class time zone) or ISO 8601 instant with "
             "offset.")] = None,
    currency: Annotated[str | None, typer.Option(help="Defaults to the class currency.")] = None,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Post a payment by hand; applied oldest invoice first."""
    from operations.payments import PaymentRequest, post_payment

    request = PaymentRequest(processor=processor, payment_id=payment_id, customer_id=customer,
                             amount=amount, currency=currency, received_at=received_at,
                             source="cli")
    doc = _run(lambda ctx: post_payment(ctx, request, _audit(actor, reason)))
    _print(doc, as_json, lambda d: (
        f"payment {processor}:{payment_id}: {d['status']}; service {d.get('service_state')}, "
        f"balance {d.get('balance')}"))


@payment_app.command("reverse")
def payment_reverse(
    payment_id: Annotated[str, typer.Option(help="The processor's payment id.")],
    processor: Annotated[str, typer.Option()] = "manual",
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Reverse a payment (refund, chargeback): as if it had never arrived."""
    from operations.payments import reverse_payment

    doc = _run(lambda ctx: reverse_payment(ctx, processor, payment_id, _audit(actor, reason)))
    _print(doc, as_json, lambda d: (
        f"payment {processor}:{payment_id}: {d['status']}; service {d['service_state']}"))


@fee_app.command("waive")
def fee_waive(
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    invoice: Annotated[str, typer.Option(help="The invoice's number.")],
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Waive an invoice's late fee: the ledger is then as if it had never been charged."""
    from operations.fees import waive_fee

    doc = _run(lambda ctx: waive_fee(ctx, customer, invoice, _audit(actor, reason)))
    _print(doc, as_json, lambda d: (
        f"fee of invoice {invoice} ({d['fee']} {d['currency']}): {d['status']}; balance "
        f"{d['balance']}, service {d['service_state']}"))


@clock_app.command("show")
def clock_show(
    customer_id: Annotated[str, typer.Argument(metavar="CUSTOMER_ID")],
    as_json: JsonOpt = False,
) -> None:
    """Each running workflow of the customer: its clock and the next event it waits for."""
    from operations.clock import show_clock

    _print(_run(lambda ctx: show_clock(ctx, customer_id)), as_json, _clock_text)


@clock_app.command("advance")
def clock_advance(
    customer_id: Annotated[str, typer.Argument(metavar="CUSTOMER_ID")],
    by: Annotated[str | None, typer.Option(help="How far, e.g. 5d, 12h.")] = None,
    to: Annotated[str | None, typer.Option(
        help="To when (a date: midnight in the class's time zone, or a date-time with its "
             "offset).")] = None,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Move the customer's workflows forward together, stopping at every step, fee, hold
    end and termination on the way, each at its own time (dev server only)."""
    from operations.clock import advance_clock

    doc = _run(lambda ctx: advance_clock(ctx, customer_id, _audit(actor, reason), by=by,
                                         to=to))
    _print(doc, as_json, lambda d: "\n".join(
        [f"{d['customer_id']}: clock {d['from']} -> {d['now']}"]
        + [f"  {stop['at']}  {stop['event']}" for stop in d["stops"]]))


def _clock_text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['customer_id']}: clock {doc['now']}"]
    for w in doc["workflows"]:
        nxt = (f"next: {w['next_event']} at {w['next_event_at']}" if w["next_event_at"]
               else "no timer pending")
        lines.append(f"  {w['workflow_id']:<40} {w['now']}  {nxt}")
    return "\n".join(lines)


@payment_app.command("unmatched")
def payment_unmatched(as_json: JsonOpt = False) -> None:
    """Payments for unknown customers, waiting for finance."""
    from operations.payments import list_unmatched

    _print(_run(list_unmatched), as_json, _table)


@payment_app.command("assign")
def payment_assign(
    payment_id: Annotated[str, typer.Option()],
    customer: Annotated[str, typer.Option()],
    processor: Annotated[str | None, typer.Option()] = None,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Assign an unmatched payment to a customer; it is then applied like any payment."""
    from operations.payments import assign_unmatched

    doc = _run(lambda ctx: assign_unmatched(ctx, processor, payment_id, customer,
                                            _audit(actor, reason)))
    _print(doc, as_json, lambda d: f"payment {payment_id}: assigned to {customer}, {d['status']}")


@app.command("hold")
def hold(
    customer_id: Annotated[str, typer.Argument(
        metavar="CUSTOMER_ID", help="The customer to hold; or `release`, then its id.")],
    released: Annotated[str | None, typer.Argument(
        metavar="[CUSTOMER_ID]", help="With `release`: the customer whose hold ends.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Until when (a date: midnight in the class's time zone, or a date-time with "
             "its offset); default: until released.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="A suspended customer resumes at once (reason \"hold\").")] = False,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Pause a customer's collection (SPEC 2.11): no reminder, overdue or warning mails, no
    late fees, no suspension, no termination. `dunning hold release CUSTOMER_ID` ends it."""
    from operations.holds import place_hold, release_hold

    if customer_id == "release" and released is not None:
        if until is not None or resume:
            _fail("--until and --resume are for placing a hold, not releasing it")
        doc = _run(lambda ctx: release_hold(ctx, released, _audit(actor, reason)))
    else:
        if released is not None:
            _fail(f"unexpected argument {released!r}; did you mean `dunning hold release "
                  f"{released}`?")
        if not reason:
            _fail("a hold needs a reason: --reason")
        doc = _run(lambda ctx: place_hold(ctx, customer_id, _audit(actor, reason),
                                          until=until, resume=resume))
    _print(doc, as_json, _hold_text)


def _hold_text(doc: dict[str, Any]) -> str:
    hold = doc["hold"]
    if hold is None:
        return f"{doc['customer_id']}: {doc['status']}, not on hold; service {doc['service_state']}"
    until = hold["until"] or "released"
    return (f"{doc['customer_id']}: hold {doc['status']} until {until} ({hold['reason']}, by "
            f"{hold['actor']}); service {doc['service_state']}")


@app.command("status")
def status(
    customer_id: Annotated[str, typer.Argument(metavar="CUSTOMER_ID")],
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """A customer's service state, balance and invoices (the read is audited)."""
    from operations.status import customer_status

    audit = _audit(actor, reason or "cli read")
    doc = _run(lambda ctx: customer_status(ctx, customer_id, audit=audit))
    _print(doc, as_json, _status_text)


def _status_text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['customer_id']} ({doc['class']}): service {doc['service_state']}, "
             f"balance {doc['balance']} {doc['currency']}"]
    if doc.get("hold"):
        hold = doc["hold"]
        lines.append(f"  on hold until {hold['until'] or 'released'}: {hold['reason']} "
                     f"(by {hold['actor']})")
    for inv in doc["invoices"]:
        lines.append(
            f"  {inv['number']:<12} due {inv['due_date']:<25} amount due {inv['amount_due']:>10} "
            f"remaining {inv['remaining']:>10}  {inv['payment_status']:<15} "
            f"{inv['collection_status']}{'  OVERDUE' if inv['overdue'] else ''}"
        )
        if inv.get("late_fee"):
            lines.append(f"  {'':<12} late fee {inv['late_fee']} (in the remaining amount)")
        if inv.get("suspension_moved"):
            lines.append(f"  {'':<12} suspension at {inv['suspension_at']}: "
                         f"{inv['suspension_moved']['why']}")
    return "\n".join(lines)


@app.command("subscriptions")
def subscriptions(
    customer_id: Annotated[str, typer.Argument(metavar="CUSTOMER_ID")],
    month: Annotated[str | None, typer.Option(
        "--month", metavar="YYYY-MM",
        help="Default: the current month in the class's time zone.")] = None,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Every subscription across a customer's accounts with the month's expected charge and
    totals (the read is audited); --json prints the document of the HTTP API."""
    from domain.subscriptions.charge import Month
    from operations.subscriptions import consolidated_view

    try:
        wanted = None if month is None else Month.parse(month)
    except ValueError as err:
        _fail(str(err))
    audit = _audit(actor, reason or "cli read")
    doc = _run(lambda ctx: consolidated_view(ctx, customer_id, month=wanted, audit=audit))
    _print(doc, as_json, _subscriptions_text)


def _subscriptions_text(doc: dict[str, Any]) -> str:
    header = ("ACCOUNT", "SUBSCRIPTION", "PRODUCT", "FEE", "EXPECTED", "STATUS", "NOTE")
    rows: list[tuple[str, ...]] = []
    for account in doc["accounts"]:
        for sub in account["subscriptions"]:
            note = f"free until {sub['free_until']}" if sub["free_until"] else ""
            if sub["ends"]:
                note = ", ".join(filter(None, [note, f"ends {sub['ends']}"]))
            rows.append((account["account_id"], sub["subscription_id"], sub["product"],
                         sub["fee"], sub["expected_charge"], sub["status"], note))
        rows.append((account["account_id"], "", "account total", "", account["total"], "", ""))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    right = {3, 4}  # amounts line up on the decimal point

    def line(cells: tuple[str, ...]) -> str:
        return "  " + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                                ).rstrip()

    return "\n".join([
        f"{doc['customer_id']} ({doc['currency']}), {doc['month']}: "
        f"service {doc['service_state']}",
        line(header), *map(line, rows),
        f"  total {doc['total']} {doc['currency']}",
    ])


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    keys = list(rows[0])
    return "\n".join(["  ".join(keys)] + ["  ".join(str(r[k]) for k in keys) for r in rows])


# --- finance -------------------------------------------------------------------------


@app.command("rerun")
def rerun(
    class_name: Annotated[str | None, typer.Option("--class")] = None,
    customer: Annotated[str | None, typer.Option()] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Re-evaluate a class or a customer (after a policy change) through a RerunWorkflow."""
    from operations.reruns import start_rerun

    if (class_name is None) == (customer is None):
        _fail("give exactly one of --class or --customer")
    doc = _run(lambda ctx: start_rerun(ctx, class_name, customer, dry_run,
                                       _audit(actor, reason), wait=True))
    _print(doc, as_json, _rerun_text)


def _rerun_text(doc: dict[str, Any]) -> str:
    head = (f"{'dry run' if doc['dry_run'] else 're-run'} {doc['workflow_id']}: "
            f"{doc['scanned']} customers scanned, {doc['changed_customers']} with changes")
    lines = [head]
    for r in doc["results"]:
        svc = (f"service {r['service_before']} -> {r['service_after']}"
               if r["service_before"] != r["service_after"] else f"service {r['service_after']}")
        changes = ", ".join(f"{c['number']} {c['before_status']} -> {c['after_status']}"
                            for c in r["changes"])
        lines.append(f"  {r['customer_id']}: {svc}; {changes or 'no status change'}")
    return "\n".join(lines)


# The outbox's status machine (activities/notifications/outbox.py, SPEC 2.6).
NOTIFICATION_STATUSES = ["pending", "sending", "sent", "failed", "unknown"]


def _notification_status(value: str | None) -> str | None:
    if value is not None and value not in NOTIFICATION_STATUSES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(NOTIFICATION_STATUSES)}")
    return value


@notifications_app.command("list")
def notifications_list(
    customer: Annotated[str | None, typer.Option()] = None,
    status_filter: Annotated[str | None, typer.Option(
        "--status", callback=_notification_status,
        help="one of " + ", ".join(NOTIFICATION_STATUSES)
             + " (unknown: outcome unknown after a crash; resend those by hand)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Notifications in the outbox, newest first."""
    from operations.notifications import list_notifications

    _print(_run(lambda ctx: list_notifications(ctx, customer, status_filter)), as_json, _table)


@notifications_app.command("resend")
def notifications_resend(
    key: str, actor: ActorOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False,
) -> None:
    """Send a notification again under a new key (audited)."""
    from operations.notifications import resend

    doc = _run(lambda ctx: resend(ctx, key, _audit(actor, reason)))
    _print(doc, as_json, lambda d: f"resent as {d['key']}: {d['status']}")


@notifications_app.command("preview")
def notifications_preview(
    kind: str,
    language: Annotated[str, typer.Option(help="en, es or pt-BR.")] = "en",
    class_name: Annotated[str | None, typer.Option("--class")] = None,
    eml: Annotated[str | None, typer.Option(help="Write the whole message to this file.")] = None,
) -> None:
    """Render a sample notification without sending it."""
    from operations.errors import OperationError
    from operations.notifications import (
        preview_class,
        preview_eml,
        preview_message,
        preview_text,
    )

    klass = _run(lambda ctx: preview_class(ctx, class_name)) if class_name else None
    try:
        message = preview_message(kind, language, klass, _settings())
    except OperationError as err:
        _fail(str(err))
    if eml:
        with open(eml, "wb") as out:
            out.write(preview_eml(message))
        typer.echo(f"written to {eml}")
    else:
        typer.echo(preview_text(message))


@app.command("audit")
def audit(
    customer: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail, newest first."""
    from operations.audit_log import list_records

    _print(_run(lambda ctx: list_records(ctx, customer, limit)), as_json, _table)


# --- processes -----------------------------------------------------------------------


@app.command("worker")
def worker(
    processes: Annotated[int, typer.Option("--processes", min=1,
                                           help="Worker processes, one per core.")] = 1,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", min=1, max=65535,
        help="Serve Prometheus /metrics here (default DUNNING_WORKER_METRICS_PORT, else "
             "off); with --processes K, process i uses this port + i.")] = None,
) -> None:
    """Run the Temporal worker (workflows and activities) until SIGTERM/SIGINT."""
    import psycopg

    import worker as worker_module
    from activities.metrics import MetricsBindError
    from worker_processes import metrics_ports, run_worker_processes

    settings = _settings()
    port = metrics_port or settings.worker_metrics_port
    try:
        metrics_ports(port, processes)
    except ValueError as err:
        _fail(str(err))
    try:
        if processes == 1:
            worker_module.main(settings, metrics_port=port)
        else:
            run_worker_processes(processes, port)
    except MetricsBindError as err:
        _fail(str(err))
    except psycopg.OperationalError as err:
        _fail(f"cannot reach the database: {str(err).splitlines()[0]}")
    except RuntimeError as err:
        if "connect" not in str(err).lower():
            raise
        _fail(f"cannot reach Temporal at {settings.temporal_address}: {err}")


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Run the HTTP API (payment webhook, status, re-runs, metrics)."""
    from api.server import serve

    settings = _settings()
    serve(host or settings.api_host, port or settings.api_port)


@app.command("dev")
def dev(
    demo: Annotated[bool, typer.Option("--demo", help="Load and play the worked example.")] = False,
    data_dir: Annotated[str, typer.Option()] = ".data",
    temporal_port: Annotated[int, typer.Option()] = 7233,
    ui_port: Annotated[int, typer.Option()] = 8233,
    smtp_port: Annotated[int, typer.Option()] = 1025,
    mail_port: Annotated[int, typer.Option()] = 8025,
    api_port: Annotated[int, typer.Option()] = 8000,
    worker_metrics_port: Annotated[int, typer.Option()] = 9464,
) -> None:
    """Run the whole stack on this machine; Ctrl-C stops everything."""
    from devstack.supervisor import DevOptions, run_dev

    options = DevOptions(data_dir=data_dir, temporal_port=temporal_port, ui_port=ui_port,
                         smtp_port=smtp_port, mail_port=mail_port, api_port=api_port,
                         worker_metrics_port=worker_metrics_port, demo=demo)
    raise typer.Exit(run_dev(options))


def main() -> None:
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    # The Temporal client's native runtime can crash while the interpreter finalizes
    # (observed: SIGABRT/SIGSEGV in PyGILState_Release about 1 run in 10). Everything is
    # committed and printed by now, so leave without finalizing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
