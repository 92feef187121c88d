"""Where a benchmark's CPU goes, per process kind: run a command, sample /proc, print a table.

    .venv/bin/python -m bench.cpu_split -- .venv/bin/python -m bench.payment_storm --n 500

Every 0.25 s it reads user+system CPU time of every process on the machine and keeps each
process's last reading, so processes the benchmark starts and stops are counted too (up to
their last sample). Processes that existed before the command started are counted from
their first reading, so a busy neighbour shows as what it used during the run. Kinds are
told apart by command line; the table is CPU seconds, the share of all CPU used during the
run, and the share of the machine's capacity (nproc x wall time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = (  # first match wins
    ("py-spy", ("py-spy",)),
    ("temporal server", ("temporal", "server")),
    ("postgres", ("postgres",)),
    ("worker (python)", ("bench.baseline",)),
    ("worker (python)", ("worker",)),
    ("worker (python)", ("multiprocessing",)),  # dunning worker --processes K children
    ("api (python)", ("uvicorn",)),
    ("bench driver (python)", ("bench.",)),
)


def _read(pid: str) -> tuple[float, float, str] | None:
    """(CPU seconds used, start time in seconds since boot, command line)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    started = int(fields[19]) / TICKS
    return cpu, started, cmdline or stat.split("(", 1)[1].split(")", 1)[0]


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _kind(cmdline: str) -> str:
    for kind, words in KINDS:
        if all(w in cmdline for w in words):
            return kind
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("give a command after --")
    first: dict[str, float] = {}
    last: dict[str, tuple[float, str]] = {}
    mine = str(os.getpid())
    start = time.monotonic()
    booted_for = _uptime()
    child = subprocess.Popen(command)
    while True:
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == mine:
                continue
            reading = _read(pid)
            if reading is None:
                continue
            cpu, started, cmdline = reading
            # A process started during the run is counted from zero, an older one from
            # what it had used when first seen.
            first.setdefault(pid, 0.0 if started >= booted_for else cpu)
            last[pid] = (cpu, cmdline)
        if child.poll() is not None:
            break
        time.sleep(0.25)
    wall = time.monotonic() - start
    used: dict[str, float] = defaultdict(float)
    for pid, (cpu, cmdline) in last.items():
        used[_kind(cmdline)] += cpu - first[pid]
    total = sum(used.values()) or 1.0
    capacity = (os.cpu_count() or 1) * wall
    print(f"\nCPU split over {wall:.1f} s wall, {os.cpu_count()} CPUs "
          f"({total:.1f} CPU s used, {100 * total / capacity:.0f}% of capacity)")
    print(f"{'process kind':<24}{'CPU s':>8}{'of used':>9}{'of capacity':>13}")
    for kind, cpu in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"{kind:<24}{cpu:>8.1f}{100 * cpu / total:>8.0f}%{100 * cpu / capacity:>12.0f}%")
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
