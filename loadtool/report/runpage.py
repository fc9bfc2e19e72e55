"""The run report page (report.html): banners first, then what ran, the key figures,
thresholds, generator health, faults and the figures. Pure: takes the runs and the
figures already rendered as data URIs, returns the HTML text.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from . import summary
from .figures import FigureSpec
from .page import Markup, banner, escape, image, render_page, section, table
from .runs import Run


@attrs.frozen(kw_only=True)
class RenderedFigure:
    """A figure of the report: its spec and its image as a data URI (None: not applicable)."""

    spec: FigureSpec
    uri: str | None
    why_missing: str = ""


def _title(runs: Sequence[Run]) -> str:
    if len(runs) == 1:
        results = runs[0].results
        return f"loadtool run report: {results['scenario']['name']} (run {results['run_id']})"
    return f"loadtool run report: {len(runs)} runs compared"


def _banners(runs: Sequence[Run]) -> list[Markup]:
    out: list[Markup] = []
    for run in runs:
        prefix = f"{run.label}: " if len(runs) > 1 else ""
        warning = summary.saturation_text(run.results)
        if warning is not None:
            out.append(banner(f"{prefix}{warning}", "warn"))
    for run in runs:
        prefix = f"{run.label}: " if len(runs) > 1 else ""
        line = f"{prefix}{summary.verdict_line(run.results)}"
        out.append(banner(line, "ok") if run.results["passed"] else banner(line, "fail"))
    return out


def _when(run: Run, n_runs: int) -> str:
    results = run.results
    prefix = f"{run.label}: " if n_runs > 1 else ""
    urls = ", ".join(results["target"]["urls"])
    return (
        f"{prefix}started {results['start']}, {float(results['duration_s']):.1f} s against {urls}"
    )


def _columns(runs: Sequence[Run], first: str) -> list[str]:
    return [first, *(run.label for run in runs)] if len(runs) > 1 else [first, "value"]


def _nav(figures: Sequence[RenderedFigure], *, faults: bool) -> Markup:
    links = [
        ("run", "Run"),
        ("summary", "Summary"),
        ("thresholds", "Thresholds"),
        ("generator", "Generator"),
    ]
    if faults:
        links.append(("faults", "Faults"))
    links += [(f.spec.name, f.spec.title) for f in figures]
    return Markup(
        "<nav>" + "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t in links) + "</nav>"
    )


def run_report_html(runs: Sequence[Run], figures: Sequence[RenderedFigure]) -> str:
    """The whole report.html for one run, or several overlaid (a column per run).

    Raises:
        ValueError: no runs.
    """
    if not runs:
        raise ValueError("a report needs at least one results file")
    n = len(runs)
    value_columns = range(1, n + 1)
    faults = summary.fault_rows(runs)
    parts: list[object] = [*_banners(runs), _nav(figures, faults=bool(faults))]
    parts.append(
        section("Run", table(_columns(runs, "property"), summary.run_rows(runs)), anchor="run")
    )
    parts.append(
        section(
            "Summary",
            table(
                _columns(runs, "figure"),
                summary.summary_rows(runs),
                numeric=value_columns,
            ),
            "Latency is measured from each message's intended send time to its receipt "
            "(no coordinated omission); lost counts expected deliveries that never arrived.",
            anchor="summary",
        )
    )
    rows, classes = summary.threshold_rows(runs)
    headers = ["threshold", "observed", "verdict"]
    if n > 1:
        headers = ["run", *headers]
    parts.append(
        section(
            "Thresholds",
            table(headers, rows, row_classes=classes, verdict_column=len(headers) - 1)
            if rows
            else "The scenario sets no thresholds.",
            anchor="thresholds",
        )
    )
    parts.append(
        section(
            "Generator health",
            table(_columns(runs, "property"), summary.health_rows(runs), numeric=value_columns),
            "A saturated generator (event-loop lag, CPU, or a send schedule it could not keep) "
            "adds its own delay to every latency: the figures then bound the server from "
            "above only.",
            anchor="generator",
        )
    )
    if faults:
        fault_headers = ["at", "kind", "detail"]
        parts.append(
            section(
                "Faults",
                table(["run", *fault_headers] if n > 1 else fault_headers, faults),
                anchor="faults",
            )
        )
    for fig in figures:
        body: object
        if fig.uri is None:
            body = fig.why_missing or "Not applicable to this run."
        else:
            body = image(fig.uri, alt=fig.spec.title, caption=fig.spec.caption)
        parts.append(section(fig.spec.title, body, anchor=fig.spec.name))
    subtitle = " | ".join(_when(run, n) for run in runs)
    return render_page(_title(runs), parts, subtitle=subtitle)
