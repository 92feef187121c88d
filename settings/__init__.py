"""Configuration from environment variables (prefix ``DUNNING_``) and an optional ``.env``.

SPEC 4.1. A wrong value fails at start with a message naming the variable; secrets are
``SecretStr`` so they never show up in logs, reprs or tracebacks.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AnyUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "DUNNING_"
Realm = Literal["admin", "reseller", "customer", "system"]
# admin: everything; reseller: the customers of one reseller (scope = reseller id);
# customer: one customer (scope = customer id); system: the billing system's feed (SPEC 4.3).
REALMS: tuple[str, ...] = ("admin", "reseller", "customer", "system")
# Realms whose tokens must name a scope, and what the scope is.
SCOPED_REALMS: dict[str, str] = {"reseller": "RESELLER_ID", "customer": "CUSTOMER_ID"}
ENTRY_FORM = "token=actor:realm[:scope]"


class SettingsError(RuntimeError):
    """Configuration is invalid; the message names the environment variable."""


class ApiIdentity:
    """Who a bearer token acts as: an actor, a realm and, for ``reseller`` and ``customer``,
    a scope (the reseller id or the customer id). ``admin`` and ``system`` take no scope.

    Raises ValueError for an unknown realm or a scope missing (or given where none
    belongs). The token itself is never part of an identity, so reprs show no secret.
    """

    __slots__ = ("actor", "realm", "scope")

    def __init__(self, actor: str, realm: str, scope: str | None = None) -> None:
        if realm not in REALMS:
            raise ValueError(f"realm must be one of {', '.join(REALMS)}")
        if realm in SCOPED_REALMS and not (scope and scope.strip()):
            raise ValueError(f"realm {realm} needs a scope "
                             f"(token=actor:{realm}:{SCOPED_REALMS[realm]})")
        if realm not in SCOPED_REALMS and scope is not None:
            raise ValueError(f"realm {realm} takes no scope (token=actor:{realm})")
        self.actor = actor
        self.realm = realm
        self.scope = scope

    def _key(self) -> tuple[str, str, str | None]:
        return (self.actor, self.realm, self.scope)

    def __repr__(self) -> str:
        return (f"ApiIdentity(actor={self.actor!r}, realm={self.realm!r}, "
                f"scope={self.scope!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiIdentity) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def parse_api_tokens(raw: str) -> dict[str, ApiIdentity]:
    """``DUNNING_API_TOKENS``: comma-separated ``token=actor:realm[:scope]``.

    The old ``token=actor:realm`` form is the same without a scope (admin, system). The
    scope is the rest after the second ``:`` (it may itself contain ``:``, not ``,``).
    Errors name the entry by its position, never by its text: it holds a secret (and a
    mistyped entry may hold the token where the actor should be).
    """
    tokens: dict[str, ApiIdentity] = {}
    for position, (token, spec) in enumerate(_split_pairs(raw, ENTRY_FORM), start=1):
        actor, sep, rest = spec.partition(":")
        realm, _, scope = rest.partition(":")
        actor, realm, scope = actor.strip(), realm.strip(), scope.strip()
        if not sep or not actor or not realm:
            raise ValueError(f"entry {position} must look like {ENTRY_FORM}")
        try:
            identity = ApiIdentity(actor, realm, scope or None)
        except ValueError as err:
            raise ValueError(f"entry {position}: {err}") from None
        if tokens.get(token, identity) != identity:
            raise ValueError(f"entry {position}: the same token is already given to "
                             "another identity")
        tokens[token] = identity
    return tokens


def _split_pairs(raw: str, what: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            # Never echo the item: it holds a secret.
            raise ValueError(f"each entry must look like {what}")
        pairs.append((name.strip(), value.strip()))
    return pairs


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "postgresql://postgres@127.0.0.1:5432/dunning"
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "dunning"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # Concurrent SMTP transactions per worker process (each holds its outbox row lock).
    smtp_pool_size: int = Field(default=4, ge=1, le=64)

    mail_from_address: str = "billing@dunning.local"
    mail_from_name: str = "Billing"
    mail_reply_to: str | None = None

    webhook_secrets: Annotated[dict[str, tuple[SecretStr, ...]], NoDecode] = Field(
        default_factory=dict
    )
    api_tokens: Annotated[dict[str, ApiIdentity], NoDecode] = Field(default_factory=dict)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # The finance console (/console) signs its session cookies with this key. Unset: a
    # random key per API process (sessions end when it restarts, and several API replicas
    # behind one address need the same key set here).
    console_secret: SecretStr | None = None
    # Where the console links a customer's workflows (the Temporal UI's base URL).
    temporal_ui_url: str = "http://127.0.0.1:8233"

    # Workflows kept in memory per worker process, ~160 KB each: 1000 keeps a worker with
    # 30,000 open workflows at 332 MB; 2000 was 6% faster in a 3,000-workflow billing burst
    # but 489 MB (docs/performance.md, "Worker tuning").
    worker_cache_size: int = Field(default=1000, ge=10)
    # Worker tuning; unset: the SDK's defaults (measured against each other in
    # docs/performance.md, "Worker tuning"). Slots bound the work in progress, pollers the
    # long polls held open on the server, per worker process.
    worker_workflow_task_slots: int | None = Field(default=None, ge=1)
    worker_activity_slots: int | None = Field(default=None, ge=1)
    worker_local_activity_slots: int | None = Field(default=None, ge=1)
    worker_workflow_task_pollers: int | None = Field(default=None, ge=1)
    worker_activity_task_pollers: int | None = Field(default=None, ge=1)
    # False runs workflows without the SDK's sandbox: measured only (docs/performance.md);
    # it drops the run-time guard against non-deterministic calls, so keep it true.
    worker_sandbox: bool = True
    # The worker's Prometheus endpoint (/metrics, our counters and the Temporal SDK's).
    # Off unless set: a fixed default port would collide between processes on one host.
    # With `--processes K`, process i serves port + i.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    # Optional HTTP endpoint told about suspensions and resumptions (provisioning hook).
    provisioning_url: str | None = None
    # Default actor for CLI commands that change something (then the OS user).
    actor: str | None = None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        url = AnyUrl(value)
        if url.scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("mail_from_address", "mail_reply_to")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "@" not in value or any(c in value for c in "\r\n <>,"):
            raise ValueError("must be a plain e-mail address like billing@example.com")
        return value

    @field_validator("console_secret", mode="before")
    @classmethod
    def _empty_console_secret_is_none(cls, value: object) -> object:
        # An empty value (compose's `${DUNNING_CONSOLE_SECRET:-}`) means "not set": never a
        # signing key everybody knows.
        return None if value == "" else value

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _parse_webhook_secrets(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        secrets: dict[str, tuple[SecretStr, ...]] = {}
        for processor, secret in _split_pairs(value, "processor=secret"):
            # A processor may appear twice while its secret is being rotated.
            secrets[processor] = (*secrets.get(processor, ()), SecretStr(secret))
        return secrets

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_api_tokens(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return parse_api_tokens(value)

    def __repr_args__(self):  # type: ignore[override]
        # Tokens are secrets too: show which identities exist, never the tokens.
        for name, value in super().__repr_args__():
            if name == "api_tokens":
                yield name, sorted({(i.actor, i.realm, i.scope) for i in self.api_tokens.values()},
                                   key=lambda k: (k[0], k[1], k[2] or ""))
            else:
                yield name, value


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one message per variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
