"""Every Temporal id and notification key, built with one quoting rule.

Each part is percent-encoded (all but ``-_.~`` and alphanumerics), so ``:`` only ever
separates parts: customer ``k`` with invoice ``x:1`` and customer ``k:x`` with invoice
``1`` give different ids and keys. Plain ids (letters, digits, ``-``) are left as they
are, so the ids of ordinary customers and invoices read naturally in the Temporal UI.
"""

from __future__ import annotations

from urllib.parse import quote


def part(value: str) -> str:
    return quote(value, safe="-_.~")


def join(*parts: str) -> str:
    """``parts[0]`` is a fixed prefix (never quoted); the rest are quoted."""
    head, *rest = parts
    return ":".join([head, *(part(p) for p in rest)])


# --- workflow ids ----------------------------------------------------------------------


def invoice_workflow_id(customer_id: str, number: str) -> str:
    return join("invoice", customer_id, number)


def customer_workflow_id(customer_id: str) -> str:
    return join("customer", customer_id)


def rerun_child_workflow_id(rerun_workflow_id: str, customer_id: str) -> str:
    return join("rerun", rerun_workflow_id, customer_id)


# --- update ids ------------------------------------------------------------------------


def payment_update_id(processor: str, payment_id: str, delivery: str | None = None) -> str:
    """One update per delivery: the ledger, not the update id, decides which delivery of
    a payment is the first (``accepted``) and which are ``duplicate``."""
    if delivery is None:
        return join("payment", processor, payment_id)
    return join("payment", processor, payment_id, delivery)


def reversal_update_id(processor: str, payment_id: str) -> str:
    return join("reversal", processor, payment_id)


def invoice_update_id(customer_id: str, number: str, delivery: str | None = None) -> str:
    """Issuing an invoice. Like payments, one update per delivery (``delivery``): the
    ledger answers a second identical issue ``exists`` and one with other data
    ``conflict``, where one id per invoice would hand both the first call's answer."""
    if delivery is None:
        return join("issue", customer_id, number)
    return join("issue", customer_id, number, delivery)


def fee_waiver_update_id(customer_id: str, number: str, delivery: str) -> str:
    """Waiving an invoice's late fee: one update per request (a second one is answered
    ``already_waived`` by the ledger)."""
    return join("waive-fee", customer_id, number, delivery)


def hold_update_id(customer_id: str, action: str, delivery: str) -> str:
    """Placing (``place``) or releasing (``release``) a customer's hold: one update per
    request (SPEC 2.11)."""
    return join("hold", customer_id, action, delivery)


def reactivation_update_id(customer_id: str, delivery: str) -> str:
    """Finance reactivates a terminated customer: one update per request (SPEC 2.9)."""
    return join("reactivate", customer_id, delivery)


def assignment_update_id(processor: str, payment_id: str) -> str:
    return join("assign", processor, payment_id)


# --- ledger transaction tokens -----------------------------------------------------------

UPDATE_TRANSACTION = "update"


def update_transaction_id(update_id: str, activity: str) -> str:
    """The activity id of a ledger transaction run for an update: the update's id (which
    the caller keeps across its retries) and the transaction's name (an update may run
    several). Never one of the SDK's own activity ids, which are sequence numbers."""
    return join(UPDATE_TRANSACTION, update_id, activity)


def transaction_token(run_id: str, activity_id: str) -> str:
    """The idempotency token a ledger transaction stores its result under.

    A transaction run for an update is keyed by the update alone: the same delivery,
    retried by its caller after a lost workflow task, even into the next run after a
    continue-as-new, finds its first result. Any other transaction is keyed by its
    activity within its run (a sequence number, fixed by the history)."""
    if activity_id.startswith(UPDATE_TRANSACTION + ":"):
        return activity_id
    return f"{run_id}:{activity_id}"


# --- task queues -----------------------------------------------------------------------


def effects_task_queue(task_queue: str) -> str:
    """Where mail and provisioning activities run: a queue of their own beside the
    workflows' one, polled by its own worker (its own slots), so a backlog of mail never
    waits in front of a ledger change or an invoice's check."""
    return f"{task_queue}-effects"
