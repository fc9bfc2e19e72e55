"""The `loadtool` command: a thin click group; each command lives in its own module.

Exit codes (one place): 0 success, 1 the run failed its checks, 2 invalid input or
usage, 3 target unreachable or refused.
"""

from __future__ import annotations

import click

from .. import __version__
from .capacity import capacity
from .compare import compare
from .conform import conform
from .fuzz import fuzz
from .merge import merge
from .report import report
from .run import run
from .serve import serve
from .token import token


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="loadtool")
def cli() -> None:
    """Load testing and protocol conformance for real-time WebSocket chat servers."""


cli.add_command(capacity)
cli.add_command(compare)
cli.add_command(conform)
cli.add_command(fuzz)
cli.add_command(merge)
cli.add_command(report)
cli.add_command(run)
cli.add_command(serve)
cli.add_command(token)


def main() -> None:
    cli()
