"""Latency histograms: HdrHistogram in microseconds, 1 us .. 1 h, 3 significant digits.

Why HdrHistogram: a run records millions of latencies; the histogram keeps them in a
fixed ~190 KB array with a bounded relative error of 0.1 %, adds losslessly across worker
processes and shards (`merge`), and travels in results files as HdrHistogram's standard
compressed base64 text, which other HdrHistogram tools can read (docs/results.md).

`record_ns` is on the delivery hot path. hdrh's `record_value` costs ~1.4 us in pure
Python, so `record_ns` computes the counts index itself (the same arithmetic as hdrh's
`_counts_index_for`, checked against it in tests/results/test_histogram.py) and keeps
hdrh's `total_count`, `min_value` and `max_value` up to date so every hdrh method
(encode, add) stays valid. Percentiles and the mean are computed here too, from one copy
of the counts array: hdrh's own iterators take ~60 ms for a mean.
"""

from __future__ import annotations

import binascii
import operator
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate
from typing import Any, Final

from hdrh.codec import HdrCookieException, HdrHistogramSettingsException, HdrLengthException
from hdrh.histogram import HdrHistogram

LOWEST_US: Final = 1  # us: the smallest value told apart from zero
HIGHEST_US: Final = 3_600_000_000  # us: one hour
SIGNIFICANT_DIGITS: Final = 3  # 0.1 % relative error
SUMMARY_PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0, 99.9)
_SUMMARY_KEYS: Final = ("p50", "p90", "p95", "p99", "p999")

_DECODE_ERRORS: Final = (
    ValueError,  # includes binascii.Error
    TypeError,
    IndexError,
    zlib.error,
    binascii.Error,
    HdrCookieException,
    HdrLengthException,
    HdrHistogramSettingsException,
)


def _new_hdr() -> Any:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


class LatencyHistogram:
    """One latency distribution, recorded in nanoseconds, stored in microseconds.

    Values below 1 us are recorded as 1 us. Negative values (an intended time in the
    future: clock skew between machines) are recorded as 1 us and values above one hour
    as one hour; both are counted in `clamped`, which merges with the histogram but is
    not part of `encode()` (results files carry it in the summary, docs/results.md).
    """

    __slots__ = ("_counts", "_h", "_half", "_half_mag", "_mask", "_shift", "_unit", "clamped")

    def __init__(self) -> None:
        self._h: Any = _new_hdr()
        self.clamped = 0
        h = self._h
        self._counts: Any = h.counts
        self._mask: int = h.sub_bucket_mask
        self._half_mag: int = h.sub_bucket_half_count_magnitude
        self._half: int = h.sub_bucket_half_count
        self._unit: int = h.unit_magnitude
        self._shift: int = h.unit_magnitude + h.sub_bucket_half_count_magnitude + 1

    def record_ns(self, ns: int) -> None:
        """Record one latency of `ns` nanoseconds (floored to whole microseconds)."""
        us = ns // 1000
        if us < LOWEST_US:
            if ns < 0:
                self.clamped += 1
            us = LOWEST_US
        elif us > HIGHEST_US:
            self.clamped += 1
            us = HIGHEST_US
        bucket = (us | self._mask).bit_length() - self._shift
        index = ((bucket + 1) << self._half_mag) + (us >> (bucket + self._unit)) - self._half
        self._counts[index] += 1
        h = self._h
        h.total_count += 1
        if us > h.max_value:
            h.max_value = us
        if us < h.min_value:
            h.min_value = us

    @property
    def count(self) -> int:
        return int(self._h.total_count)

    def percentile_ms(self, q: float) -> float:
        """The value at percentile `q` (0..100) in milliseconds; 0.0 when empty.

        Raises:
            ValueError: `q` is outside 0..100.
        """
        return self.percentiles_ms((q,))[0]

    @property
    def max_ms(self) -> float:
        return int(self._h.get_max_value()) / 1000.0

    @property
    def mean_ms(self) -> float:
        """The mean in milliseconds (each value taken at the middle of its bucket, as hdrh)."""
        total = self.count
        if total == 0:
            return 0.0
        h = self._h
        weighted = 0
        for index, n in enumerate(self._counts_list()):
            if n:
                weighted += n * int(h._hdr_median_equiv_value(h.get_value_from_index(index)))
        return weighted / total / 1000.0

    def _counts_list(self) -> list[int]:
        # A copy through the buffer protocol: ~100x faster than iterating the ctypes array.
        return memoryview(self._counts).cast("B").cast("Q").tolist()

    def percentiles_ms(self, qs: Sequence[float]) -> list[float]:
        """The values at percentiles `qs` (each 0..100) in ms, in one pass; zeros when empty.

        Raises:
            ValueError: a percentile is outside 0..100.
        """
        for q in qs:
            if not 0.0 <= q <= 100.0:
                raise ValueError(f"percentile must be within 0..100, got {q!r}")
        h = self._h
        if h.total_count == 0:
            return [0.0 for _ in qs]
        cumulative = list(accumulate(self._counts_list()))
        values: list[float] = []
        for q in qs:
            index = bisect_left(cumulative, h.get_target_count_at_percentile(q))
            value = h.get_value_from_index(index)
            edge = (
                h.get_highest_equivalent_value(value) if q else h.get_lowest_equivalent_value(value)
            )
            values.append(int(edge) / 1000.0)
        return values

    def merge(self, other: LatencyHistogram) -> None:
        """Add `other`'s counts to this histogram (lossless: same buckets)."""
        if other._h.total_count:
            self._h.add(other._h)
        self.clamped += other.clamped

    def since(self, base: LatencyHistogram) -> LatencyHistogram:
        """What was recorded into this histogram after it was `base` (an earlier `copy()`):
        the per-bucket difference, so exact (the same counts, min/max bucket and encoding
        as a histogram that recorded only those values). Lets a per-second view be derived
        from a run total with one record per value (timeseries.py `track`).

        Raises:
            ValueError: `base` has counts this histogram does not (not an earlier copy).
        """
        diff = array("q", map(operator.sub, self._counts_list(), base._counts_list()))
        if min(diff) < 0:
            raise ValueError("base is not an earlier copy of this histogram")
        out = LatencyHistogram()
        out.clamped = self.clamped - base.clamped
        raw = diff.tobytes()
        first = len(raw) - len(raw.lstrip(b"\0"))  # byte offsets: index * 8 + (0..7)
        if first < len(raw):
            memoryview(out._counts).cast("B")[:] = raw
            h = out._h
            h.total_count = sum(diff)
            # Any value of a bucket stands for it: hdrh reports and encodes min/max by bucket.
            h.min_value = h.get_value_from_index(first // 8)
            h.max_value = h.get_value_from_index((len(raw.rstrip(b"\0")) - 1) // 8)
        return out

    def copy(self) -> LatencyHistogram:
        twin = LatencyHistogram()
        twin.merge(self)
        return twin

    def encode(self) -> str:
        """HdrHistogram's V2 compressed histogram, base64 (no `clamped`)."""
        return bytes(self._h.encode()).decode("ascii")

    @classmethod
    def decode(cls, text: str, *, clamped: int = 0) -> LatencyHistogram:
        """The histogram `encode()` wrote (any HdrHistogram V2 base64 blob is accepted).

        Raises:
            ValueError: `text` is not an encoded HdrHistogram, or holds values above 1 h.
        """
        hist = cls()
        try:
            other = HdrHistogram.decode(text.encode("ascii"))
            if other.get_total_count():
                hist._h.add(other)
        except _DECODE_ERRORS as exc:
            raise ValueError(f"not an encoded HdrHistogram: {exc or type(exc).__name__}") from exc
        hist.clamped = clamped
        return hist

    def summary(self) -> dict[str, float | int]:
        """count, p50, p90, p95, p99, p999, max and mean (ms, 3 decimals), and clamped."""
        p = self.percentiles_ms(SUMMARY_PERCENTILES)
        out: dict[str, float | int] = {"count": self.count}
        for key, value in zip(_SUMMARY_KEYS, p, strict=True):
            out[key] = round(value, 3)
        out["max"] = round(self.max_ms, 3)
        out["mean"] = round(self.mean_ms, 3)
        out["clamped"] = self.clamped
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return self.clamped == other.clamped and bytes(self._counts) == bytes(other._counts)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, clamped={self.clamped})"


def empty_summary() -> dict[str, float | int]:
    """The summary of an empty histogram (all zeros)."""
    return LatencyHistogram().summary()
