"""PostgreSQL for the dev stack: the one in DUNNING_DATABASE_URL, else an embedded server
(pgserver) whose data stays under <data_dir>/postgres between runs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psutil
import psycopg
from psycopg import sql

DATABASE = "dunning"


def redact(url: str) -> str:
    """The URL without its password (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def socket_url(socket_dir: Path, database: str, user: str = "postgres") -> str:
    """A libpq URL for a unix-socket server that also passes URL validation.

    pgserver's own form (``postgresql://postgres:@/db?host=/dir``) has an empty host, which
    Settings rejects; libpq lets the ``host`` query parameter override a placeholder host.
    """
    query = urlencode({"host": str(socket_dir)}, safe="/")
    return f"postgresql://{quote(user, safe='')}@localhost/{quote(database, safe='')}?{query}"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


class EmbeddedPostgres:
    """pgserver, started once and stopped by us (not only at interpreter exit)."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir.resolve() / "postgres"
        self._server: Any = None

    @property
    def log_path(self) -> Path:
        return self.pgdata / "log"

    def start(self) -> str:
        """Start (or adopt a still-running) server; returns the admin URL (database postgres)."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._forget_dead_handles()
        with warnings.catch_warnings():
            # pgserver warns (at import) when XDG_RUNTIME_DIR is unset; it falls back fine.
            warnings.simplefilter("ignore")
            import pgserver  # heavy import, only when the embedded server is wanted

            self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        info = self._server.get_postmaster_info()
        if info.socket_dir is None:  # pgserver only uses sockets on POSIX; keep its URL
            return str(self._server.get_uri("postgres"))
        return socket_url(Path(info.socket_dir), "postgres")

    def _forget_dead_handles(self) -> None:
        # pgserver counts users by pid in this file and only stops the server when the last
        # one leaves; pids of supervisors that were killed would keep it running forever.
        handles = self.pgdata / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
        if alive != pids:
            handles.write_text(json.dumps(alive))

    def pid(self) -> int | None:
        return None if self._server is None else self._server.get_pid()

    def running(self) -> bool:
        return self._server is not None and _alive(self.pgdata)

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.cleanup()
        # pgserver only stops the server when no other handle (pid) is registered; a
        # supervisor killed earlier leaves its pid behind. We own this data dir: stop it.
        if not _alive(self.pgdata):
            return
        from pgserver._commands import pg_ctl

        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=server.system_user)
        except Exception:  # pg_ctl failed: signals as a last resort
            from pgserver.utils import PostmasterInfo

            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.process is not None:
                info.process.terminate()
                try:
                    info.process.wait(10)
                except psutil.TimeoutExpired:
                    info.process.kill()


def _alive(pgdata: Path) -> bool:
    """Is this data directory's postmaster running? (A zombie awaiting reaping is not.)"""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or info.process is None:
        return False
    try:
        return info.process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def ensure_database(admin_url: str, database: str = DATABASE) -> bool:
    """Create the database when missing; True when it was created."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return True

