"""SPEC 4.1: every variable, local defaults, clear errors naming the variable, no leaks."""

from __future__ import annotations

import pytest

from settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DUNNING_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_work_locally() -> None:
    s = load_settings()
    assert s.temporal_address == "localhost:7233"
    assert s.temporal_namespace == "default"
    assert s.task_queue == "dunning"
    assert s.api_host == "127.0.0.1"
    assert s.api_port == 8000
    assert s.smtp_tls == "none"
    assert s.webhook_secrets == {}


def test_every_spec_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "DUNNING_DATABASE_URL": "postgresql://u@db:5432/d",
        "DUNNING_TEMPORAL_ADDRESS": "temporal:7233",
        "DUNNING_TEMPORAL_NAMESPACE": "billing",
        "DUNNING_TASK_QUEUE": "q",
        "DUNNING_SMTP_HOST": "mail",
        "DUNNING_SMTP_PORT": "587",
        "DUNNING_SMTP_USERNAME": "user",
        "DUNNING_SMTP_PASSWORD": "pw-secret",
        "DUNNING_SMTP_TLS": "starttls",
        "DUNNING_MAIL_FROM_ADDRESS": "billing@example.com",
        "DUNNING_MAIL_FROM_NAME": "Example Billing",
        "DUNNING_MAIL_REPLY_TO": "help@example.com",
        "DUNNING_WEBHOOK_SECRETS": "stripe=old-secret,adyen=a1,stripe=new-secret",
        "DUNNING_API_TOKENS": "tok1=alice:admin,tok2=rs:reseller:r1",
        "DUNNING_API_HOST": "0.0.0.0",
        "DUNNING_API_PORT": "9000",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.database_url == "postgresql://u@db:5432/d"
    assert (s.temporal_address, s.temporal_namespace, s.task_queue) == ("temporal:7233", "billing", "q")
    assert (s.smtp_host, s.smtp_port, s.smtp_username, s.smtp_tls) == ("mail", 587, "user", "starttls")
    assert s.smtp_password is not None and s.smtp_password.get_secret_value() == "pw-secret"
    assert (s.mail_from_address, s.mail_from_name, s.mail_reply_to) == (
        "billing@example.com", "Example Billing", "help@example.com")
    # Rotation: a processor listed twice keeps both secrets, in order.
    assert [x.get_secret_value() for x in s.webhook_secrets["stripe"]] == ["old-secret", "new-secret"]
    assert [x.get_secret_value() for x in s.webhook_secrets["adyen"]] == ["a1"]
    assert (s.api_tokens["tok1"].actor, s.api_tokens["tok1"].realm) == ("alice", "admin")
    assert (s.api_tokens["tok2"].realm, s.api_tokens["tok2"].scope) == ("reseller", "r1")
    assert (s.api_host, s.api_port) == ("0.0.0.0", 9000)


def test_secrets_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_SMTP_PASSWORD", "pw-secret")
    monkeypatch.setenv("DUNNING_WEBHOOK_SECRETS", "stripe=whsec-secret")
    monkeypatch.setenv("DUNNING_API_TOKENS", "tok-secret=alice:admin")
    text = repr(load_settings()) + str(load_settings())
    for secret in ("pw-secret", "whsec-secret", "tok-secret"):
        assert secret not in text


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DUNNING_DATABASE_URL", "mysql://x@y/z"),
        ("DUNNING_DATABASE_URL", "not a url"),
        ("DUNNING_SMTP_TLS", "ssl3"),
        ("DUNNING_SMTP_PORT", "99999"),
        ("DUNNING_WEBHOOK_SECRETS", "stripe-without-secret"),
        ("DUNNING_WEBHOOK_SECRETS", "=secret"),
        ("DUNNING_API_TOKENS", "tok=alice"),
        ("DUNNING_API_TOKENS", "tok=alice:root"),
        ("DUNNING_MAIL_FROM_ADDRESS", "no-at-sign"),
        ("DUNNING_MAIL_REPLY_TO", "a@b.c\r\nBcc: evil@x"),
    ],
)
def test_wrong_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as excinfo:
        load_settings()
    assert variable in str(excinfo.value)
    if "SECRETS" in variable or "TOKENS" in variable:
        assert "secret" not in str(excinfo.value).replace("processor=secret", "")
