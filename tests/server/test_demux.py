"""The server's demultiplexed read path against the plain one, over real sockets.

With `read_demux` (the default on Linux) one task reads every plain-TCP connection and
handles each chunk synchronously (`Connection._on_readable`); without it each connection
reads in its own task (`_read_loop`). The same scripted client byte streams (messages
several to a write and cut mid-frame, fragments and pings that hand the connection to
wsproto, history pages from the store between messages, oversized, unmasked or invalid
frames, EOF without a close, a backlog drained as the client reads late) go to one
server of each kind: the frames the client gets back, in order, and how the connection
ends must be the same. Every other server test
runs with the demux (the default), so this file is where the plain path is still covered.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import pytest
import trio
from wsproto import WSConnection
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from loadtool import protocol as p
from loadtool.netio.demux import Demux
from loadtool.server import hub as hub_module
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits
from loadtool.server.connection import Connection

from ..conftest import Clients
from .rawws import RawClient

pytestmark = pytest.mark.skipif(not Demux.available(), reason="select.epoll is Linux-only")

CEILING_S: Final = 20
_PLACEHOLDER: Final = "2000-01-01T00:00:00.000Z"
# What one client does, in order: write these bytes, or (an int) read until that many acks
# have come (a durable server acks after its group commit).
Script = Callable[[WSConnection], list[bytes | int]]
_STORE: Final = ("history-between", "history-then-oversized")  # scripts run with a database


def _text(ws: WSConnection, obj: Any) -> bytes:
    return ws.send(TextMessage(data=orjson.dumps(obj).decode()))


def _msg(ws: WSConnection, n: int, room: str = "general") -> bytes:
    return _text(ws, {"type": "message", "id": f"m{n}", "room": room, "text": f"text {n}"})


def _masked(first: int, payload: bytes) -> bytes:
    """A masked client frame with any first byte (FIN, RSV, opcode) and `payload`."""
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes((first, 0x80 | len(payload))) + key + body


def _close(ws: WSConnection) -> bytes:
    return ws.send(CloseConnection(code=1000, reason="done"))


def _many_cut(ws: WSConnection) -> list[bytes | int]:
    """Five messages in one write, then three cut at odd places across writes."""
    burst = b"".join(_msg(ws, n) for n in range(1, 6))
    tail = b"".join(_msg(ws, n) for n in range(6, 9))
    return [burst, tail[:3], tail[3:40], tail[40:], _close(ws)]


def _wsproto_after(ws: WSConnection) -> list[bytes | int]:
    """Simple frames, then a fragmented message and pings: wsproto from there on."""
    first = _msg(ws, 1)
    frag = ws.send(TextMessage(data='{"type":"message","id":"f","room"', message_finished=False))
    rest = ws.send(TextMessage(data=':"general","text":"joined up"}', message_finished=True))
    ping = ws.send(Ping(payload=b"p1"))
    pong = ws.send(Pong(payload=b"x"))
    return [
        first + frag,
        ping + rest,
        pong + _msg(ws, 2) + ws.send(Ping(payload=b"p2")),
        _close(ws),
    ]


def _history_between(ws: WSConnection) -> list[bytes | int]:
    """Pages the store answers (the cache holds 2), between messages in one write."""
    posts = b"".join(_msg(ws, n) for n in range(1, 7))
    page = _text(ws, {"type": "history", "room": "general", "before": 4, "limit": 3})
    resync = _text(ws, {"type": "join", "room": "general", "since": 1})
    return [posts, 6, page + _msg(ws, 7) + resync + _msg(ws, 8), 8, _close(ws)]


def _history_then_oversized(ws: WSConnection) -> list[bytes | int]:
    """A store page asked for in the same write as a frame declaring too many bytes:
    the page goes out before the 1009 close."""
    posts = b"".join(_msg(ws, n) for n in range(1, 5))
    page = _text(ws, {"type": "history", "room": "general", "before": 2})
    huge = bytes((0x81, 0xFF)) + struct.pack("!Q", 10**9) + os.urandom(4)
    return [posts, 4, page + huge]


def _errors_then_close(ws: WSConnection) -> list[bytes | int]:
    """Frames the hub refuses (bad JSON, binary, unknown type, not a member): error
    frames, the connection stays open."""
    return [
        _text(ws, {"type": "nope"})
        + ws.send(TextMessage(data="{not json"))
        + ws.send(BytesMessage(data=b"\x00\x01"))
        + _msg(ws, 1, room="other")
        + _text(ws, {"type": "message", "id": "", "room": "general", "text": "x"}),
        _msg(ws, 2) + _text(ws, {"type": "ping", "ts": 5}),
        _close(ws),
    ]


def _bad_utf8(ws: WSConnection) -> list[bytes | int]:
    return [_msg(ws, 1) + _masked(0x81, b'{"a":"\xff\xfe"}')]


def _unmasked(ws: WSConnection) -> list[bytes | int]:
    return [_msg(ws, 1), bytes((0x81, 2)) + b"{}"]


def _reserved_bits(ws: WSConnection) -> list[bytes | int]:
    return [_msg(ws, 1) + _masked(0xC1, b"{}")]


def _backlog(ws: WSConnection) -> list[bytes | int]:
    """More than the sockets hold while the client does not read (it has a tiny receive
    buffer): the server queues a backlog and drains it as the client reads."""
    big = "x" * 4000
    burst = b"".join(
        _text(ws, {"type": "message", "id": f"b{n}", "room": "general", "text": big})
        for n in range(1, 41)
    )
    return [burst, 40, _close(ws)]


def _eof(ws: WSConnection) -> list[bytes | int]:
    return [_msg(ws, 1) + _msg(ws, 2)]  # then the client shuts its side: no close frame


SCRIPTS: Final[dict[str, Script]] = {
    "backlog": _backlog,
    "many-cut": _many_cut,
    "wsproto-after": _wsproto_after,
    "history-between": _history_between,
    "history-then-oversized": _history_then_oversized,
    "errors": _errors_then_close,
    "bad-utf8": _bad_utf8,
    "unmasked": _unmasked,
    "reserved-bits": _reserved_bits,
    "eof": _eof,
}


def _seen(event: Any) -> object:
    """What the client saw, comparable across servers (server receive times set aside)."""
    if isinstance(event, TextMessage):
        frame = p.decode(event.data, source=p.Source.SERVER)
        if isinstance(frame, p.Message):
            frame = attrs.evolve(frame, sent_at=_PLACEHOLDER)
        elif isinstance(frame, p.HistoryPage):
            frame = attrs.evolve(
                frame, messages=[attrs.evolve(m, sent_at=_PLACEHOLDER) for m in frame.messages]
            )
        return frame
    if isinstance(event, CloseConnection):
        return ("close", event.code)
    return (type(event).__name__, getattr(event, "payload", None))


async def _next_seen(raw: RawClient) -> object | None:
    """The next whole thing the client sees (text messages put together); None at EOF."""
    parts: list[str] = []
    while (event := await raw.next_event()) is not None:
        if isinstance(event, TextMessage):
            parts.append(event.data)
            if not event.message_finished:
                continue
            event = TextMessage(data="".join(parts))
        return _seen(event)
    assert not parts, parts
    return None


async def _play(server: RunningServer, clients: Clients, script: Script) -> list[object]:
    raw = await clients.raw(server, "alice", receive_buffer=2048)
    seen: list[object] = []
    with trio.fail_after(CEILING_S):
        for step in script(raw.ws):
            if isinstance(step, bytes):
                await raw.send_bytes_raw(step)
                continue
            while sum(isinstance(x, p.Ack) for x in seen) < step:
                thing = await _next_seen(raw)
                assert thing is not None, seen
                seen.append(thing)
        if script is _eof:
            await raw.stream.send_eof()
        while (thing := await _next_seen(raw)) is not None:
            seen.append(thing)
    return seen


async def _server(clients: Clients, tmp_path: Path, name: str, demux: bool) -> RunningServer:
    store = tmp_path / f"{name}-{demux}.db" if name in _STORE else None
    return await clients.start(
        read_demux=demux,
        db_path=store,
        limits=Limits(history_cache=2, max_message_bytes=4096),
    )


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_demux_path_equals_plain_path(
    clients: Clients, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = SCRIPTS[name]
    drains: list[bool] = []
    real_drain = Connection._write_loop

    async def drain(self: Connection) -> None:
        drains.append(self._demux is not None)
        await real_drain(self)

    monkeypatch.setattr(Connection, "_write_loop", drain)
    plain = await _play(await _server(clients, tmp_path, name, False), clients, script)
    demuxed = await _play(await _server(clients, tmp_path, name, True), clients, script)
    assert demuxed == plain
    if script is _backlog:  # both paths did queue and drain a backlog
        assert False in drains
        assert True in drains
    assert any(isinstance(x, p.Ack) for x in plain), plain  # the scripts did reach the hub


async def test_a_server_bug_in_the_demux_costs_one_connection(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception in the demux task's handling of one connection closes that one with
    1011; the demux goes on serving the others."""
    real = hub_module.Hub.handle_simple

    def buggy(self: hub_module.Hub, peer: Any, obj: dict[str, Any]) -> bool:
        if obj.get("text") == "boom":
            raise RuntimeError("a bug")
        return real(self, peer, obj)

    monkeypatch.setattr(hub_module.Hub, "handle_simple", buggy)
    server = await clients.start()
    victim = await clients.raw(server, "mallory")
    bystander = await clients.raw(server, "bob")
    for client in (victim, bystander):
        while not isinstance(await client.next_frame(), p.Joined):
            pass
    await victim.send_json({"type": "message", "id": "x", "room": "general", "text": "boom"})
    with trio.fail_after(CEILING_S):
        close = await victim.until_eof()
    assert close is not None
    assert close.code == p.CloseCode.INTERNAL_ERROR
    await bystander.send_json({"type": "message", "id": "y", "room": "general", "text": "ok"})
    with trio.fail_after(CEILING_S):
        while isinstance(frame := await bystander.next_frame(), p.Presence):
            pass
    assert frame == p.Ack(id="y", room="general", seq=1)
