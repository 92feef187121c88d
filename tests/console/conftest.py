"""The finance console in a real browser: Debian's chromium driven by Playwright, against the
API served by uvicorn on a real port, on the real stack (PostgreSQL, the Temporal dev
server of the session, a worker, an SMTP server).

Everything heavy is started once per session: one database, one worker, one API server,
one browser. Each test gets a fresh browser context (no cookies) and its own customers,
seeded once in ``console`` below.

Chromium: the system's ``/usr/bin/chromium`` (Debian's package). When it is missing, the
session installs it with apt-get (``make test`` does the same first; a fresh machine has
apt but no browser). Nothing is ever downloaded by Playwright itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller

from api.app import create_app
from db.customers import NewCustomer
from db.subscriptions import AccountSpec
from operations.classes import ClassChange, set_class
from operations.customers import add
from operations.feed import (
    CustomerChange,
    SubscriptionInput,
    put_account_record,
    put_subscription_record,
    set_customer,
)
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from settings import ApiIdentity
from tests.conftest import _drop, create_database, with_database
from tests.support.ports import free_port
from tests.support.stack import ADMIN, Stack, running_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

ADMIN_TOKEN, R1_TOKEN, R2_TOKEN, CUSTOMER_TOKEN = (
    "tok-console-admin", "tok-console-r1", "tok-console-r2", "tok-console-customer")
REFUSED_DOMAIN = "refused.example"  # the SMTP server refuses every recipient there (550)
XSS_NAME = "<script>alert(1)</script>"


# ------------------------------------------------------------------------------ chromium
def ensure_chromium() -> str:
    """``/usr/bin/chromium``, installed from Debian's packages when missing."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(f"{CHROMIUM} is missing and there is no apt-get to install it with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends",
                                   "chromium"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900,
                              check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    path = ensure_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


# ---------------------------------------------------------------------------------- smtp
@dataclass
class Mailbox:
    """What the console's SMTP server accepted (recipients at REFUSED_DOMAIN get 550)."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address.endswith("@" + REFUSED_DOMAIN):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        with self.box.lock:
            self.box.messages.append(message)  # type: ignore[arg-type]
        return "250 2.0.0 OK queued"


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(host="127.0.0.1", port=free_port())
    controller = Controller(_Handler(box), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# ---------------------------------------------------------------------------- the stack
@dataclass
class Console:
    """The running console and the customers seeded for the tests (ids are unique per
    session: the Temporal server is shared with the rest of the suite)."""

    url: str
    stack: Stack
    mailbox: Mailbox
    ids: dict[str, str]

    def id(self, name: str) -> str:
        return self.ids[name]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Inside pytest: leave Ctrl-C to pytest, not to this server.
        yield


@pytest.fixture(scope="session")
async def console(temporal_env, pg_admin_url: str, template_database: str,
                  mailbox: Mailbox) -> AsyncIterator[Console]:
    name = create_database(pg_admin_url, template_database)
    database_url = with_database(pg_admin_url, name)
    async with running_stack(temporal_env, database_url, mailbox.host, mailbox.port) as stack:
        suffix = uuid.uuid4().hex[:6]
        ids = await seed(stack, suffix)
        tokens = {ADMIN_TOKEN: ApiIdentity("ana-finance", "admin"),
                  R1_TOKEN: ApiIdentity("rita", "reseller", f"r-one-{suffix}"),
                  R2_TOKEN: ApiIdentity("rob", "reseller", f"r-two-{suffix}"),
                  CUSTOMER_TOKEN: ApiIdentity("alice", "customer", ids["spec5"])}
        settings = stack.settings.model_copy(update={"api_tokens": tokens})
        app = create_app(settings, client=stack.client)
        port = free_port()
        server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="on"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
            await asyncio.sleep(0.05)
        try:
            yield Console(url=f"http://127.0.0.1:{port}", stack=stack, mailbox=mailbox,
                          ids=ids)
        finally:
            server.should_exit = True
            await serving
    _drop(pg_admin_url, name)


async def seed(stack: Stack, suffix: str) -> dict[str, str]:
    """The customers of the console tests, in the states they need."""
    ids = {key: f"c-{key}-{suffix}" for key in (
        "spec5", "pay", "rev", "rerun", "mail", "assign", "r1", "r1b", "r2", "xss", "fee",
        "feer1", "hold")}
    t0 = datetime.now(UTC).replace(microsecond=0)
    await stack.call(set_class, ClassChange(
        name="EasyCall", currency="USD", threshold="10.00", from_name="EasyCall",
        from_address="no-reply@easycall.com", reply_to="support@easycall.com"), ADMIN)
    await stack.call(set_class, ClassChange(name=f"Rerun-{suffix}", currency="USD",
                                            threshold="10.00"), ADMIN)
    # Its own class: a late fee on EasyCall would charge the other tests' customers too.
    await stack.call(set_class, ClassChange(name=f"Fees-{suffix}", currency="USD",
                                            threshold="10.00", late_fee="5.00"), ADMIN)

    async def customer(key: str, name: str, email: str, klass: str = "EasyCall",
                       reseller: str | None = None) -> None:
        await stack.call(add, NewCustomer(id=ids[key], name=name, email=email,
                                          class_name=klass), ADMIN)
        if reseller is not None:
            await stack.call(set_customer, CustomerChange(id=ids[key], reseller_id=reseller),
                             ADMIN)

    async def invoice(key: str, number: str, charges: str, issued: datetime,
                      due: datetime) -> None:
        await stack.call(issue_invoice, IssueRequest(
            customer_id=ids[key], number=number, charges=charges,
            issued=issued.isoformat(), due=due.date().isoformat()), ADMIN)

    async def state_is(key: str, state: str) -> None:
        async def reached() -> bool:
            return await stack.service_state(ids[key]) == state
        await stack.wait_for(reached, timeout=60, what=f"{ids[key]} {state}")

    # SPEC 5: May 10.00 (do_not_collect), June 10.00 on top (20.00 collect, past due:
    # suspended at once), then 15.00: May paid, June 5.00 do_not_collect, service back.
    await customer("spec5", "Alice Example", f"alice-{suffix}@example.com")
    await invoice("spec5", "INV-05", "10.00", t0 - timedelta(days=40), t0 - timedelta(days=10))
    await invoice("spec5", "INV-06", "10.00", t0 - timedelta(days=5), t0 - timedelta(days=1))
    await state_is("spec5", "suspended")
    await stack.call(post_payment, PaymentRequest(
        processor="card", payment_id=f"pay-15-{suffix}", customer_id=ids["spec5"],
        amount="15.00", currency="USD", received_at=None), None)
    # SPEC 2.8's seed: three lines with Essentials 20.00, a Netflix bonus free for the
    # month, one HBO 15.00: 75.00 expected this month.
    month_end = (t0.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    for n in (1, 2, 3):
        account = f"{ids['spec5']}-line{n}"
        await stack.call(put_account_record, AccountSpec(id=account, customer_id=ids["spec5"],
                                                         name=f"Line {n}"), ADMIN)
        await stack.call(put_subscription_record, SubscriptionInput(
            id=f"{account}-ess", account_id=account, product="Essentials", fee="20.00",
            starts="2026-01-01"), ADMIN)
    await stack.call(put_subscription_record, SubscriptionInput(
        id=f"{ids['spec5']}-netflix", account_id=f"{ids['spec5']}-line1", product="Netflix",
        fee="10.00", starts="2026-01-01", free_until=month_end.date().isoformat()), ADMIN)
    await stack.call(put_subscription_record, SubscriptionInput(
        id=f"{ids['spec5']}-hbo", account_id=f"{ids['spec5']}-line2", product="HBO",
        fee="15.00", starts="2026-01-01"), ADMIN)

    # Owes 50.00, past due: suspended until someone pays.
    await customer("pay", "Paula Payer", f"paula-{suffix}@example.com")
    await invoice("pay", "INV-P1", "50.00", t0 - timedelta(days=20), t0 - timedelta(days=2))

    # Paid its 30.00 (past due) by card: the test reverses that payment.
    await customer("rev", "Ravi Reversal", f"ravi-{suffix}@example.com")
    await invoice("rev", "INV-V1", "30.00", t0 - timedelta(days=20), t0 - timedelta(days=2))
    await stack.call(post_payment, PaymentRequest(
        processor="card", payment_id=f"chargeback-me-{suffix}", customer_id=ids["rev"],
        amount="30.00", currency="USD", received_at=None), None)

    # Owes 15.00 in a class with threshold 10.00 (collect, suspended); the test raises the
    # threshold to 20.00 and re-runs.
    await customer("rerun", "Rene Rerun", f"rene-{suffix}@example.com", f"Rerun-{suffix}")
    await invoice("rerun", "INV-R1", "15.00", t0 - timedelta(days=20), t0 - timedelta(days=2))

    # Its address is refused by the SMTP server: its invoice_issued mail fails (550).
    await customer("mail", "Mia Mailer", f"mia-{suffix}@{REFUSED_DOMAIN}")
    await invoice("mail", "INV-M1", "5.00", t0 - timedelta(days=1), t0 + timedelta(days=20))

    # Owes 12.00; a payment of 12.00 arrives for a customer id nobody knows.
    await customer("assign", "Asa Assign", f"asa-{suffix}@example.com")
    await invoice("assign", "INV-A1", "12.00", t0 - timedelta(days=3), t0 + timedelta(days=20))
    await stack.call(post_payment, PaymentRequest(
        processor="bank", payment_id=f"ghost-{suffix}", customer_id=f"ghost-{suffix}",
        amount="12.00", currency="USD", received_at=None), None)

    await customer("r1", "Customer of Rita", f"r1-{suffix}@example.com",
                   reseller=f"r-one-{suffix}")
    await customer("r1b", "Moving customer of Rita", f"r1b-{suffix}@example.com",
                   reseller=f"r-one-{suffix}")
    await customer("r2", "Customer of Rob", f"r2-{suffix}@example.com",
                   reseller=f"r-two-{suffix}")
    await customer("xss", XSS_NAME, f"xss-{suffix}@example.com")
    # Put on hold and released by a test (SPEC 2.11); nothing owed, so nothing else moves.
    await customer("hold", "Hal Hold", f"hal-{suffix}@example.com")

    # 20.00 due in two days, in a class with a 5.00 late fee (SPEC 2.9): at D (the
    # workflows skip time, as in tests/api/test_fee_waiver.py) the fee is charged, 25.00
    # remaining, then the suspension. "fee" is waived by a test; "feer1", a customer of
    # Rita's, is only ever refused (the reseller, a customer token, a form without CSRF).
    await customer("fee", "Fay Fee", f"fay-{suffix}@example.com", f"Fees-{suffix}")
    await customer("feer1", "Fee customer of Rita", f"feer1-{suffix}@example.com",
                   f"Fees-{suffix}", reseller=f"r-one-{suffix}")
    for key, number in (("fee", "INV-F1"), ("feer1", "INV-G1")):
        await invoice(key, number, "20.00", t0, t0 + timedelta(days=2))

    await state_is("pay", "suspended")
    await state_is("rerun", "suspended")
    for key in ("fee", "feer1"):
        async def fee_charged(key: str = key) -> bool:
            rows = await stack.query_rows(
                "SELECT count(*) FROM late_fees WHERE customer_id = %s AND waived_at IS NULL",
                ids[key])
            return rows == [(1,)]
        await stack.wait_for(fee_charged, timeout=60, what=f"the late fee of {ids[key]}")
        # Wait for the suspension too, so the pages do not change under the tests.
        await state_is(key, "suspended")

    async def mail_failed() -> bool:
        return any(kind == "invoice_issued" and status == "failed"
                   for _, kind, status in await stack.notifications(ids["mail"]))
    await stack.wait_for(mail_failed, timeout=60, what="the refused invoice_issued mail")
    return ids


# ----------------------------------------------------------------------------- browser
@pytest.fixture
async def page(browser, console: Console) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies) and page; any script dialog fails the test."""
    context = await browser.new_context(base_url=console.url, locale="en-US")
    context.set_default_timeout(15_000)
    opened = await context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: dialogs.append(dialog.message))
    try:
        yield opened
    finally:
        await context.close()
    assert dialogs == [], f"a script ran in the page: {dialogs}"


async def sign_in(page: Any, token: str = ADMIN_TOKEN, language: str = "en") -> None:
    await page.goto("/console/signin")
    await page.get_by_label("API token").fill(token)
    await page.get_by_label("Language for money and dates").select_option(language)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `make test`'s two processes, the console's tests share one process: one
    browser and one seeded stack (session fixtures), not one of each per process."""
    for item in items:
        if "tests/console/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("console"))
