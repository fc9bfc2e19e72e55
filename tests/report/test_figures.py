"""The figures hold what the results files say: axes, labels, series and their data
(read back from the Figure objects, not from pixels)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from loadtool.report import figures
from loadtool.report.runs import Run, label_runs
from loadtool.results.histogram import LatencyHistogram

from .conftest import JITTER


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def data_lines(ax: Axes) -> list[Any]:
    """Curves with a legend label (not fault markers or other helpers)."""
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def fault_lines(ax: Axes) -> list[Any]:
    return [line for line in ax.get_lines() if line.get_label().startswith("_")]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def with_results(results: dict[str, Any]) -> list[Run]:
    return label_runs([(JITTER, results)])


def test_every_figure_is_drawn_on_its_own_agg_canvas(one_run: list[Run]) -> None:
    for spec in figures.FIGURES:
        fig = spec.draw(one_run)
        assert isinstance(fig, Figure), spec.name
        assert isinstance(fig.canvas, FigureCanvasAgg), spec.name


def test_latency_over_time_plots_each_percentile_per_second(
    one_run: list[Run], jitter: dict[str, Any]
) -> None:
    fig = figures.latency_over_time(one_run)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "time since start (s)"
    assert ax.get_ylabel().startswith("latency (ms)")
    assert ax.get_yscale() == "log"
    assert legend_labels(ax) == ["p50", "p90", "p99", "max"]
    rows = jitter["timeseries"]
    p99 = next(line for line in data_lines(ax) if line.get_label() == "p99")
    for row, y in zip(rows, p99.get_ydata(), strict=True):
        if row["delivered"]:
            assert y == pytest.approx(row["latency"]["p99"])
        else:
            assert y != y  # NaN: a gap, not a zero latency
    (fault,) = jitter["faults"]
    assert [line.get_xdata()[0] for line in fault_lines(ax)] == [fault["at_s"]]
    assert f"drop: {fault['detail']}" in texts(fig)


def test_several_runs_overlay_with_their_labels(two_runs: list[Run]) -> None:
    (ax,) = figures.latency_over_time(two_runs).axes
    labels = legend_labels(ax)
    assert len(data_lines(ax)) == 8
    assert "storm-full-jitter p50" in labels
    assert "storm-exponential max" in labels
    assert len(fault_lines(ax)) == 2  # each run's fault, in its colour
    colours = {line.get_color() for line in data_lines(ax)}
    assert len(colours) == 2  # a colour per run, a line style per percentile


def test_latency_distribution_uses_the_nines_axis(
    two_runs: list[Run], jitter: dict[str, Any]
) -> None:
    (ax,) = figures.latency_distribution(two_runs).axes
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "percentile"
    assert ax.get_ylabel() == "latency (ms)"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[:4] == ["0%", "90%", "99%", "99.9%"]
    count = jitter["latency_ms"]["count"]
    assert legend_labels(ax)[0] == f"storm-full-jitter (n={count:,})"
    curve = data_lines(ax)[0]
    ys = list(curve.get_ydata())
    assert ys == sorted(ys)  # a percentile curve never falls
    assert curve.get_xdata()[-1] == pytest.approx(count)  # ends at 1 - 1/count
    assert ys[-1] <= jitter["latency_ms"]["max"]
    assert ys[-1] >= jitter["latency_ms"]["p999"]


@pytest.mark.parametrize(
    ("x", "label"), [(1, "0%"), (10, "90%"), (100, "99%"), (1000, "99.9%"), (1e5, "99.999%")]
)
def test_nines_labels(x: float, label: str) -> None:
    assert figures._nines_label(x) == label


def test_throughput_shows_sent_and_delivered_per_second(
    one_run: list[Run], jitter: dict[str, Any]
) -> None:
    top, bottom = figures.throughput(one_run).axes
    assert top.get_ylabel() == "messages / s"
    assert bottom.get_ylabel() == "deliveries / s"
    assert bottom.get_xlabel() == "time since start (s)"
    sent = next(line for line in data_lines(top) if line.get_label() == "sent")
    delivered = next(line for line in data_lines(bottom) if line.get_label() == "delivered")
    assert list(sent.get_ydata()) == [row["sent"] for row in jitter["timeseries"]]
    assert list(delivered.get_ydata()) == [row["delivered"] for row in jitter["timeseries"]]
    assert sum(delivered.get_ydata()) == jitter["totals"]["delivered"]


def test_connections_show_the_gauge_its_dips_reconnects_and_faults(
    one_run: list[Run], jitter: dict[str, Any]
) -> None:
    fig = figures.connections(one_run)
    top, bottom = fig.axes
    assert top.get_ylabel() == "connected clients"
    connected = data_lines(top)[0]
    rows = jitter["timeseries"]
    assert list(connected.get_ydata())[:-1] == [row["connected"] for row in rows]
    (band,) = [c for c in top.collections if isinstance(c, PolyCollection)]
    vertices = band.get_paths()[0].vertices
    low = min(row["connected_min"] for row in rows if row["t"] >= 2)
    assert low < max(row["connected"] for row in rows)  # the drop at 3 s is a real dip ...
    assert vertices[vertices[:, 0] >= 2][:, 1].min() == low  # ... and the band shows it
    assert vertices[:, 1].min() == 0  # the ramp from 0 in second 0
    bars = {c.get_label(): c for c in bottom.containers if isinstance(c, BarContainer)}
    assert sum(b.get_height() for b in bars["reconnects"]) == jitter["totals"]["reconnects"]
    assert sum(b.get_height() for b in bars["disconnects"]) == sum(
        row["disconnects"] for row in rows
    )
    assert len(fault_lines(top)) == len(fault_lines(bottom)) == 1
    assert any(t.startswith("drop: ") for t in texts(fig))


def test_closes_and_errors_by_code(jitter: dict[str, Any]) -> None:
    jitter["totals"]["errors_by_code"] = {"rate_limited": 3, "connect_failed": 1}
    fig = figures.closes_and_errors(with_results(jitter))
    closes, errors = fig.axes
    assert closes.get_title() == "Closes by code"
    close_labels = [t.get_text() for t in closes.get_yticklabels()]
    assert close_labels == [
        f"{code} {figures.CLOSE_NAMES[code]}" for code in jitter["totals"]["closes"]
    ]
    (bars,) = closes.containers
    assert [b.get_width() for b in bars] == list(jitter["totals"]["closes"].values())
    assert [t.get_text() for t in errors.get_yticklabels()] == ["rate_limited", "connect_failed"]
    (bars,) = errors.containers
    assert [b.get_width() for b in bars] == [3, 1]


def test_no_errors_says_none(one_run: list[Run], jitter: dict[str, Any]) -> None:
    assert jitter["totals"]["errors_by_code"] == {}
    _, errors = figures.closes_and_errors(one_run).axes
    assert [t.get_text() for t in errors.texts] == ["none"]


def test_reconnect_distribution_per_policy(two_runs: list[Run]) -> None:
    fig = figures.reconnect_distribution(two_runs)
    assert fig is not None
    (ax,) = fig.axes
    assert ax.get_xlabel() == "reconnect time (ms)"
    assert ax.get_ylabel() == "reconnects completed"
    labels = legend_labels(ax)
    assert labels[0].startswith("full-jitter (base 200 ms, cap 2 s): storm-full-jitter")
    assert labels[1].startswith("exponential (base 200 ms, cap 2 s): storm-exponential")
    for run, line in zip(two_runs, data_lines(ax), strict=True):
        summary = run.results["reconnect_ms"]
        assert labels[two_runs.index(run)].endswith(f"n={summary['count']}")
        assert max(line.get_xdata()) == pytest.approx(summary["max"])
        assert list(line.get_ydata())[-1] == 1.0


def test_reconnect_distribution_is_left_out_without_reconnects(jitter: dict[str, Any]) -> None:
    jitter["histograms"]["reconnect"] = LatencyHistogram().encode()
    assert figures.reconnect_distribution(with_results(jitter)) is None


def test_files_without_the_optional_keys_still_draw(jitter: dict[str, Any]) -> None:
    older = copy.deepcopy(jitter)
    del older["scenario"]["reconnect"]
    for row in older["timeseries"]:
        del row["connected_min"]
    runs = with_results(older)
    for spec in figures.FIGURES:
        assert spec.draw(runs) is not None
    fig = figures.reconnect_distribution(runs)
    assert fig is not None
    assert legend_labels(fig.axes[0])[0].startswith("policy not recorded")


def test_a_run_without_deliveries_says_so(jitter: dict[str, Any]) -> None:
    for row in jitter["timeseries"]:
        row["delivered"] = 0
    jitter["histograms"]["latency"] = LatencyHistogram().encode()
    runs = with_results(jitter)
    assert "no deliveries" in texts(figures.latency_over_time(runs))
    assert "no deliveries" in texts(figures.latency_distribution(runs))
