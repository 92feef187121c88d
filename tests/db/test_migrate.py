"""`dunning db migrate`: creates the database, safe to run twice and concurrently."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from db.migrate import ensure_database, migrate, migration_files
from tests.conftest import _drop, with_database


def test_migrate_twice_and_concurrently(empty_database_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(migrate, [empty_database_url] * 4))
    versions = [f.stem for f in migration_files()]
    # Exactly one runner applied each migration; the others found nothing to do.
    assert sorted(v for applied in results for v in applied) == sorted(versions)
    assert migrate(empty_database_url) == []
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == versions


def test_cli_creates_a_missing_database_and_runs_twice(pg_admin_url: str) -> None:
    name = f"dunning_cli_migrate_{os.getpid()}"
    url = with_database(pg_admin_url, name)
    _drop(pg_admin_url, name)
    env = {**os.environ, "DUNNING_DATABASE_URL": url}
    dunning = str(Path(sys.executable).with_name("dunning"))
    try:
        first = subprocess.run([dunning, "db", "migrate"], env=env, capture_output=True,
                               text=True, timeout=60)
        second = subprocess.run([dunning, "db", "migrate"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert "created the database" in first.stdout and "applied: 001_schema" in first.stdout
        assert second.returncode == 0 and "database is up to date" in second.stdout
        assert ensure_database(url) is False
    finally:
        _drop(pg_admin_url, name)


def test_unreachable_database_is_one_clear_line() -> None:
    env = {**os.environ, "DUNNING_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    dunning = str(Path(sys.executable).with_name("dunning"))
    result = subprocess.run([dunning, "db", "migrate"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert result.stderr.startswith("error: cannot reach the database")
    assert result.stderr.strip().count("\n") == 0


