"""The finance console (SPEC 4.6, issue 14) in a real browser (Debian's chromium through
Playwright), against the real stack. Customers and their states are seeded once per
session (``tests/console/conftest.py``); each test uses its own customers.

Screenshots of the customer page and the unmatched list are written to ``docs/console/``
by this run (``docs/console.md`` shows them).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from db.console import customer_timeline, invoices_page
from operations.classes import ClassChange, set_class
from operations.feed import CustomerChange, set_customer
from tests.console.conftest import (
    ADMIN_TOKEN,
    CUSTOMER_TOKEN,
    R1_TOKEN,
    XSS_NAME,
    Console,
    sign_in,
)
from tests.support.stack import ADMIN

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


async def flash(page: Any) -> str:
    return (await page.locator(".flash").all_inner_texts() or [""])[-1]


async def invoice_row(page: Any, number: str) -> dict[str, str]:
    """The invoice's row on the customer page, by column header."""
    headers = await page.locator("#invoices thead th").all_inner_texts()
    cells = await page.locator(f'#invoices tr[data-invoice="{number}"] > *').all_inner_texts()
    return dict(zip(headers, (c.strip() for c in cells), strict=True))


async def audit_rows(console: Console, action: str, customer_id: str) -> list[tuple[Any, ...]]:
    return await console.stack.query_rows(
        "SELECT actor, realm, on_behalf_of, reason FROM audit_log"
        " WHERE action = %s AND on_behalf_of = %s ORDER BY id", action, customer_id)


async def reload_until(page: Any, predicate: Any, *, what: str, timeout: float = 30.0) -> None:
    """Reload the page until ``predicate(page)`` holds (a workflow finishing its work)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate(page):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)
        await page.reload()


# ------------------------------------------------------------------------------ sign in
async def test_sign_in_and_out(page, console: Console) -> None:
    await page.goto("/console")
    assert page.url.endswith("/console/signin")

    await sign_in(page)
    assert "/console/customers" in page.url
    assert "Signed in as ana-finance (admin)." in await flash(page)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "dunning_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/console"
    assert ADMIN_TOKEN not in cookie["value"]  # the token itself never goes to the browser

    await page.goto("/console/signin")  # a mere link (GET) does not end the session
    assert "/console/customers" in page.url

    await page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/console/signin")
    assert "Signed out." in await flash(page)
    await page.goto("/console/customers")
    assert "/console/signin" in page.url  # the old session is gone


async def test_a_wrong_token_does_not_sign_in(page, console: Console) -> None:
    await sign_in(page, token="not-a-token")
    assert "/console/signin" in page.url
    assert "That token is not valid for the console." in await page.inner_text("main")


# ------------------------------------------------------------------------ worked example
async def test_worked_example_customer_may_paid_june_5_do_not_collect(page, console) -> None:
    customer_id = console.id("spec5")
    await sign_in(page)
    await page.get_by_label("Customer id, name, email or invoice number").fill("alice ex")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=customer_id).click()

    assert await page.inner_text("h1") == "Alice Example"
    may, june = await invoice_row(page, "INV-05"), await invoice_row(page, "INV-06")
    assert (may["Amount due"], may["Remaining"], may["Payment"]) == ("$10.00", "$0.00", "paid")
    assert (june["Amount due"], june["Remaining"], june["Collection status"]) == (
        "$20.00", "$5.00", "do_not_collect")
    assert await page.inner_text("#service-state") == "active"
    assert await page.inner_text("#balance") == "$5.00"
    timeline = await page.inner_text("#timeline")
    for seen in ("service: suspended", "service: active", "mail: service_resumed",
                 "mail: payment_received"):
        assert seen in timeline
    temporal = await page.get_by_role("link", name=re.compile("Temporal UI")).get_attribute(
        "href")
    assert temporal.endswith("/workflows?query=" + quote(f'CustomerId="{customer_id}"', safe=""))

    assert "Expected this month: $75.00" in await page.inner_text("main")  # SPEC 2.8

    # The admin's read is audited on behalf of the customer (SPEC 2.7).
    reads = await audit_rows(console, "customer.read", customer_id)
    assert ("ana-finance", "admin", customer_id, "console read") in reads

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "customer.png"), full_page=True)


async def test_search_by_invoice_number_and_email(page, console: Console) -> None:
    await sign_in(page)
    await page.goto("/console/customers?q=INV-P1")
    assert await page.get_by_role("link", name=console.id("pay")).count() == 1
    assert "invoice INV-P1" in await page.inner_text("main")
    await page.goto(f"/console/customers?q=ASA-{console.id('assign').rsplit('-', 1)[1]}")
    assert await page.get_by_role("link", name=console.id("assign")).count() == 1


async def test_money_and_dates_in_the_readers_locale(page, console: Console) -> None:
    await sign_in(page, language="pt-BR")
    await page.goto(f"/console/customers/{console.id('spec5')}")
    assert await page.inner_text("#balance") == "US$\xa05,00"
    june = await invoice_row(page, "INV-06")
    assert re.search(r"\d{1,2} de \w+\.? de \d{4}", june["Due"]), june["Due"]

    await page.get_by_label("Language").select_option("es")
    await page.get_by_role("button", name="Apply").click()
    assert await page.inner_text("#balance") == "5,00\xa0US$"


# ----------------------------------------------------------------------------- actions
async def test_post_a_payment_with_a_reason_changes_the_state(page, console) -> None:
    customer_id = console.id("pay")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    assert await page.inner_text("#service-state") == "suspended"
    before = await invoice_row(page, "INV-P1")
    assert before["Collection status"] == "collect"
    # "Next step and why" is the invoice workflow's own answer (its status query), not the
    # plan the page would fall back to: here, every step is behind it.
    why = before["Next step and why"]
    assert "overdue sent" in why and "suspension reached" in why, why
    assert "(planned)" not in why

    await page.get_by_label("Amount (USD)").fill("50.00")
    await page.get_by_label("Reason", exact=True).first.fill("paid at the counter")
    await page.get_by_role("button", name="Post payment").click()

    assert "accepted" in await flash(page)
    assert await page.inner_text("#service-state") == "active"
    assert await page.inner_text("#balance") == "$0.00"
    row = await invoice_row(page, "INV-P1")
    assert (row["Remaining"], row["Payment"]) == ("$0.00", "paid")
    posted = await audit_rows(console, "payment.post", customer_id)
    assert posted == [("ana-finance", "admin", customer_id, "paid at the counter")]


async def test_a_refused_payment_is_said_and_nothing_is_recorded(page, console) -> None:
    customer_id = console.id("xss")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    await page.get_by_label("Amount (USD)").fill("10.001")
    await page.get_by_label("Reason", exact=True).first.fill("typo")
    await page.get_by_role("button", name="Post payment").click()
    message = await flash(page)
    assert message.startswith("Payment not recorded:") and "USD allows 2" in message, message

    # The reason is required by the server too, not only by the browser's form check.
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = await page.request.post(f"/console/customers/{customer_id}/payments", form={
        "csrf": csrf, "amount": "1.00", "payment_id": "no-reason", "processor": "console",
        "reason": "  "})
    assert answer.status == 400
    assert "A reason is required." in await answer.text()
    rows = await console.stack.query_rows("SELECT count(*) FROM payments WHERE customer_id = %s",
                                          customer_id)
    assert rows == [(0,)]


async def test_reverse_a_payment_from_the_timeline(page, console: Console) -> None:
    customer_id = console.id("rev")
    payment_id = "chargeback-me-" + customer_id.rsplit("-", 1)[1]
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    assert await page.inner_text("#balance") == "$0.00"
    event = page.locator("#timeline tr.payment", has_text=payment_id)
    await event.get_by_text("Reverse…").click()  # a <details>: no script needed
    await event.get_by_label("Reason").fill("chargeback from the card network")
    await event.get_by_role("button", name="Reverse").click()

    assert f"card/{payment_id}: reversed" in await flash(page)
    assert await page.inner_text("#balance") == "$30.00"
    row = await invoice_row(page, "INV-V1")
    assert (row["Remaining"], row["Collection status"]) == ("$30.00", "collect")
    assert "reversal: " + payment_id in await page.inner_text("#timeline")
    reversed_ = await audit_rows(console, "payment.reverse", customer_id)
    assert [r[:2] + r[3:] for r in reversed_] == [
        ("ana-finance", "admin", "chargeback from the card network")]


async def test_waive_a_late_fee_with_a_reason(page, console: Console) -> None:
    customer_id = console.id("fee")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    row = await invoice_row(page, "INV-F1")
    assert row["Late fee"].startswith("$5.00 charged"), row
    assert row["Remaining"] == "$25.00"
    assert await page.inner_text("#balance") == "$25.00"
    assert "late fee: INV-F1" in await page.inner_text("#timeline")

    invoice = page.locator('#invoices tr[data-invoice="INV-F1"]')
    await invoice.get_by_text("Waive fee…").click()  # a <details>: no script needed
    await invoice.get_by_label("Reason").fill("goodwill: first late payment")
    await invoice.get_by_role("button", name="Waive fee", exact=True).click()

    assert "Late fee of $5.00 on invoice INV-F1 waived." in await flash(page)
    row = await invoice_row(page, "INV-F1")
    assert row["Late fee"].startswith("$5.00 waived"), row
    assert row["Remaining"] == "$20.00"  # as if it had never been charged (SPEC 2.9)
    assert await page.inner_text("#balance") == "$20.00"
    assert "fee waived: INV-F1" in await page.inner_text("#timeline")
    assert await invoice.get_by_role("button", name="Waive fee", exact=True).count() == 0
    # Audited as the API's fee-waiver route audits it: the operation's own record.
    audit = await console.stack.query_rows(
        "SELECT actor, realm, on_behalf_of, reason, request_id IS NOT NULL FROM audit_log"
        " WHERE action = 'fee.waive' AND on_behalf_of = %s", customer_id)
    assert audit == [("ana-finance", "admin", customer_id, "goodwill: first late payment",
                      True)]
    fees = await console.stack.query_rows(
        "SELECT amount, waived_at IS NOT NULL FROM late_fees WHERE customer_id = %s",
        customer_id)
    assert fees == [(500, True)]


async def unwaived(console: Console, customer_id: str) -> bool:
    rows = await console.stack.query_rows(
        "SELECT waived_at IS NULL FROM late_fees WHERE customer_id = %s", customer_id)
    return rows == [(True,)]


async def test_a_reseller_or_customer_cannot_waive_a_fee(page, console: Console) -> None:
    customer_id = console.id("feer1")
    await sign_in(page, token=R1_TOKEN)
    await page.goto(f"/console/customers/{customer_id}")
    row = await invoice_row(page, "INV-G1")
    assert row["Late fee"] == "$5.00 charged"  # shown, but no form to waive it
    assert await page.get_by_text("Waive fee").count() == 0

    # Sent anyway (with the session's own CSRF token): refused like the API refuses a
    # reseller's POST .../fee-waiver (403 for the realm, whatever the customer).
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    form = {"csrf": csrf, "customer_id": customer_id, "invoice": "INV-G1",
            "reason": "trying"}
    answer = await page.request.post("/console/fees/waive", form=form)
    assert answer.status == 403
    assert "Not allowed" in await answer.text()

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, token=CUSTOMER_TOKEN)
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    for target in (customer_id, console.id("spec5")):  # another customer, and itself
        answer = await page.request.post("/console/fees/waive", form={
            **form, "csrf": csrf, "customer_id": target})
        assert answer.status == 403
    assert await unwaived(console, customer_id)
    assert await console.stack.query_rows(
        "SELECT count(*) FROM audit_log WHERE action = 'fee.waive' AND on_behalf_of = %s",
        customer_id) == [(0,)]


def main_of(html: str) -> str:
    found = re.search(r"<main\b.*?</main>", html, re.S)
    assert found, html
    return found.group(0)


async def test_waiving_for_an_unknown_customer_is_the_404_page(page, console) -> None:
    await sign_in(page)
    missing = await page.request.get("/console/customers/no-such-customer")
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = await page.request.post("/console/fees/waive", form={
        "csrf": csrf, "customer_id": "no-such-customer", "invoice": "INV-1",
        "reason": "typo"})
    assert answer.status == missing.status == 404
    # The customer page's own 404 (the same for a customer outside the scope).
    assert main_of(await answer.text()) == main_of(await missing.text())
    assert "Customer not found" in await answer.text()
    # A customer of the scope without that invoice: 404 too, as the API answers.
    answer = await page.request.post("/console/fees/waive", form={
        "csrf": csrf, "customer_id": console.id("feer1"), "invoice": "NOPE",
        "reason": "typo"})
    assert answer.status == 404
    assert "Invoice not found" in await answer.text()
    assert await unwaived(console, console.id("feer1"))


async def test_invoices_are_listed_newest_first_one_page_at_a_time(console) -> None:
    conn, customer_id = console.stack.conn, console.id("spec5")
    first = await invoices_page(conn, customer_id, before=None, limit=1)
    assert [i.number for i in first] == ["INV-06", "INV-05"]  # one shown, one more
    second = await invoices_page(conn, customer_id,
                                 before=(first[0].issued_at, first[0].number), limit=1)
    assert [i.number for i in second] == ["INV-05"]


async def test_an_unknown_console_address_is_the_consoles_404(page, console) -> None:
    await sign_in(page)
    response = await page.goto("/console/no/such/page")
    assert response.status == 404
    assert await page.inner_text("h1") == "Page not found"


async def test_dry_run_then_confirm_a_rerun(page, console: Console) -> None:
    customer_id = console.id("rerun")
    klass = (await console.stack.query_rows(
        "SELECT class_name FROM customers WHERE id = %s", customer_id))[0][0]
    # A policy change: 15.00 no longer exceeds the threshold.
    await console.stack.call(set_class, ClassChange(name=klass, threshold="20.00"), ADMIN)
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    await page.get_by_role("link", name="Re-run this customer").click()
    await page.get_by_label("Reason").fill("threshold raised to 20.00")
    await page.get_by_role("button", name="Dry run").click()

    summary = await page.inner_text("#dry-run-summary")
    assert "1 would change" in summary
    assert "collect → do_not_collect" in await page.inner_text("main")
    # The dry run changed nothing.
    assert await console.stack.service_state(customer_id) == "suspended"

    await page.get_by_role("button", name="Confirm the re-run").click()
    assert "is running as workflow" in await page.inner_text("#rerun-started")
    await page.get_by_role("link", name="Back to the customer").click()

    async def resumed(p: Any) -> bool:
        return await p.inner_text("#service-state") == "active"

    await reload_until(page, resumed, what="the re-run to resume the service")
    assert (await invoice_row(page, "INV-R1"))["Collection status"] == "do_not_collect"
    started = await console.stack.query_rows(
        "SELECT actor, reason FROM audit_log WHERE action = 'rerun.start'"
        " AND target = %s", f"customer:{customer_id}")
    assert started == [("ana-finance", "threshold raised to 20.00")]


async def test_resend_a_failed_mail(page, console: Console) -> None:
    customer_id = console.id("mail")
    fixed = f"mia-{customer_id}@example.com"
    await console.stack.call(set_customer, CustomerChange(id=customer_id, email=fixed), ADMIN)
    await sign_in(page)
    await page.get_by_role("link", name="Notifications").click()
    assert "Status failed" in await page.inner_text("#notifications caption")
    row = page.locator("#notifications tbody tr", has_text="Mia Mailer")
    assert "550" in await row.inner_text()
    await row.get_by_label("Reason").fill("address fixed by the customer")
    await row.get_by_role("button", name="Resend").click()

    assert re.search(r"Resent as .*:resend:1: sent", await flash(page)), await flash(page)
    assert len(console.mailbox.to(fixed)) == 1
    resent = await audit_rows(console, "notification.resend", customer_id)
    assert resent == [("ana-finance", "admin", customer_id, "address fixed by the customer")]


async def test_assign_an_unmatched_payment(page, console: Console) -> None:
    customer_id = console.id("assign")
    ghost = "ghost-" + customer_id.rsplit("-", 1)[1]
    await sign_in(page)
    await page.get_by_role("link", name="Unmatched payments").click()
    row = page.locator(f'#unmatched tr[data-payment="{ghost}"]')
    assert "$12.00" in await row.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "unmatched.png"), full_page=True)

    await row.get_by_label("Customer id").fill(customer_id)
    await row.get_by_label("Reason").fill("customer quoted the wrong reference")
    await row.get_by_role("button", name="Assign").click()

    assert f"assigned to {customer_id}" in await flash(page)
    assert await page.locator(f'#unmatched tr[data-payment="{ghost}"]').count() == 0
    await page.goto(f"/console/customers/{customer_id}")
    row_a1 = await invoice_row(page, "INV-A1")
    assert (row_a1["Remaining"], row_a1["Payment"]) == ("$0.00", "paid")
    assigned = await audit_rows(console, "unmatched.assign", customer_id)
    assert assigned == [("ana-finance", "admin", customer_id,
                         "customer quoted the wrong reference")]


# ------------------------------------------------------------------------------- scope
async def test_a_reseller_cannot_open_another_resellers_customer(page, console) -> None:
    await sign_in(page, token=R1_TOKEN)
    await page.goto("/console/customers")
    listed = [r.split("\t")[0] for r in await page.locator("tbody tr").all_inner_texts()]
    assert console.id("r1") in listed
    assert set(listed) <= {console.id("r1"), console.id("r1b"),
                           console.id("feer1")}  # only its own

    # Reads through the reseller realm are audited, on behalf of each customer shown.
    listed_reads = await audit_rows(console, "customers.search", console.id("r1"))
    assert ("rita", "reseller", console.id("r1"), "console read") in listed_reads

    own = await page.goto(f"/console/customers/{console.id('r1')}")
    assert own.status == 200
    assert await page.inner_text("h1") == "Customer of Rita"

    other = await page.goto(f"/console/customers/{console.id('r2')}")
    other_main = (await page.inner_text("main")).replace(console.id("r2"), "ID")
    missing = await page.goto("/console/customers/no-such-customer")
    missing_main = (await page.inner_text("main")).replace("no-such-customer", "ID")
    assert other.status == missing.status == 404
    assert other_main == missing_main  # the same page: nothing tells them apart
    # Actions are finance's: a reseller has none.
    assert await page.get_by_role("button", name="Post payment").count() == 0


async def test_a_customer_token_sees_only_itself(page, console: Console) -> None:
    await sign_in(page, token=CUSTOMER_TOKEN)
    assert page.url.endswith(f"/console/customers/{console.id('spec5')}")
    assert await page.inner_text("h1") == "Alice Example"
    response = await page.goto(f"/console/customers/{console.id('pay')}")
    assert response.status == 404


async def test_view_as_a_customer_is_audited_on_its_behalf(page, console: Console) -> None:
    customer_id = console.id("r1")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    before = len(await audit_rows(console, "customer.read", customer_id))
    await page.get_by_role("button", name="View as this customer").click()
    assert "Viewing as customer" in await page.inner_text(".banner")
    assert await page.get_by_role("button", name="Post payment").count() == 0
    other = await page.goto(f"/console/customers/{console.id('spec5')}")
    assert other.status == 404  # as the customer: nobody else exists
    reads = await audit_rows(console, "customer.read", customer_id)
    assert len(reads) == before + 1  # the page read as the customer, audited
    assert reads[-1][:3] == ("ana-finance", "admin", customer_id)


async def test_timeline_pages_lose_no_event_at_the_same_instant(console: Console) -> None:
    """The worked example's events share instants; small pages must still list each
    event exactly once, in the order of one big page."""
    customer_id = console.id("spec5")
    conn = console.stack.conn
    everything = await customer_timeline(conn, customer_id, before=None, limit=200)
    assert len(everything) > 8
    paged: list[Any] = []
    cursor = None
    while True:
        rows = await customer_timeline(conn, customer_id, before=cursor, limit=3)
        paged += rows[:3]
        if len(rows) <= 3:
            break
        cursor = (rows[2].at, rows[2].kind, rows[2].key)
    assert paged == everything


async def test_a_late_fee_is_on_the_timeline_and_pages_keep_it(console: Console) -> None:
    customer_id = console.id("feer1")
    conn = console.stack.conn
    everything = await customer_timeline(conn, customer_id, before=None, limit=200)
    fees = [(e.kind, e.title, e.amount, e.status) for e in everything if e.kind == "fee"]
    assert fees == [("fee", "INV-G1", 500, "charged")]
    paged: list[Any] = []
    cursor = None
    while True:
        rows = await customer_timeline(conn, customer_id, before=cursor, limit=2)
        paged += rows[:2]
        if len(rows) <= 2:
            break
        cursor = (rows[1].at, rows[1].kind, rows[1].key)
    assert paged == everything


async def test_viewing_as_a_customer_that_left_the_resellers_scope_is_404(page, console) -> None:
    customer_id = console.id("r1b")
    await sign_in(page, token=R1_TOKEN)
    await page.goto(f"/console/customers/{customer_id}")
    await page.get_by_role("button", name="View as this customer").click()
    assert await page.inner_text("h1") == "Moving customer of Rita"
    # The customer moves to another reseller: the session's "view as" gives no access.
    other = "r-two-" + customer_id.rsplit("-", 1)[1]
    await console.stack.call(set_customer, CustomerChange(id=customer_id, reseller_id=other),
                             ADMIN)
    gone = await page.goto(f"/console/customers/{customer_id}")
    assert gone.status == 404
    listing = await page.goto("/console/notifications")
    assert listing.status == 404


# ------------------------------------------------------------------------------ safety
async def test_a_form_posted_without_its_csrf_token_is_refused(page, console) -> None:
    customer_id = console.id("xss")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    form = page.locator("form", has=page.get_by_role("button", name="Post payment"))
    await form.locator('input[name="csrf"]').evaluate("input => input.remove()")
    await page.get_by_label("Amount (USD)").fill("1.00")
    await page.get_by_label("Reason", exact=True).first.fill("no token")
    async with page.expect_response(re.compile("/payments$")) as answer:
        await page.get_by_role("button", name="Post payment").click()
    assert (await answer.value).status == 403
    assert await page.inner_text("h1") == "Form refused"
    rows = await console.stack.query_rows("SELECT count(*) FROM payments WHERE customer_id = %s",
                                          customer_id)
    assert rows == [(0,)]


async def test_a_fee_waiver_without_its_csrf_token_is_refused(page, console) -> None:
    customer_id = console.id("feer1")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    invoice = page.locator('#invoices tr[data-invoice="INV-G1"]')
    await invoice.get_by_text("Waive fee…").click()
    await invoice.locator('input[name="csrf"]').evaluate("input => input.remove()")
    await invoice.get_by_label("Reason").fill("no token")
    async with page.expect_response(re.compile("/fees/waive$")) as answer:
        await invoice.get_by_role("button", name="Waive fee", exact=True).click()
    assert (await answer.value).status == 403
    assert await page.inner_text("h1") == "Form refused"
    assert await unwaived(console, customer_id)


async def test_a_script_in_a_customer_name_is_shown_as_text(page, console) -> None:
    await sign_in(page)
    await page.goto("/console/customers?q=" + "%3Cscript")
    assert XSS_NAME in await page.inner_text("tbody")
    await page.get_by_role("link", name=console.id("xss")).click()
    assert await page.inner_text("h1") == XSS_NAME
    assert await page.locator("main script").count() == 0
    # (The page fixture fails the test if any dialog, e.g. alert(1), opened.)


# ------------------------------------------------------------------------ accessibility
# Labels on every input, a visible focus ring, and WCAG AA text contrast, checked in the
# page itself (no audit library is downloaded).
A11Y_CHECKS = """
() => {
  const problems = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const label = (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`))
      || el.closest('label') || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby');
    if (!label || (label.textContent !== undefined && !label.textContent.trim()))
      problems.push('no label: ' + el.outerHTML.slice(0, 100));
  }
  const rgba = (s) => {
    const m = s.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  let checked = 0;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (seen.has(el)) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || box.width === 0 || box.right < 0) continue;
    const fg = rgba(style.color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    checked += 1;
    if (ratio < (large ? 3 : 4.5))
      problems.push(`contrast ${ratio.toFixed(2)}: "${node.textContent.trim().slice(0, 40)}"`);
  }
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  return {problems, checked};
}
"""

FOCUS_RING = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  return {tag: el.tagName, style: s.outlineStyle, width: parseFloat(s.outlineWidth)};
}
"""


async def check_page(page: Any, path: str) -> None:
    await page.goto(path)
    result = await page.evaluate(A11Y_CHECKS)
    assert result["checked"] > 5, path
    assert result["problems"] == [], (path, result["problems"])
    rings = []
    for _ in range(8):  # the first tab stops (until focus leaves the page): each shows a ring
        await page.keyboard.press("Tab")
        ring = await page.evaluate(FOCUS_RING)
        if ring is None:
            break
        rings.append(ring)
    assert len(rings) >= 3, (path, rings)
    assert all(r["style"] != "none" and r["width"] >= 2 for r in rings), (path, rings)


async def test_accessibility_basics_on_every_page(page, console: Console) -> None:
    await check_page(page, "/console/signin")
    await sign_in(page)
    for path in ("/console/customers", f"/console/customers/{console.id('spec5')}",
                 f"/console/customers/{console.id('mail')}",
                 f"/console/customers/{console.id('feer1')}",  # a fee and its waive form
                 f"/console/customers/{console.id('r2')}",  # the hold form
                 "/console/unmatched?assigned=1",
                 "/console/notifications", "/console/notifications?status=sent",
                 "/console/audit", "/console/reruns", "/console/customers/no-such-one"):
        await check_page(page, path)


async def test_audit_log_filters(page, console: Console) -> None:
    customer_id = console.id("spec5")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")  # writes a customer.read record
    await page.goto("/console/audit")
    await page.get_by_label("Customer id").fill(customer_id)
    await page.get_by_label("Action").select_option("customer.read")
    await page.get_by_role("button", name="Filter").click()
    rows = await page.locator("#audit tbody tr").all_inner_texts()
    assert rows and all("customer.read" in r and customer_id in r for r in rows)
    await page.goto("/console/audit?action=customer.create&customer=" + customer_id)
    assert len(await page.locator("#audit tbody tr").all_inner_texts()) == 1
