"""The run clock: the one place in loadtool/results that reads time.

All times inside a run are integer nanoseconds on the run clock: `time.monotonic_ns()`
plus an offset computed once per process, `time.time_ns() - time.monotonic_ns()`. It
never goes backwards (monotonic), and processes on one machine agree (the offset anchors
it to the wall clock). Across machines the wall clocks' skew adds to measured latencies;
results.json records the clock source and offset (docs/results.md "Clocks") and, through
`describe()`, the host, its wall clock and the kernel's sync state, so that a merge of
shards from several machines can say how far to trust them (docs/scaling.md).

The pure modules (ledger, histogram, timeseries, correlation, schema) never import this:
their callers pass `now_ns`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import sys
import time
from typing import Final

import attrs

from .schema import ClockInfo, ClockSync

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

    def describe(self) -> ClockInfo:
        """`info()` plus what a cross-machine merge needs to judge skew: the host, its
        wall clock and whether the kernel says that clock is synchronized."""
        wall = time.get_clock_info("time")
        return attrs.evolve(
            self.info(),
            host=socket.gethostname(),
            wall=wall.implementation,
            resolution_ns=max(1, round(wall.resolution * 1e9)),
            sync=kernel_clock_sync(),
        )


_STA_UNSYNC: Final = 0x0040  # linux/timex.h: the clock is not synchronized
_TIME_ERROR: Final = 5  # adjtimex's return value for an unsynchronized clock


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """struct timex of linux/timex.h (adjtimex(2)); read with modes = 0."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


def kernel_clock_sync() -> ClockSync | None:
    """The kernel's synchronization state of the wall clock (Linux `adjtimex(2)` with
    modes = 0: a read, no privilege needed, the same data `timedatectl` and `ntpstat`
    show). None where it cannot be read (not Linux, no libc)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()
        state = int(libc.adjtimex(ctypes.byref(timex)))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return ClockSync(
        synchronized=state != _TIME_ERROR and not timex.status & _STA_UNSYNC,
        max_error_us=int(timex.maxerror),
        est_error_us=int(timex.esterror),
    )
