"""Notification keys and update ids stay apart for ids holding ':', '%' and spaces (SPEC 2.6).

Customer ``k`` with invoice ``x:1 50%`` and customer ``k:x`` with invoice ``1 50%`` once
shared every outbox key, so the second customer's mails counted as already sent; so did
payment ``x:1 %`` of processor ``card`` and payment ``1 %`` of processor ``card:x``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from tests.support.stack import ADMIN, Stack

NOW = datetime.now(UTC).replace(microsecond=0)
# (customer, email, invoice, processor, payment id, amount)
CUSTOMERS = [
    ("k", "k@example.com", "x:1 50%", "card", "x:1 %", "3.00"),
    ("k:x", "kx@example.com", "1 50%", "card:x", "1 %", "4.00"),
]


async def test_customers_whose_ids_share_a_naive_key_both_get_their_mails(
    stack: Stack, smtp_sink
) -> None:
    await stack.call(set_class, ClassChange(name="Plain", currency="USD", threshold="10.00",
                                            reminders="", from_address="billing@plain.test"),
                     ADMIN)
    for cid, email, number, processor, payment_id, amount in CUSTOMERS:
        await stack.call(add, NewCustomer(id=cid, name=f"Customer {cid}", email=email,
                                          class_name="Plain"), ADMIN)
        issued = await stack.call(issue_invoice, IssueRequest(
            customer_id=cid, number=number, charges="20.00",
            issued=(NOW - timedelta(days=1)).isoformat(),
            due=(NOW + timedelta(days=30)).date().isoformat()), ADMIN)
        assert issued["workflow"] == "started"
        paid = await stack.call(post_payment, PaymentRequest(
            processor=processor, payment_id=payment_id, customer_id=cid, amount=amount,
            currency="USD", received_at=None), None)
        assert paid["status"] == "accepted"

    wanted = {"invoice_issued", "payment_received"}

    async def sent(cid: str) -> dict[str, str]:
        return {kind: key for key, kind, status in await stack.notifications(cid)
                if status == "sent" and kind in wanted}

    async def both_mailed() -> bool:
        return all([set(await sent(cid)) == wanted for cid, *_ in CUSTOMERS])

    await stack.wait_for(both_mailed, what="both customers' invoice and receipt mails")
    keys = [key for cid, *_ in CUSTOMERS for key in (await sent(cid)).values()]
    assert len(set(keys)) == 4, keys
    for _, email, number, _, _, amount in CUSTOMERS:
        mails = {m["X-Dunning-Kind"]: m.get_body(("plain",)).get_content()
                 for m in smtp_sink.to(email)}
        assert number in mails["invoice_issued"]
        # The receipt names this customer's own payment, not the other one's.
        assert amount in mails["payment_received"]
