"""The bench harness's pure parts: order of runs, medians, ratios, slopes, windows."""

from __future__ import annotations

import math

import pytest

from bench.runner import (
    Summary,
    active_window,
    alternation,
    fmt,
    interpolate,
    median,
    ratio,
    slope,
    slope_per_hour,
    summarise,
    table,
    theil_sen,
)


def test_alternation_interleaves_variants_round_by_round() -> None:
    assert alternation(["a", "b"], 3) == [
        (0, "a"),
        (0, "b"),
        (1, "a"),
        (1, "b"),
        (2, "a"),
        (2, "b"),
    ]
    assert alternation(["x", "y", "z"], 1) == [(0, "x"), (0, "y"), (0, "z")]


@pytest.mark.parametrize(("variants", "rounds"), [(["a"], 0), ([], 2)])
def test_alternation_refuses_nothing_to_run(variants: list[str], rounds: int) -> None:
    with pytest.raises(ValueError, match=r"rounds|variants"):
        alternation(variants, rounds)


def test_median_skips_unmeasured_values() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, math.nan, 2.0, 3.0]) == 2.5
    assert median([None, None]) is None
    assert median([]) is None


def test_ratio_is_none_without_both_figures() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None


def test_slope_of_a_line_and_of_a_flat_series() -> None:
    xs = [0.0, 1.0, 2.0, 3.0]
    assert slope(xs, [5.0, 7.0, 9.0, 11.0]) == pytest.approx(2.0)
    assert slope(xs, [4.0, 4.0, 4.0, 4.0]) == 0.0
    # noise symmetric around a flat level fits a zero slope
    assert slope(xs, [1.0, -1.0, -1.0, 1.0]) == pytest.approx(0.0)
    assert slope_per_hour([0.0, 60.0], [100.0, 101.0]) == pytest.approx(60.0)


@pytest.mark.parametrize(
    ("xs", "ys", "match"),
    [([1.0], [1.0], "two points"), ([1.0, 1.0], [1.0, 2.0], "distinct"), ([1.0], [], "xs")],
)
def test_slope_refuses_degenerate_input(xs: list[float], ys: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        slope(xs, ys)


def test_theil_sen_ignores_a_burst_that_tilts_least_squares() -> None:
    xs = [float(x) for x in range(20)]
    ys = [10.0] * 20
    ys[17] = ys[18] = 200.0  # a burst near the end
    assert theil_sen(xs, ys) == 0.0
    assert slope(xs, ys) > 1.0
    assert theil_sen([0.0, 1.0, 2.0], [1.0, 3.0, 5.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="distinct"):
        theil_sen([1.0, 1.0], [1.0, 2.0])


def test_interpolate_reads_between_samples_and_clamps_at_the_ends() -> None:
    points = [(0.0, 0.0), (1.0, 10.0), (3.0, 30.0)]
    assert interpolate(points, 0.5) == 5.0
    assert interpolate(points, 2.0) == 20.0
    assert interpolate(points, -1.0) == 0.0
    assert interpolate(points, 9.0) == 30.0
    with pytest.raises(ValueError, match="no points"):
        interpolate([], 1.0)


def test_active_window_skips_start_up_and_tail() -> None:
    # idle for 5 samples, 100/s for 10 intervals, idle again: a cumulative counter
    counts = [0.0] * 5 + [100.0 * k for k in range(1, 11)] + [1000.0] * 5
    points = [(float(t), c) for t, c in enumerate(counts)]
    window = active_window(points, trim=0.2)
    assert window is not None
    i, j = window
    assert 4 < i < j < 14  # inside the busy span, trimmed at both ends
    assert (points[j][1] - points[i][1]) / (points[j][0] - points[i][0]) == 100.0


def test_active_window_is_none_when_nothing_moved() -> None:
    assert active_window([(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]) is None
    assert active_window([(0.0, 5.0), (1.0, 6.0)]) is None


def test_summarise_takes_medians_per_variant_and_checks_the_target() -> None:
    rows = [
        {"variant": "ref", "rate": 130.0},
        {"variant": "node", "rate": 100.0},
        {"variant": "ref", "rate": 120.0},
        {"variant": "node", "rate": 90.0},
        {"variant": "ref", "rate": None},  # a round that measured nothing
    ]
    s = summarise(rows, metric="rate", a="ref", b="node", target=1.2)
    assert (s.a_median, s.b_median) == (125.0, 95.0)
    assert s.ratio == pytest.approx(125 / 95)
    assert s.met is True
    assert Summary("m", "a", "b", 1.0, 1.0, 1.0, 1.2).met is False
    assert Summary("m", "a", "b", None, 1.0, None, 1.2).met is None
    assert Summary("m", "a", "b", 1.0, 1.0, 1.0).met is None


def test_fmt_and_table() -> None:
    assert fmt(None) == "n/a"
    assert fmt(12345.6) == "12,346"
    assert fmt(1.234, 1) == "1.2"
    text = table(["a", "long header"], [["1", "2"], ["333", "4"]])
    lines = text.splitlines()
    assert lines[0] == "a    long header"
    assert lines[1] == "---  -----------"
    assert lines[3] == "333  4"
