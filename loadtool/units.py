"""Durations and byte sizes as people write them ("500ms", "20s", "1MiB"). Pure."""

from __future__ import annotations

import re
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
