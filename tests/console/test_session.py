"""The console's session cookie and CSRF token (api/console/session.py), without a server."""

from __future__ import annotations

import time

from api.console.session import (
    Session,
    csrf_ok,
    identity_for_digest,
    preferred_language,
    token_digest,
)
from settings import ApiIdentity

KEY, OTHER_KEY = b"k" * 32, b"o" * 32
TOKENS = {"tok-a": ApiIdentity("ana", "admin"), "tok-r": ApiIdentity("rita", "reseller", "r1")}


def test_a_session_round_trips_and_holds_no_token() -> None:
    session = Session(digest=token_digest(KEY, "tok-a"), language="pt-BR")
    value = session.encode(KEY)
    assert "tok-a" not in value
    back = Session.decode(KEY, value)
    assert back is not None and (back.digest, back.language, back.csrf) == (
        session.digest, "pt-BR", session.csrf)
    assert identity_for_digest(KEY, back.digest, TOKENS) == TOKENS["tok-a"]


def test_a_tampered_or_foreign_cookie_is_no_session() -> None:
    value = Session(digest=token_digest(KEY, "tok-r")).encode(KEY)
    body, _, signature = value.partition(".")
    assert Session.decode(OTHER_KEY, value) is None
    assert Session.decode(KEY, body[:-2] + "AA." + signature) is None
    assert Session.decode(KEY, body + ".") is None
    assert Session.decode(KEY, "garbage") is None


def test_an_expired_session_is_no_session() -> None:
    old = Session(expires=int(time.time()) - 1).encode(KEY)
    assert Session.decode(KEY, old) is None


def test_a_removed_token_ends_its_sessions() -> None:
    digest = token_digest(KEY, "tok-a")
    assert identity_for_digest(KEY, digest, {"tok-r": TOKENS["tok-r"]}) is None


def test_csrf_needs_the_sessions_own_token() -> None:
    session = Session()
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, Session().csrf)
    assert not csrf_ok(None, session.csrf)


def test_language_from_accept_language() -> None:
    assert preferred_language("pt-PT,pt;q=0.9") == "pt-BR"
    assert preferred_language("es-AR, en;q=0.5") == "es"
    assert preferred_language("fr-FR, de") == "en"
    assert preferred_language(None) == "en"
