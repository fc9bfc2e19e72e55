"""`loadtool run SCENARIO`: a load run, results.json, a verdict as the exit code.

Exit codes: 0 every threshold passed; 1 a threshold failed; 2 invalid scenario or usage
(nothing was started); 3 the target was unreachable or refused the connection. A shard
(`--shard I/N`) exits 0 once its partial results are written: `loadtool merge` decides.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import click
import trio

from ..results.schema import write_results
from ..scenario import RestartServerFault, ScenarioError, load_scenario
from ..swarm.embedded import EmbeddedServerError
from ..swarm.engine import RunSettings, Shard, TargetUnreachable, run_scenario
from ..swarm.progress import for_stream
from ..swarm.workers import WorkerFailed, WorkerPlan, run_workers
from ._errors import sole_leaf
from ._types import (
    DURATION,
    ca_file_option,
    dialect_option,
    insecure_option,
    secret_option,
    targets_option,
)

EXIT_THRESHOLD_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3


@click.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@targets_option("the scenario's target, else an embedded reference server")
@dialect_option
@secret_option
@insecure_option
@ca_file_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where results.json goes. Default: reports/<scenario>-<UTC time>/.",
)
@click.option("--duration", type=DURATION, help="Override the total duration (phases scale).")
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--run-id", help="Run id (8 hex characters by default, random).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Local worker processes (one core each); results merge exactly.",
)
@click.option(
    "--shard",
    metavar="I/N",
    help="Run only shard I of N of the population (for load spread over machines).",
)
@click.option(
    "--start-at",
    metavar="T",
    help="Start the load at T (UTC ISO-8601 or Unix seconds), for shards to start together.",
)
@click.option(
    "--secret-from-env",
    is_flag=True,
    help="Mint tokens with $LOADTOOL_SECRET (keeps the secret off the command line).",
)
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option(
    "--no-report",
    is_flag=True,
    help="Write results.json only: no report.html and figures (`loadtool report` makes them).",
)
def run(
    scenario_file: Path,
    targets: tuple[str, ...],
    dialect: str | None,
    secret: str | None,
    insecure: bool,
    ca_file: Path | None,
    out_dir: Path | None,
    duration: float | None,
    seed: int | None,
    run_id: str | None,
    workers: int,
    shard: str | None,
    start_at: str | None,
    secret_from_env: bool,
    quiet: bool,
    no_report: bool,
) -> None:
    """Run SCENARIO_FILE (YAML, docs/scenarios.md); write results.json and report.html."""
    if secret_from_env:
        secret = os.environ.get("LOADTOOL_SECRET") or secret
    try:
        part = Shard.parse(shard) if shard else None
        start_ns = parse_start_at(start_at) if start_at else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if part is not None and workers > 1:
        raise click.UsageError("--shard and --workers exclude each other")
    try:
        scenario = load_scenario(scenario_file)
        if part is not None:
            # Whoever owns the server runs its restart faults (the --workers parent).
            scenario = attrs.evolve(
                scenario,
                faults=tuple(f for f in scenario.faults if not isinstance(f, RestartServerFault)),
            )
        scenario = scenario.with_overrides(
            targets=targets or None,
            dialect=dialect,
            secret=secret,
            duration=duration,
            seed=seed,
            insecure=insecure,
            ca_file=str(ca_file) if ca_file else None,
        )
    except ScenarioError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    if run_id is not None and not (run_id.isalnum() and len(run_id) <= 16):
        raise click.BadParameter("use up to 16 letters and digits", param_hint="--run-id")
    if part is not None and scenario.target.embedded:
        raise click.UsageError("a shard needs --target: the server must be shared by all shards")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir or Path("reports") / f"{scenario.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    if run_id:
        the_run_id = run_id.lower()
    elif part is not None and start_ns is not None:
        the_run_id = shard_run_id(scenario.sha256 or scenario.name, scenario.seed, start_ns)
    elif part is not None:
        raise click.UsageError(
            "a shard needs the run id its peers use: give every shard the same --start-at "
            "(the run id is derived from it) or the same --run-id"
        )
    else:
        the_run_id = secrets.token_hex(4)
    try:
        if workers > 1:
            overrides: list[str] = []
            if duration is not None:
                overrides += ["--duration", f"{duration}s"]
            if seed is not None:
                overrides += ["--seed", str(seed)]
            if dialect is not None:
                overrides += ["--dialect", dialect]
            if insecure:
                overrides += ["--insecure"]
            if ca_file is not None:
                overrides += ["--ca-file", str(ca_file)]
            plan = WorkerPlan(
                scenario_file=scenario_file,
                scenario=scenario,
                workers=workers,
                out_dir=out,
                run_id=the_run_id,
                overrides=tuple(overrides),
                targets=scenario.target.urls,
                secret=scenario.target.auth.secret if scenario.target.auth else None,
            )
            if not quiet:
                click.echo(f"running {workers} workers ...", err=True)
            results = trio.run(run_workers, plan)
        else:
            settings = RunSettings(
                scenario=scenario,
                out_dir=out,
                progress=for_stream(sys.stderr, quiet=quiet),
                run_id=the_run_id,
                shard=part,
                start_at_ns=start_ns,
            )
            results = trio.run(run_scenario, settings)
    except (TargetUnreachable, EmbeddedServerError, WorkerFailed, BaseExceptionGroup) as raised:
        leaf = sole_leaf(raised)
        if isinstance(leaf, WorkerFailed):
            click.echo(f"Error: {leaf}", err=True)
            sys.exit(leaf.exit_code if leaf.exit_code in (2, 3) else 1)
        if not isinstance(leaf, TargetUnreachable | EmbeddedServerError):
            raise
        click.echo(f"Error: {leaf}", err=True)
        if out_dir is None and not any(p.name != "server.log" for p in out.iterdir()):
            shutil.rmtree(out)  # nothing ran: leave no empty report folder behind
        sys.exit(EXIT_UNREACHABLE)
    path = out / "results.json"
    write_results(path, results)
    click.echo(summary(results, path, shard=f"{part.index}/{part.count}" if part else None))
    if not no_report:
        write_report(path, results, out)
    if part is not None:
        # A shard's counters are a part of the run (`sent > 1000` cannot hold on a quarter
        # of it), so its verdict is the merge's. Exit 0 once the partial file is written:
        # an orchestrator must not retry a shard that ran (a retry would add load).
        sys.exit(0)
    sys.exit(0 if results["passed"] else EXIT_THRESHOLD_FAILED)


def write_report(path: Path, results: dict[str, Any], out: Path) -> None:
    """report.html and the figures next to results.json. results.json is already written
    and the exit code is the run's verdict: a report that cannot be drawn says so on
    stderr (and how to retry) but changes neither."""
    # Imported here: matplotlib takes a while to load and workers (--no-report) skip it.
    from ..report.runreport import write_run_report
    from ..report.runs import label_runs

    try:
        files = write_run_report(label_runs([(path, results)]), out)
    except Exception as exc:  # noqa: BLE001  # not under trio: nothing to cancel; see docstring
        click.echo(
            f"Warning: report.html was not written ({type(exc).__name__}: {exc}); "
            f"results.json is complete, retry with `loadtool report {path}`",
            err=True,
        )
        return
    click.echo(f"report: {files.html}")


def shard_run_id(scenario_sha256: str, seed: int, start_ns: int) -> str:
    """The run id shards derive when none is given: the same on every shard of one run
    (same scenario file, seed and --start-at), different for another start."""
    digest = hashlib.sha256(f"{scenario_sha256}:{seed}:{start_ns}".encode()).hexdigest()
    return digest[:8]


def parse_start_at(text: str) -> int:
    """Run-clock (= wall clock) nanoseconds from a UTC ISO-8601 time or Unix seconds."""
    try:
        return int(float(text) * 1e9)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use UTC ISO-8601 (2026-11-29T10:00:00Z) or Unix seconds"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z for UTC")
    return int(when.timestamp() * 1e9)


def summary(results: dict[str, Any], path: Path, *, shard: str | None = None) -> str:
    """The human summary printed at the end of a run (of shard "I/N" of one: partial)."""
    t = results["totals"]
    lat = results["latency_ms"]
    gen = results["generator"]
    lines = []
    if gen["saturated"]:
        why = "; ".join(gen.get("saturation_reasons", [])) or "see generator in results.json"
        lines.append(
            f"WARNING: the load generator was saturated ({why}): latencies measure the "
            "generator, not only the server. Use fewer clients per worker or more workers."
        )
    lines += [
        f"scenario {results['scenario']['name']}  run {results['run_id']}  "
        f"{results['duration_s']:.1f}s  target {', '.join(results['target']['urls'])}",
        f"sent {t['sent']}  delivered {t['delivered']}/{t['expected_deliveries']}  "
        f"lost {t['lost']}  duplicates {t['duplicates']}  out-of-order {t['out_of_order']}  "
        f"leaked {t['leaked']}  acks {t['acks']}",
        f"latency ms  p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
        f"p99.9 {lat['p999']:.2f}  max {lat['max']:.2f}  (n={lat['count']})",
        f"connects {t['connects']}  reconnects {t['reconnects']}  errors {t['errors']}  "
        f"generator cpu {gen['cpu_s']:.1f}s  loop lag p99 {gen['loop_lag_ms_p99']:.1f} ms",
    ]
    for check in results["thresholds"]:
        mark = "PASS" if check["ok"] else "FAIL"
        value = check["value"]
        shown = "missing" if value is None else f"{value:g}"
        lines.append(f"  {mark}  {check['expr']}  (value {shown})")
    if shard is not None:
        lines.append(f"SHARD {shard}: partial results; `loadtool merge` decides  results: {path}")
    else:
        lines.append(f"{'PASSED' if results['passed'] else 'FAILED'}  results: {path}")
    return "\n".join(lines)
