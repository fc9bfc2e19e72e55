"""`loadtool compare BASE.json NEW.json`: the key figures side by side, a regression gate.

Exit codes: 0 no regression beyond the limit; 1 a regression (docs/reports.md "compare"
says what counts); 2 a results file is unreadable or invalid, or bad usage.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from ..report.compare import compare as compare_results
from ..report.compare import format_table
from ..results.schema import ResultsError, read_results

EXIT_REGRESSED = 1
EXIT_INVALID = 2


class Percentage(click.ParamType):  # type: ignore[type-arg]
    """'10%' -> 0.10 (a share of at least 0 %)."""

    name = "percentage"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        if not text.endswith("%"):
            self.fail(f"{text!r} is not a percentage: write e.g. 10% or 2.5%", param, ctx)
        try:
            share = float(text[:-1]) / 100.0
        except ValueError:
            self.fail(f"{text!r} is not a percentage: write e.g. 10% or 2.5%", param, ctx)
        if not (math.isfinite(share) and share >= 0):
            self.fail(f"{text!r} must be 0% or more", param, ctx)
        return share


@click.command()
@click.argument("base_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--max-regression",
    type=Percentage(),
    default="10%",
    show_default=True,
    help="How much worse a gated figure may get (latency up, throughput down).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(base_file: Path, new_file: Path, max_regression: float, as_json: bool) -> None:
    """Compare NEW_FILE against BASE_FILE (results.json files); exit 1 on a regression."""
    try:
        base = read_results(base_file)
        new = read_results(new_file)
    except ResultsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    outcome = compare_results(base, new, max_regression=max_regression)
    if as_json:
        doc = outcome.to_dict() | {"base": str(base_file), "new": str(new_file)}
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_table(outcome, "BASE", "NEW"))
    sys.exit(0 if outcome.passed else EXIT_REGRESSED)
