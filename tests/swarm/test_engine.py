"""The swarm engine in process: `run_scenario(RunSettings(...))` on tiny scenarios
(docs/scenarios.md; results as docs/results.md documents them).

Against the embedded reference server (a `loadtool serve` child process): every message
reaches every member of its room exactly once (lost, duplicates, leaked all 0 and the
counters exact), thresholds are evaluated into `thresholds` and `passed`, a drop fault
reconnects clients without loss or duplicates (protocol v1 re-sync plus the outbox,
docs/protocol.md), heartbeats keep idle connections up through the drain, and the
results document validates through write/read. Before any load, a preflight turns a dead
target or a refused token into `TargetUnreachable`.

The scenarios start with a phase without sends (`connect`) so that every client has
joined before the first message: each message is then expected by every member of its
room, and the totals below are exact.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import pytest
import trio

from loadtool.results.schema import read_results, write_results
from loadtool.scenario import Scenario, parse_scenario
from loadtool.swarm.engine import RunSettings, TargetUnreachable, run_scenario
from tests.conftest import Clients

CEILING_S: Final = 30  # any one run here takes under 10 s
RUN_ID: Final = "0a1b2c3d"


def tiny(
    *,
    clients: int = 4,
    steady: str = "2s",
    drain: str = "1s",
    rate: int = 5,
    population: str = "",
    extra: str = "",
    thresholds: tuple[str, ...] = ("lost == 0", "duplicates == 0"),
) -> Scenario:
    """A small closed-model scenario against the embedded server: 500 ms to connect,
    then `steady` of `rate` messages/s per client. `population` lines go under
    `population:`; `extra` follows `behaviour.send_rate` (indented lines stay in
    `behaviour`, unindented ones start top-level keys such as `faults`)."""
    rules = "".join(f"  - {rule}\n" for rule in thresholds)
    text = (
        "name: tiny\n"
        f"population:\n  clients: {clients}\n{population}"
        "phases:\n"
        "  - name: connect\n    duration: 500ms\n    send_rate: 0\n"
        f"  - name: steady\n    duration: {steady}\n"
        f"drain: {drain}\n"
        f"behaviour:\n  send_rate: {rate}/s\n"
        f"{extra}"
        f"thresholds:\n{rules}"
    )
    return parse_scenario(text, "t.yaml")


async def run(scenario: Scenario, out: Path, **settings: Any) -> dict[str, Any]:
    with trio.fail_after(CEILING_S):
        return await run_scenario(RunSettings(scenario=scenario, out_dir=out, **settings))


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def checks(results: dict[str, Any]) -> list[tuple[str, float | None, bool]]:
    return [(t["expr"], t["value"], t["ok"]) for t in results["thresholds"]]


# --- a clean run, shared by the first tests -------------------------------------------------

CLEAN_CLIENTS: Final = 4
CLEAN_SENT: Final = CLEAN_CLIENTS * 5 * 2  # clients * rate * steady seconds


@attrs.frozen
class CleanRun:
    out: Path
    results: dict[str, Any]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """One run of 4 clients in one room, 5 messages/s each for 2 s, shared by the tests
    that only read its results."""
    out = tmp_path_factory.mktemp("clean")
    scenario = tiny(thresholds=("lost == 0", "duplicates == 0", "latency.p99 < 5s"))
    settings = RunSettings(scenario=scenario, out_dir=out, run_id=RUN_ID)

    async def main() -> dict[str, Any]:
        with trio.fail_after(CEILING_S):
            return await run_scenario(settings)

    return CleanRun(out=out, results=trio.run(main))


def test_clean_run_delivers_every_message_once(clean: CleanRun) -> None:
    totals = clean.results["totals"]
    deliveries = CLEAN_SENT * CLEAN_CLIENTS  # one room: every member, the sender included
    assert totals["sent"] == CLEAN_SENT
    assert totals["expected_deliveries"] == deliveries
    assert totals["delivered"] == deliveries
    assert totals["received_expected"] == deliveries
    assert (totals["lost"], totals["duplicates"], totals["out_of_order"]) == (0, 0, 0)
    assert totals["leaked"] == 0
    assert (totals["acks"], totals["acks_duplicate"]) == (CLEAN_SENT, 0)
    assert (totals["connects"], totals["reconnects"]) == (CLEAN_CLIENTS, 0)
    assert (totals["errors"], totals["errors_by_code"], totals["closes"]) == (0, {}, {})
    assert clean.results["latency_ms"]["count"] == totals["delivered"]
    assert clean.results["ack_latency_ms"]["count"] == CLEAN_SENT
    assert clean.results["reconnect_ms"]["count"] == 0
    # The per-second series adds up to the totals.
    series = clean.results["timeseries"]
    for name in ("sent", "delivered", "acks", "connects"):
        assert sum(row[name] for row in series) == totals[name], name


def test_clean_run_evaluates_thresholds(clean: CleanRun) -> None:
    results = clean.results
    p99 = results["latency_ms"]["p99"]
    assert 0 < p99 < 5000
    assert checks(results) == [
        ("lost == 0", 0.0, True),
        ("duplicates == 0", 0.0, True),
        ("latency.p99 < 5s", p99, True),
    ]
    assert results["passed"] is True
    assert results["faults"] == []
    assert results["run_id"] == RUN_ID
    assert results["scenario"]["name"] == "tiny"
    assert results["scenario"]["file"] == "t.yaml"
    (url,) = results["target"]["urls"]
    assert url.startswith("ws://127.0.0.1:")
    assert results["target"]["dialect"] == "v1"
    assert results["target"]["embedded"] is True
    # 2.5 s of phases, then a drain that ends once nothing is missing (at most 1 s)
    assert 2.5 <= results["duration_s"] < 10


def test_results_validate_after_write_and_read(clean: CleanRun, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(path, clean.results)
    assert read_results(path) == orjson.loads(orjson.dumps(clean.results))
    assert read_results(path)["schema_version"] == 1
    # The embedded server's stderr goes next to the results.
    assert (clean.out / "server.log").is_file()


# --- more runs ------------------------------------------------------------------------------


async def test_a_failing_threshold_fails_the_run(tmp_path: Path) -> None:
    scenario = tiny(clients=2, steady="1s", drain="500ms", thresholds=(
        "lost == 0",
        "latency.p99 < 0.001ms",
    ))  # fmt: skip
    results = await run(scenario, tmp_path)
    p99 = results["latency_ms"]["p99"]
    assert p99 > 0.001
    assert checks(results) == [("lost == 0", 0.0, True), ("latency.p99 < 0.001ms", p99, False)]
    assert results["passed"] is False
    assert results["totals"]["lost"] == 0


async def test_drop_fault_reconnects_without_loss_or_duplicates(tmp_path: Path) -> None:
    """Half of 6 connections cut at 1 s; exponential back-off from 100 ms; the outbox
    replays unacknowledged sends (same id) and the re-sync pages what was missed."""
    scenario = tiny(
        clients=6,
        steady="2s",
        drain="2s",
        extra=(
            "  reconnect:\n    policy: exponential\n    base: 100ms\n    cap: 1s\n"
            "  outbox: true\n  resync: true\n"
            "faults:\n  - at: 1s\n    drop: 50%\n"
        ),
    )
    results = await run(scenario, tmp_path)
    totals = results["totals"]
    sent = 6 * 5 * 2
    assert [(f["kind"], f["detail"]) for f in results["faults"]] == [
        ("drop", "dropped 3 of 6 connections")
    ]
    assert 1.0 <= results["faults"][0]["at_s"] < 1.5
    assert (totals["connects"], totals["reconnects"]) == (9, 3)
    assert totals["closes"] == {"4001": 3}  # loadtool's code for a client-side drop
    assert results["reconnect_ms"]["count"] == 3
    assert results["reconnect_ms"]["p50"] >= 99  # the first back-off step is 100 ms
    assert totals["sent"] == sent
    assert totals["expected_deliveries"] == sent * 6
    assert totals["received_expected"] == sent * 6
    assert (totals["lost"], totals["duplicates"]) == (0, 0)
    assert totals["acks"] == sent  # every message acknowledged, replays included
    assert totals["errors"] == 0
    assert results["passed"] is True


async def test_many_rooms_route_without_leaks(tmp_path: Path) -> None:
    """8 clients round-robin over 4 rooms: rooms of 2, nobody hears another room."""
    scenario = tiny(
        clients=8,
        population="  rooms: 4\n  rooms_per_client: 1\n",
        thresholds=("leaked == 0", "lost == 0"),
    )
    assert scenario.membership() == tuple((i % 4,) for i in range(8))
    results = await run(scenario, tmp_path)
    totals = results["totals"]
    sent = 8 * 5 * 2
    assert totals["sent"] == sent
    assert totals["expected_deliveries"] == sent * 2  # each room has 2 members
    assert totals["delivered"] == sent * 2
    assert (totals["leaked"], totals["lost"], totals["duplicates"]) == (0, 0, 0)
    assert checks(results) == [("leaked == 0", 0.0, True), ("lost == 0", 0.0, True)]


async def test_unreachable_target_raises_before_any_load(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/"
    scenario = tiny().with_overrides(targets=[url])
    with pytest.raises(TargetUnreachable) as raised:
        await run(scenario, tmp_path)
    assert url in str(raised.value)
    assert "unreachable" in str(raised.value)


async def test_wrong_secret_is_refused_with_401(tmp_path: Path, clients: Clients) -> None:
    server = await clients.start()  # signs with tests.conftest.SECRET
    scenario = tiny().with_overrides(
        targets=[server.url], secret="not-the-server-secret-0123456789"
    )
    with pytest.raises(TargetUnreachable) as raised:
        await run(scenario, tmp_path)
    assert server.url in str(raised.value)
    assert "401" in str(raised.value)
    assert server.metrics.refused == {401: 1}  # the preflight's one attempt, then nothing


# --- bugs -------------------------------------------------------------------------------------


async def test_heartbeats_keep_connections_alive_through_the_drain(tmp_path: Path) -> None:
    """Sends stop at the end of the phases, heartbeats do not: a drain longer than the
    dead-peer bound (3 heartbeats) must not end healthy connections (4002) or redial."""
    scenario = tiny(
        clients=3,
        steady="1s",
        drain="1500ms",
        rate=2,
        extra="  heartbeat: 200ms\n",
        thresholds=("reconnects == 0",),
    )
    results = await run(scenario, tmp_path)
    totals = results["totals"]
    assert (totals["sent"], totals["lost"]) == (3 * 2 * 1, 0)
    assert totals["closes"] == {}
    assert (totals["connects"], totals["reconnects"]) == (3, 0)
    assert checks(results) == [("reconnects == 0", 0.0, True)]


async def test_heartbeats_in_the_drain_do_not_spin_the_cpu(tmp_path: Path) -> None:
    scenario = tiny(
        clients=3,
        steady="1s",
        drain="2s",
        rate=2,
        extra="  heartbeat: 200ms\n",
        thresholds=("lost == 0",),
    )
    results = await run(scenario, tmp_path)
    assert results["totals"]["closes"] == {}
    # 3 clients, 6 messages, 10 pings/s: a few tens of ms of CPU, not a core for 2 s.
    assert results["generator"]["cpu_s"] < 0.7


async def test_open_model_arrivals_lose_nothing(tmp_path: Path) -> None:
    text = """
name: arrivals
population:
  arrival: {rate: 5/s, lifetime: 1s, max_clients: 20}
duration: 3s
drain: 1s
behaviour:
  send_rate: 5/s
"""
    results = await run(parse_scenario(text, "t.yaml"), tmp_path)
    totals = results["totals"]
    assert totals["sent"] > 0
    assert (totals["lost"], totals["duplicates"]) == (0, 0)
    assert totals["acks"] == totals["sent"]
    assert totals["reconnects"] == 0


async def test_drain_ends_once_nothing_is_missing(tmp_path: Path) -> None:
    scenario = tiny(clients=2, steady="1s", drain="3s")
    results = await run(scenario, tmp_path)
    assert results["totals"]["lost"] == 0
    assert results["duration_s"] < 1.5 + 1.5  # the phases and far less than the 3 s drain
