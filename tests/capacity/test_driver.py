"""The driver's server CPU reading: /proc/PID/stat parsed into CPU seconds (Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from loadtool.capacity.driver import process_cpu_s

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc (Linux only)")


def test_process_cpu_matches_this_process_cpu_time() -> None:
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # bounded: 0.2 s of CPU
        pass
    reading = process_cpu_s(os.getpid())
    assert reading is not None
    assert reading == pytest.approx(time.process_time(), abs=0.05)  # clock ticks are 10 ms


def test_an_exited_process_has_no_reading() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        assert process_cpu_s(child.pid) is None  # a zombie
    finally:
        child.wait()
    assert process_cpu_s(child.pid) is None  # reaped: no /proc entry at all
