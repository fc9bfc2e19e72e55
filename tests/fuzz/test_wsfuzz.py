"""`loadtool fuzz --layer websocket` (loadtool.fuzz.wsrunner) against live servers.

The reference server passes a bounded run; a reference server with a raw-frame bug (the
test-only fault `bad-close-code`: a reserved opcode is answered with Close 1005, a code
RFC 6455 forbids on the wire) is caught, and the failure shrinks to one frame with a
reserved opcode. The seed Node server (it dies on protocol violations) is caught too, its
crash shrunk thanks to its target file's restart command. Strategies: every sequence
`sequence_problems` calls valid is parsed by wsproto without an error.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
import trio
from hypothesis import given, settings
from wsproto.frame_protocol import FrameProtocol, ParseFailed

from loadtool.client.rawframes import RESERVED_OPCODES, RawFrame, join
from loadtool.client.transport import Endpoint
from loadtool.conform.model import ALL_FEATURES
from loadtool.conform.target import SecretTokens, Target, load_target
from loadtool.fuzz import WsFuzzReport, replay_raw, run_ws_fuzz
from loadtool.fuzz.wsstrategies import frame_sequences, sequence_problems
from loadtool.server.config import Fault
from tests.conftest import SECRET, Clients
from tests.seednode import free_port

CEILING_S: Final = 180
REPO: Final = Path(__file__).resolve().parents[2]


async def fuzz(url: str, target: Target | None = None, **kw: Any) -> WsFuzzReport:
    options: dict[str, Any] = {
        "examples": 150,
        "seed": 4242,
        "database_dir": None,
        "answer_wait_s": 0.5,
        "shrink_budget_s": 30.0,
    } | kw
    target = target or Target(name="ref", features=ALL_FEATURES, tokens=SecretTokens(SECRET))
    with trio.fail_after(CEILING_S):
        return await run_ws_fuzz(Endpoint.from_url(url), target, **options)


@settings(max_examples=300)
@given(frame_sequences())
def test_sequences_called_valid_are_valid_to_wsproto(frames: list[RawFrame]) -> None:
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(join(frames))
    if sequence_problems(frames):
        return
    try:
        list(proto.received_frames())
    except ParseFailed as exc:  # pragma: no cover - the assertion explains
        raise AssertionError(f"wsproto refused a 'valid' sequence: {exc}") from None


def test_sequence_problems_name_what_is_broken() -> None:
    assert sequence_problems([RawFrame.text("ok"), RawFrame.ping(b"x")]) == []
    assert sequence_problems([RawFrame(opcode=3)]) == ["frame 1: reserved opcode 0x3 (§5.2)"]
    assert "unmasked" in sequence_problems([RawFrame.text("x", mask=None)])[0]
    assert (
        "not UTF-8"
        in sequence_problems([RawFrame.text(b"\xe2", fin=False), RawFrame.continuation(b"A")])[0]
    )
    # after a Close nothing counts
    assert sequence_problems([RawFrame.close(1000), RawFrame(opcode=3)]) == []


async def test_the_reference_server_passes(clients: Clients) -> None:
    server = await clients.start()
    seen: list[int] = []
    report = await fuzz(server.url, on_progress=lambda runs, _f: seen.append(runs))
    assert report.failure is None, report.reproducer()
    assert report.runs == 150
    assert seen[-1] == 150


async def test_a_raw_frame_bug_is_found_and_shrunk(clients: Clients) -> None:
    server = await clients.start(faults=[Fault.BAD_CLOSE_CODE])
    report = await fuzz(server.url)
    assert report.failure is not None
    assert "close code 1005, not valid on the wire" in report.failure.message
    frames = report.failure.frames
    assert len(frames) == 1, report.reproducer()  # shrunk to the one frame that matters
    assert frames[0].opcode in RESERVED_OPCODES
    text = report.reproducer()
    assert f"1. {frames[0].describe()}" in text
    assert frames[0].to_bytes()[:6].hex(" ") in text  # byte for byte
    assert "--layer websocket --seed 4242" in text
    lines = await replay_raw(server.url, [f.to_json() for f in frames], SECRET, out=lambda _: None)
    assert any(line.startswith("<- CLOSE 1005") for line in lines)
    assert any("close code 1005" in line for line in lines)


@pytest.fixture
async def seed_launched(
    seed_node_dir: Path, seed_node_modules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    port = free_port()
    monkeypatch.setenv("SEED_NODE_PORT", str(port))
    monkeypatch.setenv("NODE_PATH", str(seed_node_modules))
    monkeypatch.setenv("SEED_NODE_DIR", str(seed_node_dir))
    monkeypatch.setenv("SEED_NODE_PIDFILE", str(tmp_path / "seed.pid"))
    launcher = str(REPO / "targets" / "seed_node.py")
    with trio.fail_after(30):
        await trio.run_process([sys.executable, launcher, "start"])
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        with trio.CancelScope(shield=True), trio.fail_after(30):
            await trio.run_process([sys.executable, launcher, "stop"])


async def test_the_seed_node_crash_is_found_and_shrunk_with_restarts(seed_launched: str) -> None:
    target = load_target(REPO / "targets" / "seed-node.yaml")
    report = await fuzz(seed_launched, target, examples=60, shrink_budget_s=40.0)
    assert report.failure is not None
    assert report.failure.message.startswith("server crashed: ")
    assert report.restarts >= 1
    assert len(report.failure.frames) == 1, report.reproducer()  # one bad frame kills it
    assert sequence_problems(report.failure.frames)
