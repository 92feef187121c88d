"""`dunning dev --demo`: SPEC 5's worked example, played in about a minute.

Two classes (EasyCall in USD/English, MegaStar in BRL/Brazilian Portuguese) with short
policies, one new customer in each (ids carry a run suffix, so every start plays a fresh
story on top of the kept data). For each customer: a May invoice already past due for
10.00 (amount due 10.00 = threshold → do_not_collect, service kept), a June invoice for
10.00 due in 25 s (amount due 20.00 → collect): reminder, overdue notice, suspension
warning, suspension; then a 15.00 payment pays May and leaves 5.00 on June →
do_not_collect → the service resumes at once.

Then the past-due chain of SPEC 2.9-2.11 (``devstack.chain``): a policy in days played in
seconds, the customer's workflow clocks moved with `dunning clock advance`.

Everything goes through the `dunning` CLI of SPEC 4.2, as an operator would type it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from devstack.chain import PastDueChain
from devstack.processes import console

ACTOR = ["--actor", "demo", "--reason", "dunning dev --demo"]
# Short policy so the whole story fits in about a minute (SPEC 2.5 semantics unchanged).
REMINDERS, WARNING, GRACE = "20s", "10s", "30s"
JUNE_DUE_IN = timedelta(seconds=25)  # reminder at +5 s, overdue +25 s, warning +45 s, S +55 s
STORY_TIMEOUT = 180.0  # seconds to reach suspension before giving up
RESUME_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0
POLL_SECONDS = 1.5
MAIL_GRACE = 10.0  # after resumption, keep listing mails this long (receipt, resumed)


class DemoError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoUrls:
    temporal_ui: str
    mail: str
    api: str


@dataclass(frozen=True)
class DemoClass:
    name: str
    currency: str
    from_name: str
    from_address: str
    reply_to: str
    language: str
    customer_prefix: str
    customer_name: str
    email_domain: str

    def class_args(self) -> list[str]:
        return [
            "class", "set", self.name,
            "--currency", self.currency,
            "--threshold", "10.00",
            "--from-address", self.from_address,
            "--from-name", self.from_name,
            "--reply-to", self.reply_to,
            "--language", self.language,
            "--timezone", "UTC",
            "--reminders", REMINDERS,
            "--warning", WARNING,
            "--grace", GRACE,
        ]


CLASSES = (
    DemoClass("EasyCall", "USD", "EasyCall", "no-reply@easycall.com", "support@easycall.com",
              "en", "easycall", "Alice Example", "example.com"),
    DemoClass("MegaStar", "BRL", "MegaStar", "no-reply@megastar.com", "support@megastar.com",
              "pt-BR", "megastar", "João da Silva", "example.com.br"),
)


@dataclass
class Story:
    """One customer's run through the example, and what we have already reported."""

    klass: DemoClass
    customer_id: str
    email: str
    payment_id: str
    last_state: str | None = None
    last_invoices: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    seen_mail: set[str] = field(default_factory=set)
    paid: bool = False
    done: bool = False


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Demo:
    def __init__(
        self,
        cli: Sequence[str],
        env: Mapping[str, str],
        urls: DemoUrls,
        stop: threading.Event,
        out: Callable[[str], None] | None = None,
        suffix: str | None = None,
        poll_seconds: float = POLL_SECONDS,
        mail_grace: float = MAIL_GRACE,
        past_due_chain: bool = True,
    ) -> None:
        self.past_due_chain = past_due_chain
        self.poll_seconds = poll_seconds
        self.mail_grace = mail_grace
        self.cli = list(cli)
        self.env = dict(env)
        self.urls = urls
        self.stop = stop
        self.out = out or (lambda line: console(f"    demo | {line}"))
        self.suffix = suffix or datetime.now(UTC).strftime("%m%d-%H%M%S")
        self._current: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    # -- the CLI ---------------------------------------------------------------------------

    def dunning(self, *args: str, parse: bool = False) -> Any:
        """Run one `dunning` command; its JSON output when ``parse``."""
        if self.stop.is_set():
            raise DemoError("stopped")
        argv = [*self.cli, *args, *(["--json"] if parse else [])]
        with self._lock:
            self._current = subprocess.Popen(  # noqa: S603 (our own argv, no shell)
                argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, start_new_session=True,
            )
        try:
            stdout, stderr = self._current.communicate(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._current.kill()
            self._current.communicate()
            raise DemoError(f"`dunning {' '.join(args)}` did not finish in time") from None
        finally:
            code = self._current.returncode
            with self._lock:
                self._current = None
        if code != 0:
            message = (stderr.strip().splitlines() or [f"exit status {code}"])[-1]
            raise DemoError(f"`dunning {' '.join(args)}` failed: {message}")
        return json.loads(stdout) if parse else stdout

    def cancel(self) -> None:
        """Stop at once, killing the command in flight (called on Ctrl-C)."""
        self.stop.set()
        with self._lock:
            if self._current is not None and self._current.poll() is None:
                self._current.kill()

    # -- the story -------------------------------------------------------------------------

    def run(self) -> bool:
        watcher = threading.Thread(target=self._cancel_on_stop, daemon=True)
        watcher.start()
        try:
            self._play()
            return True
        except DemoError as exc:
            if not self.stop.is_set():
                self.out(f"the demo stopped: {exc}")
                self.out("the stack keeps running; see the logs named above")
            return False

    def _cancel_on_stop(self) -> None:
        self.stop.wait()
        self.cancel()

    def _play(self) -> None:
        stories = [
            Story(
                c,
                customer_id=f"{c.customer_prefix}-{self.suffix}",
                email=f"{c.customer_prefix}-{self.suffix}@{c.email_domain}",
                payment_id=f"demo-pay-{c.customer_prefix}-{self.suffix}",
            )
            for c in CLASSES
        ]
        self.out(f"loading the worked example (SPEC 5), run {self.suffix}")
        for story in stories:
            c = story.klass
            self.dunning(*c.class_args(), *ACTOR)
            self.dunning(
                "customer", "add", story.customer_id,
                "--name", c.customer_name, "--email", story.email, "--class", c.name, *ACTOR,
            )
            self.out(
                f"class {c.name} ({c.currency}, threshold 10.00, reminders {REMINDERS}, "
                f"warning {WARNING}, grace {GRACE}); customer {story.customer_id} <{story.email}>"
            )
        now = datetime.now(UTC)
        for story in stories:
            self._issue(story, "INV-05", now - timedelta(minutes=2), now - timedelta(minutes=1))
            self._issue(story, "INV-06", now, now + JUNE_DUE_IN)
        self.out(
            "May: 10.00 due (= threshold, do_not_collect: service kept). June: 10.00 new, "
            f"20.00 due at {_iso(now + JUNE_DUE_IN)} (collect)"
        )
        self.out(
            "expect: reminder ~5 s, overdue ~25 s, warning ~45 s, suspension ~55 s; then a "
            "15.00 payment pays May, leaves 5.00 on June and resumes service"
        )
        self._follow(stories)
        self._summary(stories)
        if self.past_due_chain:
            chain = PastDueChain(self.dunning, self.out, ACTOR, self.suffix).play()
            self._links(chain)

    def _issue(self, story: Story, number: str, issued: datetime, due: datetime) -> None:
        doc = self.dunning(
            "invoice", "issue", "--customer", story.customer_id, "--number", number,
            "--charges", "10.00", "--issued", _iso(issued), "--due", _iso(due), *ACTOR,
            parse=True,
        )
        self.out(
            f"{story.customer_id}: issued {number}, amount due {doc.get('amount_due')} "
            f"{doc.get('currency', story.klass.currency)} → {doc.get('collection_status')}"
        )

    def _follow(self, stories: list[Story]) -> None:
        started = time.monotonic()
        while not all(s.done for s in stories):
            if self.stop.wait(self.poll_seconds):
                raise DemoError("stopped")
            mail = self._mail()
            for story in stories:
                if story.done:
                    continue
                status = self.dunning("status", story.customer_id, parse=True)
                self._report(story, status, mail)
                state = status.get("service_state")
                if state == "suspended" and not story.paid:
                    self._pay(story)
                elif story.paid and state == "active":
                    story.done = True
            elapsed = time.monotonic() - started
            waiting_for_suspension = any(not s.paid for s in stories)
            if waiting_for_suspension and elapsed > STORY_TIMEOUT:
                raise DemoError(
                    f"no suspension after {STORY_TIMEOUT:.0f}s (is the worker running?)"
                )
            if elapsed > STORY_TIMEOUT + RESUME_TIMEOUT:
                raise DemoError("the service did not resume after the payment")
        # The receipts and resumption mails follow within seconds: show them too.
        deadline = time.monotonic() + self.mail_grace
        while time.monotonic() < deadline and not self.stop.wait(1):
            mail = self._mail()
            for story in stories:
                self._report_mail(story, mail)

    def _pay(self, story: Story) -> None:
        doc = self.dunning(
            "payment", "post", "--customer", story.customer_id, "--amount", "15.00",
            "--payment-id", story.payment_id, "--processor", "demo", *ACTOR, parse=True,
        )
        story.paid = True
        self.out(
            f"{story.customer_id}: payment 15.00 {story.klass.currency} posted "
            f"({doc.get('status')}); service {doc.get('service_state')}, "
            f"balance {doc.get('balance')}"
        )

    def _report(self, story: Story, status: dict[str, Any], mail: list[dict[str, Any]]) -> None:
        state = status.get("service_state")
        if state != story.last_state:
            if story.last_state is not None:
                self.out(f"{story.customer_id}: service {story.last_state} → {state}")
            story.last_state = state
        for inv in status.get("invoices", []):
            now = (inv.get("remaining"), inv.get("collection_status"), inv.get("payment_status"))
            if story.last_invoices.get(inv.get("number")) != now:
                story.last_invoices[inv.get("number")] = now
                self.out(
                    f"{story.customer_id}: {inv.get('number')} remaining {now[0]}, {now[1]}, "
                    f"{now[2]}{', overdue' if inv.get('overdue') else ''}"
                )
        self._report_mail(story, mail)

    def _report_mail(self, story: Story, mail: list[dict[str, Any]]) -> None:
        for message in reversed(mail):  # the API lists newest first
            if story.email not in message.get("recipients", []) + [message.get("to", "")]:
                continue
            if message["id"] in story.seen_mail:
                continue
            story.seen_mail.add(message["id"])
            reply_to = message.get("reply_to") or "-"
            self.out(
                f"{story.customer_id}: mail “{message.get('subject')}” from "
                f"{message.get('from')} (Reply-To {reply_to})"
            )

    def _mail(self) -> list[dict[str, Any]]:
        try:
            response = httpx.get(f"{self.urls.mail}/api/messages", timeout=5)
            response.raise_for_status()
            return list(response.json())
        except (httpx.HTTPError, ValueError):
            return []  # the story is in the status; mail is a bonus

    def _links(self, customer_id: str) -> None:
        query = quote(f'CustomerId="{customer_id}"')
        self.out(f"    Temporal UI: {self.urls.temporal_ui}/namespaces/default/workflows?"
                 f"query={query}")
        self.out(f"    Console: {self.urls.api}/console/customers/"
                 f"{quote(customer_id, safe='')}")

    def _summary(self, stories: list[Story]) -> None:
        self.out("done. What happened, per customer:")
        for story in stories:
            status = self.dunning("status", story.customer_id, parse=True)
            self.out(
                f"  {story.customer_id} ({story.klass.name}): service "
                f"{status.get('service_state')}, balance {status.get('balance')} "
                f"{status.get('currency')}, {len(story.seen_mail)} mails"
            )
            for inv in status.get("invoices", []):
                self.out(
                    f"    {inv.get('number')}: amount due {inv.get('amount_due')}, remaining "
                    f"{inv.get('remaining')}, {inv.get('payment_status')}, "
                    f"{inv.get('collection_status')}"
                )
            self._links(story.customer_id)
        self.out(
            f"mails: {self.urls.mail}  ·  in the Temporal UI, filter by CustomerId "
            f"(e.g. CustomerId=\"{stories[0].customer_id}\")"
        )
