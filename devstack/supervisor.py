"""`dunning dev [--demo]` (SPEC 4.4): the whole stack on this machine, stopped by Ctrl-C.

Start order: embedded PostgreSQL (unless DUNNING_DATABASE_URL is set) → Temporal dev server
(+ UI, search attributes) → mail catcher → `dunning db migrate` → worker and API. Stop order
is the reverse. Every child runs in its own process group so a terminal Ctrl-C reaches only
us; we then stop each child (SIGTERM, SIGKILL after a timeout) and PostgreSQL.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from devstack.options import HOST, DevOptions
from devstack.ports import PortInUseError, check_ports, wait_for_port
from devstack.postgres import DATABASE, EmbeddedPostgres, ensure_database, redact, with_database
from devstack.processes import Child, console
from devstack.temporal import NAMESPACE, TemporalStartError, start_dev_argv, wait_until_ready

EXIT_OK = 0
EXIT_FAILED = 1  # something did not start, or a core service died
EXIT_USAGE = 2  # a port is taken, the data directory is in use, a bad option

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Known dev values, used only when the operator has not configured their own (then printed,
# since they are not secrets anyone chose). Real values are never printed.
DEV_DEFAULTS = {
    "DUNNING_WEBHOOK_SECRETS": "demo=demo-secret",
    "DUNNING_API_TOKENS": "demo-token=finance:admin",
}
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL per child
MIGRATE_TIMEOUT = 120.0
TEMPORAL_TIMEOUT = 60.0


class StartupError(RuntimeError):
    pass


def say(message: str, stream: IO[str] | None = None) -> None:
    console(f"dunning dev: {message}", stream)


def dunning_command() -> list[str]:
    """The `dunning` CLI of this environment (console script beside the interpreter)."""
    script = Path(sys.executable).with_name("dunning")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]


def configured_environment() -> dict[str, str]:
    """DUNNING_* as the product will see them: the environment over an optional ./.env."""
    values: dict[str, str] = {}
    dotenv = Path(".env")
    if dotenv.is_file():
        from dotenv import dotenv_values

        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ)
    return {k: v for k, v in values.items() if k.startswith("DUNNING_")}


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `dunning dev` per data directory (PostgreSQL and SQLite files are not shareable)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "dev.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise PortInUseError(
                f"another `dunning dev` (pid {owner}) uses {data_dir}; stop it or choose "
                "another directory with --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


class DevStack:
    def __init__(self, options: DevOptions, stop: threading.Event) -> None:
        self.options = options
        self.stop_requested = stop
        self.data_dir = options.data_dir.resolve()
        self.logs = self.data_dir / "logs"
        self.configured = configured_environment()
        self.postgres: EmbeddedPostgres | None = None
        self.database_url = ""
        self.children: list[Child] = []
        self.core: set[str] = {"temporal"}
        self.env: dict[str, str] = {}
        self.injected_defaults: list[str] = []

    # -- start -----------------------------------------------------------------------------

    def _check_interrupted(self) -> None:
        if self.stop_requested.is_set():
            raise StartupError("interrupted")

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._start_postgres()
        self._check_interrupted()
        self._child_environment()
        self._start_temporal()
        self._check_interrupted()
        self._start_mailcatcher()
        self._check_interrupted()
        self._migrate()
        self._check_interrupted()
        self._start_app()

    def _start_postgres(self) -> None:
        external = self.configured.get("DUNNING_DATABASE_URL")
        if external:
            self.database_url = external
            say(f"using the database in DUNNING_DATABASE_URL ({redact(external)})")
            return
        say(f"starting embedded PostgreSQL (data in {self.data_dir / 'postgres'})")
        self.postgres = EmbeddedPostgres(self.data_dir)
        try:
            admin_url = self.postgres.start()
            if ensure_database(admin_url, DATABASE):
                say(f"created database {DATABASE!r}")
        except Exception as exc:
            raise StartupError(
                f"embedded PostgreSQL did not start: {exc} (log: {self.postgres.log_path})"
            ) from exc
        self.database_url = with_database(admin_url, DATABASE)

    def _child_environment(self) -> None:
        env = dict(os.environ)
        for name, value in DEV_DEFAULTS.items():
            if not self.configured.get(name):
                env[name] = value
                self.injected_defaults.append(name)
        env.update(
            {
                "DUNNING_DATABASE_URL": self.database_url,
                "DUNNING_TEMPORAL_ADDRESS": f"{HOST}:{self.options.temporal_port}",
                "DUNNING_TEMPORAL_NAMESPACE": NAMESPACE,
                # Mail goes to the catcher, which speaks plain SMTP only.
                "DUNNING_SMTP_HOST": HOST,
                "DUNNING_SMTP_PORT": str(self.options.smtp_port),
                "DUNNING_SMTP_TLS": "none",
                "DUNNING_API_HOST": HOST,
                "DUNNING_API_PORT": str(self.options.api_port),
                # The console links each customer's workflows in this stack's Temporal UI.
                "DUNNING_TEMPORAL_UI_URL": f"http://{HOST}:{self.options.ui_port}",
                "PYTHONUNBUFFERED": "1",  # child lines reach the console as they happen
                # `python -m devstack.*` must resolve even where devstack is not installed.
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
        )
        self.env = env

    def _spawn(self, name: str, argv: list[str], echo: bool = True) -> Child:
        child = Child(name, argv, env=self.env, log_path=self.logs / f"{name}.log", echo=echo)
        child.start()
        self.children.append(child)
        return child

    def _fail_with_tail(self, child: Child, what: str) -> StartupError:
        tail = "\n".join(f"    {line}" for line in list(child.tail)[-10:])
        return StartupError(f"{what} (log: {child.log_path})" + (f"\n{tail}" if tail else ""))

    def _start_temporal(self) -> None:
        o = self.options
        say(f"starting the Temporal dev server (log: {self.logs / 'temporal.log'})")
        try:
            argv = start_dev_argv(self.data_dir, o.temporal_port, o.ui_port)
        except TemporalStartError as exc:
            raise StartupError(str(exc)) from exc
        # Its output is noisy and rarely useful: log file only.
        temporal = self._spawn("temporal", argv, echo=False)
        started = time.monotonic()
        try:
            added = wait_until_ready(
                f"{HOST}:{o.temporal_port}", TEMPORAL_TIMEOUT, self.stop_requested, temporal.poll
            )
        except TemporalStartError as exc:
            if self.stop_requested.is_set():
                raise StartupError("interrupted") from exc
            raise self._fail_with_tail(temporal, str(exc)) from exc
        if added:
            say(f"registered search attributes: {', '.join(added)}")
        if not wait_for_port(o.ui_port, 15):
            say(f"the Temporal UI is not answering on port {o.ui_port} yet", sys.stderr)
        say(f"Temporal is up in {time.monotonic() - started:.1f}s")

    def _start_mailcatcher(self) -> None:
        o = self.options
        mail = self._spawn(
            "mail",
            [
                sys.executable, "-m", "devstack.mailcatcher",
                "--data-dir", str(self.data_dir / "mail"),
                "--host", HOST,
                "--smtp-port", str(o.smtp_port),
                "--web-port", str(o.mail_port),
            ],
        )
        deadline = time.monotonic() + 20
        while not (wait_for_port(o.smtp_port, 0.2) and wait_for_port(o.mail_port, 0.2)):
            self._check_interrupted()
            if mail.poll() is not None or time.monotonic() > deadline:
                raise self._fail_with_tail(mail, "the mail catcher did not start")
        self.core.add("mail")

    def _migrate(self) -> None:
        say("applying migrations (dunning db migrate)")
        migrate = self._spawn("migrate", [*dunning_command(), "db", "migrate"])
        deadline = time.monotonic() + MIGRATE_TIMEOUT
        while migrate.poll() is None:
            self._check_interrupted()
            if time.monotonic() > deadline:
                raise self._fail_with_tail(migrate, "`dunning db migrate` did not finish in time")
            time.sleep(0.1)
        code = migrate.wait()
        self.children.remove(migrate)
        if code != 0:
            raise self._fail_with_tail(migrate, f"`dunning db migrate` failed (exit {code})")

    def _start_app(self) -> None:
        o = self.options
        self._spawn("worker", [*dunning_command(), "worker",
                               "--metrics-port", str(o.worker_metrics_port)])
        api = self._spawn(
            "api", [*dunning_command(), "api", "--host", HOST, "--port", str(o.api_port)]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and api.running():
            self._check_interrupted()
            try:
                if httpx.get(f"http://{HOST}:{o.api_port}/healthz", timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        if api.running():
            say(f"the API is not answering on port {o.api_port} yet", sys.stderr)

    # -- run -------------------------------------------------------------------------------

    def banner(self) -> str:
        o, d = self.options, self.data_dir
        api = f"http://{HOST}:{o.api_port}"
        db_note = "embedded; data in " + str(d / "postgres") if self.postgres else "external"
        lines = [
            "",
            "Dunning dev stack is up. Ctrl-C stops everything.",
            f"  Temporal UI      http://{HOST}:{o.ui_port}  (filter with CustomerId, "
            "InvoiceNumber, CustomerClass, CollectionStatus, ServiceState, DueDate, OnHold)",
            f"  Temporal server  {HOST}:{o.temporal_port}  namespace {NAMESPACE}",
            f"  Mail catcher     http://{HOST}:{o.mail_port}  (SMTP {HOST}:{o.smtp_port}; "
            f"JSON /api/messages)",
            f"  Console          {api}/console  (finance: search, customers, unmatched "
            "payments, notifications, audit; sign in with an API token)",
            f"  API docs         {api}/docs",
            f"  Metrics          {api}/metrics  (API: payments, webhook signatures)",
            f"  Worker metrics   http://{HOST}:{o.worker_metrics_port}/metrics  "
            "(mail, service changes, Temporal SDK)",
            f"  Health           {api}/healthz",
            f"  Database         {redact(self.database_url)}  ({db_note})",
            f"  Data             {d}  (Temporal: temporal.db, mail: mail/)",
            f"  Logs             {self.logs}/<name>.log"
            + (f", PostgreSQL: {self.postgres.log_path}" if self.postgres else ""),
        ]
        if "DUNNING_API_TOKENS" in self.injected_defaults:
            lines.append(
                "  Dev API token    demo-token  (finance, admin realm: `Authorization: Bearer "
                "demo-token`, and the console's sign-in; set DUNNING_API_TOKENS for your own)"
            )
        if "DUNNING_WEBHOOK_SECRETS" in self.injected_defaults:
            lines.append(
                "  Dev webhook      processor `demo`, secret `demo-secret` "
                "(set DUNNING_WEBHOOK_SECRETS for your own)"
            )
        lines.append("")
        return "\n".join(lines)

    def watch(self) -> int:
        """Until asked to stop: report children that exit; a dead core service ends the run."""
        while not self.stop_requested.wait(0.5):
            for child in self.children:
                code = child.poll()
                if code is None or child.reported_exit:
                    continue
                child.reported_exit = True
                tail = "\n".join(f"    {line}" for line in list(child.tail)[-10:])
                say(
                    f"{child.name} exited with code {code} (log: {child.log_path})"
                    + (f"\n{tail}" if tail else ""),
                    sys.stderr,
                )
                if child.name in self.core:
                    say(f"{child.name} is required: stopping the stack", sys.stderr)
                    return EXIT_FAILED
                say("the rest of the stack keeps running", sys.stderr)
            if self.postgres is not None and not self.postgres.running():
                say("embedded PostgreSQL stopped unexpectedly: stopping the stack", sys.stderr)
                return EXIT_FAILED
        return EXIT_OK

    # -- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.running():
                say(f"stopping {child.name}")
            child.stop(STOP_TIMEOUT)
        self.children.clear()
        if self.postgres is not None:
            say("stopping PostgreSQL")
            try:
                self.postgres.stop()
            except Exception as exc:  # report, but keep shutting down
                say(f"could not stop PostgreSQL cleanly: {exc}", sys.stderr)
            self.postgres = None


@contextmanager
def _stop_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM ask for an orderly stop instead of raising in the middle of a start."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if not stop.is_set():
            say(f"{signal.Signals(signum).name} received: stopping")
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_dev(options: DevOptions) -> int:
    """Run the dev stack until Ctrl-C/SIGTERM; returns the process exit status."""
    try:
        check_ports(options)
    except PortInUseError as exc:
        say(str(exc), sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    try:
        with data_dir_lock(options.data_dir.resolve()), _stop_signals(stop):
            return _run(options, stop)
    except PortInUseError as exc:
        say(str(exc), sys.stderr)
        return EXIT_USAGE


def _run(options: DevOptions, stop: threading.Event) -> int:
    stack = DevStack(options, stop)
    demo_thread: threading.Thread | None = None
    demo_stop = threading.Event()
    started = time.monotonic()
    try:
        try:
            stack.start()
        except StartupError as exc:
            if stop.is_set():
                return EXIT_OK
            say(str(exc), sys.stderr)
            return EXIT_FAILED
        say(f"started in {time.monotonic() - started:.1f}s")
        console(stack.banner())
        if options.demo:
            demo_thread = _start_demo(stack, demo_stop)
        return stack.watch()
    finally:
        demo_stop.set()
        if demo_thread is not None:
            demo_thread.join(STOP_TIMEOUT)
        began = time.monotonic()
        stack.stop()
        say(f"stopped in {time.monotonic() - began:.1f}s")


def _start_demo(stack: DevStack, demo_stop: threading.Event) -> threading.Thread:
    from devstack.demo import Demo, DemoUrls

    o = stack.options
    demo = Demo(
        cli=dunning_command(),
        env=stack.env,
        urls=DemoUrls(
            temporal_ui=f"http://{HOST}:{o.ui_port}",
            mail=f"http://{HOST}:{o.mail_port}",
            api=f"http://{HOST}:{o.api_port}",
        ),
        stop=demo_stop,
    )
    thread = threading.Thread(target=demo.run, name="demo", daemon=True)
    thread.start()
    return thread
