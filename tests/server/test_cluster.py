"""Cluster mode: several reference-server nodes sharing one real redis-server
(docs/scaling.md). Each node runs in this process (tests/conftest.py `clients.start`);
the fault tests in test_cluster_faults.py run nodes as separate processes."""

from __future__ import annotations

from loadtool import protocol as p
from loadtool.server.app import RunningServer
from tests.conftest import Clients
from tests.redisproc import RedisProcess


async def _nodes(clients: Clients, redis: RedisProcess, count: int) -> list[RunningServer]:
    return [await clients.start(redis_url=redis.url, node_id=f"node-{i}") for i in range(count)]


async def test_a_message_sent_on_one_node_reaches_members_on_the_other(
    redis_server: RedisProcess, clients: Clients
) -> None:
    a, b = await _nodes(clients, redis_server, 2)
    alice = await clients.connect(a, "alice")
    bob = await clients.connect(b, "bob")
    await alice.send(p.SendMessage(id="a-1", room="general", text="hi bob"))
    ack = await alice.recv_type(p.Ack)
    assert (ack.seq, ack.duplicate) == (1, False)
    assert (await alice.recv_type(p.Message)).seq == 1
    got = await bob.recv_type(p.Message)
    assert (got.id, got.seq, got.sender_id, got.text) == ("a-1", 1, "alice", "hi bob")
    await bob.send(p.SendMessage(id="b-1", room="general", text="hi alice"))
    assert (await bob.recv_type(p.Ack)).seq == 2
    assert (await alice.recv_type(p.Message)).seq == 2
