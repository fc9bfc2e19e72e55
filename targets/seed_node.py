#!/usr/bin/env python3
"""Start, restart or stop the seed article's Node `ws` server, for the conformance gate.

    SEED_NODE_PORT=8080 NODE_PATH=/path/to/node_modules python3 seed_node.py start
    python3 seed_node.py restart      # the `restart:` command of seed-node.yaml
    python3 seed_node.py stop

The server crashes on any WebSocket protocol violation (it has no 'error' handler), so the
gate's 10.x cases need it restarted between cases: `loadtool conform --target
targets/seed-node.yaml` runs `restart` after each crash.

It only ever ends the process it started: the pid file holds the PID and that process's
start time (from /proc), and a process is signalled only if both still match, so a PID
the kernel gave to another program since is left alone.

Environment:
  SEED_NODE_PORT     the port (required)
  NODE_PATH          a node_modules folder holding `ws` (required unless node finds it)
  SEED_NODE_DIR      the folder of server.js (default: shared/targets/seed-node found in
                     this file's folder or any folder above it)
  SEED_NODE_PIDFILE  default: $TMPDIR/loadtool-seed-node-<port>.pid
  SEED_NODE_LOG      the server's output (default: the pid file with .log)

Exit codes: 0 done, 1 the server did not start (its log is printed), 2 bad environment.
Standard library only: it runs under any python3.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTUP_S = 20.0  # seconds for node to accept connections
STOP_S = 5.0  # seconds for a killed process to be gone


def _fail(message: str, code: int = 2) -> None:
    print(f"seed_node.py: {message}", file=sys.stderr)
    sys.exit(code)


def _port() -> int:
    value = os.environ.get("SEED_NODE_PORT", "")
    if not value.isdigit() or not 0 < int(value) < 65536:
        _fail(f"SEED_NODE_PORT must be a port number, got {value!r}")
    return int(value)


def _server_js() -> Path:
    given = os.environ.get("SEED_NODE_DIR")
    if given:
        path = Path(given) / "server.js"
        if not path.is_file():
            _fail(f"SEED_NODE_DIR={given} has no server.js")
        return path
    here = Path(__file__).resolve().parent
    for parent in (here, *here.parents):
        path = parent / "shared" / "targets" / "seed-node" / "server.js"
        if path.is_file():
            return path
    _fail("no shared/targets/seed-node/server.js above this file: set SEED_NODE_DIR")
    raise AssertionError


def _pidfile(port: int) -> Path:
    given = os.environ.get("SEED_NODE_PIDFILE")
    return Path(given) if given else Path(tempfile.gettempdir()) / f"loadtool-seed-node-{port}.pid"


def _started_at(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat),
    or None if there is no such process (or only its zombie, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(port: int) -> None:
    """Kill the process this script started for `port`, if it still runs."""
    pidfile = _pidfile(port)
    try:
        pid_text, started = pidfile.read_text().split()
    except (OSError, ValueError):
        return
    pid = int(pid_text)
    if _started_at(pid) == started:
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_S
        while _started_at(pid) == started and time.monotonic() < deadline:
            time.sleep(0.02)  # another program's process: nothing to wait on but time
    pidfile.unlink(missing_ok=True)


def start(port: int) -> None:
    server = _server_js()
    pidfile = _pidfile(port)
    log = Path(os.environ.get("SEED_NODE_LOG") or pidfile.with_suffix(".log"))
    env = {**os.environ, "PORT": str(port)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["node", str(server)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            cwd=str(server.parent),
            start_new_session=True,  # the gate's process group is not the server's
        )
    started = None
    while started is None and process.poll() is None:
        started = _started_at(process.pid)
    pidfile.write_text(f"{process.pid} {started}\n")
    deadline = time.monotonic() + STARTUP_S
    while not _accepts(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(port)
            tail = log.read_text(errors="replace")[-2000:]
            _fail(f"the seed server did not accept connections on port {port}:\n{tail}", 1)
        time.sleep(0.05)  # a child process coming up: nothing to wait on but time


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in ("start", "restart", "stop"):
        _fail("usage: seed_node.py start|restart|stop")
    port = _port()
    if sys.argv[1] in ("restart", "stop"):
        stop(port)
    if sys.argv[1] in ("start", "restart"):
        start(port)


if __name__ == "__main__":
    main()
