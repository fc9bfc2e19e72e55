"""Graceful shutdown (docs/protocol.md §9): stop accepting, ack what was accepted, close
every connection with 1001, bounded by close_timeout; `loadtool serve` does it on SIGTERM
and exits 0."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path
from typing import Final

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed
from wsproto.events import CloseConnection

from loadtool import protocol as p
from tests.conftest import Client, Clients, token
from tests.serveproc import serve_process

CEILING_S: Final = 20


def _code(closed: ConnectionClosed) -> int:
    assert closed.reason is not None
    return int(closed.reason.code)


async def _frames_until_closed(client: Client) -> tuple[list[p.ServerFrame], int]:
    """Every frame up to the close (presence left out), and the close code."""
    frames: list[p.ServerFrame] = []
    while True:
        try:
            frame = await client.recv()
        except ConnectionClosed as closed:
            return frames, _code(closed)
        if not isinstance(frame, p.Presence):
            frames.append(frame)


async def test_shutdown_acks_then_closes_everyone_1001(clients: Clients) -> None:
    srv = await clients.start(close_timeout_s=2)
    alice = await clients.connect(srv, "alice")
    bob = await clients.connect(srv, "bob")
    carol = await clients.raw(srv, "carol")  # answers the close by hand
    with trio.fail_after(CEILING_S):
        await alice.send(p.SendMessage(id="last", room="general", text="just before"))
        await trio.testing.wait_all_tasks_blocked()  # the server has read the frame
        srv.shutdown()
        await _assert_acked_then_closed(alice, bob)
        close = await carol.until_eof()
        assert isinstance(close, CloseConnection)
        assert close.code == p.CloseCode.GOING_AWAY
        await srv.stopped.wait()
    assert srv.metrics.closes[p.CloseCode.GOING_AWAY] == 3
    # Stopped means not listening any more.
    with trio.socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        await sock.connect(("127.0.0.1", srv.port))


async def test_shutdown_commits_a_pending_message_and_acks_it_before_1001(
    clients: Clients, tmp_path: Path
) -> None:
    """With --db the ack waits for the commit; hold the database's write lock so the
    message is still uncommitted when the shutdown begins (§9 steps 2-4)."""
    db = tmp_path / "x.db"
    srv = await clients.start(db_path=db, close_timeout_s=2)
    alice = await clients.connect(srv, "alice")
    bob = await clients.connect(srv, "bob")
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as blocker:
        blocker.execute("BEGIN IMMEDIATE")  # the server's commit now waits (busy_timeout 5 s)
        with trio.fail_after(CEILING_S):
            await alice.send(p.SendMessage(id="last", room="general", text="just before"))
            await trio.testing.wait_all_tasks_blocked()  # read, accepted, commit waiting
            assert srv.metrics.messages_in == 1
            srv.shutdown()
            await trio.testing.wait_all_tasks_blocked()  # the shutdown waits for the commit
            assert not srv.stopped.is_set()
            # Frames arriving once the shutdown began are ignored, not answered.
            await alice.send(p.SendMessage(id="late", room="general", text="too late"))
            await trio.testing.wait_all_tasks_blocked()
            blocker.execute("ROLLBACK")
            await _assert_acked_then_closed(alice, bob)
            await srv.stopped.wait()
    with contextlib.closing(sqlite3.connect(db)) as check:
        rows = check.execute("SELECT room, seq, id, sender_id FROM messages").fetchall()
    assert rows == [("general", 1, "last", "alice")]


async def _assert_acked_then_closed(alice: Client, bob: Client) -> None:
    """alice sent "last": she gets its ack and delivery, bob the delivery, then 1001."""
    frames, code = await _frames_until_closed(alice)
    assert code == p.CloseCode.GOING_AWAY
    assert frames[0] == p.Ack(id="last", room="general", seq=1)
    assert [type(f) for f in frames] == [p.Ack, p.Message]
    frames, code = await _frames_until_closed(bob)
    assert code == p.CloseCode.GOING_AWAY
    assert [(type(f), getattr(f, "seq", None)) for f in frames] == [(p.Message, 1)]


async def test_shutdown_does_not_wait_past_close_timeout_for_a_mute_client(
    clients: Clients,
) -> None:
    srv = await clients.start(close_timeout_s=0.3)
    mute = await clients.raw(srv, "mute")  # never reads, so never answers the close
    alice = await clients.connect(srv, "alice")
    with trio.fail_after(CEILING_S):
        srv.shutdown()
        _frames, code = await _frames_until_closed(alice)
        assert code == p.CloseCode.GOING_AWAY
        await srv.stopped.wait()
        # What the mute client finds when it finally reads: the 1001, then EOF.
        close = await mute.until_eof()
    assert isinstance(close, CloseConnection)
    assert close.code == p.CloseCode.GOING_AWAY


async def test_sigterm_closes_clients_1001_and_exits_0(tmp_path: Path, clients: Clients) -> None:
    async with serve_process(tmp_path / "serve.log") as server:
        connected = []
        for user in ("alice", "bob"):
            client = await clients.open(f"{server.url}?token={token(user)}", user)
            assert isinstance(await client.recv(), p.Welcome)
            assert await client.recv() == p.Joined(room="general", seq=0)
            connected.append(client)
        alice = connected[0]
        with trio.fail_after(CEILING_S):
            await alice.send(p.SendMessage(id="m1", room="general", text="before SIGTERM"))
            assert await alice.recv_type(p.Ack) == p.Ack(id="m1", room="general", seq=1)
            os.kill(server.process.pid, signal.SIGTERM)
            for client in connected:
                frames, code = await _frames_until_closed(client)
                assert code == p.CloseCode.GOING_AWAY
                assert [(type(f), getattr(f, "id", None)) for f in frames] == [(p.Message, "m1")]
            assert await server.process.wait() == 0, server.stderr()
        assert server.process.stdout is not None
        assert await server.process.stdout.receive_some() == b""  # one line, the URL
