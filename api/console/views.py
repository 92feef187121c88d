"""The finance console's pages and actions (SPEC 4.6), served by ``dunning api`` at /console.

Server-rendered (Jinja2, autoescaped), plain HTML forms, no JavaScript needed and nothing
loaded from elsewhere. Every read and action goes through ``operations`` (the same
functions as the CLI and the API) and is scoped exactly as the API scopes bearer tokens
(``api.scopes``): admin sees everything, a reseller its customers, a customer itself; a
customer outside the scope gets the same 404 page as one that does not exist. Reads
through the admin and reseller realms are audited ``on_behalf_of`` the customer.

Actions (post or reverse a payment, resend a mail, re-run, assign an unmatched payment,
waive a late fee, put a customer on hold or release it) are finance's: realm admin only, as
``POST /v1/reruns`` is. Each needs a reason and writes its audit record through the
operation it calls. Every POST carries the session's
CSRF token, checked before anything else.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from psycopg import AsyncConnection
from temporalio.service import RPCError

from api.console import formatting
from api.console.session import (
    COOKIE,
    LANGUAGES,
    Session,
    console_key,
    csrf_ok,
    identity_for_digest,
    identity_for_token,
    preferred_language,
    save,
    token_digest,
)
from api.deps import audit_info, run_operation
from api.scopes import in_scope, list_filter, read_audit
from db.console import AuditFilter
from db.errors import DbError, UnknownCustomer, UnknownPayment
from domain.money import MoneyError
from operations import console as reads
from operations.context import Context
from operations.errors import NotFound, OperationError
from operations.fees import waive_fee
from operations.holds import place_hold, release_hold
from operations.notifications import resend
from operations.payments import PaymentRequest, assign_unmatched, post_payment, reverse_payment
from operations.reruns import start_rerun
from settings import ApiIdentity, Settings

log = logging.getLogger("dunning.console")

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STYLESHEET = HERE / "static" / "console.css"
PREFIX = "/console"
READ_REASON = "console read"
MAX_REASON = 500
MAX_FIELD = 200
DRY_RUN_WAIT_SECONDS = 20.0
# A class's dry run may change thousands of customers: the page shows this many, the
# workflow's result holds them all.
DRY_RUN_SHOWN = 200
# The realms a person may sign in with. `system` is the billing system's feed: a machine,
# not a person, and its reads are not audited, so it has no console.
CONSOLE_REALMS = frozenset({"admin", "reseller", "customer"})

T = TypeVar("T")
router = APIRouter(prefix=PREFIX, include_in_schema=False)


# ------------------------------------------------------------------------------ refusals
class Refusal(Exception):
    """Answered with the console's error page (404, 403, 400, 503)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def no_customer(customer_id: str) -> Refusal:
    # Exactly the same page for "does not exist" and "not yours" (SPEC 2.8).
    return Refusal(404, "Customer not found", f"There is no customer {customer_id!r}.")


def forbidden(what: str = "This needs a finance (admin) sign-in.") -> Refusal:
    return Refusal(403, "Not allowed", what)


CSRF_REFUSED = Refusal(403, "Form refused", "This form was not sent from this console "
                       "session (its security token is missing or wrong). Reload the page "
                       "and send it again.")


# ------------------------------------------------------------------------------- viewer
@dataclass
class Viewer:
    """Who is looking: ``identity`` signed in; ``view`` is what the pages are scoped by
    (the same, or the customer an admin or reseller views the console as)."""

    identity: ApiIdentity
    view: ApiIdentity
    session: Session

    @property
    def can_act(self) -> bool:
        return self.identity.realm == "admin" and self.session.as_customer is None

    @property
    def language(self) -> str:
        return self.session.language


def _key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "console_key", None) is None:
        state.console_key = console_key(state.settings)
    return state.console_key  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def load_session(request: Request) -> Session | None:
    return Session.decode(_key(request), request.cookies.get(COOKIE))


def viewer_of(request: Request, session: Session | None) -> Viewer | None:
    if session is None or session.digest is None:
        return None
    identity = identity_for_digest(_key(request), session.digest, _settings(request).api_tokens)
    if identity is None or identity.realm not in CONSOLE_REALMS:
        return None
    view = identity
    if session.as_customer is not None:
        view = ApiIdentity(identity.actor, "customer", session.as_customer)
    return Viewer(identity, view, session)


async def sees(conn: AsyncConnection, viewer: Viewer, customer_id: str) -> bool:
    """The customer is in the viewer's scope; while viewing as a customer, also in the
    scope of who signed in (a reseller's customer that moved to another reseller since is
    out of it, whatever the session says)."""
    if not await in_scope(conn, viewer.view, customer_id):
        return False
    return viewer.session.as_customer is None or await in_scope(conn, viewer.identity,
                                                                customer_id)


def signed_in(request: Request) -> Viewer:
    viewer = viewer_of(request, load_session(request))
    if viewer is None:
        raise SignInFirst(request.url.path + (f"?{request.url.query}" if request.url.query
                                              else ""))
    return viewer


class SignInFirst(Exception):
    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


async def posted(request: Request) -> tuple[dict[str, str], Viewer]:
    """The form of a POST by a signed-in viewer, its CSRF token checked first."""
    form = await form_of(request)
    session = load_session(request)
    if not csrf_ok(session, form.get("csrf")):
        raise CSRF_REFUSED
    viewer = viewer_of(request, session)
    if viewer is None:
        raise SignInFirst(PREFIX)
    return form, viewer


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form (the only kind the console sends), first value of each field."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def admin(viewer: Viewer) -> None:
    if not viewer.can_act:
        raise forbidden()


def field(form: dict[str, str], name: str, label: str, *, required: bool = True,
          limit: int = MAX_FIELD) -> str:
    value = form.get(name, "").strip()
    if required and not value:
        raise Refusal(400, "Missing input", f"{label} is required.")
    if len(value) > limit:
        raise Refusal(400, "Input too long", f"{label} may have at most {limit} characters.")
    if any(c in value for c in "\r\n\x00"):
        raise Refusal(400, "Invalid input", f"{label} must be a single line.")
    return value


def reason_of(form: dict[str, str]) -> str:
    return field(form, "reason", "A reason", limit=MAX_REASON)


# ------------------------------------------------------------------------------ render
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    return env


_ENV = environment()


def render(request: Request, viewer: Viewer | None, template: str, *, status: int = 200,
           session: Session | None = None, **context: Any) -> HTMLResponse:
    session = session or (viewer.session if viewer else None)
    language = session.language if session else "en"
    flash = session.take_flash() if session else []

    def money(minor: int | None, code: str) -> str:
        return formatting.money(minor, code, language)

    def when(instant: datetime | None, zone: str = "UTC") -> str:
        return formatting.when(instant, language, zone)

    context.setdefault("title", "Console")

    def money_text(text: str, code: str) -> str:
        return formatting.money_text(text, code, language)

    html = _ENV.get_template(template).render(
        request_path=request.url.path, viewer=viewer, csrf=session.csrf if session else "",
        language=language, languages=LANGUAGES, flash=flash, money=money, when=when,
        money_text=money_text, day=lambda d: formatting.day(d, language), url=_url,
        due=lambda instant, zone: formatting.due(instant, zone, language),
        day_text=lambda text: formatting.day(date.fromisoformat(text), language) if text
        else "",
        customer_url=customer_url, **context)
    response = HTMLResponse(html, status_code=status, headers=_NO_STORE)
    if session is not None and session.dirty:
        save(response, request, _key(request), session)
    return response


# Pages show customer data: never cached, never framed, nothing loaded from elsewhere.
_NO_STORE = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _url(path: str, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v not in (None, "", False)}
    return PREFIX + path + (("?" + urlencode(params)) if params else "")


def customer_url(customer_id: str) -> str:
    """The customer's page; the id quoted whole (ids may hold '/', '?' or '#')."""
    return f"{PREFIX}/customers/{quote(customer_id, safe='')}"


def redirect(request: Request, to: str, session: Session | None) -> Response:
    response = RedirectResponse(to, status_code=303)
    if session is not None:
        save(response, request, _key(request), session)
    return response


async def operate(request: Request, operation: Callable[[Context], Awaitable[T]]) -> T:
    return await run_operation(request, operation)


# ------------------------------------------------------------------------------ sign in
@router.get("")
async def home(request: Request) -> Response:
    viewer = viewer_of(request, load_session(request))
    if viewer is None:
        return RedirectResponse(PREFIX + "/signin", status_code=303)
    if viewer.view.realm == "customer":
        return RedirectResponse(_url(f"/customers/{quote(str(viewer.view.scope), safe='')}"),
                                status_code=303)
    return RedirectResponse(PREFIX + "/customers", status_code=303)


@router.get("/signin")
async def signin_page(request: Request, back: str = "") -> Response:
    session = load_session(request)
    if viewer_of(request, session) is not None:
        # Already signed in: a link to this page must not end the session (sign-out is a
        # POST with its CSRF token).
        return RedirectResponse(_safe_back(back) or PREFIX, status_code=303)
    if session is None or session.digest is not None:
        session = Session(language=preferred_language(request.headers.get("accept-language")))
        session.dirty = True
    return render(request, None, "signin.html", session=session, back=_safe_back(back),
                  error=None, title="Sign in")


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await form_of(request)
    session = load_session(request)
    if not csrf_ok(session, form.get("csrf")):
        raise CSRF_REFUSED
    assert session is not None
    identity = identity_for_token(_settings(request).api_tokens, form.get("token", "").strip())
    language = form.get("language") if form.get("language") in LANGUAGES else "en"
    if identity is None or identity.realm not in CONSOLE_REALMS:
        session.language = str(language)
        log.info("console sign-in refused (request %s)", request.state.request_id)
        return render(request, None, "signin.html", status=401, session=session,
                      back=_safe_back(form.get("back", "")),
                      error="That token is not valid for the console.", title="Sign in")
    # A new session: a new CSRF token, so nothing from before sign-in carries over.
    fresh = Session(digest=token_digest(_key(request), form["token"].strip()),
                    language=str(language))
    fresh.say("info", f"Signed in as {identity.actor} ({identity.realm}).")
    log.info("console sign-in: %s (%s) (request %s)", identity.actor, identity.realm,
             request.state.request_id)
    return redirect(request, _safe_back(form.get("back", "")) or PREFIX, fresh)


def _safe_back(back: str) -> str:
    """Only a path of this console (no other site after sign-in)."""
    if back.startswith(PREFIX + "/") and not back.startswith("//") and "\\" not in back:
        return back
    return ""


@router.post("/signout")
async def signout(request: Request) -> Response:
    form = await form_of(request)
    if not csrf_ok(load_session(request), form.get("csrf")):
        raise CSRF_REFUSED
    session = Session(language=load_session(request).language)  # type: ignore[union-attr]
    session.say("info", "Signed out.")
    return redirect(request, PREFIX + "/signin", session)


@router.post("/language")
async def set_language(request: Request) -> Response:
    form, viewer = await posted(request)
    if form.get("language") in LANGUAGES:
        viewer.session.language = form["language"]
        viewer.session.dirty = True
    return redirect(request, _safe_back(form.get("back", "")) or PREFIX, viewer.session)


@router.post("/view-as")
async def view_as(request: Request) -> Response:
    """An admin or reseller sees the console as one of its customers would (MR107); every
    read meanwhile is audited under the admin's or reseller's name, on behalf of it."""
    form, viewer = await posted(request)
    if viewer.identity.realm not in ("admin", "reseller"):
        raise forbidden("Only admin and reseller sign-ins can view as a customer.")
    customer_id = field(form, "customer_id", "The customer id")

    async def allowed(ctx: Context) -> bool:
        return await in_scope(ctx.conn, viewer.identity, customer_id)

    if not await operate(request, allowed):
        raise no_customer(customer_id)
    viewer.session.as_customer = customer_id
    viewer.session.say("info", f"Viewing as customer {customer_id}.")
    return redirect(request, _url(f"/customers/{quote(customer_id, safe='')}"), viewer.session)


@router.post("/view-as/stop")
async def stop_view_as(request: Request) -> Response:
    form, viewer = await posted(request)
    back = viewer.session.as_customer
    viewer.session.as_customer = None
    viewer.session.dirty = True
    return redirect(request, _url(f"/customers/{quote(back, safe='')}") if back else PREFIX,
                    viewer.session)


@router.get("/static/console.css")
async def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css",
                    headers={"Cache-Control": "max-age=3600"})


# ------------------------------------------------------------------------------ search
@router.get("/customers")
async def customers(request: Request, q: str = "", after: str = "") -> Response:
    viewer = signed_in(request)
    if viewer.view.realm == "customer":
        return RedirectResponse(_url(f"/customers/{quote(str(viewer.view.scope), safe='')}"),
                                status_code=303)
    q = q.strip()[:MAX_FIELD]
    reseller, customer = list_filter(viewer.view)
    audit = read_audit(request, viewer.identity, READ_REASON)
    page = await operate(request, lambda ctx: reads.search(
        ctx, q, reseller_id=reseller, customer_id=customer, audit=audit, after=after or None))
    return render(request, viewer, "search.html", q=q, page=page, title="Customers")


# ----------------------------------------------------------------------- customer page
@router.get("/customers/{customer_id}")
async def customer(request: Request, customer_id: str, before: str = "",
                   invoices: str = "") -> Response:
    viewer = signed_in(request)
    try:
        timeline_before = reads.timeline_cursor(before) if before else None
        invoices_before = reads.invoice_cursor(invoices) if invoices else None
    except ValueError:
        raise Refusal(400, "Invalid input", "That page link is not valid.") from None
    audit = read_audit(request, viewer.identity, READ_REASON)  # None: not audited

    async def check(conn: AsyncConnection) -> None:
        if not await sees(conn, viewer, customer_id):
            raise UnknownCustomer(customer_id)

    try:
        page = await operate(request, lambda ctx: reads.customer_page(
            ctx, customer_id, audit=audit, check=check, timeline_before=timeline_before,
            invoices_before=invoices_before))
    except UnknownCustomer:
        raise no_customer(customer_id) from None
    settings = _settings(request)
    temporal = (f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
                f"{quote(settings.temporal_namespace, safe='')}/workflows?query="
                + quote(f'CustomerId="{customer_id}"', safe=""))
    return render(request, viewer, "customer.html", page=page, temporal_url=temporal,
                  title=page.customer.name, new_payment_id=f"console-{uuid.uuid4().hex[:12]}")


# ------------------------------------------------------------------------------ actions
def _back_to(customer_id: str) -> str:
    return _url(f"/customers/{quote(customer_id, safe='')}")


def _failed(err: Exception) -> str:
    if isinstance(err, RPCError):
        return "Temporal is not reachable; nothing was recorded. Try again."
    return str(err)


@router.post("/customers/{customer_id}/payments")
async def post_payment_action(request: Request, customer_id: str) -> Response:
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    amount = field(form, "amount", "The amount")
    payment_id = field(form, "payment_id", "The payment id")
    processor = field(form, "processor", "The processor")
    received_at = field(form, "received_at", "Received at", required=False) or None
    audit = audit_info(request, viewer.identity, reason)

    async def post(ctx: Context) -> dict[str, Any]:
        if not await in_scope(ctx.conn, viewer.view, customer_id):
            raise UnknownCustomer(customer_id)
        return await post_payment(ctx, PaymentRequest(
            processor=processor, payment_id=payment_id, customer_id=customer_id,
            amount=amount, currency=None, received_at=received_at, source="api"), audit)

    session = viewer.session
    try:
        result = await operate(request, post)
    except UnknownCustomer:
        raise no_customer(customer_id) from None
    except (OperationError, MoneyError, DbError, RPCError) as err:
        session.say("error", f"Payment not recorded: {_failed(err)}")
    else:
        session.say("info", f"Payment {processor}/{payment_id}: {result['status']}. "
                    f"Balance {result.get('balance', '')}, service "
                    f"{result.get('service_state', '')}.")
    return redirect(request, _back_to(customer_id), session)


@router.post("/payments/reverse")
async def reverse_action(request: Request) -> Response:
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    processor = field(form, "processor", "The processor")
    payment_id = field(form, "payment_id", "The payment id")
    customer_id = field(form, "customer_id", "The customer id")
    audit = audit_info(request, viewer.identity, reason)
    session = viewer.session
    try:
        result = await operate(request, lambda ctx: reverse_payment(
            ctx, processor, payment_id, audit))
    except (NotFound, UnknownPayment) as err:
        session.say("error", f"Not reversed: {err}")
    except (OperationError, DbError, RPCError) as err:
        session.say("error", f"Not reversed: {_failed(err)}")
    else:
        session.say("info", f"Payment {processor}/{payment_id}: {result['status']}; "
                    f"service {result.get('service_state')}.")
    return redirect(request, _back_to(customer_id), session)


@router.post("/fees/waive")
async def waive_fee_action(request: Request) -> Response:
    """Waive an invoice's late fee (SPEC 2.9) through ``operations.fees.waive_fee``, as
    ``POST /v1/customers/{id}/invoices/{number}/fee-waiver`` does: realm admin only (else
    403, before anything about the customer is read, as the API's ``admin_only``), the same
    audit record (``fee.waive``, the console user as actor, ``on_behalf_of`` the customer,
    the reason and the request id), written by the customer's workflow with the change.
    The customer and invoice come as fields, not in the path: ids may hold '/'."""
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    customer_id = field(form, "customer_id", "The customer id")
    number = field(form, "invoice", "The invoice number")
    audit = audit_info(request, viewer.identity, reason)

    async def waive(ctx: Context) -> dict[str, Any]:
        if not await sees(ctx.conn, viewer, customer_id):
            raise UnknownCustomer(customer_id)
        return await waive_fee(ctx, customer_id, number, audit)

    session = viewer.session
    try:
        result = await operate(request, waive)
    except UnknownCustomer:
        raise no_customer(customer_id) from None
    except NotFound:
        # The customer is in scope (checked first), so only its invoice can be missing.
        raise Refusal(404, "Invoice not found",
                      f"Customer {customer_id!r} has no invoice {number!r}.") from None
    except (OperationError, DbError, RPCError) as err:
        session.say("error", f"Fee not waived: {_failed(err)}")
    else:
        fee = formatting.money_text(result["fee"], result["currency"], viewer.language)
        balance = formatting.money_text(result["balance"], result["currency"],
                                        viewer.language)
        said = {"waived": f"Late fee of {fee} on invoice {number} waived.",
                "already_waived": f"The late fee on invoice {number} was already waived; "
                                  "nothing changed.",
                "not_charged": f"Invoice {number} has no late fee; nothing changed."}
        session.say("info", f"{said.get(result['status'], result['status'])} Balance "
                    f"{balance}, service {result['service_state']}.")
    return redirect(request, _back_to(customer_id), session)


@router.post("/hold")
async def hold_action(request: Request) -> Response:
    """Put a customer on hold (SPEC 2.11) through ``operations.holds.place_hold``, as
    ``PUT /v1/customers/{id}/hold`` and ``dunning hold`` do: CSRF first, then realm admin
    only (else 403, before anything about the customer is read, as the API's
    ``admin_only``), then the console's scope (unknown or not yours: the customer page's
    404). ``until`` is a WHEN as the CLI's ``--until`` takes it (a date is its midnight in
    the class's time zone); empty: until released. The customer's workflow audits it
    (``customer.hold``). The customer comes as a field, not in the path: ids may hold '/'."""
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    customer_id = field(form, "customer_id", "The customer id")
    until = field(form, "until", "Until", required=False) or None
    resume = form.get("resume", "") not in ("", "0", "off")
    audit = audit_info(request, viewer.identity, reason)

    async def hold(ctx: Context) -> dict[str, Any]:
        if not await sees(ctx.conn, viewer, customer_id):
            raise UnknownCustomer(customer_id)
        return await place_hold(ctx, customer_id, audit, until=until, resume=resume)

    session = viewer.session
    try:
        result = await operate(request, hold)
    except (UnknownCustomer, NotFound):
        raise no_customer(customer_id) from None
    except (OperationError, DbError, RPCError) as err:
        session.say("error", f"Hold not placed: {_failed(err)}")
    else:
        placed = result["hold"] or {}
        until_text = placed.get("until") or "released"
        session.say("info", f"Hold {result['status']} until {until_text}; service "
                    f"{result['service_state']}.")
    return redirect(request, _back_to(customer_id), session)


@router.post("/hold/release")
async def release_hold_action(request: Request) -> Response:
    """Release a customer's hold (SPEC 2.11) through ``operations.holds.release_hold``, as
    ``DELETE /v1/customers/{id}/hold`` and ``dunning hold release`` do; the same checks in
    the same order as placing one. Audited ``customer.hold_release``; ``not_held`` changes
    nothing and says so."""
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    customer_id = field(form, "customer_id", "The customer id")
    audit = audit_info(request, viewer.identity, reason)

    async def release(ctx: Context) -> dict[str, Any]:
        if not await sees(ctx.conn, viewer, customer_id):
            raise UnknownCustomer(customer_id)
        return await release_hold(ctx, customer_id, audit)

    session = viewer.session
    try:
        result = await operate(request, release)
    except (UnknownCustomer, NotFound):
        raise no_customer(customer_id) from None
    except (OperationError, DbError, RPCError) as err:
        session.say("error", f"Hold not released: {_failed(err)}")
    else:
        said = {"released": "Hold released.",
                "not_held": "The customer was not on hold; nothing changed."}
        session.say("info", f"{said.get(result['status'], result['status'])} Service "
                    f"{result['service_state']}.")
    return redirect(request, _back_to(customer_id), session)


@router.post("/notifications/resend")
async def resend_action(request: Request) -> Response:
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    key = field(form, "key", "The notification key", limit=1000)
    back = _safe_back(form.get("back", "")) or _url("/notifications")
    audit = audit_info(request, viewer.identity, reason)
    session = viewer.session
    try:
        result = await operate(request, lambda ctx: resend(ctx, key, audit))
    except NotFound as err:
        session.say("error", f"Not resent: {err}")
    except (OperationError, DbError) as err:
        session.say("error", f"Not resent: {_failed(err)}")
    else:
        detail = f" ({result['error']})" if result.get("error") else ""
        session.say("info", f"Resent as {result['key']}: {result['status']}{detail}.")
    return redirect(request, back, session)


# ------------------------------------------------------------------------------ re-runs
@router.get("/reruns")
async def rerun_form(request: Request, customer: str = "", klass: str = "") -> Response:
    viewer = signed_in(request)
    admin(viewer)
    classes = await operate(request, reads.class_names)
    return render(request, viewer, "rerun.html", classes=classes, customer=customer,
                  klass=klass, title="Re-run")


def _rerun_target(form: dict[str, str]) -> tuple[str | None, str | None]:
    klass = field(form, "class_name", "The class", required=False) or None
    customer_id = field(form, "customer_id", "The customer id", required=False) or None
    if (klass is None) == (customer_id is None):
        raise Refusal(400, "Missing input", "Give either a class or a customer id, not both.")
    return klass, customer_id


@router.post("/reruns/dry-run")
async def rerun_dry_run(request: Request) -> Response:
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    klass, customer_id = _rerun_target(form)
    audit = audit_info(request, viewer.identity, reason)
    try:
        result = await operate(request, lambda ctx: reads.dry_run(
            ctx, klass, customer_id, audit, wait_seconds=DRY_RUN_WAIT_SECONDS))
    except NotFound as err:
        raise Refusal(404, "Not found", str(err)) from None
    except RPCError as err:
        raise Refusal(503, "Temporal unreachable", _failed(err)) from None
    return render(request, viewer, "rerun_dry.html", result=result, klass=klass,
                  customer=customer_id, reason=reason, title="Re-run: dry run",
                  shown=DRY_RUN_SHOWN)


@router.post("/reruns")
async def rerun_confirm(request: Request) -> Response:
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    klass, customer_id = _rerun_target(form)
    audit = audit_info(request, viewer.identity, reason)
    try:
        started = await operate(request, lambda ctx: start_rerun(
            ctx, klass, customer_id, False, audit, wait=False))
    except NotFound as err:
        raise Refusal(404, "Not found", str(err)) from None
    except RPCError as err:
        raise Refusal(503, "Temporal unreachable", _failed(err)) from None
    settings = _settings(request)
    workflow_url = (f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
                    f"{quote(settings.temporal_namespace, safe='')}/workflows/"
                    f"{quote(started['workflow_id'], safe='')}")
    return render(request, viewer, "rerun_started.html", started=started, klass=klass,
                  customer=customer_id, workflow_url=workflow_url, title="Re-run started")


# -------------------------------------------------------------------------- unmatched
@router.get("/unmatched")
async def unmatched(request: Request, after: str = "", assigned: str = "") -> Response:
    viewer = signed_in(request)
    admin(viewer)  # an unmatched payment has no customer: it is in no reseller's scope
    cursor = int(after) if after.isdigit() else None
    page = await operate(request, lambda ctx: reads.unmatched(
        ctx, include_assigned=bool(assigned), after=cursor))
    return render(request, viewer, "unmatched.html", page=page, show_all=bool(assigned),
                  title="Unmatched payments")


@router.post("/unmatched/assign")
async def assign_action(request: Request) -> Response:
    form, viewer = await posted(request)
    admin(viewer)
    reason = reason_of(form)
    processor = field(form, "processor", "The processor")
    payment_id = field(form, "payment_id", "The payment id")
    customer_id = field(form, "customer_id", "The customer id")
    audit = audit_info(request, viewer.identity, reason)
    session = viewer.session
    try:
        result = await operate(request, lambda ctx: assign_unmatched(
            ctx, processor, payment_id, customer_id, audit))
    except (OperationError, MoneyError, DbError, RPCError) as err:
        session.say("error", f"Not assigned: {_failed(err)}")
    else:
        session.say("info", f"Payment {processor}/{payment_id} assigned to {customer_id}: "
                    f"{result['status']}; service {result.get('service_state')}.")
    return redirect(request, _url("/unmatched"), session)


# ------------------------------------------------------------------------ notifications
@router.get("/notifications")
async def notifications(request: Request, status: str = "failed",
                        after: str = "") -> Response:
    viewer = signed_in(request)
    if status not in reads.NOTIFICATION_STATUSES:
        raise Refusal(400, "Invalid input", "Unknown notification status.")
    try:
        cursor = reads.notification_cursor(after) if after else None
    except ValueError:
        raise Refusal(400, "Invalid input", "That page link is not valid.") from None
    reseller, customer_id = list_filter(viewer.view)
    audit = read_audit(request, viewer.identity, READ_REASON)

    async def read(ctx: Context) -> tuple[reads.Page, dict[str, int]]:
        if customer_id is not None and not await sees(ctx.conn, viewer, customer_id):
            raise no_customer(customer_id)
        return await reads.notifications(ctx, status, reseller_id=reseller,
                                         customer_id=customer_id, audit=audit, after=cursor)

    page, counts = await operate(request, read)
    return render(request, viewer, "notifications.html", page=page, counts=counts,
                  current=status, statuses=reads.NOTIFICATION_STATUSES,
                  title="Notifications")


# -------------------------------------------------------------------------------- audit
@router.get("/audit")
async def audit(request: Request, customer: str = "", actor: str = "", action: str = "",
                realm: str = "", since: str = "", until: str = "",
                before: str = "") -> Response:
    viewer = signed_in(request)
    admin(viewer)
    where = AuditFilter(customer_id=customer.strip() or None, actor=actor.strip() or None,
                        action=action.strip() or None, realm=realm.strip() or None,
                        since=_day(since), until=_day(until, end=True))
    cursor = int(before) if before.isdigit() else None
    page, actions = await operate(request, lambda ctx: reads.audit_log(ctx, where,
                                                                      before=cursor))
    filters = {"customer": customer, "actor": actor, "action": action, "realm": realm,
               "since": since, "until": until}
    return render(request, viewer, "audit.html", page=page, actions=actions,
                  filters=filters, title="Audit log")


def _day(text: str, *, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD filter as the UTC instant it starts (``end``: the next day's)."""
    if not text.strip():
        return None
    try:
        start = datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError:
        raise Refusal(400, "Invalid input", "Dates are YYYY-MM-DD.") from None
    return start + timedelta(days=1) if end else start


@router.get("/{rest:path}")
async def nothing_here(request: Request, rest: str) -> Response:
    """Any other address under /console: the console's own 404 page."""
    raise Refusal(404, "Page not found", "There is no such page in the console.")


# ------------------------------------------------------------------------------ wiring
def install(app: FastAPI) -> None:
    """Serve the console on ``app`` (its routes and its error pages)."""
    app.include_router(router)
    app.add_exception_handler(Refusal, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(SignInFirst, _sign_in_first)  # type: ignore[arg-type]


async def _refused(request: Request, exc: Refusal) -> Response:
    session = load_session(request)
    viewer = viewer_of(request, session)
    return render(request, viewer, "error.html", status=exc.status, session=session,
                  error=exc, title=exc.title)


async def _sign_in_first(request: Request, exc: SignInFirst) -> Response:
    return RedirectResponse(_url("/signin", back=exc.back), status_code=303)
