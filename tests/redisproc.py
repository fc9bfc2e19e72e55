"""A private `redis-server` for the cluster tests (`loadtool serve --redis URL`).

    async with redis_process(tmp_path / "redis") as redis:
        ... redis.url ...          # redis://127.0.0.1:<port>/0
        await redis.kill()         # SIGKILL by PID (what was fsynced survives)
        await redis.start()        # same port, same data directory (AOF replayed)

The server runs with `--save '' --appendonly yes --appendfsync always` in its own
directory, on a free port, with its log on stdout, which is read until it says it is
ready (an event, not a sleep). It is killed by PID when the block ends.

Fixture (tests/conftest.py): `redis_server` -> a started `RedisProcess`. Servers started
through the `clients` fixture may outlive it at teardown (pytest-trio does not order the
two); open a `Clients(nursery)` in a fixture that depends on `redis_server` instead, as
tests/server/test_cluster.py's `cluster` does, so nodes stop before Redis does.

Without the `redis-server` binary the tests that need it skip, except under CI=true,
where a missing binary is a failure (.ci/run installs the Debian package).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import pytest
import trio

from tests.seednode import free_port, unavailable

STARTUP_S: Final = 20  # seconds for redis-server to say it is ready
READY: Final = b"Ready to accept connections"


def redis_binary() -> str:
    """The redis-server executable, or skip (fail under CI=true)."""
    found = shutil.which("redis-server")
    if found is None:
        unavailable("`redis-server` is not installed (apt-get install redis-server)")
    return found


@attrs.define(eq=False)
class RedisProcess:
    """One redis-server on 127.0.0.1:`port` keeping its append-only file in `directory`.

    `nursery` runs the task that copies each started server's output to its log file.
    """

    binary: str
    port: int
    directory: Path
    nursery: trio.Nursery
    process: trio.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def log(self) -> str:
        """Everything the server printed, every start so far."""
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.directory.glob("redis-*.log"))
        )

    async def start(self) -> None:
        """Start the server (again) and return once it accepts connections."""
        assert not self.running, "redis-server is already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.directory / f"redis-{self.starts}.log"
        command = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "no"),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
            *("--dir", str(self.directory)),
        ]
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.process = process
        stdout = process.stdout
        assert stdout is not None
        seen = b""
        with log.open("wb") as out, trio.fail_after(STARTUP_S):
            while READY not in seen:
                chunk = await stdout.receive_some(4096)
                if not chunk:
                    await process.wait()
                    raise RuntimeError(
                        f"redis-server exited ({process.returncode}) before it was ready:\n"
                        + seen.decode(errors="replace")
                    )
                out.write(chunk)
                seen += chunk
        self.nursery.start_soon(_copy, stdout, log)

    async def kill(self) -> None:
        """SIGKILL by PID and reap: no shutdown save, only what is in the AOF survives."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await process.wait()


@asynccontextmanager
async def redis_process(directory: Path) -> AsyncIterator[RedisProcess]:
    """A started `RedisProcess` in `directory` on a free port; killed when the block ends."""
    binary = redis_binary()
    async with trio.open_nursery() as nursery:
        redis = RedisProcess(binary=binary, port=free_port(), directory=directory, nursery=nursery)
        try:
            await redis.start()
            yield redis
        finally:
            await redis.kill()


async def _copy(stdout: trio.abc.ReceiveStream, log: Path) -> None:
    """A server's output to its log file until it exits (a full pipe would stall it)."""
    with log.open("ab") as out:
        while chunk := await stdout.receive_some(4096):
            out.write(chunk)
            out.flush()
    await stdout.aclose()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    """A private redis-server (AOF, fsync always) on a free port, killed after the test."""
    async with redis_process(tmp_path / "redis") as redis:
        yield redis
