"""`run_fuzz` against live servers: the reference server passes, broken ones are caught.

Every run is seeded (so it is repeatable) and bounded by `fail_after`; the in-process
reference server comes from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from loadtool.client.transport import Endpoint
from loadtool.conform.model import ALL_FEATURES, Feature
from loadtool.conform.target import NoTokens, SecretTokens
from loadtool.fuzz import FuzzReport, FuzzUnreachable, WireFrame, replay, run_fuzz
from loadtool.server.app import RunningServer
from tests.conftest import SECRET, Clients

CEILING_S: Final = 120  # seconds any one fuzz run here may take


async def fuzz(url: str, **kw: Any) -> FuzzReport:
    options: dict[str, Any] = {
        "examples": 60,
        "seed": 12345,
        "database_dir": None,
        "features": ALL_FEATURES,
        "answer_wait_s": 0.5,
        "shrink_budget_s": 20.0,
    } | kw
    tokens = options.pop("tokens", SecretTokens(SECRET))
    with trio.fail_after(CEILING_S):
        return await run_fuzz(Endpoint.from_url(url), tokens, **options)


async def test_the_reference_server_passes(server: RunningServer) -> None:
    seen: list[int] = []
    report = await fuzz(server.url, on_progress=lambda runs, _failures: seen.append(runs))
    assert report.failure is None, report.reproducer()
    assert report.passed
    assert report.runs == 60
    assert seen[-1] == 60
    assert report.seed == 12345
    assert report.home_room == "fuzz-12345"


# --- a broken server: silence for what it does not understand -------------------------

WELCOME: Final = {"type": "welcome", "userId": "stub", "rooms": [], "protocol": 1,
                  "heartbeatMs": 20000, "idleTimeoutMs": 60000, "limits": {}}  # fmt: skip


async def _silent_stub(stream: trio.SocketStream) -> None:
    """Speaks WebSocket (wsproto) and answers pings, app pings and joins; everything
    else, valid or not, gets no answer at all."""
    ws = WSConnection(ConnectionType.SERVER)
    async with stream:
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return
            if not data:
                return
            ws.receive_data(data)
            out = b""
            for event in ws.events():
                if isinstance(event, Request):
                    out += ws.send(AcceptConnection())
                    out += ws.send(TextMessage(orjson.dumps(WELCOME).decode()))
                elif isinstance(event, (Ping, CloseConnection)):
                    out += ws.send(event.response())
                elif isinstance(event, TextMessage) and event.message_finished:
                    try:
                        frame = orjson.loads(event.data)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(frame, dict):
                        continue
                    ts = frame.get("ts")
                    if frame.get("type") == "ping" and not isinstance(ts, dict | list):
                        out += ws.send(TextMessage(orjson.dumps(
                            {"type": "pong", "ts": ts}).decode()))  # fmt: skip
                    elif frame.get("type") == "join" and isinstance(frame.get("room"), str):
                        joined = {"type": "joined", "room": frame["room"], "seq": 0}
                        out += ws.send(TextMessage(orjson.dumps(joined).decode()))
            try:
                if out:
                    await stream.send_all(out)
            except trio.BrokenResourceError:
                return


async def _serve(
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handler, listeners)


async def test_a_server_that_answers_bad_frames_with_silence_is_caught(
    nursery: trio.Nursery,
) -> None:
    port = await nursery.start(_serve, _silent_stub)
    url = f"ws://127.0.0.1:{port}/"
    report = await fuzz(url, tokens=NoTokens())
    nursery.cancel_scope.cancel()
    failure = report.failure
    assert failure is not None
    assert not report.passed
    assert "silence" in failure.message or "got no" in failure.message
    assert len(failure.frames) == 1  # shrunk to one frame
    text = report.reproducer()
    assert report.frames_json() in text
    assert f"loadtool fuzz {url} --seed 12345 --examples 60" in text
    assert "from loadtool.fuzz import replay" in text


async def test_a_failure_is_replayed_from_the_database(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    port = await nursery.start(_serve, _silent_stub)
    url = f"ws://127.0.0.1:{port}/"
    first = await fuzz(url, tokens=NoTokens(), database_dir=tmp_path, seed=1)
    assert first.failure is not None
    # Another seed and a single example: the database brings the failure back at once.
    again = await fuzz(url, tokens=NoTokens(), database_dir=tmp_path, seed=2, examples=1)
    nursery.cancel_scope.cancel()
    assert again.failure is not None
    assert again.failure.frames == first.failure.frames


async def test_shrinking_stops_at_its_budget(nursery: trio.Nursery) -> None:
    port = await nursery.start(_serve, _silent_stub)
    report = await fuzz(f"ws://127.0.0.1:{port}/", tokens=NoTokens(), shrink_budget_s=0.0)
    nursery.cancel_scope.cancel()
    assert report.failure is not None
    assert "shrinking stopped" in report.failure.note


# --- a server that crashes: the seed Node server dies on bad input the same way --------


async def test_a_server_that_crashes_is_caught_and_the_search_stops(
    nursery: trio.Nursery,
) -> None:
    crashed = trio.CancelScope()

    async def echo_until_binary(stream: trio.SocketStream) -> None:
        """Echoes text to its sender (a broadcast relay with one listener); a binary
        message takes the whole server down."""
        ws = WSConnection(ConnectionType.SERVER)
        async with stream:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                ws.receive_data(data)
                out = b""
                for event in ws.events():
                    if isinstance(event, Request):
                        out += ws.send(AcceptConnection())
                    elif isinstance(event, BytesMessage):
                        crashed.cancel()
                        return
                    elif isinstance(event, TextMessage):
                        out += ws.send(TextMessage(event.data))
                    elif isinstance(event, CloseConnection):
                        out += ws.send(event.response())
                if out:
                    await stream.send_all(out)

    async def run_until_crash(*, task_status: trio.TaskStatus[int]) -> None:
        with crashed:
            await _serve(echo_until_binary, task_status=task_status)

    port = await nursery.start(run_until_crash)
    seed_only = frozenset({Feature.SEED_DIALECT})
    report = await fuzz(f"ws://127.0.0.1:{port}/", tokens=NoTokens(), features=seed_only)
    failure = report.failure
    assert failure is not None
    assert "dropped the connection without a close frame" in failure.message
    assert "stopped accepting connections" in failure.note
    assert any(frame.kind == "binary" for frame in failure.frames)


@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        ("drop-delivery", "never received"),
        ("duplicate-delivery", "no frame asked for"),
        ("skip-seq", "received seqs"),
        ("broadcast-pings", "not a valid v1 server frame"),
        ("ignore-size-limit", ""),
    ],
)
async def test_injected_server_faults_are_found(clients: Clients, fault: str, needle: str) -> None:
    running = await clients.start(faults=[fault])
    report = await fuzz(running.url, examples=300, seed=4)
    assert report.failure is not None, fault
    assert needle in report.failure.message
    assert len(report.failure.frames) <= 2


async def test_replay_shows_what_the_server_answers(server: RunningServer) -> None:
    frames = [{"text": '{"type":"ping","ts":7}'}, WireFrame.binary(b"\x00")]
    lines = await replay(server.url, frames, SECRET, "fuzz-r", out=lambda _line: None)
    assert lines[0] == '-> \'{"type":"ping","ts":7}\''
    assert '<- {"type":"pong","ts":7}' in lines
    assert any('"code":"unsupported_data"' in line for line in lines)


async def test_an_unreachable_target_is_reported_before_any_example() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()  # a port nobody listens on
    with pytest.raises(FuzzUnreachable, match="connect"):
        await fuzz(f"ws://127.0.0.1:{port}/")


async def test_a_refused_token_is_reported_as_unreachable(server: RunningServer) -> None:
    with pytest.raises(FuzzUnreachable, match=r"401.*--secret"):
        await fuzz(server.url, tokens=NoTokens())
