"""What a run records about its machine's clock (`RunClock.describe`, docs/scaling.md
"Clocks and skew"): the host, the wall clock read and the kernel's sync state."""

from __future__ import annotations

import ctypes
import socket
import sys
import time

import pytest

from loadtool.results.ledger import Expect, Ledger
from loadtool.results.runclock import CLOCK_SOURCE, RunClock, _Timex, kernel_clock_sync
from loadtool.results.schema import GeneratorInfo, ScenarioInfo, TargetInfo, build_results

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux")
NTP_PHASE_LIMIT_US = 16_000_000  # linux: maxerror of an unsynchronized clock saturates here


def test_describe_adds_the_machine_to_the_run_clock() -> None:
    clock = RunClock.from_system()
    info = clock.describe()
    assert (info.source, info.offset_ns) == (CLOCK_SOURCE, clock.offset_ns)
    assert info.host == socket.gethostname()
    wall = time.get_clock_info("time")
    assert info.wall == wall.implementation
    assert info.resolution_ns == max(1, round(wall.resolution * 1e9))


@linux_only
def test_the_struct_is_the_kernels_and_the_state_is_consistent() -> None:
    if ctypes.sizeof(ctypes.c_long) == 8:
        assert ctypes.sizeof(_Timex) == 208  # struct timex on 64-bit Linux
    sync = kernel_clock_sync()
    assert sync is not None
    assert 0 <= sync.est_error_us <= sync.max_error_us <= NTP_PHASE_LIMIT_US
    if sync.synchronized:
        assert sync.max_error_us < NTP_PHASE_LIMIT_US


def test_the_description_lands_in_results_json() -> None:
    info = RunClock.from_system().describe()
    doc = build_results(
        run_id="abcd0123",
        scenario=ScenarioInfo(name="c", file=None, sha256="", seed=1),
        target=TargetInfo(urls=["ws://127.0.0.1:1/"], dialect="v1", embedded=False),
        start_ns=0,
        duration_s=0.0,
        ledger=Ledger(0, [], Expect.MEMBERS).state(0),
        generator=GeneratorInfo(
            workers=1, cpu_s=0.0, loop_lag_ms_p99=0.0, saturated=False, clock=info
        ),
    )
    clock = doc["generator"]["clock"]
    assert clock["host"] == info.host
    assert clock["wall"] == info.wall
    if info.sync is None:
        assert clock["sync"] is None
    else:
        assert clock["sync"] == {
            "synchronized": info.sync.synchronized,
            "max_error_us": info.sync.max_error_us,
            "est_error_us": info.sync.est_error_us,
        }
