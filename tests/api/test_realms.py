"""Realms and scopes of bearer tokens (SPEC 2.7, 2.8, 4.3): every bearer endpoint x every
realm x in and out of scope.

The world: reseller R1's customer ``c-mine``, reseller R2's ``c-theirs``, a direct customer
``c-direct`` (no reseller) and ``c-nobody``, who does not exist. The callers: admin,
system, reseller R1, reseller R2, the customer c-mine, the customer c-theirs, an unknown
token and no token.

``ENDPOINTS`` lists every bearer endpoint of SPEC 4.3 with its kind; an endpoint not
registered in the app (yet) is skipped, and ``test_every_bearer_endpoint_is_in_the_matrix``
fails for a registered bearer endpoint that has no row, so the matrix stays whole.
Everything here but the re-run that really starts runs on the database only: Temporal is
never touched by a refusal.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from fastapi import HTTPException

from api import scopes
from api.app import create_app
from db.customers import NewCustomer
from db.rows import AuditInfo
from db.subscriptions import set_reseller
from domain.ledger.payments import Actor
from operations.classes import ClassChange, set_class
from operations.context import Context
from operations.customers import add
from settings import ApiIdentity, load_settings
from tests.api.conftest import (
    ADMIN_TOKEN,
    CLASS,
    RESELLER,
    RESELLER_TOKEN,
    SECRETS,
    TOKENS,
    Api,
    _NoTemporal,
    serve,
)
from tests.support.stack import ADMIN, Stack

MINE, THEIRS, DIRECT, MISSING = "c-mine", "c-theirs", "c-direct", "c-nobody"
R1, R2 = "r-one", "r-two"
TARGETS = (MINE, THEIRS, DIRECT, MISSING)

# caller -> (token, identity); None identity: the token is not configured.
CALLERS: dict[str, tuple[str | None, ApiIdentity | None]] = {
    "admin": ("t-admin", ApiIdentity("ana-finance", "admin")),
    "system": ("t-system", ApiIdentity("billing-sync", "system")),
    "reseller R1": ("t-r1", ApiIdentity("rita", "reseller", R1)),
    "reseller R2": ("t-r2", ApiIdentity("rolf", "reseller", R2)),
    "customer c-mine": ("t-mine", ApiIdentity("john", "customer", MINE)),
    "customer c-theirs": ("t-theirs", ApiIdentity("jane", "customer", THEIRS)),
    "unknown token": ("t-nope", None),
    "no token": (None, None),
}
REALM_TOKENS = {token: identity for token, identity in CALLERS.values()
                if token is not None and identity is not None}
# Which existing customers each caller sees (SPEC 2.8). A direct customer is no reseller's.
VISIBLE = {
    "admin": {MINE, THEIRS, DIRECT},
    "system": {MINE, THEIRS, DIRECT},
    "reseller R1": {MINE},
    "reseller R2": {THEIRS},
    "customer c-mine": {MINE},
    "customer c-theirs": {THEIRS},
}
OUT_OF_SCOPE = [(caller, target) for caller, seen in VISIBLE.items()
                for target in (MINE, THEIRS, DIRECT) if target not in seen]

# Every bearer endpoint of SPEC 4.3 and its kind:
#   read   - one customer's data; every realm within its scope, else the 404 of a missing
#            customer; admin and reseller reads audited with on_behalf_of
#   list   - everything in the caller's scope; every realm
#   feed   - the billing system's feed; realms system and admin, else 403
#   admin  - realm admin only, else 403
ENDPOINTS = [
    ("GET", "/v1/customers/{customer_id}", "read"),
    ("GET", "/v1/customers/{customer_id}/subscriptions", "read"),
    ("GET", "/v1/subscriptions", "list"),
    ("POST", "/v1/reruns", "admin"),
    ("POST", "/v1/invoices", "feed"),
    ("PUT", "/v1/customers/{customer_id}", "feed"),
    ("PUT", "/v1/accounts/{account_id}", "feed"),
    ("PUT", "/v1/subscriptions/{subscription_id}", "feed"),
    ("PUT", "/v1/customers/{customer_id}/hold", "admin"),
    ("DELETE", "/v1/customers/{customer_id}/hold", "admin"),
    ("POST", "/v1/customers/{customer_id}/invoices/{number}/fee-waiver", "admin"),
]
# Passed the realm check (the request then fails on its empty body or missing customer).
PASSES = "passes"


def shape(path: str) -> str:
    """A path template with its parameter names erased: the matrix does not care how a
    route names them."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def concrete(path: str, customer_id: str) -> str:
    """The template with customer parameters filled with ``customer_id``, others with x-1."""
    return re.sub(r"\{([^}]+)\}",
                  lambda m: customer_id if "customer" in m.group(1) else "x-1", path)


def expected(kind: str, caller: str, target: str) -> int | str:
    identity = CALLERS[caller][1]
    if identity is None:
        return 401
    match kind:
        case "read":
            return 200 if target in VISIBLE[caller] else 404
        case "list":
            return 200
        case "feed":
            return PASSES if identity.realm in ("admin", "system") else 403
        case "admin":
            return PASSES if identity.realm == "admin" else 403
    raise AssertionError(kind)


def matrix() -> list[Any]:
    cases = []
    for method, path, kind in ENDPOINTS:
        # Only reads depend on the customer; the others are realm checks (403 whatever the
        # customer), asked about the missing one so that no operation ever really runs.
        targets = TARGETS if kind == "read" else (MISSING,)
        for caller in CALLERS:
            for target in targets:
                cases.append(pytest.param(method, path, kind, caller, target,
                                          id=f"{method} {path} | {caller} -> {target}"))
    return cases


# ------------------------------------------------------------------------------ world
async def build_world(conn: psycopg.AsyncConnection, settings: Any) -> None:
    ctx = Context(settings=settings, conn=conn, _client=_NoTemporal())  # type: ignore[arg-type]
    await set_class(ctx, ClassChange(name=CLASS, currency="USD", threshold="10.00"), ADMIN)
    for customer_id, reseller in ((MINE, R1), (THEIRS, R2), (DIRECT, None)):
        await add(ctx, NewCustomer(id=customer_id, name=f"Name of {customer_id}",
                                   email=f"{customer_id}@example.com", class_name=CLASS), ADMIN)
        if reseller is not None:
            await set_reseller(conn, customer_id, reseller, ADMIN)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
        yield c


@pytest.fixture
async def realm_api(database_url: str, conn: psycopg.AsyncConnection) -> AsyncIterator[Api]:
    """The API on the database only, with a token for every caller and the world in place."""
    settings = load_settings(database_url=database_url).model_copy(
        update={"webhook_secrets": SECRETS, "api_tokens": REALM_TOKENS})
    await build_world(conn, settings)
    async for served in serve(create_app(settings, client=_NoTemporal())):  # type: ignore[arg-type]
        yield served


async def call(api: Api, method: str, path: str, caller: str, **headers: str) -> Any:
    token = CALLERS[caller][0]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {} if method in ("POST", "PUT") else None
    return await api.http.request(method, path, json=body, headers=headers)


async def audit_rows(conn: psycopg.AsyncConnection, action: str | None = None) -> list[tuple]:
    cur = await conn.execute(
        "SELECT actor, realm, action, target, on_behalf_of, reason, request_id FROM audit_log"
        " WHERE actor <> %s AND (%s::text IS NULL OR action = %s) ORDER BY id",
        (ADMIN.actor, action, action))  # the world's own set-up records are ADMIN's
    return await cur.fetchall()


def registered(api: Api) -> dict[tuple[str, str], str]:
    """(METHOD, shape) -> path of every bearer endpoint the app documents."""
    found = {}
    for path, operations in api.app.openapi()["paths"].items():
        for method, operation in operations.items():
            if {"BearerToken": []} in operation.get("security", []):
                found[(method.upper(), shape(path))] = path
    return found


# ----------------------------------------------------------------------------- matrix
@pytest.mark.parametrize(("method", "path", "kind", "caller", "target"), matrix())
async def test_realm_matrix(realm_api: Api, conn: psycopg.AsyncConnection, method: str,
                            path: str, kind: str, caller: str, target: str) -> None:
    if (method, shape(path)) not in registered(realm_api):
        pytest.skip(f"{method} {path} is not registered in the app (yet)")
    before = await audit_rows(conn)
    response = await call(realm_api, method, concrete(path, target), caller)
    want = expected(kind, caller, target)
    if want == PASSES:
        assert response.status_code not in (401, 403) and response.status_code < 500, (
            response.status_code, response.text)
    else:
        assert response.status_code == want, response.text
    if want == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json() == {"detail": "missing or unknown bearer token"}
    if want == 403:
        realm = CALLERS[caller][1].realm  # type: ignore[union-attr]
        assert response.json() == {"detail": f"realm {realm!r} may not do this"}
    if want == 404:
        # Out of scope answers exactly what a missing customer gets.
        assert response.json() == {"detail": f"unknown customer '{target}'"}
    if kind == "read":
        identity = CALLERS[caller][1]
        new = (await audit_rows(conn))[len(before):]
        if want == 200 and identity is not None and identity.realm in ("admin", "reseller"):
            # SPEC 2.7/2.8: audited, on behalf of the customer read, by who read it.
            assert new and all((actor, realm, on_behalf_of) ==
                               (identity.actor, identity.realm, target)
                               for actor, realm, _, _, on_behalf_of, _, _ in new), new
        else:
            assert new == [], new  # customer/system reads, refusals and 404s: no record


async def test_every_bearer_endpoint_is_in_the_matrix(realm_api: Api) -> None:
    rows = {(method, shape(path)) for method, path, _ in ENDPOINTS}
    missing = sorted(f"{method} {path}" for (method, s), path in registered(realm_api).items()
                     if (method, s) not in rows)
    assert not missing, f"bearer endpoints without a row in ENDPOINTS: {missing}"
    # At least the endpoints of this module's own routers are there (no all-skip matrix).
    assert {("GET", "/v1/customers/{}"), ("POST", "/v1/reruns")} <= set(registered(realm_api))


# ------------------------------------------------------------ out of scope = missing
@pytest.mark.parametrize(("caller", "target"), OUT_OF_SCOPE,
                         ids=[f"{c} -> {t}" for c, t in OUT_OF_SCOPE])
async def test_out_of_scope_is_indistinguishable_from_missing(
        realm_api: Api, caller: str, target: str) -> None:
    outside = await call(realm_api, "GET", f"/v1/customers/{target}", caller)
    # A missing id of the same length: even Content-Length is the same.
    absent_id = "c-" + "z" * (len(target) - 2)
    absent = await call(realm_api, "GET", f"/v1/customers/{absent_id}", caller)
    assert outside.status_code == absent.status_code == 404
    assert outside.content.replace(target.encode(), absent_id.encode()) == absent.content
    assert dict(outside.headers, **{"x-request-id": "-"}) == dict(
        absent.headers, **{"x-request-id": "-"})


@pytest.mark.parametrize(("caller", "target"), [("reseller R2", MINE), ("reseller R1", DIRECT),
                                                ("customer c-theirs", MINE)])
async def test_out_of_scope_does_the_same_database_work_as_missing(
        realm_api: Api, monkeypatch: pytest.MonkeyPatch, caller: str, target: str) -> None:
    """Similar time: the same statements run whether the customer is outside the scope or
    does not exist (one scope lookup, then 404), so timing tells nothing either."""
    statements: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def recording(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(repr(query))
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", recording)
    assert (await call(realm_api, "GET", f"/v1/customers/{target}", caller)).status_code == 404
    outside, statements[:] = list(statements), []
    assert (await call(realm_api, "GET", f"/v1/customers/{MISSING}", caller)).status_code == 404
    assert outside == statements and len(outside) == 1, (outside, statements)
    # And in scope (for contrast) the same lookup comes first, then the read.
    statements.clear()
    seen = next(iter(sorted(VISIBLE[caller])))
    assert (await call(realm_api, "GET", f"/v1/customers/{seen}", caller)).status_code == 200
    assert statements[0] == outside[0] and len(statements) > 1


# ---------------------------------------------------------------------------- audit
@pytest.mark.parametrize("caller", ["admin", "reseller R1"])
async def test_admin_and_reseller_reads_are_audited_on_behalf_of_the_customer(
        realm_api: Api, conn: psycopg.AsyncConnection, caller: str) -> None:
    response = await call(realm_api, "GET", f"/v1/customers/{MINE}", caller,
                          **{"X-Request-ID": "read-7"})
    assert response.status_code == 200, response.text
    assert response.json()["customer_id"] == MINE
    identity = CALLERS[caller][1]
    assert identity is not None
    assert await audit_rows(conn, "customer.read") == [
        (identity.actor, identity.realm, "customer.read", f"customer:{MINE}", MINE, "api read",
         "read-7")]


@pytest.mark.parametrize("caller", ["system", "customer c-mine"])
async def test_system_and_customer_reads_are_not_audited(
        realm_api: Api, conn: psycopg.AsyncConnection, caller: str) -> None:
    response = await call(realm_api, "GET", f"/v1/customers/{MINE}", caller)
    assert response.status_code == 200, response.text
    assert response.json()["customer_id"] == MINE
    assert await audit_rows(conn) == []


async def test_refused_and_missing_reads_are_not_audited(
        realm_api: Api, conn: psycopg.AsyncConnection) -> None:
    for caller, target in [*OUT_OF_SCOPE, ("admin", MISSING), ("reseller R1", MISSING),
                           ("unknown token", MINE)]:
        await call(realm_api, "GET", f"/v1/customers/{target}", caller)
    assert await audit_rows(conn) == []


# -------------------------------------------------------------------------- re-runs
async def test_realm_refusals_come_before_field_validation(realm_api: Api) -> None:
    # (Malformed JSON is refused by FastAPI before any dependency runs: 422 for everyone.)
    for caller in ("system", "reseller R1", "customer c-mine"):
        response = await call(realm_api, "POST", "/v1/reruns", caller)  # body {}
        assert response.status_code == 403, (caller, response.text)
    assert (await call(realm_api, "POST", "/v1/reruns", "admin")).status_code == 422


@pytest.fixture
async def stack_api(stack: Stack, customer: str) -> AsyncIterator[Api]:
    """The full stack; ``customer`` belongs to RESELLER (RESELLER_TOKEN's scope) and has a
    customer token ``t-self`` of its own."""
    await set_reseller(stack.conn, customer, RESELLER, ADMIN)
    tokens = {**TOKENS, "t-self": ApiIdentity("ana-self", "customer", customer)}
    settings = stack.settings.model_copy(update={"webhook_secrets": SECRETS,
                                                 "api_tokens": tokens})
    async for served in serve(create_app(settings, client=stack.client)):
        yield served


async def test_only_admin_starts_reruns_even_of_a_customer_in_scope(
        stack_api: Api, stack: Stack, customer: str) -> None:
    def post(token: str, body: dict[str, Any]) -> Any:
        return stack_api.http.post("/v1/reruns", json=body,
                                   headers={"Authorization": f"Bearer {token}"})

    # The reseller's own customer, the customer itself, the feed: all 403, nothing started.
    for token, realm in ((RESELLER_TOKEN, "reseller"), ("t-self", "customer"),
                         ("tok-system", "system")):
        for body in ({"customer_id": customer, "reason": "x"},
                     {"customer_id": customer, "reason": "x", "dry_run": True},
                     {"class_name": CLASS, "reason": "x"}):
            response = await post(token, body)
            assert response.status_code == 403, (token, body, response.text)
            assert response.json() == {"detail": f"realm {realm!r} may not do this"}
    assert await stack.query_rows("SELECT 1 FROM audit_log WHERE action = 'rerun.start'") == []
    # In scope reads still work for the same tokens.
    for token in (RESELLER_TOKEN, "t-self"):
        assert (await stack_api.get(f"/v1/customers/{customer}", token)).status_code == 200
    response = await post(ADMIN_TOKEN, {"class_name": CLASS, "reason": "policy"})
    assert response.status_code == 202, response.text
    rows = await stack.query_rows("SELECT realm FROM audit_log WHERE action = 'rerun.start'")
    assert rows == [("admin",)]


# -------------------------------------------------------------------- the contract
@pytest.mark.parametrize("caller", list(VISIBLE))
async def test_in_scope(realm_api: Api, conn: psycopg.AsyncConnection, caller: str) -> None:
    identity = CALLERS[caller][1]
    assert identity is not None
    for target in TARGETS:
        assert await scopes.in_scope(conn, identity, target) is (target in VISIBLE[caller])


def test_list_filter() -> None:
    assert scopes.list_filter(ApiIdentity("a", "admin")) == (None, None)
    assert scopes.list_filter(ApiIdentity("s", "system")) == (None, None)
    assert scopes.list_filter(ApiIdentity("r", "reseller", R1)) == (R1, None)
    assert scopes.list_filter(ApiIdentity("c", "customer", MINE)) == (None, MINE)


def test_not_found_is_the_missing_customer_answer() -> None:
    error = scopes.not_found("c9")
    assert (error.status_code, error.detail) == (404, "unknown customer 'c9'")


def test_audited_reads() -> None:
    realms = {"admin": None, "reseller": R1, "customer": MINE, "system": None}
    audited = {realm for realm, scope in realms.items()
               if scopes.audited_read(ApiIdentity("x", realm, scope))}
    assert audited == {"admin", "reseller"}


@pytest.mark.parametrize(("dependency", "allowed"), [
    (scopes.reader, {"admin", "system", "reseller", "customer"}),
    (scopes.feed_caller, {"admin", "system"}),
    (scopes.admin_only, {"admin"}),
])
async def test_dependencies(dependency: Any, allowed: set[str]) -> None:
    for _, identity in CALLERS.values():
        if identity is None:
            continue
        if identity.realm in allowed:
            assert await dependency(identity) is identity
        else:
            with pytest.raises(HTTPException) as refused:
                await dependency(identity)
            assert refused.value.status_code == 403


def test_read_audit_and_read_actor() -> None:
    request: Any = SimpleNamespace(state=SimpleNamespace(request_id="req-1"))
    reseller = ApiIdentity("rita", "reseller", R1)
    assert scopes.read_audit(request, reseller) == AuditInfo(
        actor="rita", realm="reseller", reason="api read", request_id="req-1")
    assert scopes.read_actor(request, reseller, MINE) == Actor(
        name="rita", realm="reseller", reason="api read", request_id="req-1",
        on_behalf_of=MINE)
    entry = scopes.read_entry(scopes.read_audit(request, reseller), MINE)  # type: ignore[arg-type]
    assert (entry.action, entry.target, entry.on_behalf_of) == (
        "customer.read", f"customer:{MINE}", MINE)
    for silent in (ApiIdentity("john", "customer", MINE), ApiIdentity("feed", "system")):
        assert scopes.read_audit(request, silent) is None
        assert scopes.read_actor(request, silent, MINE) is None
