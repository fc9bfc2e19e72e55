"""Cluster mode: several reference-server nodes sharing one real redis-server
(docs/scaling.md). Each node runs in this process (tests/conftest.py `clients.start`);
the fault tests in test_cluster_faults.py run nodes as separate processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from loadtool import protocol as p
from loadtool.scenario import parse_scenario
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits
from loadtool.swarm.engine import RunSettings, run_scenario
from tests.conftest import SECRET, Client, Clients
from tests.redisproc import RedisProcess


@pytest.fixture
async def cluster(redis_server: RedisProcess, nursery: trio.Nursery) -> AsyncIterator[Clients]:
    """Servers and clients like `clients`, but closed before `redis_server` stops (a
    fixture that depends on another is torn down first)."""
    opened = Clients(nursery)
    yield opened
    await opened.aclose()


async def _nodes(
    clients: Clients, redis: RedisProcess, count: int, **overrides: Any
) -> list[RunningServer]:
    return [
        await clients.start(redis_url=redis.url, node_id=f"node-{i}", **overrides)
        for i in range(count)
    ]


async def test_a_message_sent_on_one_node_reaches_members_on_the_other(
    redis_server: RedisProcess, cluster: Clients
) -> None:
    a, b = await _nodes(cluster, redis_server, 2)
    alice = await cluster.connect(a, "alice")
    bob = await cluster.connect(b, "bob")
    await alice.send(p.SendMessage(id="a-1", room="general", text="hi bob"))
    ack = await alice.recv_type(p.Ack)
    assert (ack.seq, ack.duplicate) == (1, False)
    assert (await alice.recv_type(p.Message)).seq == 1
    got = await bob.recv_type(p.Message)
    assert (got.id, got.seq, got.sender_id, got.text) == ("a-1", 1, "alice", "hi bob")
    await bob.send(p.SendMessage(id="b-1", room="general", text="hi alice"))
    assert (await bob.recv_type(p.Ack)).seq == 2
    assert (await alice.recv_type(p.Message)).seq == 2


async def test_a_replay_on_another_node_gets_the_same_ack_and_no_second_delivery(
    redis_server: RedisProcess, cluster: Clients
) -> None:
    """The outbox case of §4.2 across nodes: alice's first connection (node A) sends, she
    reconnects to node B and replays the same id: duplicate ack with the original seq,
    and bob (on B) sees the message once."""
    a, b = await _nodes(cluster, redis_server, 2)
    bob = await cluster.connect(b, "bob")
    alice_a = await cluster.connect(a, "alice")
    await alice_a.send(p.SendMessage(id="out-1", room="general", text="once"))
    first = await alice_a.recv_type(p.Ack)
    await alice_a.close()
    alice_b = await cluster.connect(b, "alice")
    await alice_b.send(p.SendMessage(id="out-1", room="general", text="once"))
    again = await alice_b.recv_type(p.Ack)
    assert (again.room, again.seq, again.duplicate) == ("general", first.seq, True)
    # The same id from another room: still the original's room and seq (§4.3).
    await alice_b.send(p.SendMessage(id="out-1", room="general", text="other text"))
    assert (await alice_b.recv_type(p.Ack)).seq == first.seq
    await alice_b.send(p.SendMessage(id="out-2", room="general", text="next"))
    assert (await alice_b.recv_type(p.Ack)).seq == first.seq + 1
    seen = [(await bob.recv_type(p.Message)).seq for _ in range(2)]
    assert seen == [first.seq, first.seq + 1]  # once each, in order: no duplicate between


async def test_concurrent_senders_on_three_nodes_share_one_gap_free_seq(
    redis_server: RedisProcess, cluster: Clients
) -> None:
    """Three senders, one per node, 30 messages each, all at once: every member on every
    node sees seqs 1..450 exactly once, in order, and the acks name the same seqs."""
    fast = Limits(rate_per_s=1000, rate_burst=1000)  # the senders do not pace themselves
    nodes = await _nodes(cluster, redis_server, 3, limits=fast)
    users = ["ann", "ben", "cat"]
    members = [await cluster.connect(node, user) for node, user in zip(nodes, users, strict=True)]
    per_sender = 150
    acks: dict[str, list[int]] = {user: [] for user in users}

    async def send_all(client: Client) -> None:
        for i in range(per_sender):
            await client.send(p.SendMessage(id=f"{client.user}-{i}", room="general", text="x"))

    async def read_all(client: Client, got: list[p.Message]) -> None:
        while len(got) < per_sender * len(users):
            frame = await client.recv()
            if isinstance(frame, p.Message):
                got.append(frame)
            elif isinstance(frame, p.Ack):
                acks[client.user].append(frame.seq)

    received: list[list[p.Message]] = [[] for _ in members]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for client, got in zip(members, received, strict=True):
                nursery.start_soon(read_all, client, got)
            for client in members:
                nursery.start_soon(send_all, client)
    total = per_sender * len(users)
    for got in received:
        assert [m.seq for m in got] == list(range(1, total + 1))
    # Every node delivered the same message under each seq.
    assert len({tuple((m.seq, m.sender_id, m.id) for m in got) for got in received}) == 1
    # Each sender's acks are for its own messages (the ack precedes its copy, so all
    # acks have arrived once all messages have), and together they cover 1..450.
    by_seq = {m.seq: m.sender_id for m in received[0]}
    for user in users:
        assert len(acks[user]) == per_sender
        assert all(by_seq[seq] == user for seq in acks[user])


async def test_history_and_resync_are_served_from_redis_on_any_node(
    redis_server: RedisProcess, cluster: Clients
) -> None:
    """Messages sent through node A; a client of node B that never saw the room pages
    its history and re-syncs with join since, as §5.1 and §5.2 describe."""
    a, b = await _nodes(cluster, redis_server, 2)
    alice = await cluster.connect(a, "alice")
    for i in range(1, 8):
        await alice.send(p.SendMessage(id=f"h-{i}", room="general", text=f"m{i}"))
        assert (await alice.recv_type(p.Ack)).seq == i
    carol = await cluster.connect(b, "carol", query="&rooms=")
    await carol.send(p.HistoryRequest(room="general", limit=3))
    page = await carol.recv_type(p.HistoryPage)
    assert ([m.seq for m in page.messages], page.has_more) == ([5, 6, 7], True)
    await carol.send(p.HistoryRequest(room="general", before=5, limit=3))
    page = await carol.recv_type(p.HistoryPage)
    assert ([m.seq for m in page.messages], page.has_more) == ([2, 3, 4], True)
    await carol.send(p.HistoryRequest(room="general", after=5, limit=10))
    page = await carol.recv_type(p.HistoryPage)
    assert ([m.seq for m in page.messages], page.has_more) == ([6, 7], False)
    assert [m.text for m in page.messages] == ["m6", "m7"]
    await carol.send(p.Join(room="general", since=3))
    joined = await carol.recv_type(p.Joined)
    assert joined.seq == 7
    page = await carol.recv_type(p.HistoryPage)
    assert ([m.seq for m in page.messages], page.has_more) == ([4, 5, 6, 7], False)
    # From joined.seq on, live: a message sent on A reaches carol on B.
    await alice.send(p.SendMessage(id="h-8", room="general", text="live"))
    live = await carol.recv_type(p.Message)
    assert (live.seq, live.text) == (8, "live")


async def test_presence_and_typing_cross_nodes(
    redis_server: RedisProcess, cluster: Clients
) -> None:
    """Presence counts a user's connections on every node: `joined` for the first,
    `left` for the last, nothing for the ones between; typing reaches other nodes."""
    a, b = await _nodes(cluster, redis_server, 2)
    bob = await cluster.connect(b, "bob")
    alice_a = await cluster.connect(a, "alice")
    assert await bob.recv() == p.Presence(room="general", user_id="alice", status="joined")
    alice_b = await cluster.connect(b, "alice")  # her second connection, on bob's node
    # A node sends its presence changes and messages to Redis in order: once this message
    # is acked, alice_b counts cluster-wide.
    await alice_b.send(p.SendMessage(id="p-1", room="general", text="here twice"))
    await alice_b.recv_type(p.Ack)
    assert isinstance(await bob.recv(), p.Message)
    await alice_a.close()  # one of hers remains (on B): no presence
    await alice_b.send(p.Typing(room="general", typing=True))
    # Bob's next frame is the typing notice: no presence happened in between.
    assert await bob.recv() == p.TypingNotice(room="general", user_id="alice", typing=True)
    dave = await cluster.connect(a, "dave")
    assert await bob.recv() == p.Presence(room="general", user_id="dave", status="joined")
    await bob.send(p.Typing(room="general", typing=True))
    # Typing is not stored: dave may still get alice's notice from just before he joined.
    notice = await dave.recv_type(p.TypingNotice)
    while notice.user_id != "bob":
        notice = await dave.recv_type(p.TypingNotice)
    assert notice == p.TypingNotice(room="general", user_id="bob", typing=True)
    await alice_b.close()
    assert await bob.recv() == p.Presence(room="general", user_id="alice", status="left")
    assert await dave.recv_type(p.Presence) == p.Presence(
        room="general", user_id="alice", status="left"
    )


async def test_a_scenario_split_over_two_nodes_loses_nothing(
    redis_server: RedisProcess, cluster: Clients, tmp_path: Path
) -> None:
    """The swarm (docs/scenarios.md) with its clients round-robin over two nodes, 3 rooms:
    every message reaches every member of its room once, in seq order."""
    nodes = await _nodes(cluster, redis_server, 2)
    text = (
        "name: split\n"
        "population:\n  clients: 9\n  rooms: 3\n"
        "phases:\n"
        "  - name: connect\n    duration: 500ms\n    send_rate: 0\n"
        "  - name: steady\n    duration: 2s\n"
        "drain: 5s\n"
        "behaviour:\n  send_rate: 5/s\n"
        "thresholds:\n  - lost == 0\n  - duplicates == 0\n"
    )
    scenario = parse_scenario(text, "split.yaml").with_overrides(
        targets=[n.url for n in nodes], secret=SECRET
    )
    with trio.fail_after(60):
        results = await run_scenario(RunSettings(scenario=scenario, out_dir=tmp_path))
    totals = results["totals"]
    assert totals["sent"] > 0
    assert totals["received_expected"] == totals["expected_deliveries"] > totals["sent"]
    assert (totals["lost"], totals["duplicates"], totals["out_of_order"]) == (0, 0, 0)
    assert (totals["acks"], totals["errors"]) == (totals["sent"], 0)
    assert results["passed"] is True
    # Both nodes carried clients and delivered messages.
    assert all(n.metrics.deliveries > 0 for n in nodes)
