"""The run report's figures: one function per figure, results in, `Figure` out.

Each function takes the runs to draw (one, or several to overlay: the Nth run's curves
take the Nth palette colour and its label in the legend) and returns a
`matplotlib.figure.Figure` on an Agg canvas; nothing is written, nothing global is
touched. `FIGURES` lists them in page order with the title and caption the report shows
(docs/reports.md explains how to read each one).

What the figures read from results.json (docs/results.md): the per-second `timeseries`
rows (counters, the `connected` gauge, per-second latency percentiles), the encoded
HdrHistograms in `histograms`, `totals.closes` / `totals.errors_by_code`, `faults`, and
`scenario.reconnect` (the back-off policy) when the file has it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from ..results.histogram import LatencyHistogram
from .runs import Run
from .style import GRID_COLOUR, GRID_WIDTH, colour, new_figure

PERCENTILE_KEYS: Final = ("p50", "p90", "p99", "max")
_LINESTYLES: Final = ("-", "--", "-.", ":")
_FAULT_COLOUR: Final = "#a40e26"
_DISTRIBUTION_POINTS: Final = 240  # points per curve on the 1/(1-q) axis
_CDF_POINTS: Final = 400  # points per reconnect-time curve
_MAX_NINES: Final = 6  # the 1/(1-q) axis goes at most to 99.9999 %
_MIN_BAR_SLOTS: Final = 4  # a bar chart of one code is as thin as one of four
# Names shown next to close codes (docs/protocol.md §8.2; 4001 is loadtool's own drop).
CLOSE_NAMES: Final[Mapping[str, str]] = {
    "1000": "normal",
    "1001": "going away",
    "1002": "protocol error",
    "1003": "unsupported data",
    "1006": "abnormal (no Close)",
    "1007": "invalid payload",
    "1008": "policy violation",
    "1009": "message too big",
    "1011": "internal error",
    "1012": "service restart",
    "1013": "try again later",
    "4000": "idle timeout",
    "4001": "dropped by fault",
}


@attrs.frozen(kw_only=True)
class FigureSpec:
    """A figure of the run report: its file stem, title, caption and how to draw it.

    `draw` returns None when the figure does not apply to these runs (no reconnects).
    """

    name: str
    title: str
    caption: str
    draw: Callable[[Sequence[Run]], Figure | None]


def _style(run_index: int, n_runs: int, series_index: int) -> dict[str, Any]:
    """One run: a colour per series. Several runs: a colour per run, a line style per series."""
    if n_runs == 1:
        return {"color": colour(series_index), "linestyle": "-"}
    return {"color": colour(run_index), "linestyle": _LINESTYLES[series_index % 4]}


def _label(run: Run, n_runs: int, series: str) -> str:
    return series if n_runs == 1 else f"{run.label} {series}"


def _seconds(run: Run) -> list[int]:
    return [int(row["t"]) for row in run.results["timeseries"]]


def _steps(t: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Points for a `steps-post` curve whose last second also gets its full width."""
    if not t:
        return [], []
    return [*t, t[-1] + 1], [*values, values[-1]]


def _column(run: Run, key: str) -> list[float]:
    return [float(row[key]) for row in run.results["timeseries"]]


def _prepare(ax: Axes, *, xlabel: str | None, ylabel: str) -> None:
    ax.grid(True, color=GRID_COLOUR, linewidth=GRID_WIDTH)
    ax.set_axisbelow(True)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)


def _fault_markers(axes: Sequence[Axes], runs: Sequence[Run], *, annotate: Axes | None) -> None:
    """A dashed vertical line at each fault; the `annotate` axes also names it."""
    for i, run in enumerate(runs):
        col = _FAULT_COLOUR if len(runs) == 1 else colour(i)
        for fault in run.results["faults"]:
            at = float(fault["at_s"])
            for ax in axes:
                ax.axvline(at, color=col, linestyle="--", linewidth=1.1, alpha=0.85)
            if annotate is not None:
                annotate.annotate(
                    f"{fault['kind']}: {fault['detail']}",
                    xy=(at, 1.0 - 0.09 * i),
                    xycoords=("data", "axes fraction"),
                    xytext=(4, -4),
                    textcoords="offset points",
                    ha="left",
                    va="top",
                    fontsize=8,
                    color=col,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
                )


def _legend(ax: Axes, **kw: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, **kw)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#59636e")


def _ms_formatter(value: float, _pos: int) -> str:
    return f"{value:g}"


def latency_over_time(runs: Sequence[Run]) -> Figure:
    """Delivery latency percentiles (p50, p90, p99, max) of each second, log scale.

    A second without deliveries leaves a gap (its row holds zeros, not a latency).
    """
    fig = new_figure()
    ax = fig.add_subplot()
    drawn = False
    for i, run in enumerate(runs):
        t = _seconds(run)
        for j, key in enumerate(PERCENTILE_KEYS):
            values = [
                float(row["latency"][key]) if row["delivered"] and row["latency"][key] else math.nan
                for row in run.results["timeseries"]
            ]
            if all(math.isnan(v) for v in values):
                continue
            style = _style(i, len(runs), j)
            if key == "max" and len(runs) == 1:
                style = {"color": "#8c959f", "linestyle": ":"}
            ax.plot(t, values, label=_label(run, len(runs), key), linewidth=1.4, **style)
            drawn = True
    _prepare(ax, xlabel="time since start (s)", ylabel="latency (ms), log scale")
    if drawn:
        ax.set_yscale("log")
        # 1-2-5 steps: a range of less than two decades still gets several labels.
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_ms_formatter))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda _v, _p: ""))
    else:
        _empty(ax, "no deliveries")
    _fault_markers([ax], runs, annotate=ax)
    ax.set_title("Delivery latency per second (intended send to receipt)")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _nines_label(x: float) -> str:
    """The percentile at 1/(1-q) = x: 1 -> 0%, 10 -> 90%, 1000 -> 99.9%."""
    q = 100.0 * (1.0 - 1.0 / x)
    text = f"{q:.{max(0, round(math.log10(x)) - 2)}f}"
    return f"{text}%"


def latency_distribution(runs: Sequence[Run]) -> Figure:
    """The whole-run latency distribution on the HdrHistogram percentile axis.

    x is 1/(1-q) on a log scale, so each decade is one more nine (90 %, 99 %, 99.9 %):
    the tail gets as much room as the body. A curve ends at its last meaningful
    percentile (1 - 1/count): fewer values say nothing about rarer percentiles.
    """
    fig = new_figure()
    ax = fig.add_subplot()
    x_max = 10.0
    for i, run in enumerate(runs):
        hist = LatencyHistogram.decode(run.results["histograms"]["latency"])
        if hist.count == 0:
            continue
        top = min(float(hist.count), 10.0**_MAX_NINES)
        x_max = max(x_max, top)
        steps = _DISTRIBUTION_POINTS
        xs = [10 ** (math.log10(top) * k / (steps - 1)) for k in range(steps)]
        values = hist.percentiles_ms([100.0 * (1.0 - 1.0 / x) for x in xs])
        label = f"{run.label} (n={hist.count:,})" if len(runs) > 1 else f"n={hist.count:,}"
        ax.plot(xs, values, color=colour(i), linewidth=1.6, label=label)
    _prepare(ax, xlabel="percentile", ylabel="latency (ms)")
    ax.set_xscale("log")
    decades = math.ceil(math.log10(x_max) - 1e-9)
    ticks = [10.0**k for k in range(decades + 1)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: _nines_label(x)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(1.0, ticks[-1])
    ax.set_ylim(bottom=0)
    if not ax.lines:
        _empty(ax, "no deliveries")
    ax.set_title("Delivery latency by percentile (HdrHistogram, whole run)")
    _legend(ax, loc="upper left")
    return fig


def throughput(runs: Sequence[Run]) -> Figure:
    """Messages sent (by intended send time) and deliveries received, per second.

    Two panels: deliveries are sends times the room's fan-out, so one scale would
    flatten the sends.
    """
    fig = new_figure(height_in=5.0)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for i, run in enumerate(runs):
        t = _seconds(run)
        top.plot(
            t, _column(run, "sent"), label=_label(run, len(runs), "sent"), **_style(i, len(runs), 0)
        )
        top.plot(
            t,
            _column(run, "acks"),
            label=_label(run, len(runs), "acked"),
            linewidth=1.0,
            **_style(i, len(runs), 1),
        )
        bottom.plot(
            t,
            _column(run, "delivered"),
            label=_label(run, len(runs), "delivered"),
            **_style(i, len(runs), 2),
        )
    _prepare(top, xlabel=None, ylabel="messages / s")
    _prepare(bottom, xlabel="time since start (s)", ylabel="deliveries / s")
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    _fault_markers([top, bottom], runs, annotate=top)
    top.set_title("Sent vs delivered per second")
    _legend(top, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _legend(bottom, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _lows(run: Run) -> list[float]:
    """The per-second minimum of the `connected` gauge (older files: the gauge itself)."""
    return [float(row.get("connected_min", row["connected"])) for row in run.results["timeseries"]]


def connections(runs: Sequence[Run]) -> Figure:
    """Connected clients (the last value and the lowest of each second, so a drop and its
    recovery within one second still shows), and reconnects and disconnects per second
    as bars, with fault markers."""
    fig = new_figure(height_in=5.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    n = len(runs)
    width = 0.8 / (2 * n)
    for i, run in enumerate(runs):
        t = _seconds(run)
        line = _style(i, n, 0)
        top.plot(
            *_steps(t, _column(run, "connected")),
            label=_label(run, n, "connected (end of second)"),
            drawstyle="steps-post",
            color=line["color"],
            linewidth=1.6,
        )
        xs, lows = _steps(t, _lows(run))
        top.fill_between(
            xs,
            lows,
            _steps(t, _column(run, "connected"))[1],
            step="post",
            color=line["color"],
            alpha=0.25,
            linewidth=0,
            label=_label(run, n, "lowest within the second"),
        )
        for k, (key, shade) in enumerate((("disconnects", 0.45), ("reconnects", 1.0))):
            offset = (2 * i + k - (2 * n - 1) / 2) * width
            bar_colour = colour(3 if k == 0 else 1) if n == 1 else colour(i)
            bottom.bar(
                [x + 0.5 + offset for x in t],
                _column(run, key),
                width=width * 0.95,
                color=bar_colour,
                alpha=shade,
                label=_label(run, n, key),
            )
    _prepare(top, xlabel=None, ylabel="connected clients")
    _prepare(bottom, xlabel="time since start (s)", ylabel="per second")
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
    top.set_ylim(top=top.get_ylim()[1] * 1.12)  # room for the fault labels
    _fault_markers([top, bottom], runs, annotate=top)
    top.set_title("Connections, reconnects and faults")
    _legend(top, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _legend(bottom, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _code_label(code: str, names: Mapping[str, str]) -> str:
    name = names.get(code)
    return f"{code} {name}" if name else code


def _code_bars(
    ax: Axes, runs: Sequence[Run], key: str, names: Mapping[str, str], title: str
) -> None:
    codes: list[str] = []
    for run in runs:
        for code in run.results["totals"][key]:
            if code not in codes:
                codes.append(code)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    if not codes:
        _empty(ax, "none")
        ax.set_axis_off()
        return
    height = 0.8 / len(runs)
    for i, run in enumerate(runs):
        counts = [int(run.results["totals"][key].get(code, 0)) for code in codes]
        ys = [k + (i - (len(runs) - 1) / 2) * height for k in range(len(codes))]
        bars = ax.barh(ys, counts, height=height * 0.92, color=colour(i), label=run.label)
        ax.bar_label(bars, fmt="{:,.0f}", padding=3, fontsize=8)
    ax.set_yticks(range(len(codes)), [_code_label(c, names) for c in codes])
    ax.set_ylim(max(len(codes), _MIN_BAR_SLOTS) - 0.5, -0.5)  # top down; few codes stay thin
    ax.set_xlabel("count")
    ax.grid(True, axis="x", color=GRID_COLOUR, linewidth=GRID_WIDTH)
    ax.set_axisbelow(True)
    ax.margins(x=0.15)


def closes_and_errors(runs: Sequence[Run]) -> Figure:
    """Connections closed by WebSocket close code, and errors by code, over the whole run."""
    codes = max(
        len(run.results["totals"][key]) for run in runs for key in ("closes", "errors_by_code")
    )
    fig = new_figure(height_in=max(2.8, 1.4 + 0.32 * codes * len(runs)))
    left, right = fig.subplots(1, 2)
    _code_bars(left, runs, "closes", CLOSE_NAMES, "Closes by code")
    _code_bars(right, runs, "errors_by_code", {}, "Errors by code")
    if len(runs) > 1:
        handles, labels = left.get_legend_handles_labels()
        if not handles:
            handles, labels = right.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=len(runs), fontsize=8)
    return fig


def _policy_label(run: Run) -> str:
    reconnect = run.results["scenario"].get("reconnect")
    if reconnect is None:
        return "policy not recorded"
    return (
        f"{reconnect['policy']} (base {_duration(reconnect['base_s'])}, "
        f"cap {_duration(reconnect['cap_s'])})"
    )


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def reconnect_distribution(runs: Sequence[Run]) -> Figure | None:
    """For reconnect storms: the cumulative distribution of reconnect times per back-off
    policy (time from a disconnect to that client's next successful connect). None when
    no run reconnected."""
    hists = [(run, LatencyHistogram.decode(run.results["histograms"]["reconnect"])) for run in runs]
    hists = [(run, hist) for run, hist in hists if hist.count]
    if not hists:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    longest = max(hist.max_ms for _, hist in hists)
    scale, unit = (1.0, "ms") if longest < 2000 else (1000.0, "s")
    for run, hist in hists:
        i = list(runs).index(run)
        qs = [100.0 * k / (_CDF_POINTS - 1) for k in range(_CDF_POINTS)]
        values = [v / scale for v in hist.percentiles_ms(qs)]
        label = _policy_label(run)
        if len(runs) > 1:
            label = f"{label}: {run.label}"
        label = f"{label}, n={hist.count:,}"
        ax.plot(values, [q / 100.0 for q in qs], color=colour(i), linewidth=1.6, label=label)
    _prepare(ax, xlabel=f"reconnect time ({unit})", ylabel="reconnects completed")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: f"{y:.0%}"))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_title("Reconnect time by back-off policy (cumulative)")
    _legend(ax, loc="lower right")
    return fig


FIGURES: Final = (
    FigureSpec(
        name="latency-over-time",
        title="Latency over time",
        caption="p50, p90, p99 and max of the deliveries received in each second (log scale); "
        "dashed red lines mark injected faults.",
        draw=latency_over_time,
    ),
    FigureSpec(
        name="latency-distribution",
        title="Latency distribution",
        caption="Every delivery of the run by percentile; each step right is one more nine.",
        draw=latency_distribution,
    ),
    FigureSpec(
        name="throughput",
        title="Sent vs delivered",
        caption="Messages sent (by intended time) and acked, and deliveries received, per second.",
        draw=throughput,
    ),
    FigureSpec(
        name="connections",
        title="Connections and reconnects",
        caption="Connected clients, and reconnects and disconnects per second, with faults.",
        draw=connections,
    ),
    FigureSpec(
        name="closes-errors",
        title="Closes and errors by code",
        caption="Connections closed by WebSocket close code and errors by code, whole run.",
        draw=closes_and_errors,
    ),
    FigureSpec(
        name="reconnect-distribution",
        title="Reconnect time by back-off policy",
        caption="Share of reconnects completed within a given time after the disconnect.",
        draw=reconnect_distribution,
    ),
)
