"""Summarise a py-spy ``--format raw`` profile: where each process's samples went.

    py-spy record --subprocesses --format raw -o /tmp/storm.txt -- \\
        .venv/bin/python -m bench.payment_storm --n 500 --paced 0
    .venv/bin/python -m bench.profile_summary /tmp/storm.txt

Each line of the raw format is ``frame;frame;...;frame count``; the innermost
``process PID:cmdline`` frame names the process (a child's stack starts with its
parents'). Samples are grouped per process kind (bench driver, worker, baseline worker) and,
inside each, by the first frame that belongs to a known area (the workflow sandbox, the
SDK's activity and workflow machinery, psycopg, mail, JSON, logging), counted inclusively
from the innermost frame outwards, so a sample is charged to the most specific area.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

# Innermost match wins: a psycopg call inside an activity is "database (psycopg)".
AREAS = (
    ("database (psycopg, pool)", ("psycopg",)),
    ("mail (aiosmtplib, email, jinja2, babel)", ("aiosmtplib", "/email/", "jinja2", "babel")),
    ("JSON (de)serialisation", ("/json/", "converter.py", "codec.py")),
    ("logging", ("/logging/",)),
    ("workflow sandbox (import/restrictions)", ("workflow_sandbox",)),
    ("workflow code (workflows/)", ("/workflows/",)),
    ("SDK workflow machinery", ("temporalio/worker/_workflow", "temporalio/worker/workflow")),
    ("SDK activity machinery", ("temporalio/worker/_activity",)),
    ("SDK client, update and start calls", ("temporalio/client.py",)),
    ("SDK core bridge (Rust, gRPC)", ("temporalio/bridge",)),
    ("operations/ and api/ (edge)", ("/operations/", "/api/")),
    ("activities/ and db/ (product)", ("/activities/", "/db/")),
    ("domain/", ("/domain/",)),
    ("asyncio event loop", ("asyncio/",)),
)


def _process(frame: str) -> str:
    if "bench.baseline" in frame:
        return "baseline worker"
    if "worker_processes" in frame:
        return "worker"
    if "multiprocessing" in frame:
        return "multiprocessing helper"
        return "worker"
    if "bench." in frame:
        return "bench driver"
    return frame[:60]


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):
        for area, needles in AREAS:
            if any(n in frame for n in needles):
                return area
    return "other"


def summarise(path: Path) -> dict[str, Counter[str]]:
    by_process: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(r"^(.*) (\d+)$", line)
        if not match:
            continue
        frames = match.group(1).split(";")
        # With --subprocesses a child's stack starts with its parents' process frames.
        own = max(i for i, f in enumerate(frames) if f.startswith("process "))
        by_process[_process(frames[own])][_area(frames[own + 1:])] += int(match.group(2))
    return by_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    args = parser.parse_args()
    result = summarise(args.profile)
    grand = sum(sum(c.values()) for c in result.values()) or 1
    for process, areas in sorted(result.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(areas.values())
        print(f"\n{process}: {total} samples ({100 * total / grand:.0f}% of all)")
        for area, count in areas.most_common():
            print(f"  {100 * count / total:5.1f}%  {area}")


if __name__ == "__main__":
    main()
