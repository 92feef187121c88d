"""Temporal activities: database transactions, mail, provisioning side effects."""

from __future__ import annotations

from collections.abc import Callable
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


def build_activities(*, pool: AsyncConnectionPool, mailer: Mailer, client: Client,
                     task_queue: str, company: Sender,
                     provisioning_url: str | None) -> list[Callable[..., Any]]:
    """Every activity of the product, bound to its resources."""
    ledger = LedgerActivities(pool)
    invoices = InvoiceActivities(pool, client, task_queue)
    mail = MailActivities(pool, mailer, company)
    provisioning = ProvisioningActivities(provisioning_url)
    reruns = RerunActivities(pool, client, task_queue)
    return [
        ledger.issue_invoice, ledger.apply_payment, ledger.reverse_payment,
        ledger.assign_unmatched, ledger.reevaluate_customer, ledger.evaluate_service,
        ledger.charge_late_fee, ledger.waive_late_fee,
        invoices.check_invoice, invoices.start_invoice, invoices.reopen_invoice,
        invoices.reach_suspension, invoices.request_late_fee,
        mail.send_notification, mail.expire_notification, provisioning.apply_service_state,
        reruns.list_customers_page, reruns.reevaluate_via_customer_workflow,
    ]
