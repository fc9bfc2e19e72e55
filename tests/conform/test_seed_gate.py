"""The gate against the seed article's Node server.

Chat level (`--profile seed-broadcast`): it fails (exit 1) for the right reason, pings
broadcast to everybody, and what the server lacks is UNSUPPORTED instead of failing.

WebSocket level (10.x, `--target targets/seed-node.yaml`): the server has no 'error'
handler, so every protocol violation kills the process. The target file's restart command
(targets/seed_node.py) brings it back after each crash, the crashes are CRASHED, and
`loadtool conform --cases '10.*'` exits 1. Without a restart command the gate stops at
the first crash and says how to add one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
import trio

from loadtool.client.transport import Endpoint
from loadtool.conform.cases import all_cases
from loadtool.conform.model import Verdict
from loadtool.conform.runner import run_gate
from loadtool.conform.target import builtin, load_target
from tests.seednode import free_port

REPO: Final = Path(__file__).resolve().parents[2]
TARGET_FILE: Final = REPO / "targets" / "seed-node.yaml"
LAUNCHER: Final = REPO / "targets" / "seed_node.py"
LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
# Cases the seed server must crash on (a protocol violation of each kind), and pass.
CRASHES: Final = ("10.9", "10.11", "10.13", "10.15", "10.17", "10.18", "10.26", "10.28", "10.32")
PASSES: Final = ("10.1", "10.3", "10.4", "10.5", "10.6", "10.7", "10.8", "10.20", "10.27")


async def test_seed_node_server_verdicts(seed_server: str) -> None:
    chat_level = [c for c in all_cases() if not c.id.startswith("10.")]
    with trio.fail_after(120):
        report = await run_gate(
            chat_level,
            Endpoint.from_url(seed_server),
            builtin("seed-broadcast"),
            concurrency=1,
        )
    verdicts = {r.id: r.verdict for r in report.results}
    assert not report.passed
    assert verdicts["4.3"] is Verdict.FAIL  # app pings are relayed to everyone
    for case_id in ("2.1", "2.11", "3.1"):  # it does relay seed ChatMessages to all
        assert verdicts[case_id] is Verdict.PASS
    assert verdicts["1.2"] is Verdict.UNSUPPORTED  # no auth
    assert verdicts["5.1"] is Verdict.UNSUPPORTED  # no acks
    unexpected = {i: v for i, v in verdicts.items() if v.unexpected}
    assert unexpected == {"4.3": Verdict.FAIL}
    assert report.restarts == 0  # no chat-level case crashes it


@pytest.fixture
async def seed_launched(
    seed_node_dir: Path, seed_node_modules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The seed server started by targets/seed_node.py (so that its `restart` can replace
    it); the environment the target file's restart command needs is set; stopped (by its
    PID file) at the end."""
    port = free_port()
    monkeypatch.setenv("SEED_NODE_PORT", str(port))
    monkeypatch.setenv("NODE_PATH", str(seed_node_modules))
    monkeypatch.setenv("SEED_NODE_DIR", str(seed_node_dir))
    monkeypatch.setenv("SEED_NODE_PIDFILE", str(tmp_path / "seed.pid"))
    with trio.fail_after(30):
        await trio.run_process([sys.executable, str(LAUNCHER), "start"])
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        with trio.CancelScope(shield=True), trio.fail_after(30):
            await trio.run_process([sys.executable, str(LAUNCHER), "stop"])


async def test_seed_node_websocket_cases_crash_it_and_it_is_restarted(
    seed_launched: str, tmp_path: Path
) -> None:
    out = tmp_path / "seed.json"
    argv = [str(LOADTOOL), "conform", seed_launched, "--target", str(TARGET_FILE)]
    argv += ["--cases", "10.*", "--json", str(out)]
    with trio.fail_after(300):
        done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    stdout = done.stdout.decode()
    assert done.returncode == 1, stdout + done.stderr.decode()
    data = json.loads(out.read_text())
    verdicts = {c["id"]: c["verdict"] for c in data["cases"]}
    assert len(verdicts) == len([c for c in all_cases() if c.id.startswith("10.")])
    for case_id in CRASHES:
        assert verdicts[case_id] == "CRASHED", case_id
    for case_id in PASSES:
        assert verdicts[case_id] == "PASS", case_id
    assert data["restarts"] == sum(v == "CRASHED" for v in verdicts.values())
    assert not data["stopped"]
    reasons = {c["id"]: c["reason"] for c in data["cases"]}
    assert reasons["10.17"].startswith("server crashed: ")
    assert "restarted with `python3 seed_node.py restart`" in reasons["10.17"]
    assert "CRASHED" in stdout


async def test_without_restart_the_gate_stops_at_the_first_crash(seed_launched: str) -> None:
    target = load_target(TARGET_FILE)
    target = type(target)(
        name=target.name, features=target.features, tokens=target.tokens, source=TARGET_FILE
    )
    cases = [c for c in all_cases() if c.id in ("10.1", "10.17", "10.20")]
    with trio.fail_after(60):
        report = await run_gate(cases, Endpoint.from_url(seed_launched), target, concurrency=1)
    assert [(r.id, r.verdict) for r in report.results] == [
        ("10.1", Verdict.PASS),
        ("10.17", Verdict.CRASHED),
    ]
    assert "after case 10.17" in report.stopped
    assert f"add a command to {TARGET_FILE}" in report.stopped


def test_the_launcher_refuses_a_bad_environment() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SEED_NODE_PORT"}
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "start"], env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "SEED_NODE_PORT must be a port number" in done.stderr
