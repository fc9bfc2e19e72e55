"""The `loadtool` console script as a subprocess, for tests of `loadtool serve` and
`loadtool token` (tests/cli, tests/server/test_shutdown.py, test_durability.py).

    async with serve_process(tmp_path / "serve.log", "--db", str(db)) as server:
        alice = await clients.open(f"{server.url}?token={token('alice')}", "alice")
        ...
    minted = await run_loadtool("token", "--user", "alice", "--room", "general", "--secret", SECRET)

`serve_process` starts `loadtool serve --port 0 --secret SECRET ...`, reads the one line
it prints on stdout (its ws:// URL) and kills the process by PID when the block ends;
`run_loadtool` runs any `loadtool` command to completion and captures its output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import trio

from tests.conftest import SECRET

LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
STARTUP_S: Final = 20  # seconds for a `loadtool` process to start (or fail)
URL_LINE: Final = re.compile(rb"ws://127\.0\.0\.1:(\d+)/\n")


@attrs.define
class ServeProcess:
    """A running `loadtool serve`: its process, its URL and the file its stderr goes to."""

    process: trio.Process
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    def stderr(self) -> str:
        return _text(self.log)


@asynccontextmanager
async def serve_process(log: Path, *args: str) -> AsyncIterator[ServeProcess]:
    """Run `loadtool serve --port 0 --secret SECRET *args`; stderr goes to `log`.

    Yields once the URL line is read; on exit kills the process (SIGKILL, by PID) if it
    still runs and reaps it.
    """
    command = [str(LOADTOOL), "serve", "--port", "0", "--secret", SECRET, *args]
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=stderr)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(STARTUP_S):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, f"serve exited without a URL line: {_text(log)}"
                line += chunk
        assert URL_LINE.fullmatch(line), line
        yield ServeProcess(process=process, url=line.decode().strip(), log=log)
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await process.wait()
            assert process.stdout is not None
            await process.stdout.aclose()


async def run_loadtool(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run `loadtool *args` to completion (killed if it outlives STARTUP_S)."""
    with trio.fail_after(STARTUP_S):
        return await trio.run_process(
            [str(LOADTOOL), *args], capture_stdout=True, capture_stderr=True, check=False
        )


def _text(path: Path) -> str:
    return path.read_text(errors="replace")
