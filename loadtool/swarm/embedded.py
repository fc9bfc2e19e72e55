"""The embedded reference server: `loadtool serve` as a child process of the run.

A separate process, not a task in the generator's event loop, so that server and load
generator each get a core and a saturated generator is never mistaken for a slow server;
and so that the `restart_server` fault is a real SIGKILL. The child is ours alone: we
start it, and we end it by its PID.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Final

import attrs
import trio

READY_TIMEOUT_S: Final = 20.0  # seconds for the server to print its URL
STOP_TIMEOUT_S: Final = 10.0  # seconds for a graceful stop before SIGKILL


class EmbeddedServerError(RuntimeError):
    """The embedded server did not start (its stderr tail is in the message)."""


@attrs.frozen(kw_only=True)
class EmbeddedOptions:
    rate_per_s: float = 1000.0  # per-connection frames/s: the swarm, not the limiter, sets load
    burst: int = 1000
    max_connections: int = 200_000
    db_path: Path | None = None  # durable history; needed for restart faults to keep acks
    log_path: Path | None = None  # the server's stderr (JSON logs); None: discarded
    host: str = "127.0.0.1"


class EmbeddedServer:
    """Start, kill (SIGKILL) and restart a `loadtool serve` child process."""

    def __init__(self, options: EmbeddedOptions, *, secret: str | None = None) -> None:
        self._options = options
        self.secret = secret or secrets.token_urlsafe(32)
        self.port = 0
        self.url = ""
        self.restarts = 0
        self._process: trio.Process | None = None

    def _argv(self) -> list[str]:
        o = self._options
        argv = [
            sys.executable, "-m", "loadtool", "serve",
            "--host", o.host, "--port", str(self.port), "--secret", self.secret,
            "--rate", str(o.rate_per_s), "--burst", str(o.burst),
            "--max-connections", str(o.max_connections),
            "--max-user-connections", "1000",
            "--log-level", "warning", "--log-format", "json",
        ]  # fmt: skip
        if o.db_path is not None:
            argv += ["--db", str(o.db_path)]
        return argv

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> str:
        """Start the child and wait for its URL line. Raises EmbeddedServerError."""
        log_path = self._options.log_path
        # A file, not a pipe: a pipe nobody drains would block the server once full.
        stderr = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115, ASYNC230
        try:
            process = await trio.lowlevel.open_process(
                self._argv(), stdout=subprocess.PIPE, stderr=stderr
            )
        finally:
            if not isinstance(stderr, int):
                stderr.close()
        self._process = process
        line = b""
        assert process.stdout is not None
        with trio.move_on_after(READY_TIMEOUT_S):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(256)
                if not chunk:
                    break
                line += chunk
        url = line.decode("utf-8", "replace").strip()
        if not url.startswith("ws"):
            await self.stop()
            detail = self._log_tail()
            raise EmbeddedServerError(f"the embedded server did not start: {detail}")
        self.url = url
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])
        return url

    async def kill(self) -> None:
        """SIGKILL the child, as a crash would, and reap it."""
        process = self._process
        if process is None:
            return
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
        self._process = None

    async def restart(self) -> None:
        """Kill, then start again on the same port (and database)."""
        await self.kill()
        self.restarts += 1
        await self.start()

    async def stop(self) -> None:
        """SIGTERM (graceful: 1001 to every client), SIGKILL after a bound."""
        process = self._process
        if process is None:
            return
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(STOP_TIMEOUT_S):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()
        self._process = None

    def _log_tail(self) -> str:
        path = self._options.log_path
        if path is None or not path.exists():
            return "no log (it was discarded)"
        lines = path.read_text("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-5:]) or "the server printed nothing"
