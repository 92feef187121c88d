"""Temporal activities: database transactions, mail, provisioning side effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from activities.collection.invoices import InvoiceActivities
from activities.collection.provisioning import ProvisioningActivities
from activities.collection.reruns import RerunActivities
from activities.ledger.transactions import LedgerActivities
from activities.notifications.mailer import Mailer
from activities.notifications.message import Sender
from activities.notifications.send import MailActivities


@dataclass(frozen=True)
class ActivitySets:
    """``workflow``: the activities the workflows' own queue serves (ledger transactions,
    run as local activities too, invoice checks and starts, re-runs); ``effects``: mail
    and provisioning, served from their own queue (domain.ids.effects_task_queue)."""

    workflow: list[Callable[..., Any]]
    effects: list[Callable[..., Any]]


def build_activities(*, pool: AsyncConnectionPool, mailer: Mailer, client: Client,
                     task_queue: str, company: Sender,
                     provisioning_url: str | None) -> ActivitySets:
    """Every activity of the product, bound to its resources."""
    ledger = LedgerActivities(pool)
    invoices = InvoiceActivities(pool, client, task_queue)
    mail = MailActivities(pool, mailer, company)
    provisioning = ProvisioningActivities(provisioning_url)
    reruns = RerunActivities(pool, client, task_queue)
    return ActivitySets(
        workflow=[
            ledger.issue_invoice, ledger.apply_payment, ledger.reverse_payment,
            ledger.assign_unmatched, ledger.reevaluate_customer, ledger.evaluate_service,
            ledger.charge_late_fee, ledger.waive_late_fee, ledger.place_hold,
            ledger.release_hold, ledger.terminate_customer, ledger.reactivate_customer,
            invoices.check_invoice, invoices.start_invoice, invoices.reopen_invoice,
            invoices.reach_suspension, invoices.request_late_fee,
            reruns.list_customers_page, reruns.reevaluate_via_customer_workflow,
        ],
        effects=[mail.send_notification, mail.send_notifications, mail.expire_notification,
                 provisioning.apply_service_state],
    )
