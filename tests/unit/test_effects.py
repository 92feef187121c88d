"""Effects of a ledger outcome, as data (domain.ledger.effects) and SPEC 2.5's step table."""

from __future__ import annotations

from domain.collection.evaluation import drives_dunning
from domain.ledger.effects import (
    Followup,
    InvoiceFacts,
    Provision,
    SendMail,
    ServiceTransition,
    SignalInvoice,
    effects_of,
    needs_followup,
)
from domain.notifications import catalog
from domain.notifications.catalog import STEP_TABLE, StepKind

MAY = InvoiceFacts("MAY", 0, "do_not_collect", "paid", paid=True)
JUNE = InvoiceFacts("JUNE", 500, "do_not_collect", "partially_paid", paid=False)


def test_worked_example_payment_signals_both_invoices_resumes_and_mails_twice() -> None:
    """SPEC 5's $15.00: May and June hear of it, service resumes, receipt last."""
    followup = Followup(
        changed=[MAY, JUNE], transition=ServiceTransition("active", ["JUNE"], 7),
        receipt_key=catalog.payment_receipt_key("card", "p1"), service_state="active",
        processor="card", payment_id="p1")
    assert effects_of("c1", followup) == (
        SignalInvoice(MAY, "active", reopen_if_ended=False),
        SignalInvoice(JUNE, "active", reopen_if_ended=True),
        Provision(ServiceTransition("active", ["JUNE"], 7)),
        SendMail(key=catalog.service_notification_key("c1", 7, "service_resumed"),
                 kind="service_resumed", invoice_number="JUNE", service_event_id=7),
        SendMail(key="payment:card:p1:payment_received", kind="payment_received",
                 processor="card", payment_id="p1"),
    )


def test_suspension_is_provisioned_then_mailed_with_its_first_cause() -> None:
    followup = Followup(transition=ServiceTransition("suspended", ["A", "B"], 3))
    provision, mail = effects_of("c:1", followup)
    assert provision == Provision(ServiceTransition("suspended", ["A", "B"], 3))
    assert isinstance(mail, SendMail)
    assert (mail.kind, mail.invoice_number, mail.key) == (
        "service_suspended", "A", "service:c%3A1:3:service_suspended")


def test_an_outcome_without_changes_has_no_effects_and_is_not_queued() -> None:
    assert effects_of("c1", Followup()) == ()
    assert not needs_followup(Followup(service_state="active"))
    assert needs_followup(Followup(receipt_key="k"))
    assert needs_followup(Followup(changed=[JUNE]))


def test_step_table_is_spec_2_5() -> None:
    assert {k: (r.mail, r.runs_if_late) for k, r in STEP_TABLE.items()} == {
        StepKind.DUE_REMINDER: ("due_reminder", False),
        StepKind.OVERDUE: ("overdue", True),
        StepKind.SUSPENSION_WARNING: ("suspension_warning", False),
        StepKind.SUSPENSION: (None, True),
        # SPEC 2.9: the ledger charges it and sends late_fee_charged; never charged late.
        StepKind.LATE_FEE: (None, False),
    }


def test_a_charged_fee_sends_its_mail_after_the_invoices_hear_of_it() -> None:
    effects = effects_of("c1", Followup(changed=[JUNE], fee_invoice="JUNE"))
    assert needs_followup(Followup(fee_invoice="JUNE"))
    assert [type(e).__name__ for e in effects] == ["SignalInvoice", "SendMail"]
    mail = effects[-1]
    assert (mail.kind, mail.invoice_number, mail.key) == (  # type: ignore[union-attr]
        "late_fee_charged", "JUNE", "invoice:c1:JUNE:late_fee_charged")
    orders = [r.story_order for r in STEP_TABLE.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


def test_only_collect_with_something_remaining_drives_dunning() -> None:
    assert drives_dunning("collect", 1)
    assert not drives_dunning("collect", 0)
    assert not drives_dunning("do_not_collect", 1000)
