"""A scenario over wss:// through the shipped NGINX config (deploy/nginx/loadtool.conf) in
a real nginx: TLS ended at the proxy, clients spread by it over two `loadtool serve
--redis` nodes sharing a real redis-server, zero loss (docs/scaling.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import trio

from loadtool.results.schema import read_results
from tests.conftest import SECRET
from tests.deploy.nginxproc import nginx_proxy
from tests.redisproc import RedisProcess
from tests.serveproc import LOADTOOL, serve_process

# Twelve clients in three rooms of four (client i in room i mod 3): nginx's round robin
# puts neighbours on different nodes, so every room has members on both and its fan-out
# crosses Redis.
THROUGH_PROXY: Final = """\
name: through-nginx
population:
  clients: 12
  rooms: 3
phases:
  - name: connect
    duration: 1s
    send_rate: 0
  - name: steady
    duration: 2s
drain: 5s
behaviour:
  send_rate: 4/s
  heartbeat: 1s
thresholds:
  - lost == 0
  - duplicates == 0
  - leaked == 0
"""
RUN_CEILING_S: Final = 60


async def node_metrics(port: int) -> dict[str, float]:
    """The unlabelled samples of a node's /metrics (plain HTTP, straight to the node)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /metrics HTTP/1.0\r\nHost: node\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    samples = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if line and not line.startswith("#") and "{" not in name:
            samples[name] = float(value)
    return samples


async def test_a_scenario_over_wss_through_nginx_to_two_nodes_loses_nothing(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    scenario = tmp_path / "through-nginx.yaml"
    scenario.write_text(THROUGH_PROXY)
    cluster = ("--redis", redis_server.url)
    async with (
        serve_process(tmp_path / "node1.log", *cluster, "--node-id", "node-1") as one,
        serve_process(tmp_path / "node2.log", *cluster, "--node-id", "node-2") as two,
        nginx_proxy(tmp_path / "nginx", [one.url, two.url]) as proxy,
    ):
        argv = [
            str(LOADTOOL), "run", str(scenario), "--target", proxy.wss_url,
            "--ca-file", str(proxy.ca_file), "--secret", SECRET,
            "--out", str(tmp_path / "out"), "--quiet",
        ]  # fmt: skip
        both_busy: list[dict[str, float]] = []

        async def until_both_nodes_hold_clients() -> None:
            while True:  # polled while the run goes on; bounded by the run's ceiling
                seen = [await node_metrics(one.port), await node_metrics(two.port)]
                if all(s["loadtool_connections"] > 0 for s in seen):
                    both_busy.extend(seen)
                    return
                await trio.sleep(0.1)

        with trio.fail_after(RUN_CEILING_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(until_both_nodes_hold_clients)
                done = await trio.run_process(
                    argv, capture_stdout=True, capture_stderr=True, check=False
                )
                nursery.cancel_scope.cancel()
        after = [await node_metrics(one.port), await node_metrics(two.port)]
    assert done.returncode == 0, (done.stdout.decode(), done.stderr.decode())
    results = read_results(tmp_path / "out" / "results.json")
    totals = results["totals"]
    assert results["target"]["urls"] == [proxy.wss_url]
    assert totals["sent"] == 12 * 8  # 4/s for 2 s, every client
    assert totals["delivered"] == totals["expected_deliveries"] == 12 * 8 * 4
    assert (totals["lost"], totals["duplicates"], totals["leaked"]) == (0, 0, 0)
    assert totals["reconnects"] == 0
    # nginx spread the clients: both nodes held connections during the run, and both
    # stored messages (clients on each sent) and delivered them.
    assert [s["loadtool_connections"] > 0 for s in both_busy] == [True, True]
    assert all(s["loadtool_messages_in_total"] > 0 for s in after)
    assert all(s["loadtool_deliveries_total"] > 0 for s in after)
    assert sum(s["loadtool_messages_in_total"] for s in after) == totals["sent"]
    assert sum(s["loadtool_connections_total"] for s in after) == totals["connects"] + 1
    # Every connection (the clients' and the preflight's) was a WebSocket upgrade through
    # nginx: its access log (complete once nginx stopped) has one 101 per connection.
    access = (tmp_path / "nginx" / "access.log").read_text()
    assert access.count('" 101 ') == totals["connects"] + 1
