"""The demultiplexed read path (loadtool.netio.demux, `WsClient.read_nowait`/`attend`)
against the plain one (`WsClient.receive_batch`), over real sockets on 127.0.0.1.

The same scripted server byte stream (frames with the 101, messages split across
segments, fragmented messages, pings, a close or a protocol violation) is read by two
clients, one per path: the messages, the pongs and close replies the server gets, and how
the connection ended must be the same. The swarm's own tests (tests/swarm) run with the
demux, tests/client/test_simclient.py without it (its heartbeat and dead-peer tests with both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import pytest
import trio
from wsproto.events import AcceptConnection, CloseConnection, Event, Ping, TextMessage

from loadtool.client.transport import Closed, Endpoint, WsClient
from loadtool.netio.demux import Demux
from tests.client.test_transport import WELCOME, Scripted, scripted_server

CEILING_S: Final = 15

pytestmark = pytest.mark.skipif(not Demux.available(), reason="select.epoll is Linux-only")

Reader = Callable[[WsClient], Awaitable[tuple[list[str], Closed]]]


async def read_plain(conn: WsClient) -> tuple[list[str], Closed]:
    texts: list[str] = []
    while True:
        try:
            texts.extend(await conn.receive_batch())
        except Closed as exc:
            return texts, exc


def demux_reader(demux: Demux) -> Reader:
    async def read(conn: WsClient) -> tuple[list[str], Closed]:
        texts = conn.take_early()
        wake = [trio.Event()]
        fd = conn.fileno()

        def on_readable() -> None:
            texts.extend(conn.read_nowait())
            if conn.needs_attention:
                if conn.done_reading:
                    demux.remove(fd, on_readable)
                wake[0].set()

        demux.add(fd, on_readable)
        try:
            while True:
                await wake[0].wait()
                wake[0] = trio.Event()
                try:
                    await conn.attend()
                except Closed as exc:
                    return texts, exc
        finally:
            demux.remove(fd, on_readable)

    return read


MESSAGES: Final = [
    f'{{"type":"message","n":{i},"text":"{"x" * (i * 37 % 300)}"}}' for i in range(40)
]


async def _stream_script(conn: Scripted, ending: bytes | None) -> list[Event]:
    """101 + welcome + a message in one segment, then messages in odd-sized segments
    (frames cut anywhere), a fragmented message, two pings, then `ending` (raw bytes) or
    a close 1001. Returns what the client sent back."""
    ws = conn.ws
    await conn.send(AcceptConnection(), TextMessage(WELCOME), TextMessage(MESSAGES[0]))
    wire = b"".join(ws.send(TextMessage(m)) for m in MESSAGES[1:20])
    wire += ws.send(Ping(b"p1"))
    wire += ws.send(TextMessage("frag-", message_finished=False))
    wire += ws.send(TextMessage("ment", message_finished=True))
    wire += b"".join(ws.send(TextMessage(m)) for m in MESSAGES[20:])
    wire += ws.send(Ping(b"p2"))
    for start in range(0, len(wire), 777):
        await conn.stream.send_all(wire[start : start + 777])
        await trio.lowlevel.checkpoint()  # let the client read between segments
    await conn.stream.send_all(ending if ending is not None else ws.send(CloseConnection(1001)))
    got: list[Event] = []
    with trio.move_on_after(2):  # until the client's close reply or its drop
        while not got or not isinstance(got[-1], CloseConnection):
            got.append(await conn.next_event())
    return got


async def _read_scripted(
    nursery: trio.Nursery, reader: Reader, ending: bytes | None
) -> tuple[list[str], int, list[Event]]:
    """(messages, close code, what the server got back) for one client using `reader`."""
    sent: list[list[Event]] = []
    done = trio.Event()

    async def script(conn: Scripted) -> None:
        sent.append(await _stream_script(conn, ending))
        if ending == b"":
            await conn.stream.aclose()
        done.set()

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        conn = await WsClient.connect(Endpoint.from_url(f"ws://127.0.0.1:{port}/"))
        try:
            texts, closed = await reader(conn)
        finally:
            await conn.abort()
        await done.wait()
    return texts, closed.code, sent[0]


@pytest.mark.parametrize(
    ("ending", "code"),
    [(None, 1001), (b"\x81\x02\xff\xfe", 1007), (b"\x81\x82abcdxy", 1002), (b"", 1006)],
    ids=["close-1001", "bad-utf8", "masked", "drop"],
)
async def test_both_read_paths_see_the_same_stream(
    nursery: trio.Nursery, ending: bytes | None, code: int
) -> None:
    demux = Demux()
    nursery.start_soon(demux.run)
    outcomes = [
        await _read_scripted(nursery, reader, ending)
        for reader in (read_plain, demux_reader(demux))
    ]
    plain, demuxed = outcomes
    assert plain[1] == code
    assert demuxed == plain
    texts, _, answers = plain
    if code == 1001:
        assert texts == [WELCOME, *MESSAGES[:20], "frag-ment", *MESSAGES[20:]]
        assert [type(e).__name__ for e in answers] == ["Pong", "Pong", "CloseConnection"]
    assert len(demux) == 0
