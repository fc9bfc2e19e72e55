"""`loadtool capacity SCENARIO --slo ...`: the largest load one server node holds.

Exit codes: 0 a sustainable load was found (possibly a lower bound, which the output
says); 1 no load held the SLO; 2 invalid scenario, SLO, plan or options (nothing was
started); 3 the target was unreachable or refused the connection at the first step.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import attrs
import click
import orjson
import trio

from ..capacity.plan import PlanError, parse_plan
from ..capacity.search import RunStep, StepRecord, Verdict
from ..capacity.steps import StepPlan, plan_step, start_load
from ..scenario import (
    Plan,
    Scenario,
    ScenarioError,
    Threshold,
    ThresholdError,
    Vary,
    load_scenario,
    parse_slo,
)
from ..scenario.model import build_under
from ..swarm.embedded import EmbeddedServerError
from ..swarm.engine import TargetUnreachable
from ..units import parse_percent
from ._errors import sole_leaf
from ._types import (
    DURATION,
    ca_file_option,
    dialect_option,
    insecure_option,
    secret_option,
    targets_option,
)

EXIT_SLO_NEVER_HELD = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3
DEFAULT_BUDGET = "10m"


@click.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--slo",
    metavar="TERMS",
    help="Thresholds that must all hold, joined by commas, e.g. 'latency.p99<100ms,lost==0'. "
    "Default: the scenario's capacity.slo, else its thresholds.",
)
@click.option(
    "--budget",
    type=DURATION,
    default=DEFAULT_BUDGET,
    show_default=True,
    help="Time for the whole search; no step starts that would not fit.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where capacity.json, knee.png, capacity.html and each step's results go. "
    "Default: reports/capacity-<scenario>-<UTC time>/.",
)
@targets_option("the scenario's target, else an embedded reference server per step")
@dialect_option
@secret_option
@insecure_option
@ca_file_option
@click.option(
    "--vary", type=click.Choice([v.value for v in Vary]), help="The load dimension to vary."
)
@click.option("--start", type=float, help="The first step's load (default: the scenario's).")
@click.option("--factor", type=float, help="Growth factor between steps (default 2).")
@click.option("--max-steps", type=int, help="At most this many steps (default 8).")
@click.option("--step-duration", type=DURATION, help="Measured seconds per step (default 15s).")
@click.option("--warmup", type=DURATION, help="Unmeasured seconds per step (default 5s).")
@click.option("--resolution", help="Stop bisecting within this (default 10%).")
@click.option(
    "--plan",
    "plan_text",
    metavar="SPEC",
    help="Target population for the planning table, e.g. "
    "users=50000,rooms=5000,rate=0.2/s,headroom=30% (fanout=N instead of rooms).",
)
@click.option("--quiet", is_flag=True, help="No per-step progress.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def capacity(
    scenario_file: Path,
    slo: str | None,
    budget: float,
    out_dir: Path | None,
    targets: tuple[str, ...],
    dialect: str | None,
    secret: str | None,
    insecure: bool,
    ca_file: Path | None,
    vary: str | None,
    start: float | None,
    factor: float | None,
    max_steps: int | None,
    step_duration: float | None,
    warmup: float | None,
    resolution: str | None,
    plan_text: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Find the largest load of SCENARIO_FILE one server node holds within an SLO
    (docs/capacity.md): grow the load geometrically, then bisect."""
    try:
        scenario = load_scenario(scenario_file)
        scenario = scenario.with_overrides(
            targets=targets or None,
            dialect=dialect,
            secret=secret,
            insecure=insecure,
            ca_file=str(ca_file) if ca_file else None,
        )
        scenario = _with_search_options(
            scenario,
            vary=vary,
            start=start,
            factor=factor,
            max_steps=max_steps,
            step_duration=step_duration,
            warmup=warmup,
            resolution=resolution,
        )
    except ScenarioError as exc:
        _fail(str(exc))
    terms = _slo(slo, scenario)
    plan = _plan(plan_text, scenario)
    first = plan_step(scenario, start_load(scenario))
    if first.nominal_s > budget:
        _fail(
            f"--budget {budget:g}s is shorter than one step (~{first.nominal_s:.0f}s: "
            f"{first.warmup_s:g}s warm-up, {first.measure_s:g}s measured, drain and start-up); "
            "give a longer --budget or a shorter --step-duration/--warmup"
        )
    # Imported here: matplotlib (the report) costs every other command its start-up time.
    from ..capacity.driver import CapacitySettings, run_capacity, write_outputs
    from ..capacity.report import answer_text, reason_text

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir or Path("reports") / f"capacity-{scenario.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    progress = _Progress(sys.stderr, quiet=quiet, unit=first.vary.unit)
    settings = CapacitySettings(
        scenario=scenario,
        slo=terms,
        budget_s=budget,
        out_dir=out,
        plan=plan,
        on_step=progress.step,
        on_record=progress.record,
    )
    try:
        run = trio.run(run_capacity, settings)
    except (TargetUnreachable, EmbeddedServerError, BaseExceptionGroup) as raised:
        leaf = sole_leaf(raised)
        if not isinstance(leaf, TargetUnreachable | EmbeddedServerError):
            raise
        progress.close()
        click.echo(f"Error: {leaf}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    progress.close()
    document = write_outputs(run, scenario, plan, out)
    if as_json:
        summary = {
            key: document[key] for key in ("sustainable", "limited_by", "ended", "detail", "slo")
        }
        click.echo(orjson.dumps(summary | {"out": str(out)}).decode())
    else:
        click.echo(answer_text(document))
        click.echo(f"ended: {reason_text(document)} ({document['detail']})")
        if document["plan"] is not None:
            p = document["plan"]
            click.echo(
                f"plan: {p['users']:,} users x {p['rate_per_user']:g}/s x fan-out "
                f"{p['fanout']:g} = {p['deliveries_per_s']:,.0f} deliveries/s -> "
                f"{p['nodes']} node(s) with {p['headroom']:.0%} headroom"
            )
        click.echo(f"report: {out / 'capacity.html'}  data: {out / 'capacity.json'}")
    sys.exit(0 if document["sustainable"]["value"] is not None else EXIT_SLO_NEVER_HELD)


def _fail(message: str) -> Any:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_INVALID)


def _with_search_options(scenario: Scenario, **options: Any) -> Scenario:
    """The scenario's `capacity` section with the command-line options that were given.

    Raises:
        ScenarioError: an option out of range, named as its capacity key.
    """
    changes: dict[str, Any] = {}
    for key, attr in (
        ("vary", "vary"),
        ("start", "start"),
        ("factor", "factor"),
        ("max_steps", "max_steps"),
        ("step_duration", "step_duration_s"),
        ("warmup", "warmup_s"),
    ):
        if options[key] is not None:
            changes[attr] = options[key]
    if options["resolution"] is not None:
        try:
            changes["resolution"] = parse_percent(options["resolution"])
        except ValueError as exc:
            raise ScenarioError(str(exc), path="capacity.resolution") from None
    if not changes:
        return scenario
    section = build_under("capacity", attrs.evolve, scenario.capacity, **changes)
    result: Scenario = build_under("", attrs.evolve, scenario, capacity=section)
    return result


def _slo(text: str | None, scenario: Scenario) -> tuple[Threshold, ...]:
    if text is not None:
        try:
            return parse_slo(text)
        except ThresholdError as exc:
            _fail(f"--slo: {exc.message}")
    if scenario.capacity.slo:
        return scenario.capacity.slo
    if scenario.thresholds:
        return scenario.thresholds
    return _fail(  # type: ignore[no-any-return]
        "no SLO: give --slo 'latency.p99<100ms,lost==0', or capacity.slo or thresholds in "
        "the scenario"
    )


def _plan(text: str | None, scenario: Scenario) -> Plan | None:
    if text is None:
        return scenario.capacity.plan
    try:
        return parse_plan(text)
    except PlanError as exc:
        _fail(f"--plan: {exc}")
    return None


@attrs.define
class _Progress:
    """One line per step: human text on a terminal, a JSON object per line elsewhere
    (CI), nothing when quiet."""

    stream: TextIO
    quiet: bool
    unit: str
    _pending: bool = False

    @property
    def tty(self) -> bool:
        return self.stream.isatty()

    def step(self, step: RunStep, plan: StepPlan) -> None:
        if self.quiet or not self.tty:
            return
        self.stream.write(
            f"\rstep {step.index:2d} {step.stage:7} {step.load:>9g} {self.unit}  running "
            f"(~{plan.nominal_s:.0f}s) ..."
        )
        self.stream.flush()
        self._pending = True

    def record(self, record: StepRecord) -> None:
        if self.quiet:
            return
        f = record.outcome.figures
        if not self.tty:
            event = {
                "event": "capacity_step",
                "index": record.index,
                "stage": record.stage,
                "load": record.load,
                "verdict": record.verdict.value,
                "latency_p99_ms": f.get("latency_p99_ms"),
                "delivered_per_s": f.get("delivered_per_s"),
                "server_cpu": record.outcome.server_cpu,
                "saturated": record.outcome.saturated,
                "failed_terms": list(record.failed_terms),
            }
            self.stream.write(orjson.dumps(event).decode() + "\n")
            self.stream.flush()
            return
        p99 = f.get("latency_p99_ms")
        cpu = record.outcome.server_cpu
        why = ", ".join(record.failed_terms) or record.outcome.shortfall or ""
        if record.outcome.failure:
            why = record.outcome.failure
        if record.outcome.saturated:
            why = "; ".join(filter(None, [why, "generator saturated"]))
        mark = "held" if record.verdict is Verdict.HELD else record.verdict.value.upper()
        delivered = f.get("delivered_per_s")
        line = (
            f"step {record.index:2d} {record.stage:7} {record.load:>9g} {self.unit}  "
            f"p99 {'-' if p99 is None else f'{p99:.1f} ms':>9}  "
            f"delivered {'-' if delivered is None else f'{delivered:,.0f}/s':>10}  "
            f"server CPU {'-' if cpu is None or math.isnan(cpu) else f'{100 * cpu:.0f}%':>4}  "
            f"{mark}{'  (' + why + ')' if why else ''}"
        )
        self.stream.write("\r" + line.ljust(100) + "\n")
        self.stream.flush()
        self._pending = False

    def close(self) -> None:
        if self._pending:
            self.stream.write("\n")
            self.stream.flush()
            self._pending = False
