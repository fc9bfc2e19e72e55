"""`loadtool merge SHARD.json... -o results.json`: the shards of one run, merged exactly.

Exit codes: 0 every threshold passed on the merged run; 1 a threshold failed; 2 the files
are not one complete set of shards of one run (a file unreadable or malformed, a shard
missing or given twice, shards of different runs); nothing is written then.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..results.schema import ResultsError, read_results, results_metrics, write_results
from ..results.shards import ShardSetError, merge_shards
from ..scenario.thresholds import ThresholdError, evaluate, parse_threshold
from .run import EXIT_INVALID, EXIT_THRESHOLD_FAILED, summary


@click.command()
@click.argument(
    "shard_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the merged results.json goes.",
)
@click.option("--quiet", is_flag=True, help="No summary and no warnings on stderr.")
def merge(shard_files: tuple[Path, ...], out_file: Path, quiet: bool) -> None:
    """Merge the results of `loadtool run --shard I/N` (one file per shard) into one.

    Counters add, histograms merge losslessly, loss and duplicates are computed across
    shards, time series align on the wall clock; the scenario's thresholds are evaluated
    on the merged run (docs/scaling.md).
    """
    sources = [str(path) for path in shard_files]
    try:
        parts = [read_results(path) for path in shard_files]
        checks = []
        for i, row in enumerate(parts[0]["thresholds"]):
            try:
                checks.append(parse_threshold(row["expr"]))
            except ThresholdError as exc:
                raise ResultsError(sources[0], f"thresholds[{i}].expr", str(exc)) from exc
        merged = merge_shards(
            parts, sources, thresholds=lambda doc: evaluate(checks, results_metrics(doc))
        )
    except (ResultsError, ShardSetError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    write_results(out_file, merged)
    if not quiet:
        for warning in merged["warnings"]:
            click.echo(f"WARNING: {warning}", err=True)
    click.echo(summary(merged, out_file))
    sys.exit(0 if merged["passed"] else EXIT_THRESHOLD_FAILED)
