"""`loadtool run SCENARIO`: a load run, results.json, a verdict as the exit code.

Exit codes: 0 every threshold passed; 1 a threshold failed; 2 invalid scenario or usage
(nothing was started); 3 the target was unreachable or refused the connection.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import trio

from ..results.schema import write_results
from ..scenario import ScenarioError, load_scenario
from ..swarm.embedded import EmbeddedServerError
from ..swarm.engine import RunSettings, TargetUnreachable, run_scenario
from ..swarm.progress import for_stream
from ._types import DURATION

EXIT_THRESHOLD_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3


@click.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="URL",
    help="ws:// or wss:// URL of the server under test; repeat to spread clients. "
    "Default: the scenario's target, else an embedded reference server.",
)
@click.option("--dialect", type=click.Choice(["v1", "seed"]), help="Override the dialect.")
@click.option("--secret", help="Mint tokens with this secret (reference token scheme).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where results.json goes. Default: reports/<scenario>-<UTC time>/.",
)
@click.option("--duration", type=DURATION, help="Override the total duration (phases scale).")
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--run-id", help="Run id (8 hex characters by default, random).")
@click.option("--quiet", is_flag=True, help="No progress output.")
def run(
    scenario_file: Path,
    targets: tuple[str, ...],
    dialect: str | None,
    secret: str | None,
    out_dir: Path | None,
    duration: float | None,
    seed: int | None,
    run_id: str | None,
    quiet: bool,
) -> None:
    """Run SCENARIO_FILE (YAML, docs/scenarios.md) and write results.json."""
    try:
        scenario = load_scenario(scenario_file).with_overrides(
            targets=targets or None, dialect=dialect, secret=secret, duration=duration, seed=seed
        )
    except ScenarioError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    if run_id is not None and not (run_id.isalnum() and len(run_id) <= 16):
        raise click.BadParameter("use up to 16 letters and digits", param_hint="--run-id")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir or Path("reports") / f"{scenario.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    settings = RunSettings(
        scenario=scenario,
        out_dir=out,
        progress=for_stream(sys.stderr, quiet=quiet),
        **({"run_id": run_id.lower()} if run_id else {}),
    )
    try:
        results = trio.run(run_scenario, settings)
    except (TargetUnreachable, EmbeddedServerError, BaseExceptionGroup) as raised:
        leaf = _sole_leaf(raised)
        if not isinstance(leaf, TargetUnreachable | EmbeddedServerError):
            raise
        click.echo(f"Error: {leaf}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    path = out / "results.json"
    write_results(path, results)
    click.echo(summary(results, path))
    sys.exit(0 if results["passed"] else EXIT_THRESHOLD_FAILED)


def _sole_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def summary(results: dict[str, Any], path: Path) -> str:
    """The human summary printed at the end of a run."""
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
    lines.append(f"{'PASSED' if results['passed'] else 'FAILED'}  results: {path}")
    return "\n".join(lines)
