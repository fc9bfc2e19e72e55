"""The swarm in the seed dialect against the seed article's real Node `ws` server
(docs/scenarios.md `target.dialect: seed`; docs/protocol.md's seed-compatible frames): a
server nobody on this project wrote, with no rooms, auth, acks or history, that relays
every text frame to every open client, the sender included.

Checked: every message reaches every connected client exactly once (the ledger's
CONNECTED expectation), and the app-level pings our clients send, which this server
relays to everyone like any other frame, are ignored by the clients: no loss, no errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import trio

from loadtool.client.transport import Endpoint, WsClient
from loadtool.scenario import parse_scenario
from loadtool.swarm.engine import RunSettings, run_scenario

CLIENTS: Final = 4
RATE: Final = 5  # messages/s per client
STEADY_S: Final = 2
CEILING_S: Final = 30


def seed_scenario(url: str, heartbeat: str) -> str:
    # A first phase without sends lets every client connect before the first message, so
    # each message is expected by all CLIENTS and the counts below are exact.
    return f"""
name: seed-node
target:
  url: {url}
  dialect: seed
  auth:
    none: true
population:
  clients: {CLIENTS}
phases:
  - name: connect
    duration: 500ms
    send_rate: 0
  - name: steady
    duration: {STEADY_S}s
drain: 500ms  # plenty on localhost; see test_engine.py for heartbeats in a long drain
behaviour:
  send_rate: {RATE}/s
  heartbeat: {heartbeat}
thresholds:
  - lost == 0
  - duplicates == 0
"""


async def run_against(url: str, heartbeat: str, out: Path) -> dict[str, Any]:
    scenario = parse_scenario(seed_scenario(url, heartbeat), "seed-node.yaml")
    with trio.fail_after(CEILING_S):
        return await run_scenario(RunSettings(scenario=scenario, out_dir=out))


def assert_every_message_once(results: dict[str, Any], url: str) -> None:
    totals = results["totals"]
    sent = CLIENTS * RATE * STEADY_S
    assert totals["sent"] == sent
    # The seed server relays to every open client, the sender included.
    assert totals["expected_deliveries"] == sent * CLIENTS
    assert totals["delivered"] == sent * CLIENTS
    assert totals["received_expected"] == sent * CLIENTS
    assert (totals["lost"], totals["duplicates"], totals["leaked"]) == (0, 0, 0)
    assert totals["out_of_order"] == 0
    assert totals["acks"] == 0  # the seed server acknowledges nothing
    assert (totals["connects"], totals["reconnects"]) == (CLIENTS, 0)
    assert (totals["errors"], totals["errors_by_code"]) == (0, {})
    assert results["latency_ms"]["count"] == sent * CLIENTS
    assert results["target"] == {"urls": [url], "dialect": "seed", "embedded": False}
    assert [(t["expr"], t["value"], t["ok"]) for t in results["thresholds"]] == [
        ("lost == 0", 0.0, True),
        ("duplicates == 0", 0.0, True),
    ]
    assert results["passed"] is True


async def test_seed_dialect_delivers_every_message_once(seed_server: str, tmp_path: Path) -> None:
    results = await run_against(seed_server, "off", tmp_path)
    assert_every_message_once(results, seed_server)
    assert results["totals"]["closes"] == {}


async def test_relayed_pings_are_ignored(seed_server: str, tmp_path: Path) -> None:
    """With a 200 ms heartbeat every client's `{"type": "ping"}` comes back to all four
    clients several times a second; they are neither messages nor errors."""
    # The premise: this server relays a ping verbatim, like any text frame.
    ping = '{"type":"ping","ts":"2026-11-29T10:00:00.000Z"}'
    with trio.fail_after(CEILING_S):
        conn = await WsClient.connect(Endpoint.from_url(seed_server))
        try:
            await conn.send_text(ping)
            batch: list[str] = []
            while not batch:  # a chunk may hold no complete message
                batch = await conn.receive_batch()
            assert batch == [ping]
        finally:
            await conn.close()
    results = await run_against(seed_server, "200ms", tmp_path)
    assert_every_message_once(results, seed_server)
