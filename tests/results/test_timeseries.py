"""Per-second time series (loadtool.results.timeseries): bucketing on the run clock, the
gauge, per-second latency (live and frozen seconds), export rows and merging."""

from __future__ import annotations

import pytest

from loadtool.results.histogram import LatencyHistogram
from loadtool.results.timeseries import COUNTERS, TimeSeries, merge_timeseries

S = 1_000_000_000  # ns
MS = 1_000_000  # ns
T0 = 1_700_000_000 * S  # a run-clock start


def test_events_land_in_their_whole_second() -> None:
    ts = TimeSeries(T0)
    ts.add("sent", T0)
    ts.add("sent", T0 + S - 1)
    ts.add("sent", T0 + S)
    ts.add("delivered", T0 + 2 * S + 5, n=10)
    ts.add("errors", T0 - 3 * S)  # before the start: second 0
    rows = ts.export()
    assert [row["t"] for row in rows] == [0, 1, 2]
    assert [row["sent"] for row in rows] == [2, 1, 0]
    assert [row["delivered"] for row in rows] == [0, 0, 10]
    assert [row["errors"] for row in rows] == [1, 0, 0]
    assert list(rows[0]) == ["t", *COUNTERS, "connected", "connected_min", "latency", "hist"]


def test_gauge_is_the_last_value_of_its_second_and_carries_forward() -> None:
    ts = TimeSeries(T0)
    ts.gauge("connected", T0 + 100 * MS, 5)
    ts.gauge("connected", T0 + 900 * MS, 7)
    ts.add("sent", T0 + 3 * S)
    ts.gauge("connected", T0 + 4 * S, 2)
    assert [row["connected"] for row in ts.export()] == [7, 7, 7, 7, 2]


def test_gauge_minimum_sees_a_dip_inside_one_second() -> None:
    ts = TimeSeries(T0)
    ts.gauge("connected", T0 + 100 * MS, 20)
    ts.gauge("connected", T0 + 1 * S + 100 * MS, 10)  # half dropped ...
    ts.gauge("connected", T0 + 1 * S + 600 * MS, 20)  # ... and back within the second
    ts.add("sent", T0 + 2 * S)
    rows = ts.export()
    assert [row["connected"] for row in rows] == [20, 20, 20]
    assert [row["connected_min"] for row in rows] == [0, 10, 20]  # second 0 starts at 0


def test_unknown_names_are_refused() -> None:
    ts = TimeSeries(T0)
    with pytest.raises(ValueError, match="unknown counter 'recieved'"):
        ts.add("recieved", T0)
    with pytest.raises(ValueError, match="unknown gauge 'sent'"):
        ts.gauge("sent", T0, 1)


def test_latency_per_second_including_frozen_and_late_samples() -> None:
    ts = TimeSeries(T0)
    for second in range(5):
        for ms in (10, 20, 30):
            ts.latency(T0 + second * S, (second + 1) * ms * MS)
    assert sorted(ts._live) == [3, 4]  # older seconds are kept encoded only
    ts.latency(T0 + 1 * S + 5, 500 * MS)  # a late sample for a frozen second
    ts.latency(T0 + 5 * S, 1 * MS)  # a new second freezes second 1 again
    rows = ts.export()
    assert [row["latency"]["max"] for row in rows] == pytest.approx(
        [30, 500, 90, 120, 150, 1], rel=1e-3
    )
    assert rows[0]["latency"]["p50"] == pytest.approx(20, rel=1e-3)
    assert LatencyHistogram.decode(rows[1]["hist"]).count == 4
    assert rows[5]["hist"] != ""


def test_seconds_without_latency_have_zero_latency_and_no_histogram() -> None:
    ts = TimeSeries(T0)
    ts.add("sent", T0 + 2 * S)
    row = ts.export()[1]
    assert row["latency"] == {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    assert row["hist"] == ""


def test_empty_series_exports_no_rows() -> None:
    assert TimeSeries(T0).export() == []


def fill(ts: TimeSeries, offset_s: int, latencies_ms: list[int]) -> None:
    now = T0 + offset_s * S
    ts.add("sent", now, 3)
    ts.gauge("connected", now, 4)
    for ms in latencies_ms:
        ts.latency(now, ms * MS)


def test_merge_of_parts_equals_one_series_that_saw_everything() -> None:
    a, b, whole = TimeSeries(T0), TimeSeries(T0), TimeSeries(T0)
    fill(a, 0, [5, 6])
    fill(b, 0, [7])
    fill(a, 2, [8])
    for offset, values in ((0, [5, 6]), (0, [7]), (2, [8])):
        fill(whole, offset, values)
    start, rows = merge_timeseries([(T0, a.export()), (T0, b.export())])
    assert start == T0
    expected = whole.export()
    for row in expected:  # gauges add per part: a and b each set 4 connected in second 0
        row["connected"] = {0: 8, 1: 8, 2: 8}[row["t"]]
        row["connected_min"] = {0: 0, 1: 8, 2: 8}[row["t"]]
    assert rows == expected


def test_merge_aligns_parts_on_the_run_clock() -> None:
    early, late = TimeSeries(T0), TimeSeries(T0 + 2 * S + 300 * MS)  # rounds to a 2 s shift
    early.add("sent", T0, 1)
    early.gauge("connected", T0, 10)
    late.add("sent", late.start_ns, 5)
    late.gauge("connected", late.start_ns, 3)
    late.add("sent", late.start_ns + S, 7)
    start, rows = merge_timeseries([(late.start_ns, late.export()), (T0, early.export())])
    assert start == T0
    assert [row["sent"] for row in rows] == [1, 0, 5, 7]
    assert [row["connected"] for row in rows] == [10, 10, 13, 13]
    assert [row["connected_min"] for row in rows] == [0, 10, 10, 13]


def test_merge_reads_rows_without_a_minimum_as_their_gauge() -> None:
    ts = TimeSeries(T0)
    ts.gauge("connected", T0, 5)
    ts.add("sent", T0 + 1 * S)
    old_rows = [{k: v for k, v in row.items() if k != "connected_min"} for row in ts.export()]
    _, rows = merge_timeseries([(T0, old_rows)])
    assert [row["connected_min"] for row in rows] == [5, 5]


def test_merge_needs_parts() -> None:
    with pytest.raises(ValueError, match="no time series"):
        merge_timeseries([])
