"""Durations, sizes, rates and percentages as people write them."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtool.units import (
    format_duration,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5m", 90.0),
        ("30", 30.0),
        (" 2 s ", 2.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["ten", "", "-1s", "5 minutes", "1d", "s", "1e3s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape("is not a duration: write e.g. 500ms, 20s, 5m or 1h")
    ):
        parse_duration(text)


def test_parse_size() -> None:
    assert parse_size("128") == 128
    assert parse_size("1KiB") == 1024
    assert parse_size("2MB") == 2_000_000
    with pytest.raises(ValueError, match="is not a size"):
        parse_size("big")


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("10/s", 10.0),
        ("30/m", 0.5),
        ("1/m", 1 / 60),
        ("3600/h", 1.0),
        ("5", 5.0),
        ("0.5", 0.5),
        ("0/s", 0.0),
        (" 2 / s ", 2.0),
    ],
)
def test_parse_rate(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["fast", "10/d", "/s", "-1/s", "10 per s", "10//s", ""])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("is not a rate: write e.g. 10/s, 30/m or 5")):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("30%", 0.3), ("0.3", 0.3), ("100%", 1.0), ("0.1%", 0.001), ("0", 0.0), (" 50 % ", 0.5)],
)
def test_parse_percent(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


def test_parse_percent_leaves_the_range_to_the_caller() -> None:
    assert parse_percent("150%") == pytest.approx(1.5)


@pytest.mark.parametrize("text", ["half", "-5%", "%", "30%%", ""])
def test_parse_percent_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("is not a percentage: write e.g. 30% or 0.3")):
        parse_percent(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.5, "500ms"),
        (1.0, "1s"),
        (1.25, "1250ms"),
        (90.0, "90s"),
        (300.0, "5m"),
        (3600.0, "1h"),
        (5400.0, "90m"),
        (0.0005, "0.5ms"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, math.inf, math.nan])
def test_format_duration_refuses(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite and at least 0"):
        format_duration(seconds)


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_duration_round_trip_from_seconds(seconds: float) -> None:
    """format_duration is exact to the nanosecond, and its text is canonical where a float
    still resolves nanoseconds (up to ~11 days)."""
    text = format_duration(seconds)
    assert math.isclose(parse_duration(text), seconds, rel_tol=1e-12, abs_tol=1e-9)
    if seconds <= 1e6:
        assert format_duration(parse_duration(text)) == text


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["ms", "s", "m", "h", ""]),
)
def test_duration_round_trip_from_text(amount: int, unit: str) -> None:
    seconds = parse_duration(f"{amount}{unit}")
    text = format_duration(seconds)
    assert math.isclose(parse_duration(text), seconds, rel_tol=1e-12, abs_tol=1e-9)
    millis = amount * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "": 1000}[unit]
    assert text == format_duration(millis / 1000)
