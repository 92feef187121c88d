"""Database URLs the dev stack hands to the product, and what it prints."""

from __future__ import annotations

from pathlib import Path

from devstack.postgres import redact, socket_url, with_database
from settings import load_settings


def test_socket_url_is_accepted_by_settings() -> None:
    url = socket_url(Path("/tmp/x/postgres"), "dunning")
    assert url == "postgresql://postgres@localhost/dunning?host=/tmp/x/postgres"
    assert load_settings(database_url=url).database_url == url


def test_switching_database_keeps_the_socket() -> None:
    url = with_database(socket_url(Path("/s"), "postgres"), "dunning")
    assert url == "postgresql://postgres@localhost/dunning?host=/s"


def test_passwords_are_never_printed() -> None:
    assert redact("postgresql://app:s3cret@db:5432/dunning") == (
        "postgresql://app:***@db:5432/dunning")
    assert "s3cret" not in redact("postgresql://app:s3cret@db/dunning?sslmode=require")
    assert redact("postgresql://postgres@localhost/d?host=/s") == (
        "postgresql://postgres@localhost/d?host=/s")
