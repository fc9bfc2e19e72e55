"""`python -m bench all|fanout|generator|latency|memory|soak`: see bench/README.md.

Each comparison runs its variants side by side in one run, alternating (A B A B) over
`--rounds` rounds, prints medians and ratios, and writes bench/results/<date>-<name>.json
plus a chart (.png). `--quick` is a short smoke run (1 round, short phases): its figures
are for checking the harness, not for quoting.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .procs import BenchError
from .runner import RESULTS_DIR, Output

BENCHES = ("fanout", "generator", "latency", "memory", "soak")


def _bench(name: str) -> Callable[..., dict[str, Any]]:
    """The bench's `run`, imported on demand (the peers' set-up only when needed)."""
    module = importlib.import_module(f"bench.{name}")
    run: Callable[..., dict[str, Any]] = module.run
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "bench",
        choices=("all", *BENCHES, "tables"),
        help="which comparison to run (`tables`: print the README's tables from --out)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (A B per round)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run: 1 round")
    parser.add_argument(
        "--minutes", type=float, default=None, help="soak length (soak; default 10)"
    )
    parser.add_argument(
        "--soak-minutes", type=float, default=None, help="soak length within `all` (default 2)"
    )
    parser.add_argument(
        "--layout", action="append", help="fanout only: run just this layout (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.layout:
        from .fanout import layouts

        known = [layout.name for layout in layouts(1.0)]
        unknown = [name for name in args.layout if name not in known]
        if unknown:
            parser.error(f"no fanout layout named {', '.join(map(repr, unknown))}: use {known}")
    if args.bench == "tables":
        from .tables import render

        print(render(args.out))
        return 0
    rounds = 1 if args.quick else args.rounds
    output = Output(out_dir=args.out, quiet=os.environ.get("CI", "").lower() == "true")
    names = BENCHES if args.bench == "all" else (args.bench,)
    failed = False
    for name in names:
        output.say(f"== {name}")
        kwargs: dict[str, Any] = {}
        if name == "fanout" and args.layout:
            kwargs["only"] = tuple(args.layout)
        if name == "soak":
            minutes = args.minutes if args.bench == "soak" else args.soak_minutes
            kwargs["minutes"] = (
                minutes if minutes is not None else (10.0 if args.bench == "soak" else 2.0)
            )
        try:
            _bench(name)(rounds, args.quick, output, **kwargs)
        except BenchError as exc:
            print(f"bench {name}: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
