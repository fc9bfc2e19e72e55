"""Latency histograms (loadtool.results.histogram): the fast recording path against hdrh's
own, clamping, percentiles, mean, lossless merging and the encoded form."""

from __future__ import annotations

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtool.results.histogram import HIGHEST_US, LatencyHistogram

latencies_ns = st.integers(min_value=1000, max_value=HIGHEST_US * 1000)
any_ns = latencies_ns | st.integers(-(10**9), 999) | st.integers(HIGHEST_US * 1000, 2**62)


def reference(values_ns: list[int]) -> HdrHistogram:
    ref = HdrHistogram(1, HIGHEST_US, 3)
    for ns in values_ns:
        ref.record_value(ns // 1000)
    return ref


@settings(deadline=None)
@given(st.lists(latencies_ns, min_size=1, max_size=50))
def test_fast_record_uses_the_same_buckets_as_hdrh(values_ns: list[int]) -> None:
    hist = LatencyHistogram()
    for ns in values_ns:
        hist.record_ns(ns)
    ref = reference(values_ns)
    assert bytes(hist._h.counts) == bytes(ref.counts)
    assert (hist.count, hist._h.max_value, hist._h.min_value) == (
        ref.total_count,
        ref.max_value,
        ref.min_value,
    )
    assert hist.encode() == ref.encode().decode()
    for q in (0.0, 50.0, 90.0, 99.0, 99.9, 100.0):
        assert hist.percentile_ms(q) == ref.get_value_at_percentile(q) / 1000
    assert hist.mean_ms == pytest.approx(ref.get_mean_value() / 1000)
    assert hist.max_ms == ref.get_max_value() / 1000


def test_out_of_range_values_are_clamped_and_counted() -> None:
    hist = LatencyHistogram()
    hist.record_ns(-5_000_000)  # intended time in the future: skew
    hist.record_ns(400)  # under a microsecond: recorded as 1 us, a legitimate value
    hist.record_ns(0)
    hist.record_ns(2 * HIGHEST_US * 1000)  # over an hour
    assert hist.count == 4
    assert hist.clamped == 2
    assert hist.percentile_ms(0) == 0.001
    assert hist.percentiles_ms([75.0]) == [0.001]
    assert hist.max_ms == pytest.approx(HIGHEST_US / 1000, rel=1e-3)


def test_percentile_out_of_range_raises() -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        LatencyHistogram().percentile_ms(101)


def test_empty_histogram_summary_is_all_zeros() -> None:
    assert LatencyHistogram().summary() == {
        "count": 0,
        "p50": 0.0,
        "p90": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "p999": 0.0,
        "max": 0.0,
        "mean": 0.0,
        "clamped": 0,
    }


def test_summary_in_milliseconds_rounded_to_3_decimals() -> None:
    hist = LatencyHistogram()
    for ms in range(1, 101):  # 1..100 ms
        hist.record_ns(ms * 1_000_000)
    s = hist.summary()
    assert s["count"] == 100
    assert s["p50"] == pytest.approx(50.0, rel=1e-3)
    assert s["p90"] == pytest.approx(90.0, rel=1e-3)
    assert s["p99"] == pytest.approx(99.0, rel=1e-3)
    assert s["max"] == pytest.approx(100.0, rel=1e-3)
    assert s["mean"] == pytest.approx(50.5, rel=1e-3)
    assert all(round(float(v), 3) == v for v in s.values())


@settings(deadline=None)
@given(st.lists(latencies_ns, max_size=40), st.lists(latencies_ns, max_size=40))
def test_merge_is_lossless(a_ns: list[int], b_ns: list[int]) -> None:
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for ns in a_ns:
        a.record_ns(ns)
        both.record_ns(ns)
    for ns in b_ns:
        b.record_ns(ns)
        both.record_ns(ns)
    a.merge(b)
    assert a == both
    assert a.summary() == both.summary()
    assert a.encode() == both.encode()


@settings(deadline=None)
@given(st.lists(latencies_ns, max_size=40), st.integers(0, 5))
def test_encode_decode_round_trip(values_ns: list[int], clamped: int) -> None:
    hist = LatencyHistogram()
    for ns in values_ns:
        hist.record_ns(ns)
    hist.clamped = clamped
    again = LatencyHistogram.decode(hist.encode(), clamped=clamped)
    assert again == hist
    assert again.encode() == hist.encode()
    assert again.summary() == hist.summary()


@pytest.mark.parametrize("text", ["", "not base64!", "SElTVEZBQUFB", "aGVsbG8gd29ybGQ="])
def test_decode_rejects_what_is_not_a_histogram(text: str) -> None:
    with pytest.raises(ValueError, match="not an encoded HdrHistogram"):
        LatencyHistogram.decode(text)


def test_copy_is_independent() -> None:
    hist = LatencyHistogram()
    hist.record_ns(1_000_000)
    twin = hist.copy()
    twin.record_ns(2_000_000)
    assert (hist.count, twin.count) == (1, 2)
    assert hist != twin


@settings(deadline=None)
@given(st.lists(any_ns, max_size=40), st.lists(any_ns, max_size=40))
def test_since_is_what_was_recorded_after_the_copy(a_ns: list[int], b_ns: list[int]) -> None:
    """`since` of an earlier copy equals a histogram that recorded only the later values:
    the same counts, clamped count, summary (min/max included) and encoding."""
    total, later = LatencyHistogram(), LatencyHistogram()
    for ns in a_ns:
        total.record_ns(ns)
    base = total.copy()
    for ns in b_ns:
        total.record_ns(ns)
        later.record_ns(ns)
    gained = total.since(base)
    assert gained == later
    assert gained.count == later.count == len(b_ns)
    assert gained.summary() == later.summary()
    assert gained.encode() == later.encode()
    merged = base.copy()
    merged.merge(gained)
    assert merged == total  # and it merges like a recorded one


def test_since_rejects_a_base_that_is_not_an_earlier_copy() -> None:
    hist, other = LatencyHistogram(), LatencyHistogram()
    other.record_ns(5_000_000)
    with pytest.raises(ValueError, match="not an earlier copy"):
        hist.since(other)
