"""Who may call what: bearer tokens for people and systems, signatures for processors.

Bearer tokens come from ``DUNNING_API_TOKENS`` (token -> actor:realm[:scope]). This module
only says *who* calls (401 otherwise); which realms may call an endpoint, and which
customers a reseller or customer token sees, is ``api.scopes`` (SPEC 2.8, 4.3).

Signed routes (``SignedRoute``) check ``Dunning-Signature`` against the *raw* body before
FastAPI parses anything, so an unsigned request never reaches validation (401 before 422).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, HTTPException, Request, Response, Security, status
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api import signatures
from api.metrics import SIGNATURE_FAILURES
from settings import ApiIdentity, Settings

log = logging.getLogger("dunning.api")

FEED_REALMS = frozenset({"admin", "system"})

bearer_scheme = HTTPBearer(
    scheme_name="BearerToken", auto_error=False,
    description=(
        "A token of DUNNING_API_TOKENS (`token=actor:realm[:scope]`). Realms: `admin` "
        "(everything), `reseller:RESELLER_ID` (only that reseller's customers), "
        "`customer:CUSTOMER_ID` (only that customer), `system` (the billing system's feed; "
        "may also read customers). A customer outside the token's scope answers 404 "
        "exactly like one that does not exist; an endpoint the realm may not use answers "
        "403. Reads through the admin and reseller realms are audited."
    ),
)
signature_scheme = APIKeyHeader(
    name=signatures.HEADER, scheme_name="DunningSignature", auto_error=False,
    description="`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>`; "
                "several v1 values allowed (secret rotation). The timestamp must be within "
                "300 s of the server's clock. The processor named in the body (payments) "
                "or the path (reversals) must be the one whose secret signed.",
)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def unauthorized(detail: str, scheme: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail,
                         headers={"WWW-Authenticate": scheme})


# ----------------------------------------------------------------------------- bearer
def _identity_for(token: str, tokens: dict[str, ApiIdentity]) -> ApiIdentity | None:
    found = None
    for known, identity in tokens.items():
        # Compare with every token, not a dict lookup: no timing hint about valid prefixes.
        if hmac.compare_digest(known.encode(), token.encode()):
            found = identity
    return found


async def caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
) -> ApiIdentity:
    identity = None
    if credentials is not None:
        identity = _identity_for(credentials.credentials, settings_of(request).api_tokens)
    if identity is None:
        raise unauthorized("missing or unknown bearer token", "Bearer")
    return identity


def forbidden(identity: ApiIdentity) -> HTTPException:
    """403: the token is valid but its realm may not use this endpoint (whatever the
    customer: a realm refusal says nothing about which customers exist)."""
    return HTTPException(status.HTTP_403_FORBIDDEN,
                         detail=f"realm {identity.realm!r} may not do this")


async def admin_or_system(identity: ApiIdentity = Depends(caller)) -> ApiIdentity:
    """Kept for callers written before ``api.scopes``; same as ``api.scopes.feed_caller``."""
    if identity.realm not in FEED_REALMS:
        raise forbidden(identity)
    return identity


# ----------------------------------------------------------------------------- signatures
def _claimed_processor(request: Request, body: bytes) -> str | None:
    """The processor the request says it comes from: the path, else the JSON body."""
    if "processor" in request.path_params:
        return str(request.path_params["processor"])
    try:
        document = json.loads(body)
    except ValueError:
        return None  # not JSON: validation answers 422 (the signer itself is known)
    claimed = document.get("processor") if isinstance(document, dict) else None
    return claimed if isinstance(claimed, str) else None


def check_signature(request: Request, body: bytes) -> frozenset[str]:
    settings = settings_of(request)
    try:
        signers = signatures.signing_processors(
            request.headers.get(signatures.HEADER), body, settings.webhook_secrets, time.time())
        claimed = _claimed_processor(request, body)
        if claimed is not None and claimed not in signers:
            raise signatures.SignatureError("signed by another processor than the one named")
    except signatures.SignatureError as err:
        SIGNATURE_FAILURES.inc()
        # The reason goes to our log only; the caller gets one generic message.
        log.warning("webhook %s refused: %s (request %s)", request.url.path, err.reason,
                    getattr(request.state, "request_id", "-"))
        raise unauthorized(signatures.GENERIC_MESSAGE, "Dunning-Signature") from None
    return signers


def require_signer(request: Request, processor: str) -> None:
    """Defence in depth in the endpoint: the processor it acts for really signed."""
    if processor not in getattr(request.state, "signers", frozenset()):
        raise unauthorized(signatures.GENERIC_MESSAGE, "Dunning-Signature")


class SignedRoute(APIRoute):
    """A route whose raw body must carry a valid ``Dunning-Signature`` before anything else."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def signed_handler(request: Request) -> Response:
            # Starlette caches the body on the request, so FastAPI parses these same bytes.
            body = await request.body()
            request.state.signers = check_signature(request, body)
            return await handler(request)

        return signed_handler


# Declares the scheme in OpenAPI; SignedRoute does the checking.
signed = [Security(signature_scheme)]
