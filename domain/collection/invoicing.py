"""An invoice from the billing system, as the ledger's command (SPEC 2.1, 2.5, 2.10).

The one place where an issued invoice's input is validated and its D (overdue instant)
and S' (the suspension instant, S = D + grace moved by working time) are computed from the
class's policy.
"""

from __future__ import annotations

from domain.collection.policy import ClassPolicy
from domain.collection.timeline import suspension_time
from domain.ledger.commands import InvalidCommand, IssueInvoice
from domain.ledger.payments import Actor
from domain.money import MoneyError, currency, parse_amount
from domain.when import overdue_instant, parse_due, parse_when


def issue_command(*, customer_id: str, number: str, charges: str, currency_code: str,
                  issued: str, due: str, policy: ClassPolicy,
                  actor: Actor | None = None) -> IssueInvoice:
    """The edge's raw values (decimal string, WHEN and due texts) validated with SPEC 2.1's
    messages. Raises InvalidCommand; nothing is recorded then."""
    if not number.strip():
        raise InvalidCommand("invoice number must not be empty", "number")
    try:
        new_charges = parse_amount(charges, currency(currency_code))
    except MoneyError as err:
        raise InvalidCommand(str(err), "charges") from None
    tz = policy.timezone
    try:
        issued_at = parse_when(issued, tz, "issue time")
    except ValueError as err:
        raise InvalidCommand(str(err), "issued") from None
    try:
        overdue_at = overdue_instant(parse_due(due), tz)
        # S' too: a due date near the end of the calendar overflows once grace is added.
        suspend_at, moved_why = suspension_time(policy, overdue_at)
    except ValueError as err:
        raise InvalidCommand(f"due {due!r}: {err}", "due") from None
    except OverflowError:
        raise InvalidCommand(f"due {due!r} is out of range", "due") from None
    return IssueInvoice(customer_id=customer_id, number=number, new_charges=new_charges,
                        issued_at=issued_at, due_text=due.strip(), overdue_at=overdue_at,
                        suspend_at=suspend_at, actor=actor,
                        suspension_moved_from=(overdue_at + policy.schedule.grace
                                               if moved_why else None),
                        suspension_moved_why=moved_why)
