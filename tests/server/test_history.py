"""History and re-sync (docs/protocol.md §5): `history` pages (newest, before=, after=,
limit, the server's page cap, hasMore), and the gap-free re-sync of a client that was away:
`join {since}` then `history {after}` pages until hasMore is false, every missed seq seen
exactly once.

Each case runs against the in-memory store and against SQLite (--db) with a small
in-memory ring, so that deep pages come from the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from loadtool import protocol as p
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits
from tests.conftest import Client, Clients

CEILING_S: Final = 20  # seconds any test here may take
SQLITE_RING: Final = 3  # history_cache with --db: older pages come from the database


StartFn = Callable[..., Awaitable[RunningServer]]


@pytest.fixture(params=["memory", "sqlite"])
def start_server(request: pytest.FixtureRequest, clients: Clients, tmp_path: Path) -> StartFn:
    """Starts a server with `Limits(**limits)` on this test's store: in memory, or SQLite
    (--db, a file in tmp_path) with a ring of SQLITE_RING messages unless given."""
    started = 0

    async def start(**limits: Any) -> RunningServer:
        nonlocal started
        db: Path | None = None
        if request.param == "sqlite":
            limits.setdefault("history_cache", SQLITE_RING)
            db = tmp_path / f"history-{started}.db"
        started += 1
        return await clients.start(limits=Limits(**limits), db_path=db)

    return start


async def post_many(client: Client, room: str, count: int, first: int = 1) -> list[p.Message]:
    """Send `count` messages one by one (ids "<room>-<seq>"); return the sender's deliveries.

    Only for a sender that is the sole member of `room` on its connection's side: the
    next two frames after each send must be the ack and the own delivery.
    """
    delivered = []
    for seq in range(first, first + count):
        msg_id = f"{room}-{seq}"
        await client.send(p.SendMessage(id=msg_id, room=room, text=f"text {seq}"))
        assert await client.recv() == p.Ack(id=msg_id, room=room, seq=seq)
        own = await client.recv()
        assert isinstance(own, p.Message), own
        assert (own.id, own.seq, own.sender_id) == (msg_id, seq, client.user)
        delivered.append(own)
    return delivered


async def page(client: Client, room: str = "general", **kw: Any) -> p.HistoryPage:
    await client.send(p.HistoryRequest(room=room, **kw))
    answer = await client.recv()
    assert isinstance(answer, p.HistoryPage), answer
    assert answer.room == room
    return answer


def seqs(history: p.HistoryPage) -> list[int]:
    return [m.seq for m in history.messages]


# --- history pages -----------------------------------------------------------------------


async def test_newest_page_and_limit(clients: Clients, start_server: StartFn) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server()
        alice = await clients.connect(srv, "alice")
        sent = await post_many(alice, "general", 10)
        everything = await page(alice)
        newest_3 = await page(alice, limit=3)
        exactly_10 = await page(alice, limit=10)
        one = await page(alice, limit=1)
    assert everything.messages == tuple(sent)  # the stored messages as delivered
    assert everything.has_more is False
    assert (seqs(newest_3), newest_3.has_more) == ([8, 9, 10], True)
    assert (seqs(exactly_10), exactly_10.has_more) == (list(range(1, 11)), False)
    assert (seqs(one), one.has_more) == ([10], True)
    assert newest_3.messages == tuple(sent[7:])


async def test_before_pages_backwards(clients: Clients, start_server: StartFn) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server()
        alice = await clients.connect(srv, "alice")
        sent = await post_many(alice, "general", 10)
        results = {
            before: await page(alice, before=before, limit=limit)
            for before, limit in [(4, 2), (3, 2), (2, 5), (1, 5), (100, 3), (11, 10)]
        }
    assert (seqs(results[4]), results[4].has_more) == ([2, 3], True)
    assert (seqs(results[3]), results[3].has_more) == ([1, 2], False)
    assert (seqs(results[2]), results[2].has_more) == ([1], False)
    assert (seqs(results[1]), results[1].has_more) == ([], False)
    assert (seqs(results[100]), results[100].has_more) == ([8, 9, 10], True)
    assert (seqs(results[11]), results[11].has_more) == (list(range(1, 11)), False)
    assert results[4].messages == tuple(sent[1:3])


async def test_after_pages_forwards(clients: Clients, start_server: StartFn) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server()
        alice = await clients.connect(srv, "alice")
        sent = await post_many(alice, "general", 10)
        results = {
            after: await page(alice, after=after, limit=limit)
            for after, limit in [(0, 4), (7, 2), (8, 2), (9, 5), (10, 5), (50, 5)]
        }
        unlimited = await page(alice, after=2)
    assert (seqs(results[0]), results[0].has_more) == ([1, 2, 3, 4], True)
    assert (seqs(results[7]), results[7].has_more) == ([8, 9], True)
    assert (seqs(results[8]), results[8].has_more) == ([9, 10], False)
    assert (seqs(results[9]), results[9].has_more) == ([10], False)
    assert (seqs(results[10]), results[10].has_more) == ([], False)
    assert (seqs(results[50]), results[50].has_more) == ([], False)
    assert (seqs(unlimited), unlimited.has_more) == (list(range(3, 11)), False)
    assert results[0].messages == tuple(sent[:4])


async def test_limit_is_capped_by_the_server_page_size(
    clients: Clients, start_server: StartFn
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server(history_page_max=4)
        alice = await clients.connect(srv, "alice")
        await post_many(alice, "general", 10)
        default = await page(alice)
        asked_1000 = await page(alice, limit=1000)
        after = await page(alice, after=0, limit=50)
        before = await page(alice, before=10, limit=9)
    assert (seqs(default), default.has_more) == ([7, 8, 9, 10], True)
    assert (seqs(asked_1000), asked_1000.has_more) == ([7, 8, 9, 10], True)
    assert (seqs(after), after.has_more) == ([1, 2, 3, 4], True)
    assert (seqs(before), before.has_more) == ([6, 7, 8, 9], True)


async def test_history_of_an_empty_room(clients: Clients, start_server: StartFn) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server()
        alice = await clients.connect(srv, "alice", ["general", "quiet"])
        for kw in ({}, {"after": 0}, {"before": 5}, {"limit": 1}):
            empty = await page(alice, "quiet", **kw)
            assert (empty.messages, empty.has_more) == ((), False)
        # Not even a room anybody is in.
        granted = await clients.connect(srv, "bob", ["*"])
        nowhere = await page(granted, "nowhere")
        assert (nowhere.messages, nowhere.has_more) == ((), False)


async def test_history_needs_the_grant_not_membership(
    clients: Clients, start_server: StartFn
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server()
        alice = await clients.connect(srv, "alice", ["side"])
        sent = await post_many(alice, "side", 3)
        # bob may read side (granted) without being in it.
        bob = await clients.connect(srv, "bob", ["general", "side"], query="&rooms=general")
        read = await page(bob, "side")
        assert (read.messages, read.has_more) == (tuple(sent), False)
        # carol may not (not granted).
        carol = await clients.connect(srv, "carol")
        await carol.send(p.HistoryRequest(room="side"))
        error = await carol.recv()
        assert isinstance(error, p.Error)
        assert (error.code, error.room) == (p.ErrorCode.FORBIDDEN, "side")


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param({"before": 5, "after": 1}, id="before-and-after"),
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"limit": 1001}, id="limit-1001"),
        pytest.param({"after": -1}, id="negative-after"),
        pytest.param({"before": "5"}, id="before-string"),
    ],
)
async def test_invalid_history_requests(
    clients: Clients, start_server: StartFn, frame: dict[str, Any]
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server()
        alice = await clients.connect(srv, "alice")
        await alice.send({"type": "history", "room": "general", **frame})
        error = await alice.recv()
        assert isinstance(error, p.Error)
        assert (error.code, error.room) == (p.ErrorCode.INVALID_FIELD, "general")
        await alice.send(p.Ping(ts="open"))
        assert await alice.recv() == p.Pong(ts="open")


async def test_memory_mode_keeps_the_last_history_cache_messages(clients: Clients) -> None:
    """Memory mode: only the newest history_cache messages exist; hasMore never points at
    messages that cannot be fetched. (Not parametrised: SQLite keeps everything.)"""
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=Limits(history_cache=5))
        alice = await clients.connect(srv, "alice")
        await post_many(alice, "general", 8)
        newest = await page(alice)
        from_start = await page(alice, after=0)
        before = await page(alice, before=6)
    assert (seqs(newest), newest.has_more) == ([4, 5, 6, 7, 8], False)
    assert (seqs(from_start), from_start.has_more) == ([4, 5, 6, 7, 8], False)
    assert (seqs(before), before.has_more) == ([4, 5], False)


# --- re-sync after a reconnect -----------------------------------------------------------


@pytest.mark.parametrize(
    ("resync_max", "page_max", "missed"),
    [
        pytest.param(500, 100, 30, id="one-history-frame"),
        pytest.param(5, 4, 23, id="paged"),
    ],
)
@pytest.mark.parametrize("grant", [["general"], ["*"]], ids=["auto-joined", "joins-itself"])
async def test_resync_after_reconnect_has_no_gap(
    clients: Clients,
    start_server: StartFn,
    resync_max: int,
    page_max: int,
    missed: int,
    grant: list[str],
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server(resync_max=resync_max, history_page_max=page_max)
        alice = await clients.connect(srv, "alice")

        async def bob_connects() -> tuple[Client, int]:
            """Connect bob; make sure he is in general; return him and the room head."""
            bob = await clients.connect(srv, "bob", grant, welcome=False)
            welcome = await bob.recv()
            assert isinstance(welcome, p.Welcome)
            if not welcome.rooms:
                await bob.send(p.Join(room="general"))
            joined = await bob.recv()
            assert isinstance(joined, p.Joined)
            assert joined.room == "general"
            assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
            return bob, joined.seq

        bob, head = await bob_connects()
        assert head == 0
        sent = {m.seq: m for m in await post_many(alice, "general", 3)}
        for seq in (1, 2, 3):
            assert await bob.recv() == sent[seq]
        last = 3  # what bob's client records

        await bob.close()
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="left")
        sent |= {m.seq: m for m in await post_many(alice, "general", missed, first=4)}

        bob, head = await bob_connects()
        assert head == last + missed
        await bob.send(p.Join(room="general", since=last))
        assert await bob.recv() == p.Joined(room="general", seq=head)
        history = await bob.recv()
        assert isinstance(history, p.HistoryPage)
        assert history.room == "general"
        assert len(history.messages) == min(resync_max, missed)
        seen = list(history.messages)
        pages = 1
        while history.has_more:
            history = await page(bob, after=seen[-1].seq)
            assert 0 < len(history.messages) <= page_max
            seen.extend(history.messages)
            pages += 1

        # Every seq from last+1 to head exactly once, in order, as originally delivered.
        assert [m.seq for m in seen] == list(range(last + 1, head + 1))
        assert seen == [sent[seq] for seq in range(last + 1, head + 1)]
        expected_pages = 1 + max(0, -(-(missed - resync_max) // page_max))
        assert pages == expected_pages

        # Live traffic continues right after the head: nothing in between.
        live = await post_many(alice, "general", 1, first=head + 1)
        assert await bob.recv() == live[0]


async def test_join_since_head_returns_an_empty_page(
    clients: Clients, start_server: StartFn
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await start_server()
        alice = await clients.connect(srv, "alice")
        await post_many(alice, "general", 4)
        await alice.send(p.Join(room="general", since=4))
        assert await alice.recv() == p.Joined(room="general", seq=4)
        assert await alice.recv() == p.HistoryPage(room="general", messages=[], has_more=False)
        await alice.send(p.Join(room="general", since=0))
        assert await alice.recv() == p.Joined(room="general", seq=4)
        everything = await alice.recv()
        assert isinstance(everything, p.HistoryPage)
        assert (seqs(everything), everything.has_more) == ([1, 2, 3, 4], False)
