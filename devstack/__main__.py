"""`python -m devstack [--demo] [--data-dir DIR] [--temporal-port N] ...` = `dunning dev`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack.options import PORT_OPTIONS, DevOptions


def parse_args(argv: Sequence[str] | None = None) -> DevOptions:
    defaults = DevOptions()
    parser = argparse.ArgumentParser(
        prog="dunning dev",
        description="Run PostgreSQL, Temporal (+ UI), a mail catcher, the worker and the API "
        "on this machine; Ctrl-C stops everything.",
    )
    parser.add_argument("--demo", action="store_true", help="load and play the worked example")
    parser.add_argument(
        "--data-dir", type=Path, default=defaults.data_dir,
        help="where PostgreSQL, Temporal, mail and logs are kept (default: %(default)s)",
    )
    for opt in PORT_OPTIONS:
        parser.add_argument(
            opt.flag, dest=opt.field, type=int, default=getattr(defaults, opt.field),
            help=f"port of the {opt.what} (default: %(default)s)",
        )
    args = parser.parse_args(argv)
    return DevOptions(**vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    from devstack.supervisor import run_dev

    return run_dev(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
