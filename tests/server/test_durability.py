"""Durability with --db (docs/protocol.md §9): no ack or delivery before the message is
in the database, and every (room, seq, id) a client saw survives SIGKILL; after a restart
seq numbering continues without reuse and replayed ids are acked as duplicates."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path
from typing import Final

import trio
from trio_websocket import ConnectionClosed

from loadtool import protocol as p
from tests.conftest import Client, Clients, token
from tests.serveproc import serve_process

CEILING_S: Final = 30
TOTAL: Final = 600  # messages the client sends (the kill comes long before the last)
KILL_AT: Final = 150  # acks received when the server is killed
FAST: Final = ("--rate", "100000", "--burst", "100000")


def _text(msg_id: str) -> str:
    return f"text of {msg_id}"


async def _connected(clients: Clients, url: str, user: str) -> tuple[Client, int]:
    """A client of `url` in room general, and the room's seq from `joined`."""
    client = await clients.open(f"{url}?token={token(user)}", user)
    assert isinstance(await client.recv(), p.Welcome)
    joined = await client.recv()
    assert isinstance(joined, p.Joined)
    assert joined.room == "general"
    return client, joined.seq


async def _history(client: Client) -> list[p.Message]:
    """The whole history of general, paged with history{after}."""
    messages: list[p.Message] = []
    while True:
        after = messages[-1].seq if messages else 0
        await client.send(p.HistoryRequest(room="general", after=after))
        page = await client.recv_type(p.HistoryPage)
        assert page.messages, f"empty page after seq {after}"
        messages.extend(page.messages)
        if not page.has_more:
            return messages


async def test_acked_messages_survive_sigkill(tmp_path: Path, clients: Clients) -> None:
    args = ("--db", str(tmp_path / "x.db"), *FAST)
    acked: dict[str, int] = {}  # id -> seq, from acks
    seen: dict[int, str] = {}  # seq -> id, from deliveries
    async with serve_process(tmp_path / "first.log", *args) as first:
        alice, head = await _connected(clients, first.url, "alice")
        assert head == 0

        async def send_all() -> None:
            with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
                for n in range(TOTAL):
                    msg_id = f"m{n:03}"
                    await alice.send(p.SendMessage(id=msg_id, room="general", text=_text(msg_id)))

        with trio.fail_after(CEILING_S):
            async with trio.open_nursery() as sending:
                sending.start_soon(send_all)
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        frame = await alice.recv()
                        if isinstance(frame, p.Ack):
                            acked[frame.id] = frame.seq
                            if len(acked) == KILL_AT:
                                os.kill(first.process.pid, signal.SIGKILL)
                        elif isinstance(frame, p.Message):
                            seen[frame.seq] = frame.id
                sending.cancel_scope.cancel()
            assert await first.process.wait() == -signal.SIGKILL
    assert len(acked) >= KILL_AT
    assert sorted(acked.values()) == list(range(1, len(acked) + 1))
    assert all(acked[msg_id] == seq for seq, msg_id in seen.items())

    async with serve_process(tmp_path / "second.log", *args) as second:
        with trio.fail_after(CEILING_S):
            alice, head = await _connected(clients, second.url, "alice")
            stored = await _history(alice)
            # Every acked message is stored under its seq; nothing else is in between.
            assert [m.seq for m in stored] == list(range(1, head + 1))
            by_seq = {m.seq: m for m in stored}
            for msg_id, seq in acked.items():
                message = by_seq[seq]
                assert (message.id, message.sender_id, message.text) == (
                    msg_id,
                    "alice",
                    _text(msg_id),
                )
            assert len({m.id for m in stored}) == len(stored)
            assert head >= max(acked.values())
            # New messages continue after everything stored: no seq is reused.
            await _post(alice, "fresh-1", head + 1)
            # Replays of acked ids: the original seq, duplicate, and no delivery (the
            # next frame after each duplicate ack is the next one asked for).
            for msg_id in ("m000", max(acked)):
                await alice.send(p.SendMessage(id=msg_id, room="general", text=_text(msg_id)))
                assert await alice.recv() == p.Ack(
                    id=msg_id, room="general", seq=acked[msg_id], duplicate=True
                )
            await _post(alice, "fresh-2", head + 2)


async def _post(client: Client, msg_id: str, seq: int) -> None:
    """Send a message; its ack and its delivery must be the next two frames."""
    await client.send(p.SendMessage(id=msg_id, room="general", text=_text(msg_id)))
    assert await client.recv() == p.Ack(id=msg_id, room="general", seq=seq)
    message = await client.recv()
    assert isinstance(message, p.Message)
    assert (message.id, message.seq, message.text) == (msg_id, seq, _text(msg_id))


async def test_no_ack_before_the_message_is_in_the_database(
    clients: Clients, tmp_path: Path
) -> None:
    db = tmp_path / "x.db"
    srv = await clients.start(db_path=db)
    alice = await clients.connect(srv, "alice")
    bob = await clients.connect(srv, "bob")
    count = 30  # within the default burst of 40, sent back to back: batches form
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as check:

        def stored(seq: int) -> tuple[str, str] | None:
            row: tuple[str, str] | None = check.execute(
                "SELECT id, sender_id FROM messages WHERE room = 'general' AND seq = ?", (seq,)
            ).fetchone()
            return row

        with trio.fail_after(CEILING_S):
            for n in range(1, count + 1):
                await alice.send(p.SendMessage(id=f"m{n}", room="general", text=f"#{n}"))
            acks = 0
            while acks < count:
                frame = await alice.recv()
                if isinstance(frame, p.Ack):
                    acks += 1
                    assert frame == p.Ack(id=f"m{acks}", room="general", seq=acks)
                    assert stored(frame.seq) == (frame.id, "alice"), f"ack before commit: {frame}"
            for n in range(1, count + 1):
                message = await bob.recv_type(p.Message)
                assert (message.id, message.seq) == (f"m{n}", n)
                assert stored(n) == (f"m{n}", "alice")
