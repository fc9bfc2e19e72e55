"""Fixtures for the swarm's tests against foreign targets: the seed article's Node `ws`
broadcast server (../shared/targets/seed-node, read-only; docs/scenarios.md `dialect: seed`).

- `seed_node_modules` (session): a node_modules folder holding `ws`, never written into the
  shared folder: $LOADTOOL_SEED_NODE_MODULES if set, else `npm install ... ws@^8.18.0`
  into <repo>/.cache/seed-node once (skipped when already there).
- `seed_server`: `node server.js` on a free port with NODE_PATH pointing at those modules;
  yields its ws:// URL once it printed its "listening" line; killed by PID afterwards.

Without `node` or `npm` the tests that need them are skipped, except under CI=true, where
a missing tool is a failure: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, NoReturn

import pytest
import trio

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
SEED_NODE_PARTS: Final = ("shared", "targets", "seed-node")
WS_SPEC: Final = "ws@^8.18.0"
NPM_TIMEOUT_S: Final = 300
STARTUP_S: Final = 20  # seconds for node to print its "listening" line


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true (where every test must really run)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, so this is a failure, not a skip: {reason}", pytrace=False)
    pytest.skip(reason)


def find_seed_node_dir() -> Path | None:
    """shared/targets/seed-node in the repository's folder or any folder above it."""
    for parent in (REPO_ROOT, *REPO_ROOT.parents):
        candidate = parent.joinpath(*SEED_NODE_PARTS)
        if (candidate / "server.js").is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def seed_node_dir() -> Path:
    found = find_seed_node_dir()
    if found is None:
        unavailable(f"no {'/'.join(SEED_NODE_PARTS)}/server.js in {REPO_ROOT} or above")
    return found


@pytest.fixture(scope="session")
def seed_node_modules() -> Path:
    """A node_modules folder with `ws` in it (see the module docstring)."""
    if shutil.which("node") is None:
        unavailable("`node` is not installed: the seed server cannot run")
    given = os.environ.get("LOADTOOL_SEED_NODE_MODULES")
    if given:
        modules = Path(given)
        if not (modules / "ws" / "package.json").is_file():
            pytest.fail(f"LOADTOOL_SEED_NODE_MODULES={given} has no ws/package.json", pytrace=False)
        return modules
    prefix = REPO_ROOT / ".cache" / "seed-node"
    modules = prefix / "node_modules"
    if (modules / "ws" / "package.json").is_file():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        unavailable("`npm` is not installed: cannot install `ws` for the seed server")
    command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), WS_SPEC]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        unavailable(f"`{' '.join(command)}` took more than {NPM_TIMEOUT_S} s")
    if done.returncode != 0 or not (modules / "ws" / "package.json").is_file():
        tail = (done.stderr or done.stdout).strip()[-2000:]
        unavailable(f"`{' '.join(command)}` failed (exit {done.returncode}): {tail}")
    return modules


@pytest.fixture
async def seed_server(
    seed_node_dir: Path, seed_node_modules: Path, tmp_path: Path
) -> AsyncIterator[str]:
    """The seed Node server on a free port; yields ws://127.0.0.1:<port>/."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "NODE_PATH": str(seed_node_modules)}
    log = tmp_path / "seed-node.stderr"
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            ["node", str(seed_node_dir / "server.js")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=str(tmp_path),
        )
    try:
        assert process.stdout is not None
        output = b""
        with trio.fail_after(STARTUP_S):
            while b"listening" not in output:
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    pytest.fail(
                        f"the seed server exited before listening: {log.read_text()}",
                        pytrace=False,
                    )
                output += chunk
        assert f":{port}".encode() in output, output
        # The line is printed right after listen(); a port taken meanwhile shows up here.
        with trio.fail_after(STARTUP_S):
            probe = await trio.open_tcp_stream("127.0.0.1", port)
            await probe.aclose()
        yield f"ws://127.0.0.1:{port}/"
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()
