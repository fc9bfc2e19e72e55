"""Durations and byte sizes as people write them ("500ms", "20s", "1MiB"). Pure."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

_DURATION: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_DURATION_SCALE: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE: Final = re.compile(r"\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*")
_SIZE_SCALE: Final = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}


def parse_duration(text: str) -> float:
    """Seconds from "250ms", "20s", "1.5m", "2h" or a bare number of seconds.

    Raises:
        ValueError: naming the accepted forms.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write e.g. 500ms, 20s, 5m or 1h")
    return float(match.group(1)) * _DURATION_SCALE[match.group(2)]


def parse_size(text: str) -> int:
    """Bytes from "65536", "64KiB", "1MiB", "2MB".

    Raises:
        ValueError: naming the accepted forms.
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size: write e.g. 65536, 64KiB or 1MiB")
    return int(match.group(1)) * _SIZE_SCALE[match.group(2)]


_RATE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m|h))?\s*")
_RATE_PER: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_PERCENT: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%)?\s*")
# Largest unit first: format_duration picks the biggest unit that divides evenly.
_FORMAT_UNITS: Final = (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def parse_rate(text: str) -> float:
    """Events per second from "10/s", "30/m", "2/h" or a bare number (per second).

    Raises:
        ValueError: naming the accepted forms.
    """
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a rate: write e.g. 10/s, 30/m or 5")
    return float(match.group(1)) / _RATE_PER[match.group(2)]


def parse_percent(text: str) -> float:
    """A fraction from "30%" (0.3) or a bare fraction "0.3". The range is the caller's to check.

    Raises:
        ValueError: naming the accepted forms.
    """
    match = _PERCENT.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a percentage: write e.g. 30% or 0.3")
    value = float(match.group(1))
    return value / 100.0 if match.group(2) else value


def format_duration(seconds: float) -> str:
    """The shortest text parse_duration reads back as `seconds`: 0.5 -> "500ms", 300 -> "5m".

    Precise to the nanosecond. Whole milliseconds use the largest unit that divides them
    evenly (90 -> "90s", 5400 -> "90m"); anything finer is fractional milliseconds.

    Raises:
        ValueError: for negative or non-finite values (parse_duration reads neither).
    """
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"a duration must be finite and at least 0, got {seconds!r}")
    nanos = round(seconds * 1e9)
    if nanos % 1_000_000:
        return f"{Decimal(nanos).scaleb(-6).normalize():f}ms"  # positional, no exponent
    millis = nanos // 1_000_000
    if millis == 0:
        return "0s"
    for unit, scale in _FORMAT_UNITS:
        if millis % scale == 0:
            return f"{millis // scale}{unit}"
    raise AssertionError("unreachable: 1 ms divides every whole number of milliseconds")
