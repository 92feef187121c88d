"""Child processes of the dev stack: own process group, output to a log file (and, when
asked, to the console prefixed with the child's name), stop = SIGTERM, then SIGKILL."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

_console_lock = threading.Lock()
_NAME_WIDTH = 8


def console(line: str, stream: IO[str] | None = None) -> None:
    """One whole line on the console, never interleaved with a child's line."""
    out = stream or sys.stdout
    with _console_lock:
        out.write(line.rstrip("\n") + "\n")
        out.flush()


def _die_with_parent() -> None:
    # Linux only: if the supervisor is killed outright (SIGKILL, OOM), the kernel sends the
    # child SIGTERM instead of leaving it orphaned and holding our ports.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Child:
    """One supervised program."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        echo: bool = True,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.echo = echo
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.tail: deque[str] = deque(maxlen=20)
        self._pump: threading.Thread | None = None
        self.reported_exit = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            # The child writes its own log through our pump, so the file and console agree.
            self.process = subprocess.Popen(  # noqa: S603 (argv built by us, no shell)
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # Own session: a terminal Ctrl-C reaches only the supervisor, which then
                # stops the children in order instead of all dying at once.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except BaseException:
            log.close()
            raise
        self._pump = threading.Thread(
            target=self._copy_output, args=(self.process.stdout, log), daemon=True,
            name=f"pump-{self.name}",
        )
        self._pump.start()

    def _copy_output(self, stream: IO[bytes], log: IO[bytes]) -> None:
        prefix = f"{self.name:>{_NAME_WIDTH}} | "
        with log:
            for raw in iter(stream.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip()
                self.tail.append(line)
                if self.echo:
                    console(prefix + line)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        if self._pump is not None:
            self._pump.join(2)  # let the last lines reach the log
        return code

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the whole group, SIGKILL what is left after ``timeout``; returns the code."""
        if self.process is None:
            return None
        pgid = self.process.pid  # session leader: pgid == pid
        if self.process.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                console(f"{self.name:>{_NAME_WIDTH}} | did not stop in {timeout:.0f}s: killing")
                _signal_group(pgid, signal.SIGKILL)
                self.process.wait(5)
        # Grandchildren may outlive the leader in its group: no survivors.
        _signal_group(pgid, signal.SIGKILL)
        if self._pump is not None:
            self._pump.join(2)
        return self.process.returncode


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass
