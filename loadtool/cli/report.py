"""`loadtool report RESULTS.json [...]`: figures and a self-contained report.html.

Exit codes: 0 the report was written; 2 a results file is unreadable or invalid (the
message names the file and the key), or the output cannot be written.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from ..results.schema import ResultsError

EXIT_INVALID = 2


@click.command()
@click.argument(
    "results_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where report.html and the figures go. Default: the results file's folder "
    "(one file), else reports/report-<UTC time>/.",
)
@click.option("--svg", is_flag=True, help="Also write each figure as SVG.")
def report(results_files: tuple[Path, ...], out_dir: Path | None, svg: bool) -> None:
    """Draw the figures of RESULTS_FILES (results.json of `loadtool run`) and write
    report.html; several files overlay their curves (docs/reports.md)."""
    # Imported here: matplotlib takes a while to load, and only this command needs it.
    from ..report.runreport import write_run_report
    from ..report.runs import load_runs

    try:
        runs = load_runs(results_files)
    except ResultsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    if out_dir is None:
        if len(results_files) == 1:
            out_dir = results_files[0].parent
        else:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            out_dir = Path("reports") / f"report-{stamp}"
    try:
        files = write_run_report(runs, out_dir, svg=svg)
    except OSError as exc:
        click.echo(f"Error: cannot write the report to {out_dir}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(f"report: {files.html} ({len(files.figures)} figure files)")
