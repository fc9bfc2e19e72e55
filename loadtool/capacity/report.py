"""capacity.json, the knee plot and capacity.html: pure functions of the search's end.

`build_document` turns a finished search into the capacity.json document
(docs/capacity.md lists its keys); `knee_figure` and `render_html` read only that
document, so a report can be redrawn from a capacity.json alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .. import __version__
from ..report import page
from ..report.style import new_figure
from ..scenario import Plan, Scenario, Threshold, Vary, parse_threshold
from .plan import plan_nodes
from .search import EndReason, Finished, Limit, SearchConfig, StepRecord, Verdict

DOCUMENT_KIND: Final = "loadtool-capacity"
DOCUMENT_VERSION: Final = 1
KNEE_PNG: Final = "knee.png"

_REASON_TEXT: Final = {
    EndReason.FOUND: "found: bracketed within the resolution",
    EndReason.GENERATOR_SATURATED: "the load generator saturated first: a lower bound",
    EndReason.SLO_NEVER_HELD: "the SLO never held",
    EndReason.BUDGET: "the time budget ran out",
    EndReason.STEP_LIMIT: "the step limit was reached",
    EndReason.SERVER_ERROR: "a step could not run (server error)",
}
_LIMIT_TEXT: Final = {
    Limit.SERVER_CPU: "server CPU",
    Limit.LATENCY: "latency",
    Limit.LOSS: "loss",
    Limit.ERRORS: "errors",
    Limit.CONNECTIONS: "connections",
    Limit.CORRECTNESS: "correctness (duplicates, order, leaks)",
    Limit.GENERATOR: "the load generator",
    Limit.NONE: "no limit reached within the steps taken",
}
_PERCENTILES: Final = (("p50", "#0072B2"), ("p90", "#009E73"), ("p99", "#D55E00"))


def _step_dict(record: StepRecord, results_path: str | None) -> dict[str, Any]:
    outcome = record.outcome
    return {
        "index": record.index,
        "stage": record.stage,
        "load": record.load,
        "verdict": record.verdict.value,
        "limit": None if record.limit is None else record.limit.value,
        "checks": [check.as_dict() for check in record.checks],
        "failed_terms": list(record.failed_terms),
        "saturated": outcome.saturated,
        "saturation_reasons": list(outcome.saturation_reasons),
        "shortfall": outcome.shortfall,
        "failure": outcome.failure,
        "server_cpu": outcome.server_cpu,
        "wall_s": round(outcome.wall_s, 3),
        "figures": dict(outcome.figures),
        "results": results_path,
    }


def build_document(
    *,
    scenario: Scenario,
    vary: Vary,
    config: SearchConfig,
    finished: Finished,
    elapsed_s: float,
    target: Mapping[str, Any],
    results_paths: Mapping[int, str],
    step_duration_s: float,
    warmup_s: float,
    plan: Plan | None,
) -> dict[str, Any]:
    """The capacity.json document.

    `sustainable` is {value, unit, lower_bound, upper, and the throughput measured at that
    step}; null `value` when no load held the SLO. `plan` is the planning table (null
    without a target population, or without a sustainable figure to plan from).
    """
    by_load = {record.load: record for record in finished.steps}
    best = by_load.get(finished.sustainable) if finished.sustainable is not None else None
    figures = best.outcome.figures if best is not None else {}
    sustainable: dict[str, Any] = {
        "value": finished.sustainable,
        "unit": vary.unit,
        "lower_bound": finished.lower_bound,
        "upper": finished.upper,
        "deliveries_per_s": figures.get("delivered_per_s"),
        "messages_per_s": figures.get("sent_per_s"),
        "connections": figures.get("connected_min"),
        "latency_p99_ms": figures.get("latency_p99_ms"),
        "server_cpu": figures.get("server_cpu"),
    }
    planning = None
    deliveries = figures.get("delivered_per_s")
    if plan is not None and deliveries:
        planning = plan_nodes(
            plan,
            deliveries_per_node=deliveries,
            connections_per_node=figures.get("connected_min") or None,
            connections_limit=finished.limited_by is Limit.CONNECTIONS,
            lower_bound=finished.lower_bound,
        ).as_dict()
    return {
        "kind": DOCUMENT_KIND,
        "version": DOCUMENT_VERSION,
        "tool": {"name": "loadtool", "version": __version__},
        "scenario": {"name": scenario.name, "file": scenario.file, "sha256": scenario.sha256},
        "target": dict(target),
        "vary": vary.value,
        "unit": vary.unit,
        "slo": [term.expr for term in config.slo],
        "sustainable": sustainable,
        "limited_by": finished.limited_by.value,
        "ended": finished.reason.value,
        "detail": finished.detail,
        "search": {
            "start": config.start,
            "factor": config.factor,
            "max_steps": config.max_steps,
            "resolution": config.resolution,
            "step_duration_s": step_duration_s,
            "warmup_s": warmup_s,
            "budget_s": config.budget_s,
            "elapsed_s": round(elapsed_s, 3),
        },
        "steps": [_step_dict(r, results_paths.get(r.index)) for r in finished.steps],
        "plan": planning,
    }


def answer_text(document: Mapping[str, Any]) -> str:
    """The answer in one sentence, as the CLI prints it and the page shows it."""
    s = document["sustainable"]
    limited = limit_phrase(document)
    if s["value"] is None:
        return f"No load held the SLO ({', '.join(document['slo'])}); {limited}."
    bound = "at least " if s["lower_bound"] else ""
    value = f"{s['value']:g} {s['unit']}"
    throughput = ""
    if s["deliveries_per_s"] is not None:
        throughput = (
            f" ({s['deliveries_per_s']:,.0f} deliveries/s, {s['messages_per_s']:,.0f} messages/s)"
        )
    tail = " This is a lower bound." if s["lower_bound"] else ""
    return f"Sustainable per node: {bound}{value}{throughput}; {limited}.{tail}"


def limit_phrase(document: Mapping[str, Any]) -> str:
    """ "limited by server CPU", or "no limit reached within the steps taken"."""
    limit = Limit(document["limited_by"])
    return _LIMIT_TEXT[limit] if limit is Limit.NONE else f"limited by {_LIMIT_TEXT[limit]}"


def reason_text(document: Mapping[str, Any]) -> str:
    return _REASON_TEXT[EndReason(document["ended"])]


def _latency_slo(slo: Sequence[str]) -> list[tuple[str, float]]:
    """The latency terms of the SLO with their limits in ms, for horizontal lines."""
    lines = []
    for expr in slo:
        term: Threshold = parse_threshold(expr)
        if term.metric.startswith("latency."):
            lines.append((term.expr, term.value))
    return lines


def knee_figure(document: Mapping[str, Any]) -> Figure:
    """The knee plot: two panels sharing the offered-load axis. Top: latency percentiles
    of each step's measured window (log ms), the SLO's latency limits dashed, steps that
    broke the SLO crossed (a triangle where the generator saturated). Bottom: delivered
    per second. The sustainable load is a vertical line in both and a star on its p99."""
    steps = sorted(document["steps"], key=lambda s: s["load"])
    measured = [s for s in steps if s["failure"] is None]
    fig = new_figure(height_in=6.4)
    latency, throughput = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for key, colour in _PERCENTILES:
        points = [
            (s["load"], s["figures"][f"latency_{key}_ms"])
            for s in measured
            if s["figures"].get(f"latency_{key}_ms")
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            latency.plot(xs, ys, marker="o", color=colour, label=f"latency {key}")
    for expr, limit_ms in _latency_slo(document["slo"]):
        latency.axhline(limit_ms, color="#cf222e", linestyle="--", linewidth=1.2,
                        label=f"SLO {expr}")  # fmt: skip
    for saturated, marker, label in ((False, "x", "SLO broken"),
                                     (True, "^", "SLO broken, generator saturated")):  # fmt: skip
        points = [
            (s["load"], s["figures"]["latency_p99_ms"])
            for s in measured
            if s["verdict"] != Verdict.HELD.value
            and s["saturated"] is saturated
            and s["figures"].get("latency_p99_ms")
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            latency.plot(xs, ys, linestyle="none", marker=marker, markersize=11,
                         color="#cf222e", markeredgewidth=2, fillstyle="none",
                         label=label)  # fmt: skip
    latency.set_yscale("log")
    latency.set_ylabel("latency (ms, log scale)")
    latency.grid(True, which="both", color="#d0d7de", linewidth=0.6)
    throughput.plot(
        [s["load"] for s in measured],
        [s["figures"].get("delivered_per_s") or 0.0 for s in measured],
        marker="s",
        color="#6e7781",
        label="delivered/s",
    )
    throughput.set_ylabel("delivered per second")
    throughput.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    throughput.set_xlabel(f"offered load ({document['unit']})")
    throughput.set_ylim(bottom=0)
    throughput.grid(True, color="#d0d7de", linewidth=0.6)
    sustainable = document["sustainable"]
    if sustainable["value"] is not None:
        value = sustainable["value"]
        bound = "≥ " if sustainable["lower_bound"] else ""
        label = f"sustainable {bound}{value:g}"
        for ax in (latency, throughput):
            ax.axvline(value, color="#1a7f37", linewidth=1.5, label=label)
        p99 = sustainable.get("latency_p99_ms")
        if p99:
            latency.plot([value], [p99], marker="*", markersize=16, color="#1a7f37",
                         linestyle="none", zorder=5)  # fmt: skip
    latency.legend(loc="upper left", fontsize=8)
    throughput.legend(loc="upper left", fontsize=8)
    latency.set_title(f"{document['scenario']['name']}: latency and throughput vs offered load "
                      f"({limit_phrase(document)})")  # fmt: skip
    return fig


def render_html(document: Mapping[str, Any], knee_src: str) -> str:
    """capacity.html: the answer, the planning table, the knee plot (`knee_src`, a data
    URI), the search's settings and every step."""
    s = document["sustainable"]
    kind: page.BannerKind = "ok"
    if s["value"] is None:
        kind = "fail"
    elif s["lower_bound"]:
        kind = "warn"
    parts: list[object] = [page.banner(answer_text(document), kind)]
    parts.append(
        page.definitions(
            [
                ("scenario", document["scenario"]["file"] or document["scenario"]["name"]),
                ("target", _target_text(document["target"])),
                ("varied", _varied_text(document)),
                ("SLO", ", ".join(document["slo"])),
                ("ended", reason_text(document)),
                ("why", document["detail"]),
                ("limited by", _LIMIT_TEXT[Limit(document["limited_by"])]),
            ]
        )
    )
    parts.append(page.section("Planning", *_plan_parts(document), anchor="plan"))
    parts.append(
        page.section(
            "Knee",
            page.image(
                knee_src,
                alt="latency percentiles and delivered throughput against offered load",
                caption="Top: latency percentiles of each step's measured window (log scale); "
                "dashed: the SLO; crosses: steps that broke it (triangles: the generator "
                "saturated). Bottom: delivered per second. Green: the sustainable load.",
            ),
            anchor="knee",
        )
    )
    parts.append(page.section("Steps", _steps_table(document), anchor="steps"))
    search = document["search"]
    parts.append(
        page.section(
            "Search",
            page.definitions(
                [
                    ("start", f"{search['start']:g} {document['unit']}"),
                    ("growth factor", f"{search['factor']:g}"),
                    ("resolution", f"{search['resolution']:.0%}"),
                    ("steps", f"{len(document['steps'])} of at most {search['max_steps']}"),
                    (
                        "per step",
                        f"{search['warmup_s']:g} s warm-up (not measured) + "
                        f"{search['step_duration_s']:g} s measured",
                    ),
                    (
                        "time",
                        f"{search['elapsed_s']:.0f} s of a {search['budget_s']:.0f} s budget",
                    ),
                ]
            ),
            anchor="search",
        )
    )
    title = f"Capacity: {document['scenario']['name']}"
    subtitle = f"loadtool {document['tool']['version']} capacity search"
    return page.render_page(title, parts, subtitle=subtitle)


def _target_text(target: Mapping[str, Any]) -> str:
    urls = ", ".join(target.get("urls", []))
    if target.get("embedded") and not urls:
        return "the embedded reference server (a fresh one per step)"
    return urls or "-"


def _varied_text(document: Mapping[str, Any]) -> str:
    if document["vary"] == document["unit"]:
        return str(document["vary"])
    return f"{document['vary']} ({document['unit']})"


def _fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _plan_parts(document: Mapping[str, Any]) -> list[object]:
    plan = document["plan"]
    if plan is None:
        return [
            "No target population was given (--plan users=...,rate=...,rooms=... or "
            "capacity.plan in the scenario), or no load held the SLO."
        ]
    rows: list[list[object]] = [
        ["users (connected at once)", f"{plan['users']:,}"],
        ["messages per user", f"{plan['rate_per_user']:g}/s"],
        ["deliveries per message (fan-out)", f"{plan['fanout']:g}"],
        ["messages/s needed", _fmt(plan["messages_per_s"])],
        ["deliveries/s needed", _fmt(plan["deliveries_per_s"])],
        ["sustainable deliveries/s per node (measured)", _fmt(plan["deliveries_per_node"])],
        ["headroom", f"{plan['headroom']:.0%}"],
        ["nodes for deliveries", str(plan["nodes_for_deliveries"])],
        [
            "connections per node (held at the sustainable step)",
            _fmt(plan["connections_per_node"]),
        ],
        [
            "nodes for connections",
            f"{_fmt(plan['nodes_for_connections'], ',d')}"
            + ("" if plan["connections_limit"] else " (not the limit seen: not counted)"),
        ],
        ["nodes needed", str(plan["nodes"])],
    ]
    notes: list[object] = [
        page.table(["", "value"], rows, numeric=[1]),
        "nodes = ceil(deliveries/s needed / sustainable deliveries/s per node x (1 + "
        "headroom)); with connections as the limit, the larger of that and ceil(users / "
        "connections per node x (1 + headroom)).",
    ]
    if plan["per_node_is_lower_bound"]:
        notes.insert(
            0,
            page.banner(
                "The per-node figure is a lower bound, so this node count is an upper bound.",
                "warn",
            ),
        )
    return notes


def _results_link(path: str | None) -> object:
    """A link to a step's results.json (relative to the page), or a dash."""
    if path is None:
        return "-"
    return page.Markup(f'<a href="{page.escape(path)}">results.json</a>')


def _steps_table(document: Mapping[str, Any]) -> Any:
    rows = []
    classes: list[str | None] = []
    for s in document["steps"]:
        f = s["figures"]
        held = s["verdict"] == Verdict.HELD.value
        note = s["failure"] or s["shortfall"] or ", ".join(s["failed_terms"])
        if s["saturated"]:
            note = "; ".join(filter(None, [note, "generator saturated"]))
        rows.append(
            [
                s["index"],
                s["stage"],
                f"{s['load']:g}",
                _fmt(f.get("delivered_per_s")),
                _fmt(f.get("latency_p50_ms"), ".1f"),
                _fmt(f.get("latency_p99_ms"), ".1f"),
                _fmt(f.get("lost"), ".0f"),
                _fmt(None if s["server_cpu"] is None else 100 * s["server_cpu"], ".0f", "%"),
                s["verdict"],
                note,
                _results_link(s["results"]),
            ]
        )
        classes.append("pass" if held else ("warn" if s["saturated"] else "fail"))
    return page.table(
        [
            "step",
            "stage",
            f"load ({document['unit']})",
            "delivered/s",
            "p50 ms",
            "p99 ms",
            "lost",
            "server CPU",
            "verdict",
            "why",
            "results",
        ],
        rows,
        numeric=[0, 2, 3, 4, 5, 6, 7],
        row_classes=classes,
        verdict_column=8,
    )
