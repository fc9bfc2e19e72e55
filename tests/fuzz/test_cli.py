"""`loadtool fuzz` as a user runs it: a subprocess, its output and its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

import trio

from tests.conftest import SECRET
from tests.serveproc import serve_process

from .test_runner import _serve, _silent_stub

CEILING_S: Final = 120  # seconds for one CLI run (the embedded server included)


async def fuzz_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(CEILING_S):
        return await trio.run_process(
            [sys.executable, "-m", "loadtool", "fuzz", *args],
            cwd=cwd,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_no_url_fuzzes_an_embedded_reference_server(tmp_path: Path) -> None:
    done = await fuzz_cli("--examples", "20", "--seed", "3", cwd=tmp_path)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, out + err
    assert "embedded reference server at ws://127.0.0.1:" in err
    assert "PASSED: no failure found (20 examples run" in out


async def test_a_failure_exits_1_with_a_reproducer(tmp_path: Path, nursery: trio.Nursery) -> None:
    port = await nursery.start(_serve, _silent_stub)
    url = f"ws://127.0.0.1:{port}/"
    done = await fuzz_cli(url, "--examples", "50", "--seed", "9", cwd=tmp_path)
    nursery.cancel_scope.cancel()
    out = done.stdout.decode()
    assert done.returncode == 1, out + done.stderr.decode()
    assert out.startswith("FAILED: ")
    assert "from loadtool.fuzz import replay" in out
    assert f"loadtool fuzz {url} --examples 50 --seed 9 --db .hypothesis/loadtool-fuzz" in out
    assert (tmp_path / ".hypothesis" / "loadtool-fuzz").is_dir()  # the failure is kept


async def test_bad_usage_exits_2_and_an_unreachable_target_3(tmp_path: Path) -> None:
    for args in (["--examples", "0"], ["http://x/"], ["--profile", "seed-broadcast"]):
        done = await fuzz_cli(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    done = await fuzz_cli(f"ws://127.0.0.1:{port}/", "--no-db", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert b"Error: ws://127.0.0.1:" in done.stderr


async def test_the_websocket_layer(tmp_path: Path) -> None:
    """`--layer websocket` on the embedded reference server passes, and says so; against
    a server with a raw-frame bug it exits 1 with the frames byte for byte."""
    done = await fuzz_cli("--layer", "websocket", "--examples", "40", "--seed", "5", cwd=tmp_path)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, out + err
    assert "PASSED: no failure found (40 examples run" in out
    log = tmp_path / "serve.log"
    async with serve_process(log, "--inject-fault", "bad-close-code") as server:
        args = [server.url, "--layer", "websocket", "--secret", SECRET, "--examples", "100"]
        done = await fuzz_cli(*args, "--seed", "6", "--no-db", cwd=tmp_path)
    out = done.stdout.decode()
    assert done.returncode == 1, out + done.stderr.decode()
    assert out.startswith("FAILED: the server sent what RFC 6455 forbids")
    assert "The smallest failing example (1 frame(s), byte for byte):" in out
    assert "from loadtool.fuzz import replay_raw" in out
    assert "--layer websocket --examples 100 --seed 6 --no-db" in out
