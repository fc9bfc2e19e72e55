"""Heartbeats over real sockets (docs/protocol.md §6): app ping/pong goes to the sender
only; the server sends WebSocket pings every heartbeat_interval; any frame received resets
the idle timer; a silent client is closed with 4000 after idle_timeout."""

from __future__ import annotations

from typing import Final

import pytest
import trio
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from loadtool import protocol as p
from loadtool.server.app import RunningServer
from tests.conftest import Clients
from tests.server.rawws import RawClient

CEILING_S: Final = 20
HEARTBEAT_S: Final = 0.1


async def _start(clients: Clients, idle_timeout_s: float) -> RunningServer:
    return await clients.start(
        heartbeat_interval_s=HEARTBEAT_S, idle_timeout_s=idle_timeout_s, close_timeout_s=1
    )


async def _next_ping(raw: RawClient) -> None:
    """Read until the next WebSocket ping from the server (frames in between ignored)."""
    while True:
        event = await raw.next_event()
        assert not isinstance(event, CloseConnection | None), f"closed: {event}"
        if isinstance(event, Ping):
            return


# --- app-level ping / pong --------------------------------------------------------------------


async def test_app_ping_is_answered_to_the_sender_only(
    server: RunningServer, clients: Clients
) -> None:
    alice = await clients.connect(server, "alice")
    bob = await clients.connect(server, "bob")
    alice_again = await clients.connect(server, "alice")  # another connection of the same user
    with trio.fail_after(CEILING_S):
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        for ts in ("t1", 42, 1.5, None):
            await alice.send(p.Ping(ts=ts))
            assert await alice.recv() == p.Pong(ts=ts)
        await alice.send('{"type": "ping"}')
        assert await alice.recv() == p.Pong(ts=None)
        await alice.send(p.SendMessage(id="marker", room="general", text="after the pings"))
        assert await alice.recv() == p.Ack(id="marker", room="general", seq=1)
        # Nobody else got a pong: their next frame is the marker message.
        for other in (bob, alice_again):
            message = await other.recv()
            assert isinstance(message, p.Message), message
            assert (message.id, message.seq, message.sender_id) == ("marker", 1, "alice")


# --- WebSocket pings from the server ----------------------------------------------------------


async def test_server_sends_websocket_pings_every_heartbeat_interval(clients: Clients) -> None:
    srv = await _start(clients, idle_timeout_s=1)
    started = trio.current_time()
    raw = await clients.raw(srv, "alice")
    with trio.fail_after(CEILING_S):
        welcome = await raw.next_frame()
        assert isinstance(welcome, p.Welcome)
        assert (welcome.heartbeat_ms, welcome.idle_timeout_ms) == (100, 1000)
        for _ in range(3):
            await _next_ping(raw)
    # Ping k goes out no sooner than k intervals after the connection started.
    assert trio.current_time() - started >= 3 * HEARTBEAT_S


async def test_silent_client_is_closed_4000_after_idle_timeout(clients: Clients) -> None:
    idle_s = 0.3
    srv = await _start(clients, idle_timeout_s=idle_s)
    started = trio.current_time()
    raw = await clients.raw(srv, "alice", answer_pings=False)  # never answers, never sends
    pings = 0
    with trio.fail_after(CEILING_S):
        while not isinstance(event := await raw.next_event(), CloseConnection):
            assert event is not None, "EOF before the close frame"
            pings += isinstance(event, Ping)
        closed_at = trio.current_time()
        assert await raw.next_event() is None  # then the server drops TCP
    assert event.code == p.CloseCode.IDLE_TIMEOUT
    assert closed_at - started >= idle_s
    assert pings >= 2  # at 0.1 s and 0.2 s, before the 0.3 s timeout
    assert srv.metrics.closes[p.CloseCode.IDLE_TIMEOUT] == 1


@pytest.mark.parametrize("answer", ["pong", "ws-ping", "app-ping"])
async def test_any_frame_from_the_client_resets_the_idle_timer(
    clients: Clients, answer: str
) -> None:
    """Answer each server ping with a pong, a ping of our own or an app ping; ten
    heartbeats (over three idle timeouts) later the connection is still open."""
    srv = await _start(clients, idle_timeout_s=0.3)
    raw = await clients.raw(srv, "alice", answer_pings=answer == "pong")
    with trio.fail_after(CEILING_S):
        for n in range(10):
            await _next_ping(raw)
            if answer == "ws-ping":
                await raw.send_bytes_raw(raw.ws.send(Ping(payload=b"me")))
            elif answer == "app-ping":
                await raw.send_json({"type": "ping", "ts": n})
        await raw.send_json({"type": "ping", "ts": "end"})
        events = []
        while not isinstance(event := await raw.next_event(), TextMessage) or "end" not in (
            event.data
        ):
            assert not isinstance(event, CloseConnection | None), f"closed: {event}"
            events.append(event)
    assert p.decode(event.data, source=p.Source.SERVER) == p.Pong(ts="end")
    if answer == "ws-ping":
        assert any(isinstance(e, Pong) and e.payload == b"me" for e in events)
    assert srv.metrics.closes[p.CloseCode.IDLE_TIMEOUT] == 0


async def test_trio_websocket_client_stays_connected_across_idle_periods(clients: Clients) -> None:
    idle_s = 0.3
    srv = await _start(clients, idle_timeout_s=idle_s)
    alice = await clients.connect(srv, "alice")  # answers pings by itself, sends nothing
    # A second client in another room counts the server's pings meanwhile.
    counter = await clients.raw(srv, "counter", ["lobby"])
    started = trio.current_time()
    with trio.fail_after(CEILING_S):
        for _ in range(10):
            await _next_ping(counter)
        assert trio.current_time() - started >= 3 * idle_s
        await alice.send(p.Ping(ts="still here"))
        assert await alice.recv() == p.Pong(ts="still here")
        await alice.send(p.SendMessage(id="m1", room="general", text="hello"))
        assert await alice.recv() == p.Ack(id="m1", room="general", seq=1)
    assert srv.metrics.closes[p.CloseCode.IDLE_TIMEOUT] == 0
