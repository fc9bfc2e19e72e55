"""The conformance gate (docs/conformance.md) against cluster mode: one `--redis` node,
and a pair of nodes sharing one Redis behind a round-robin TCP forwarder, so the peers of
one case land on different nodes. Cluster mode must keep every guarantee of protocol v1."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Final

import pytest
import trio

from loadtool.client.transport import Endpoint
from loadtool.conform.cases import all_cases
from loadtool.conform.model import Verdict
from loadtool.conform.runner import GateReport, run_gate
from loadtool.conform.target import builtin
from loadtool.server.app import RunningServer
from tests.conftest import SECRET, Clients
from tests.redisproc import RedisProcess

CEILING_S: Final = 120


@pytest.fixture
async def cluster(redis_server: RedisProcess, nursery: trio.Nursery) -> AsyncIterator[Clients]:
    """Servers and clients, closed before `redis_server` stops."""
    opened = Clients(nursery)
    yield opened
    await opened.aclose()


async def _forward(
    nodes: list[RunningServer], *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Accept on a free port; connection k is piped to node k mod len(nodes) (an L4
    balancer, as a real deployment has one in front of its nodes)."""
    turn = itertools.cycle(nodes)

    async def pipe(src: trio.SocketStream, dst: trio.SocketStream) -> None:
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
            await dst.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def handle(client: trio.SocketStream) -> None:
        node = next(turn)
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", node.port)
        except OSError:
            await client.aclose()
            return
        async with client, upstream, trio.open_nursery() as both:
            both.start_soon(pipe, client, upstream)
            both.start_soon(pipe, upstream, client)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


def _assert_passed(report: GateReport) -> None:
    """Every case PASS, or INFO where the suite only reports (long heartbeat and idle
    timeouts it does not wait for, the close codes it saw), as against one plain node."""
    bad = [r for r in report.results if r.verdict not in (Verdict.PASS, Verdict.INFO)]
    shown = [
        f"{r.id} {r.verdict.value} {r.title}: {r.reason} (expected {r.expected})\n"
        + "\n".join(f"  {e.actor} {e.direction} {e.data}" for e in r.transcript[-12:])
        for r in bad
    ]
    assert not bad, "\n".join(shown)
    assert report.passed


async def test_the_gate_passes_against_one_redis_node(
    redis_server: RedisProcess, cluster: Clients
) -> None:
    node = await cluster.start(redis_url=redis_server.url, node_id="solo")
    with trio.fail_after(CEILING_S):
        report = await run_gate(
            all_cases(), Endpoint.from_url(node.url), builtin("reference", secret=SECRET)
        )
    _assert_passed(report)


async def test_the_gate_passes_against_two_nodes_behind_a_balancer(
    redis_server: RedisProcess, cluster: Clients, nursery: trio.Nursery
) -> None:
    nodes = [await cluster.start(redis_url=redis_server.url, node_id=f"n{i}") for i in range(2)]
    port = await nursery.start(_forward, nodes)
    with trio.fail_after(CEILING_S):
        report = await run_gate(
            all_cases(),
            Endpoint.from_url(f"ws://127.0.0.1:{port}/"),
            builtin("reference", secret=SECRET),
        )
    _assert_passed(report)
    # Both nodes took connections: the cases really spanned the pair.
    assert all(n.metrics.connections_total > 0 for n in nodes)
