"""The runner's liveness probe (docs/conformance.md "Liveness and restarts"): a server that
stops serving after a case makes that case CRASHED; with a `restart` command the run goes
on against the restarted server, without one it stops and says how to add one.

The servers here are real `loadtool serve` processes started by a small launcher (the
same shape as targets/seed_node.py: detached, PID in a file, killed only by that PID), so
a case can kill one the way a crash would, and the restart command can start another.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
import trio

from loadtool.client.transport import Endpoint
from loadtool.conform.cases._case import case
from loadtool.conform.harness import Harness
from loadtool.conform.model import Feature, Verdict
from loadtool.conform.runner import run_gate
from loadtool.conform.target import SecretTokens, Target
from tests.conftest import SECRET
from tests.seednode import free_port

LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
CEILING_S: Final = 90

# Starts `loadtool serve` detached on PORT, writes its PID to PIDFILE, returns once the
# port accepts connections (argv: loadtool, port, pidfile, secret).
LAUNCH: Final = """
import socket, subprocess, sys, time
loadtool, port, pidfile, secret = sys.argv[1:]
p = subprocess.Popen([loadtool, "serve", "--port", port, "--secret", secret],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     stdin=subprocess.DEVNULL, start_new_session=True)
open(pidfile, "w").write(str(p.pid))
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
"""


class Launched:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.pidfile = tmp_path / "serve.pid"
        self.argv = (sys.executable, "-c", LAUNCH, str(LOADTOOL), str(self.port),
                     str(self.pidfile), SECRET)  # fmt: skip
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        with trio.fail_after(30):
            await trio.run_process(list(self.argv))
        self.pids.append(int(self.pidfile.read_text()))

    def kill(self) -> None:
        """Kill the server this test started last (a crash, as the case sees it)."""
        pid = int(self.pidfile.read_text())
        if pid not in self.pids:
            self.pids.append(pid)
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def launched(tmp_path: Path) -> AsyncIterator[Launched]:
    servers = Launched(tmp_path)
    await servers.start()
    try:
        yield servers
    finally:
        if servers.pidfile.exists():
            servers.pids.append(int(servers.pidfile.read_text()))
        for pid in set(servers.pids):  # only the PIDs this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _cases(servers: Launched) -> list[object]:
    @case("91.1", "serves", "§0")
    async def serves(h: Harness) -> None:
        peer = await h.connect()
        await peer.sync()

    @case("91.2", "kills the server", "§0")
    async def kills(h: Harness) -> None:
        peer = await h.connect()
        await peer.sync()
        servers.kill()

    @case("91.3", "serves afterwards", "§0")
    async def after(h: Harness) -> None:
        peer = await h.connect()
        await peer.sync()

    return [serves, kills, after]


def _target(restart: tuple[str, ...] | None) -> Target:
    return Target(
        name="launched",
        features=frozenset(Feature),
        tokens=SecretTokens(SECRET),
        restart=restart,
    )


async def test_a_crash_without_restart_stops_the_run(launched: Launched) -> None:
    with trio.fail_after(CEILING_S):
        report = await run_gate(
            _cases(launched), Endpoint.from_url(launched.url), _target(None), concurrency=1
        )  # type: ignore[arg-type]
    verdicts = {r.id: r.verdict for r in report.results}
    assert verdicts == {"91.1": Verdict.PASS, "91.2": Verdict.CRASHED}  # 91.3 never ran
    crashed = report.results[1]
    assert crashed.reason.startswith("server crashed: after this case a new client got no service")
    assert any(e.actor.startswith("liveness") for e in crashed.transcript)
    assert not report.passed
    assert "after case 91.2 (kills the server)" in report.stopped
    assert "restart: ./restart-server.sh" in report.stopped


async def test_a_crash_with_restart_goes_on(launched: Launched) -> None:
    with trio.fail_after(CEILING_S):
        report = await run_gate(
            _cases(launched),
            Endpoint.from_url(launched.url),
            _target(launched.argv),
            concurrency=1,
        )  # type: ignore[arg-type]
    verdicts = {r.id: r.verdict for r in report.results}
    assert verdicts == {"91.1": Verdict.PASS, "91.2": Verdict.CRASHED, "91.3": Verdict.PASS}
    assert report.restarts == 1
    assert not report.stopped
    assert "restarted with `" in report.results[1].reason
    assert int(launched.pidfile.read_text()) != launched.pids[0]  # another server now


async def test_a_failing_restart_command_stops_the_run(launched: Launched) -> None:
    with trio.fail_after(CEILING_S):
        report = await run_gate(
            _cases(launched),
            Endpoint.from_url(launched.url),
            _target((sys.executable, "-c", "import sys; sys.exit('no can do')")),
            concurrency=1,
        )  # type: ignore[arg-type]
    assert [r.verdict for r in report.results] == [Verdict.PASS, Verdict.CRASHED]
    assert "exited with 1: no can do" in report.stopped


async def test_a_case_running_across_a_restart_is_error(launched: Launched) -> None:
    """Two cases side by side: one kills the server while the other is connected. One of
    them is CRASHED (the one whose probe saw it first restarts the server), the other,
    which ran across the restart, is ERROR: its verdict says nothing about the server."""
    connected = trio.Event()

    @case("92.1", "kills the server once the other case is connected", "§0")
    async def killer(h: Harness) -> None:
        await connected.wait()
        launched.kill()

    @case("92.2", "is connected when the server dies", "§0")
    async def bystander(h: Harness) -> None:
        peer = await h.connect()
        connected.set()
        await peer.expect_close(wait_s=10)

    with trio.fail_after(CEILING_S):
        report = await run_gate(
            [killer, bystander],
            Endpoint.from_url(launched.url),
            _target(launched.argv),
            concurrency=2,
        )
    verdicts = {r.id: r.verdict for r in report.results}
    assert sorted(verdicts.values()) == sorted([Verdict.CRASHED, Verdict.ERROR]), report.results
    error = next(r for r in report.results if r.verdict is Verdict.ERROR)
    assert error.reason.startswith("the server was restarted while this case ran")
    assert report.restarts == 1
