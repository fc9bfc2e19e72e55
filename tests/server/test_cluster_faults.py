"""Cluster mode under faults (docs/scaling.md, "Failure behaviour"), with a real
redis-server (tests/redisproc.py) and real load (the swarm, docs/scenarios.md):

- Redis killed (SIGKILL) and restarted under load: the nodes report it (/healthz 503,
  `loadtool_redis_up 0`), hold what clients send meanwhile without acking it, reconnect
  with backoff, and then every message is acked, delivered once to every member and in
  the history exactly once, under gap-free seqs;
- a node killed (SIGKILL by PID, a `loadtool serve --redis` process): its client
  reconnects to another node, replays its unacked messages and re-syncs with no gap.

Waiting on another process's state (a node noticing Redis went away) polls that state
over HTTP, bounded; everything else waits on frames.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
import trio
from trio_websocket import ConnectionRejected

from loadtool import protocol as p
from loadtool.scenario import parse_scenario
from loadtool.server.app import RunningServer
from loadtool.swarm.engine import RunSettings, run_scenario
from tests.conftest import SECRET, Client, Clients, token
from tests.redisproc import RedisProcess
from tests.serveproc import serve_process
from tests.server.test_http import get, http, metric_lines

CEILING_S: Final = 60
POLL_S: Final = 0.05  # between looks at another process's state


@pytest.fixture
async def cluster(redis_server: RedisProcess, nursery: trio.Nursery) -> AsyncIterator[Clients]:
    """Servers and clients, closed before `redis_server` stops."""
    opened = Clients(nursery)
    yield opened
    await opened.aclose()


async def _until(condition: Callable[[], Any], what: str, timeout_s: float = 20) -> None:
    """Poll an async condition of another process until it holds (bounded)."""
    with trio.fail_after(timeout_s):
        # Another process's state: no event reaches this one, so look again and again.
        while not await condition():  # noqa: ASYNC110
            await trio.sleep(POLL_S)


async def _health(node: Any) -> tuple[int, dict[str, Any]]:
    answer = await http(node, get("/healthz"))
    return answer.status, orjson.loads(answer.body)


async def _history(client: Client, room: str) -> list[p.Message]:
    """Every message of `room`, paging forward from the start."""
    messages: list[p.Message] = []
    while True:
        after = messages[-1].seq if messages else 0
        await client.send(p.HistoryRequest(room=room, after=after, limit=100))
        page = await client.recv_type(p.HistoryPage)
        messages.extend(page.messages)
        if not page.has_more:
            return messages


def _scenario(urls: list[str], *, steady: str, clients: int, rate: int) -> Any:
    text = (
        "name: cluster-fault\n"
        f"population:\n  clients: {clients}\n  rooms: 1\n"
        "phases:\n"
        "  - name: connect\n    duration: 500ms\n    send_rate: 0\n"
        f"  - name: steady\n    duration: {steady}\n"
        "drain: 15s\n"
        f"behaviour:\n  send_rate: {rate}/s\n"
        "  reconnect:\n    policy: exponential\n    base: 100ms\n    cap: 1s\n"
        "  outbox: true\n  resync: true\n"
        "thresholds:\n  - lost == 0\n  - duplicates == 0\n"
    )
    return parse_scenario(text, "cluster-fault.yaml").with_overrides(targets=urls, secret=SECRET)


async def test_redis_restarted_under_load_loses_and_duplicates_nothing(
    redis_server: RedisProcess, cluster: Clients, tmp_path: Path
) -> None:
    nodes: list[RunningServer] = [
        await cluster.start(redis_url=redis_server.url, node_id=f"node-{i}") for i in range(2)
    ]
    observer = await cluster.connect(nodes[0], "observer", ["lt-0"])
    scenario = _scenario([n.url for n in nodes], steady="4s", clients=6, rate=5)
    results: dict[str, Any] = {}

    async def load() -> None:
        settings = RunSettings(scenario=scenario, out_dir=tmp_path / "run")
        results.update(await run_scenario(settings))

    async def fault() -> None:
        seen = 0
        while seen < 20:  # the load is well under way
            if isinstance(await observer.recv(), p.Message):
                seen += 1
        await redis_server.kill()
        for node in nodes:
            await _until(lambda n=node: _down(n), "the node sees Redis down")
            status, body = await _health(node)
            assert (status, body["status"], body["redis"]) == (503, "unavailable", "down")
            samples = metric_lines((await http(node, get("/metrics"))).body)
            assert samples["loadtool_redis_up"] == "0"
        # While Redis is down a new connection is refused: a balancer routes elsewhere.
        with pytest.raises(ConnectionRejected) as refused:
            await cluster.connect(nodes[1], "late")
        assert refused.value.status_code == 503
        await redis_server.start()
        for node in nodes:
            await _until(lambda n=node: _up(n), "the node sees Redis again")
            samples = metric_lines((await http(node, get("/metrics"))).body)
            assert int(samples["loadtool_redis_reconnects_total"]) >= 1

    with trio.fail_after(CEILING_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(load)
            nursery.start_soon(fault)
    totals = results["totals"]
    assert totals["sent"] > 20
    assert (totals["lost"], totals["duplicates"], totals["out_of_order"]) == (0, 0, 0)
    assert totals["acks"] == totals["sent"]  # what was held while Redis was down, too
    assert results["passed"] is True
    # Redis holds each message once, under seqs 1..N: nothing acked was lost, nothing
    # stored twice (the retried pipeline re-ran scripts that had already run).
    reader = await cluster.connect(nodes[1], "reader", ["lt-0"], query="&rooms=")
    history = await _history(reader, "lt-0")
    assert [m.seq for m in history] == list(range(1, len(history) + 1))
    ids = [m.id for m in history]
    assert len(set(ids)) == len(ids) == totals["sent"]


async def _down(node: Any) -> bool:
    return (await _health(node))[0] == 503


async def _up(node: Any) -> bool:
    return (await _health(node))[0] == 200


async def test_a_killed_node_s_client_resyncs_on_another_node_without_a_gap(
    redis_server: RedisProcess, cluster: Clients, tmp_path: Path
) -> None:
    """Three `loadtool serve --redis` processes. Bob talks on node 1 while alice and
    carol keep sending on nodes 2 and 3; node 1 is SIGKILLed with bob's last messages
    unacked; bob reconnects to node 2, re-syncs from his last seq and replays his outbox:
    he ends with every seq once, no gap, and his replays are stored once."""
    args = ("--redis", redis_server.url, "--node-id")
    async with (
        serve_process(tmp_path / "n1.log", *args, "n1") as n1,
        serve_process(tmp_path / "n2.log", *args, "n2") as n2,
        serve_process(tmp_path / "n3.log", *args, "n3") as n3,
    ):
        room = "general"
        bob = await cluster.open(f"{n1.url}?token={token('bob')}", "bob")
        alice = await cluster.open(f"{n2.url}?token={token('alice')}", "alice")
        carol = await cluster.open(f"{n3.url}?token={token('carol')}", "carol")
        for client in (bob, alice, carol):
            assert isinstance(await client.recv(), p.Welcome)
            assert (await client.recv_type(p.Joined)).seq == 0
        held: dict[int, p.Message] = {}
        # Bob sends 5 and sees them acked; then 5 more that he will not wait for.
        for i in range(5):
            await bob.send(p.SendMessage(id=f"bob-{i}", room=room, text="x"))
            while not isinstance(frame := await bob.recv(), p.Ack):
                if isinstance(frame, p.Message):
                    held[frame.seq] = frame
            assert not frame.duplicate
        for i in range(5, 10):
            await bob.send(p.SendMessage(id=f"bob-{i}", room=room, text="x"))
        # Alice sends too, and bob receives some of it before his node dies.
        for i in range(10):
            await alice.send(p.SendMessage(id=f"alice-{i}", room=room, text="y"))
        while len(held) < 8:
            frame = await bob.recv()
            if isinstance(frame, p.Message):
                held[frame.seq] = frame
        last = max(s for s in held if all(k in held for k in range(1, s + 1)))
        os.kill(n1.process.pid, signal.SIGKILL)
        # The others keep talking while bob is away.
        for i in range(10, 20):
            await carol.send(p.SendMessage(id=f"carol-{i}", room=room, text="z"))
        carol_acks = [await carol.recv_type(p.Ack) for _ in range(10)]
        head = max(a.seq for a in carol_acks)
        # Bob reconnects to node 2 without connect-time rooms, re-syncs, replays.
        bob2 = await cluster.open(f"{n2.url}?token={token('bob')}&rooms=", "bob")
        assert isinstance(await bob2.recv(), p.Welcome)
        await bob2.send(p.Join(room=room, since=last))
        for i in range(5, 10):
            await bob2.send(p.SendMessage(id=f"bob-{i}", room=room, text="x"))
        got: dict[int, p.Message] = {s: m for s, m in held.items() if s <= last}
        replay_acks: list[p.Ack] = []
        joined_seq = -1

        def complete() -> bool:
            if len(replay_acks) < 5 or joined_seq < 0:
                return False
            target = max(joined_seq, *(a.seq for a in replay_acks))
            return all(s in got for s in range(1, target + 1))

        with trio.fail_after(20):
            while not complete():
                frame = await bob2.recv()
                if isinstance(frame, p.Joined):
                    joined_seq = frame.seq
                elif isinstance(frame, p.HistoryPage):
                    for m in frame.messages:
                        got.setdefault(m.seq, m)
                    if frame.has_more:
                        await bob2.send(p.HistoryRequest(room=room, after=max(got)))
                elif isinstance(frame, p.Message):
                    assert frame.seq not in got or got[frame.seq] == frame  # no conflict
                    got.setdefault(frame.seq, frame)
                elif isinstance(frame, p.Ack):
                    replay_acks.append(frame)
        # joined.seq is what node 2 had released (it may lag Redis); the rest came live.
        total = max(got)
        assert total >= head
        assert sorted(got) == list(range(1, total + 1))  # no gap
        # Each of bob's messages is stored once: replays of stored ones got duplicate
        # acks with the original seq, the others were stored now.
        stored_ids = [m.id for m in got.values()]
        assert len(stored_ids) == len(set(stored_ids))
        bob_ids = {f"bob-{i}" for i in range(10)}
        assert bob_ids <= set(stored_ids)
        by_id = {m.id: m.seq for m in got.values()}
        for ack in replay_acks:
            assert by_id[ack.id] == ack.seq
