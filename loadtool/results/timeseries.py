"""Per-second time series of a run: counters, the `connected` gauge, latency per second.

Second `t` covers run-clock times [start_ns + t s, start_ns + (t + 1) s); events before
`start_ns` count in second 0. Each second keeps its own latency histogram; only the two
newest seconds hold a live one (~190 KB each), older seconds are kept encoded
(a few hundred bytes) with their percentiles, so an hour-long run stays small.

Rows (`export()`, results.json `timeseries`) are dense: one per second from 0 to the
last second with any event; the gauge carries its last value forward through seconds
in which it was not set, and `<gauge>_min` holds its lowest value within the second (a
reconnect storm's dip and recovery inside one second is invisible in the last value).
Pure: callers pass `now_ns`.

Latency comes in one of two ways. `delivered(now_ns, latency_ns)` records each delivery
into its second's histogram. `track(now_ns, total)` is for a caller that already records
every delivery into a run-total histogram (the ledger's, via `Recorder`): the series then
takes, once per second, what `total` gained since the previous call (`since`, exact) as
that second's deliveries and latencies, so a delivery costs one histogram record instead
of two (docs/performance.md). The contract: call `track` before recording into `total`
whenever `now_ns >= track_until_ns`, and record into `total` only deliveries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .histogram import LatencyHistogram

COUNTERS: Final = ("sent", "delivered", "acks", "errors", "connects", "reconnects", "disconnects")
GAUGES: Final = ("connected",)
GAUGE_LOWS: Final = tuple(f"{name}_min" for name in GAUGES)  # optional row keys (docs/results.md)
ROW_PERCENTILES: Final = (50.0, 90.0, 99.0)
NS_PER_S: Final = 1_000_000_000
_COUNTER_INDEX: Final = {name: i for i, name in enumerate(COUNTERS)}
_GAUGE_INDEX: Final = {name: i for i, name in enumerate(GAUGES)}
_DELIVERED: Final = _COUNTER_INDEX["delivered"]
_LIVE_SECONDS: Final = 2  # seconds whose histogram stays live (the current one and the last)
_NO_LOW: Final = 2**62  # "no value set in this second" for the per-second minimum
_EMPTY_LATENCY: Final = {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}


def _row_latency(hist: LatencyHistogram) -> dict[str, float]:
    p50, p90, p99 = hist.percentiles_ms(ROW_PERCENTILES)
    return {
        "p50": round(p50, 3),
        "p90": round(p90, 3),
        "p99": round(p99, 3),
        "max": round(hist.max_ms, 3),
    }


class TimeSeries:
    """One process's per-second series; rows merge across processes with `merge_timeseries`."""

    def __init__(self, start_ns: int) -> None:
        self._start_ns = start_ns
        self._counts: dict[int, list[int]] = {}
        self._gauges: dict[int, list[int | None]] = {}
        self._lows: dict[int, list[int]] = {}  # lowest value set in each second, per gauge
        self._live: dict[int, LatencyHistogram] = {}
        self._frozen: dict[int, tuple[str, dict[str, float]]] = {}
        self._last = -1
        # `track`: the run total followed, its copy at the previous call, that call's second.
        self._total: LatencyHistogram | None = None
        self._base: LatencyHistogram | None = None  # allocated on the first `track`
        self._tracked = 0
        self.track_until_ns = -(2**63)  # `track` is due once now_ns reaches this

    @property
    def start_ns(self) -> int:
        return self._start_ns

    def _second(self, now_ns: int) -> int:
        second = max(0, (now_ns - self._start_ns) // NS_PER_S)
        if second > self._last:
            self._last = second
        return second

    def add(self, name: str, now_ns: int, n: int = 1) -> None:
        """Add `n` to counter `name` (one of `COUNTERS`) in the second of `now_ns`.

        Raises:
            ValueError: an unknown counter name.
        """
        index = _COUNTER_INDEX.get(name)
        if index is None:
            raise ValueError(f"unknown counter {name!r}; known: {', '.join(COUNTERS)}")
        second = self._second(now_ns)
        row = self._counts.get(second)
        if row is None:
            row = self._counts[second] = [0] * len(COUNTERS)
        row[index] += n

    def gauge(self, name: str, now_ns: int, value: int) -> None:
        """Set gauge `name` (one of `GAUGES`); a second shows the last value set in it.

        Raises:
            ValueError: an unknown gauge name.
        """
        index = _GAUGE_INDEX.get(name)
        if index is None:
            raise ValueError(f"unknown gauge {name!r}; known: {', '.join(GAUGES)}")
        second = self._second(now_ns)
        row = self._gauges.get(second)
        if row is None:
            row = self._gauges[second] = [None] * len(GAUGES)
        row[index] = value
        lows = self._lows.get(second)
        if lows is None:
            lows = self._lows[second] = [_NO_LOW] * len(GAUGES)
        lows[index] = min(lows[index], value)

    def latency(self, now_ns: int, latency_ns: int) -> None:
        """Record one delivery latency in the second of `now_ns`."""
        second = self._second(now_ns)
        hist = self._live.get(second)
        if hist is None:
            hist = self._live_histogram(second)
        hist.record_ns(latency_ns)

    def delivered(self, now_ns: int, latency_ns: int) -> None:
        """One delivery: `add("delivered")` and `latency()` in one step (the hot path)."""
        second = self._second(now_ns)
        row = self._counts.get(second)
        if row is None:
            row = self._counts[second] = [0] * len(COUNTERS)
        row[_DELIVERED] += 1
        hist = self._live.get(second)
        if hist is None:
            hist = self._live_histogram(second)
        hist.record_ns(latency_ns)

    def track(self, now_ns: int, total: LatencyHistogram) -> None:
        """Follow the run-total histogram `total` (the fast path; see the module docstring).

        What `total` gained since the previous call counts as deliveries, with their
        latencies, in that call's second; the first call (or one with another `total`)
        only takes `total`'s current counts as the starting point.
        """
        self._take_gain()
        if total is not self._total:
            self._total = total
            self._base = total.copy()
        second = max(0, (now_ns - self._start_ns) // NS_PER_S)  # no row until a delivery
        self._tracked = second
        self.track_until_ns = self._start_ns + (second + 1) * NS_PER_S

    def _take_gain(self) -> None:
        if self._total is None or self._base is None or self._total.count == self._base.count:
            return
        gained = self._total.since(self._base)
        self._base = self._total.copy()
        second = self._tracked
        self._last = max(self._last, second)
        row = self._counts.get(second)
        if row is None:
            row = self._counts[second] = [0] * len(COUNTERS)
        row[_DELIVERED] += gained.count
        hist = self._live.get(second)
        if hist is None:
            hist = self._live_histogram(second)
        hist.merge(gained)

    def _live_histogram(self, second: int) -> LatencyHistogram:
        frozen = self._frozen.pop(second, None)  # a late sample for an old second: thaw it
        hist = LatencyHistogram() if frozen is None else LatencyHistogram.decode(frozen[0])
        self._live[second] = hist
        stale = [s for s in self._live if s <= self._last - _LIVE_SECONDS and s != second]
        for old in stale:
            done = self._live.pop(old)
            self._frozen[old] = (done.encode(), _row_latency(done))
        return hist

    def export(self) -> list[dict[str, Any]]:
        """Dense rows, one per second (format: docs/results.md "timeseries")."""
        self._take_gain()  # what `total` gained in the tracked second so far
        rows: list[dict[str, Any]] = []
        gauges: list[int] = [0] * len(GAUGES)
        for second in range(self._last + 1):
            counts = self._counts.get(second, [0] * len(COUNTERS))
            set_lows = self._lows.get(second, [_NO_LOW] * len(GAUGES))
            # The second starts at the carried value, then dips to the lowest one set in it.
            lows = [min(carried, low) for carried, low in zip(gauges, set_lows, strict=True)]
            for i, value in enumerate(self._gauges.get(second, ())):
                if value is not None:
                    gauges[i] = value
            live = self._live.get(second)
            frozen = self._frozen.get(second)
            if live is not None and live.count:
                hist, latency = live.encode(), _row_latency(live)
            elif frozen is not None:
                hist, latency = frozen
            else:
                hist, latency = "", _EMPTY_LATENCY
            rows.append(_row(second, counts, gauges, lows, latency, hist))
        return rows


def _row(
    second: int,
    counts: Sequence[int],
    gauges: Sequence[int],
    lows: Sequence[int],
    latency: Mapping[str, float],
    hist: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {"t": second}
    row.update(zip(COUNTERS, counts, strict=True))
    row.update(zip(GAUGES, gauges, strict=True))
    row.update(zip(GAUGE_LOWS, lows, strict=True))
    row["latency"] = dict(latency)
    row["hist"] = hist
    return row


def merge_timeseries(
    parts: Sequence[tuple[int, Sequence[Mapping[str, Any]]]],
) -> tuple[int, list[dict[str, Any]]]:
    """Merge (start_ns, rows) of several processes into (start_ns, rows) of the whole run.

    Rows align on the run clock (wall-clock anchored): the merged series starts at the
    earliest start, and a part that started d seconds later has its rows shifted by
    round(d) seconds. Counters add; a part's gauge carries its last value forward (and is
    0 before its first row), and the merged gauge is the sum; the merged `<gauge>_min` is
    the sum of the parts' minimums (a lower bound: the parts' dips need not coincide; a
    row without it counts its gauge); latency histograms merge.

    Raises:
        ValueError: no parts, or a row's `hist` is not an encoded histogram.
    """
    if not parts:
        raise ValueError("no time series to merge")
    start = min(part_start for part_start, _ in parts)
    counts: dict[int, list[int]] = {}
    hists: dict[int, LatencyHistogram] = {}
    gauge_steps: list[dict[int, list[int]]] = []
    low_steps: list[dict[int, list[int]]] = []
    last = -1
    for part_start, rows in parts:
        shift = round((part_start - start) / NS_PER_S)
        steps: dict[int, list[int]] = {}
        low_step: dict[int, list[int]] = {}
        for row in sorted(rows, key=lambda r: int(r["t"])):
            second = int(row["t"]) + shift
            last = max(last, second)
            target = counts.setdefault(second, [0] * len(COUNTERS))
            for i, name in enumerate(COUNTERS):
                target[i] += int(row[name])
            steps[second] = [int(row[name]) for name in GAUGES]
            low_step[second] = [
                int(row.get(low, row[name])) for name, low in zip(GAUGES, GAUGE_LOWS, strict=True)
            ]
            if row["hist"]:
                hist = hists.setdefault(second, LatencyHistogram())
                hist.merge(LatencyHistogram.decode(row["hist"]))
        gauge_steps.append(steps)
        low_steps.append(low_step)
    rows_out: list[dict[str, Any]] = []
    current = [[0] * len(GAUGES) for _ in parts]
    for second in range(last + 1):
        part_lows: list[list[int]] = []
        for i, steps in enumerate(gauge_steps):
            # A part without a row in this second sits at its carried value all second.
            part_lows.append(low_steps[i].get(second, current[i]))
            if second in steps:
                current[i] = steps[second]
        gauges = [sum(values[g] for values in current) for g in range(len(GAUGES))]
        lows = [sum(values[g] for values in part_lows) for g in range(len(GAUGES))]
        merged = hists.get(second)
        if merged is not None and merged.count:
            encoded, latency = merged.encode(), _row_latency(merged)
        else:
            encoded, latency = "", _EMPTY_LATENCY
        row_counts = counts.get(second, [0] * len(COUNTERS))
        rows_out.append(_row(second, row_counts, gauges, lows, latency, encoded))
    return start, rows_out
