"""The run clock: the one place in loadtool/results that reads time.

All times inside a run are integer nanoseconds on the run clock: `time.monotonic_ns()`
plus an offset computed once per process, `time.time_ns() - time.monotonic_ns()`. It
never goes backwards (monotonic), and processes on one machine agree (the offset anchors
it to the wall clock). Across machines the wall clocks' skew adds to measured latencies;
results.json records the clock source and offset (docs/results.md "Clocks").

The pure modules (ledger, histogram, timeseries, correlation, schema) never import this:
their callers pass `now_ns`.
"""

from __future__ import annotations

import time
from typing import Final

import attrs

from .schema import ClockInfo

CLOCK_SOURCE: Final = "monotonic_ns+wall_offset"


@attrs.frozen
class RunClock:
    """Run-clock reader: `now_ns()` = `time.monotonic_ns()` + `offset_ns`."""

    offset_ns: int

    @classmethod
    def from_system(cls) -> RunClock:
        """Anchor a new run clock to this machine's wall clock (once per process)."""
        return cls(offset_ns=time.time_ns() - time.monotonic_ns())

    def now_ns(self) -> int:
        return time.monotonic_ns() + self.offset_ns

    def from_monotonic_ns(self, monotonic_ns: int) -> int:
        """The run-clock time of a `time.monotonic_ns()` reading taken in this process."""
        return monotonic_ns + self.offset_ns

    def info(self) -> ClockInfo:
        """What results.json records under generator.clock."""
        return ClockInfo(source=CLOCK_SOURCE, offset_ns=self.offset_ns)
