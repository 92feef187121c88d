"""DUNNING_API_TOKENS (SPEC 4.3): ``token=actor:realm[:scope]``, the old ``token=actor:realm``
form for admin and system, clear errors that never show a token."""

from __future__ import annotations

import pytest

from settings import ApiIdentity, SettingsError, load_settings, parse_api_tokens


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DUNNING_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def tokens_from_env(monkeypatch: pytest.MonkeyPatch, value: str) -> dict[str, ApiIdentity]:
    monkeypatch.setenv("DUNNING_API_TOKENS", value)
    return load_settings().api_tokens


def test_new_form_with_every_realm(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tokens_from_env(monkeypatch, "tk-a=ana:admin,tk-s=feed:system,"
                                          "tk-r=rita:reseller:r1, tk-c = john : customer : c-42")
    assert tokens == {
        "tk-a": ApiIdentity("ana", "admin"),
        "tk-s": ApiIdentity("feed", "system"),
        "tk-r": ApiIdentity("rita", "reseller", "r1"),
        "tk-c": ApiIdentity("john", "customer", "c-42"),
    }
    assert (tokens["tk-r"].scope, tokens["tk-c"].scope, tokens["tk-a"].scope) == (
        "r1", "c-42", None)


def test_old_form_keeps_working_for_admin_and_system(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tokens_from_env(monkeypatch, "tok1=alice:admin,tok2=sync:system")
    assert tokens == {"tok1": ApiIdentity("alice", "admin"), "tok2": ApiIdentity("sync", "system")}
    assert tokens["tok1"].scope is None and tokens["tok2"].realm == "system"


def test_a_scope_may_contain_colons_and_an_empty_one_is_none() -> None:
    assert parse_api_tokens("t=john:customer:urn:c:1")["t"].scope == "urn:c:1"
    assert parse_api_tokens("t=ana:admin:")["t"] == ApiIdentity("ana", "admin")


def test_the_same_token_twice_for_the_same_identity_is_harmless() -> None:
    assert parse_api_tokens("t=ana:admin,t=ana:admin") == {"t": ApiIdentity("ana", "admin")}


@pytest.mark.parametrize(("value", "message"), [
    ("tk-secret=rita:reseller", "entry 1: realm reseller needs a scope "
                                "(token=actor:reseller:RESELLER_ID)"),
    ("tk-ok=a:admin,tk-secret=john:customer", "entry 2: realm customer needs a scope "
                                              "(token=actor:customer:CUSTOMER_ID)"),
    ("tk-secret=rita:reseller:  ", "entry 1: realm reseller needs a scope"),
    ("tk-secret=ana:admin:r1", "entry 1: realm admin takes no scope (token=actor:admin)"),
    ("tk-secret=feed:system:x", "entry 1: realm system takes no scope"),
    ("tk-secret=ana:root", "entry 1: realm must be one of admin, reseller, customer, system"),
    ("tk-secret=ana:Admin", "entry 1: realm must be one of"),
    ("tk-secret=ana", "entry 1 must look like token=actor:realm[:scope]"),
    ("tk-secret=:admin", "entry 1 must look like token=actor:realm[:scope]"),
    ("tk-secret=ana:", "entry 1 must look like token=actor:realm[:scope]"),
    ("tk-secret=ana:admin,tk-secret=rita:reseller:r1",
     "entry 2: the same token is already given to another identity"),
    ("tk-secret", "each entry must look like token=actor:realm[:scope]"),
    # A mistyped entry may put the token where the actor goes: it is not echoed either.
    ("ana:reseller=tk-secret", "entry 1 must look like token=actor:realm[:scope]"),
])
def test_bad_entries_are_clear_and_never_show_the_token(
        monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("DUNNING_API_TOKENS", value)
    with pytest.raises(SettingsError) as excinfo:
        load_settings()
    text = str(excinfo.value)
    assert "DUNNING_API_TOKENS" in text and message in text, text
    assert "tk-secret" not in text
    for actor in ("rita", "john", "ana", "feed"):
        assert actor not in text  # the position names the entry, not its text


def test_identity_equality_hash_and_repr_include_the_scope() -> None:
    r1, r1_again, r2 = (ApiIdentity("rita", "reseller", "r1"),
                        ApiIdentity("rita", "reseller", "r1"),
                        ApiIdentity("rita", "reseller", "r2"))
    assert r1 == r1_again and hash(r1) == hash(r1_again)
    assert r1 != r2 and len({r1, r1_again, r2}) == 2
    assert ApiIdentity("ana", "admin") != ApiIdentity("ana", "system")
    assert repr(r1) == "ApiIdentity(actor='rita', realm='reseller', scope='r1')"
    assert repr(ApiIdentity("ana", "admin")) == "ApiIdentity(actor='ana', realm='admin', scope=None)"


@pytest.mark.parametrize(("realm", "scope"), [
    ("reseller", None), ("customer", ""), ("root", None), ("admin", "x"), ("system", "x")])
def test_an_identity_cannot_be_built_wrong(realm: str, scope: str | None) -> None:
    with pytest.raises(ValueError, match="realm"):
        ApiIdentity("someone", realm, scope)


def test_settings_repr_shows_identities_with_scopes_never_tokens(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_API_TOKENS", "tk-secret-1=ana:admin,tk-secret-2=rita:reseller:r1,"
                                             "tk-secret-3=rita:reseller:r2")
    settings = load_settings()
    text = repr(settings) + str(settings)
    assert "tk-secret" not in text
    assert "('rita', 'reseller', 'r1')" in text and "('ana', 'admin', None)" in text
