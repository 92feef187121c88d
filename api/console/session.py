"""The console's session: a signed cookie, a CSRF token, and who signed in.

The cookie holds no token: only an HMAC of it under the console key, so a cookie read off
a disk or a log does not give the token away, and a token removed from
``DUNNING_API_TOKENS`` ends its sessions at once (each request finds the identity again
among the configured tokens). The cookie is signed (HMAC-SHA256), HttpOnly, SameSite=Lax,
limited to ``/console``, Secure on HTTPS, and expires after ``SESSION_SECONDS``.

Every form carries the session's CSRF token; a POST without it, or with another, is
refused before anything else is looked at (``csrf_ok``). Signing in starts a new session
(a new CSRF token), so a token planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response

from settings import ApiIdentity, Settings

COOKIE = "dunning_console"
COOKIE_PATH = "/console"
SESSION_SECONDS = 8 * 3600  # a working day; then sign in again
LANGUAGES = ("en", "es", "pt-BR")


def console_key(settings: Settings) -> bytes:
    """The signing key: DUNNING_CONSOLE_SECRET, else a random one for this process."""
    if settings.console_secret is not None:
        return hashlib.sha256(b"dunning-console:" +
                              settings.console_secret.get_secret_value().encode()).digest()
    return secrets.token_bytes(32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_digest(key: bytes, token: str) -> str:
    return hmac.new(key, b"token:" + token.encode(), hashlib.sha256).hexdigest()


def identity_for_digest(key: bytes, digest: str,
                        tokens: dict[str, ApiIdentity]) -> ApiIdentity | None:
    """The identity whose token has this digest; every token is compared (no early exit),
    so the time says nothing about which one matched."""
    found = None
    for token, identity in tokens.items():
        if hmac.compare_digest(token_digest(key, token), digest):
            found = identity
    return found


def identity_for_token(tokens: dict[str, ApiIdentity], token: str) -> ApiIdentity | None:
    found = None
    for known, identity in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = identity
    return found


@dataclass
class Session:
    """The cookie's content. ``digest``: the signed-in token's HMAC (None: not signed in);
    ``as_customer``: an admin or reseller viewing the console as that customer sees it."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    digest: str | None = None
    language: str = "en"
    expires: int = field(default_factory=lambda: int(time.time()) + SESSION_SECONDS)
    as_customer: str | None = None
    flash: list[tuple[str, str]] = field(default_factory=list)
    dirty: bool = False

    def encode(self, key: bytes) -> str:
        body = _b64(json.dumps({"c": self.csrf, "d": self.digest, "l": self.language,
                                "e": self.expires, "a": self.as_customer,
                                "f": self.flash}, separators=(",", ":")).encode())
        return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())

    @classmethod
    def decode(cls, key: bytes, value: str | None) -> Session | None:
        """The session in a cookie that this key signed and that has not expired."""
        if not value or "." not in value:
            return None
        body, _, signature = value.partition(".")
        expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            data: dict[str, Any] = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(data, dict) or int(data.get("e", 0)) < time.time():
            return None
        language = data.get("l") if data.get("l") in LANGUAGES else "en"
        flash = [(str(k), str(m)) for k, m in data.get("f") or []]
        return cls(csrf=str(data.get("c")), digest=data.get("d"), language=str(language),
                   expires=int(data["e"]), as_customer=data.get("a"), flash=flash)

    def say(self, kind: str, message: str) -> None:
        """A message for the next page (after a redirect)."""
        self.flash.append((kind, message))
        self.dirty = True

    def take_flash(self) -> list[tuple[str, str]]:
        messages, self.flash = self.flash, []
        if messages:
            self.dirty = True
        return messages


def save(response: Response, request: Request, key: bytes, session: Session | None) -> None:
    """Write (or, for None, clear) the cookie on ``response``."""
    if session is None:
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return
    response.set_cookie(COOKIE, session.encode(key), max_age=SESSION_SECONDS,
                        path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def csrf_ok(session: Session | None, sent: object) -> bool:
    return (session is not None and isinstance(sent, str) and bool(sent)
            and hmac.compare_digest(session.csrf.encode(), sent.encode()))


def preferred_language(accept: str | None) -> str:
    """The first of en, es, pt-BR in Accept-Language (pt, pt-PT included as pt-BR)."""
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("pt"):
            return "pt-BR"
        if tag.startswith("es"):
            return "es"
        if tag.startswith("en"):
            return "en"
    return "en"
