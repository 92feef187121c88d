"""Apply the SQL migrations in ``db/migrations`` in name order.

Safe to run twice or concurrently: a transaction-level advisory lock serialises runners and
``schema_migrations`` records what is applied, so a second runner finds nothing to do.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Arbitrary constant shared by every runner of this product.
_LOCK_KEY = 0x64756E6E  # "dunn"


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


def ensure_database(conninfo: str) -> bool:
    """Create the database named in ``conninfo`` if the server does not have it yet.

    Connects to the server's ``postgres`` database for that; returns True if created.
    """
    target = conninfo_to_dict(conninfo).get("dbname")
    if not target:
        return False
    try:
        psycopg.connect(conninfo).close()
        return False
    except psycopg.OperationalError as err:
        if f'database "{target}" does not exist' not in str(err):
            raise
    admin = make_conninfo(conninfo, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(target))))
        except psycopg.errors.DuplicateDatabase:
            return False  # created by a concurrent runner
    return True


def migrate(conninfo: str) -> list[str]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        with conn.transaction():
            # Under the lock too: concurrent CREATE TABLE IF NOT EXISTS can still collide.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        for path in migration_files():
            version = path.stem
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
                ).fetchone()
                if done:
                    continue
                conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
    return applied
