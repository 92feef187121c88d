"""Supervised children stop with their whole process group, by force when they must."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from devstack.processes import Child


def _wait_for(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_stop_takes_grandchildren_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid));"
        "print('ready', flush=True); time.sleep(60)"
    )
    child = Child("parent", [sys.executable, "-c", script], env=dict(os.environ),
                  log_path=tmp_path / "logs" / "parent.log", echo=False)
    child.start()
    grandchild = int(_wait_for(pidfile))
    assert child.running()
    child.stop(timeout=5)
    assert not child.running()
    time.sleep(0.2)
    assert not psutil.pid_exists(grandchild) or (
        psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE)
    assert "ready" in (tmp_path / "logs" / "parent.log").read_text()


def test_a_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f"open({str(ready)!r}, 'w').write('1'); time.sleep(60)"
    )
    child = Child("stubborn", [sys.executable, "-c", script], env=dict(os.environ),
                  log_path=tmp_path / "stubborn.log", echo=False)
    child.start()
    _wait_for(ready)
    started = time.monotonic()
    code = child.stop(timeout=1)
    assert code == -9
    assert time.monotonic() - started < 5


def test_output_is_prefixed_on_the_console(tmp_path: Path, capsys) -> None:
    child = Child("worker", [sys.executable, "-c", "print('hello')"], env=dict(os.environ),
                  log_path=tmp_path / "worker.log")
    child.start()
    assert child.wait(10) == 0
    assert "  worker | hello" in capsys.readouterr().out
    assert (tmp_path / "worker.log").read_text() == "hello\n"
