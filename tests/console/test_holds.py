"""The console's hold / release actions (SPEC 2.11, 4.6) in a real browser: through
``operations.holds`` as ``dunning hold`` and ``PUT/DELETE /v1/customers/{id}/hold``, admin
only, CSRF first, audited by the customer's workflow."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import CUSTOMER_TOKEN, R1_TOKEN, Console, sign_in


async def flash(page: Any) -> str:
    return (await page.locator(".flash").all_inner_texts() or [""])[-1]


async def audit_rows(console: Console, action: str, customer_id: str) -> list[tuple[Any, ...]]:
    return await console.stack.query_rows(
        "SELECT actor, realm, on_behalf_of, reason, request_id IS NOT NULL FROM audit_log"
        " WHERE action = %s AND on_behalf_of = %s ORDER BY id", action, customer_id)


async def held(console: Console, customer_id: str) -> bool:
    rows = await console.stack.query_rows(
        "SELECT hold_placed_at IS NOT NULL FROM customers WHERE id = %s", customer_id)
    return rows == [(True,)]


async def test_place_a_hold_with_a_reason_then_release_it(page, console: Console) -> None:
    customer_id = console.id("hold")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    assert await page.locator("#hold").count() == 0
    hold = page.locator("form", has=page.get_by_role("button", name="Put on hold"))
    await hold.get_by_label("Until", exact=False).fill("2099-01-15")
    await hold.get_by_label("Reason", exact=True).fill("disputed invoice, under review")
    await hold.get_by_role("button", name="Put on hold").click()

    assert "Hold placed until" in await flash(page)
    shown = await page.inner_text("#hold")
    assert "disputed invoice, under review" in shown, shown
    assert "ana-finance" in shown and "2099" in shown, shown
    assert await held(console, customer_id)
    assert await audit_rows(console, "customer.hold", customer_id) == [
        ("ana-finance", "admin", customer_id, "disputed invoice, under review", True)]

    release = page.locator("form", has=page.get_by_role("button", name="Release hold"))
    await release.get_by_label("Reason", exact=True).fill("review done, invoice stands")
    await release.get_by_role("button", name="Release hold").click()

    assert "Hold released." in await flash(page)
    assert await page.locator("#hold").count() == 0
    assert await page.get_by_role("button", name="Release hold").count() == 0
    assert not await held(console, customer_id)
    assert await audit_rows(console, "customer.hold_release", customer_id) == [
        ("ana-finance", "admin", customer_id, "review done, invoice stands", True)]
    assert len(await audit_rows(console, "customer.hold", customer_id)) == 1


async def test_a_hold_with_an_invalid_until_is_said_and_not_placed(page, console) -> None:
    customer_id = console.id("r2")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    hold = page.locator("form", has=page.get_by_role("button", name="Put on hold"))
    await hold.get_by_label("Until", exact=False).fill("2026-13-01")
    await hold.get_by_label("Reason", exact=True).fill("typo in the date")
    await hold.get_by_role("button", name="Put on hold").click()
    assert "Hold not placed" in await flash(page)
    assert not await held(console, customer_id)


async def test_a_reseller_or_customer_cannot_hold_or_release(page, console: Console) -> None:
    customer_id = console.id("r1")
    await sign_in(page, token=R1_TOKEN)
    await page.goto(f"/console/customers/{customer_id}")
    assert await page.get_by_role("button", name="Put on hold").count() == 0
    assert await page.get_by_role("button", name="Release hold").count() == 0

    # Sent anyway, with the session's own CSRF token: 403, as the API's admin_only.
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    form = {"csrf": csrf, "customer_id": customer_id, "reason": "trying"}
    for action in ("/console/hold", "/console/hold/release"):
        answer = await page.request.post(action, form=form)
        assert answer.status == 403, action
        assert "Not allowed" in await answer.text()

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, token=CUSTOMER_TOKEN)
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    for target in (customer_id, console.id("spec5")):  # another customer, and itself
        answer = await page.request.post("/console/hold", form={
            **form, "csrf": csrf, "customer_id": target})
        assert answer.status == 403
    assert not await held(console, customer_id)
    assert await audit_rows(console, "customer.hold", customer_id) == []


def main_of(html: str) -> str:
    found = re.search(r"<main\b.*?</main>", html, re.S)
    assert found, html
    return found.group(0)


async def test_holding_an_unknown_customer_is_the_404_page(page, console) -> None:
    await sign_in(page)
    missing = await page.request.get("/console/customers/no-such-customer")
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    for action in ("/console/hold", "/console/hold/release"):
        answer = await page.request.post(action, form={
            "csrf": csrf, "customer_id": "no-such-customer", "reason": "typo"})
        assert answer.status == missing.status == 404
        assert main_of(await answer.text()) == main_of(await missing.text())


async def test_a_hold_without_its_csrf_token_is_refused(page, console) -> None:
    customer_id = console.id("r2")
    await sign_in(page)
    await page.goto(f"/console/customers/{customer_id}")
    hold = page.locator("form", has=page.get_by_role("button", name="Put on hold"))
    await hold.locator('input[name="csrf"]').evaluate("input => input.remove()")
    await hold.get_by_label("Reason", exact=True).fill("no token")
    async with page.expect_response(re.compile("/hold$")) as answer:
        await hold.get_by_role("button", name="Put on hold").click()
    assert (await answer.value).status == 403
    assert await page.inner_text("h1") == "Form refused"
    assert not await held(console, customer_id)
