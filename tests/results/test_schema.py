"""results.json (loadtool.results.schema): build, write/read round trips, errors that name
the file and the key, exact merging of partial results, threshold metrics."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from loadtool.results.ledger import Expect, Ledger
from loadtool.results.runclock import CLOCK_SOURCE, RunClock
from loadtool.results.schema import (
    SCHEMA_VERSION,
    ClockInfo,
    Fault,
    GeneratorInfo,
    ReconnectInfo,
    ResultsError,
    ScenarioInfo,
    TargetInfo,
    build_results,
    iso_utc,
    merge_results,
    parse_iso_utc,
    read_results,
    results_metrics,
    validate_results,
    write_results,
)
from loadtool.results.timeseries import TimeSeries

S = 1_000_000_000
MS = 1_000_000
T0 = 1_764_000_000 * S + 123_456_000  # run clock at the start (microsecond aligned)
END = T0 + 10 * S
ROOMS_OF = [[0], [0], [0, 1], [1]]
SCENARIO = ScenarioInfo(name="fanout", file="fanout.yaml", sha256="ab" * 32, seed=1)
TARGET = TargetInfo(urls=["ws://127.0.0.1:8080/"], dialect="v1", embedded=True)
CLOCK = ClockInfo(source=CLOCK_SOURCE, offset_ns=1_700_000_000_000_000_000)


def generator(workers: int = 1) -> GeneratorInfo:
    return GeneratorInfo(
        workers=workers, cpu_s=0.5 * workers, loop_lag_ms_p99=0.25, saturated=False, clock=CLOCK
    )


@attrs.define
class Shard:
    ledger: Ledger
    series: TimeSeries


def play(shards: list[Shard], shard_of: list[int]) -> None:
    """A small run with two losses, a duplicate, a leak, a reconnect and acks, split by client."""

    def on(client: int) -> Shard:
        return shards[shard_of[client]]

    for client, rooms in enumerate(ROOMS_OF):
        on(client).ledger.connected(client, T0)
        on(client).series.add("connects", T0)
        for room in rooms:
            on(client).ledger.member_since(client, room, T0)
    on(3).ledger.disconnected(3, T0 + 2 * S)
    on(3).ledger.connected(3, T0 + 3 * S)
    for seq in range(1, 6):
        for sender, rooms in enumerate(ROOMS_OF):
            room = rooms[seq % len(rooms)]
            t = T0 + seq * S + sender * MS
            on(sender).ledger.sent(sender, seq, room, t)
            on(sender).series.add("sent", t)
            for recipient, member_of in enumerate(ROOMS_OF):
                if room not in member_of or (recipient == 1 and seq == 3):  # 1 loses seq 3s
                    continue
                now = t + (recipient + 1) * MS
                on(recipient).ledger.received(recipient, sender, seq, room, t, now)
                on(recipient).series.add("delivered", now)
                on(recipient).series.latency(now, now - t)
            on(sender).ledger.acked(sender, seq, t, t + MS)
    on(0).ledger.received(0, 2, 2, 0, T0 + 2 * S + 2 * MS, T0 + 7 * S)  # a duplicate
    on(3).ledger.received(3, 0, 1, 0, T0 + S, T0 + 7 * S)  # a leak: 3 is not in room 0


def results_for(shard: Shard, workers: int = 1, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "run_id": "abcd0123",
        "scenario": SCENARIO,
        "target": TARGET,
        "start_ns": T0,
        "duration_s": 10.0,
        "ledger": shard.ledger.state(END),
        "generator": generator(workers),
        "timeseries": shard.series,
        "errors_by_code": {"rate_limited": 1},
        "closes": {1000: 2},
    }
    kwargs.update(overrides)
    return build_results(**kwargs)


def new_shard() -> Shard:
    return Shard(Ledger(len(ROOMS_OF), ROOMS_OF, Expect.MEMBERS), TimeSeries(T0))


@pytest.fixture
def single() -> dict[str, Any]:
    shard = new_shard()
    play([shard], [0, 0, 0, 0])
    return results_for(shard, workers=2, errors_by_code={"rate_limited": 2}, closes={1000: 4})


@pytest.fixture
def halves() -> list[dict[str, Any]]:
    shards = [new_shard(), new_shard()]
    play(shards, [0, 1, 1, 0])
    return [results_for(shard) for shard in shards]


def test_build_results_totals_and_sections(single: dict[str, Any]) -> None:
    totals = single["totals"]
    assert single["schema_version"] == SCHEMA_VERSION
    assert single["start"] == "2025-11-24T16:00:00.123456Z"
    # 20 messages; room 0 has members 0, 1, 2 and room 1 has 2, 3: 12 to room 0, 8 to room 1.
    assert totals["sent"] == 20
    assert totals["expected_deliveries"] == 12 * 3 + 8 * 2
    assert totals["lost"] == 2  # seq 3 of senders 0 and 1 (sender 2's seq 3 went to room 1)
    assert totals["delivered"] == totals["expected_deliveries"] - 2
    assert (totals["duplicates"], totals["leaked"], totals["out_of_order"]) == (1, 1, 0)
    assert (totals["acks"], totals["connects"], totals["reconnects"]) == (20, 5, 1)
    assert (totals["errors"], totals["errors_by_code"], totals["closes"]) == (
        2,
        {"rate_limited": 2},
        {"1000": 4},
    )
    assert single["latency_ms"]["count"] == totals["delivered"]
    assert single["reconnect_ms"]["count"] == 1
    assert single["reconnect_ms"]["max"] == pytest.approx(1000.0, rel=1e-3)
    assert single["passed"] is True
    assert [row["t"] for row in single["timeseries"]] == list(range(6))
    assert single["ledger"]["expect"] == "members"


def test_results_round_trip_through_a_file(tmp_path: Path, single: dict[str, Any]) -> None:
    path = tmp_path / "results.json"
    write_results(path, single)
    assert read_results(path) == single
    assert not list(tmp_path.glob(".*.tmp"))


def test_merge_of_partial_results_equals_the_combined_ledger(
    single: dict[str, Any], halves: list[dict[str, Any]]
) -> None:
    assert halves[0]["totals"] != single["totals"]
    merged = merge_results(halves)
    assert merged == single
    assert merge_results([merged]) == single  # merging is idempotent on one part


def test_merge_through_files(
    tmp_path: Path, single: dict[str, Any], halves: list[dict[str, Any]]
) -> None:
    paths = [tmp_path / f"part{i}.json" for i in range(2)]
    for path, part in zip(paths, halves, strict=True):
        write_results(path, part)
    assert merge_results([read_results(path) for path in paths]) == single


def test_merge_shifts_time_series_and_faults_onto_the_earliest_start(
    halves: list[dict[str, Any]],
) -> None:
    late = copy.deepcopy(halves[1])
    late["start"] = iso_utc(T0 + 2 * S)
    late["faults"] = [{"at_s": 1.5, "kind": "drop", "detail": "30%"}]
    merged = merge_results([late, halves[0]])
    assert merged["start"] == halves[0]["start"]
    assert merged["duration_s"] == 12.0
    assert merged["faults"] == [{"at_s": 3.5, "kind": "drop", "detail": "30%"}]
    sent = [row["sent"] for row in merged["timeseries"]]
    assert sent[0:3] == [halves[0]["timeseries"][i]["sent"] for i in range(3)]
    assert sum(sent) == 20


def test_merge_keeps_why_a_part_saturated(halves: list[dict[str, Any]]) -> None:
    first, second = copy.deepcopy(halves[0]), copy.deepcopy(halves[1])
    first["generator"] |= {"saturated": True, "saturation_reasons": ["loop lag 80 ms"]}
    second["generator"] |= {"saturated": True, "saturation_reasons": ["loop lag 80 ms", "cpu"]}
    merged = merge_results([first, second])
    assert merged["generator"]["saturated"] is True
    assert merged["generator"]["saturation_reasons"] == ["loop lag 80 ms", "cpu"]
    assert "saturation_reasons" not in merge_results(halves)["generator"]


def test_merge_refuses_parts_of_different_runs(halves: list[dict[str, Any]]) -> None:
    other = copy.deepcopy(halves[1])
    other["run_id"] = "ffff0000"
    with pytest.raises(ResultsError, match=r"results\[1\]: run_id: 'ffff0000' differs"):
        merge_results([halves[0], other])


def test_merge_evaluates_thresholds_on_the_merged_document(halves: list[dict[str, Any]]) -> None:
    @attrs.frozen
    class Outcome:
        expr: str
        value: float
        ok: bool

    def evaluate(results: Mapping[str, Any]) -> list[Outcome]:
        lost = results_metrics(results)["lost"]
        return [Outcome(expr="lost == 0", value=lost, ok=lost == 0)]

    merged = merge_results(halves, thresholds=evaluate)
    assert merged["thresholds"] == [{"expr": "lost == 0", "value": 2.0, "ok": False}]
    assert merged["passed"] is False


def test_build_results_takes_threshold_outcomes_and_faults() -> None:
    shard = new_shard()
    play([shard], [0, 0, 0, 0])
    results = results_for(
        shard,
        thresholds=[
            {"expr": "lost == 0", "value": 1, "ok": False},
            {"expr": "reconnect.p99 < 1s", "value": None, "ok": False},  # not measured
        ],
        faults=[Fault(at_s=2.0, kind="drop", detail="30%")],
    )
    assert results["thresholds"] == [
        {"expr": "lost == 0", "value": 1.0, "ok": False},
        {"expr": "reconnect.p99 < 1s", "value": None, "ok": False},
    ]
    assert results["passed"] is False
    validate_results(results)
    assert results["faults"] == [{"at_s": 2.0, "kind": "drop", "detail": "30%"}]
    with pytest.raises(ValueError, match="time series starts at"):
        results_for(shard, timeseries=TimeSeries(T0 + 1))


def test_results_metrics(single: dict[str, Any]) -> None:
    metrics = results_metrics(single)
    totals = single["totals"]
    assert metrics["lost"] == 2.0
    assert metrics["lost.rate"] == 2 / totals["expected_deliveries"]
    assert metrics["duplicates.rate"] == 1 / totals["delivered"]
    assert metrics["errors.rate"] == 2 / (20 + 5)
    assert metrics["delivery.rate"] == totals["delivered"] / totals["expected_deliveries"]
    assert metrics["latency.p95"] == single["latency_ms"]["p95"]
    assert metrics["reconnect.max"] == single["reconnect_ms"]["max"]
    quiet = copy.deepcopy(single)
    quiet["reconnect_ms"]["count"] = 0
    assert not [name for name in results_metrics(quiet) if name.startswith("reconnect.")]


# --- read errors name the file and the key -------------------------------------------------


def write_raw(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data))


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (lambda r: r.pop("totals"), "totals", "missing key"),
        (lambda r: r["totals"].pop("lost"), "totals.lost", "missing key"),
        (lambda r: r["totals"].update(lost="3"), "totals.lost", "expected an integer, found '3'"),
        (lambda r: r["totals"].update(lost=True), "totals.lost", "expected an integer"),
        (lambda r: r["latency_ms"].pop("p99"), "latency_ms.p99", "missing key"),
        (lambda r: r["target"].update(urls="ws://x"), "target.urls", "expected a list"),
        (lambda r: r["totals"]["closes"].update({"1000": 1.5}), "totals.closes.1000", "integer"),
        (lambda r: r["thresholds"].append({"expr": "x"}), "thresholds[0].value", "missing key"),
        (lambda r: r["timeseries"][2].pop("hist"), "timeseries[2].hist", "missing key"),
        (lambda r: r.update(start="yesterday"), "start", "expected an ISO 8601 UTC time"),
        (lambda r: r.update(schema_version=2), "schema_version", "unsupported version 2"),
        (lambda r: r.pop("schema_version"), "schema_version", "missing key"),
        (lambda r: r["ledger"]["counters"].pop("sent"), "ledger.counters.sent", "missing"),
        (lambda r: r["ledger"].update(expect="all"), "ledger.expect", "expected one of"),
        (
            lambda r: r["scenario"].update(reconnect={"policy": 1, "base_s": 1, "cap_s": 2}),
            "scenario.reconnect.policy",
            "expected a string",
        ),
        (
            lambda r: r["timeseries"][1].update(connected_min=None),
            "timeseries[1].connected_min",
            "expected an integer",
        ),
    ],
)
def test_read_errors_name_the_file_and_the_key(
    tmp_path: Path, single: dict[str, Any], mutate: Any, key: str, problem: str
) -> None:
    path = tmp_path / "broken.json"
    data = copy.deepcopy(single)
    mutate(data)
    write_raw(path, data)
    with pytest.raises(ResultsError) as info:
        read_results(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_read_errors_for_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ResultsError, match=r"missing\.json: cannot read"):
        read_results(missing)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(ResultsError, match=r"garbage\.json: not valid JSON"):
        read_results(garbage)
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    with pytest.raises(ResultsError, match=r"array\.json: expected a JSON object"):
        read_results(array)


def test_write_refuses_an_invalid_document(tmp_path: Path, single: dict[str, Any]) -> None:
    path = tmp_path / "results.json"
    broken = copy.deepcopy(single)
    del broken["ledger"]
    with pytest.raises(ResultsError, match="ledger: missing key"):
        write_results(path, broken)
    assert not path.exists()


def test_unknown_keys_are_ignored_by_readers(single: dict[str, Any]) -> None:
    extended = copy.deepcopy(single)
    extended["future_section"] = {"anything": 1}
    extended["totals"]["future_counter"] = 3
    validate_results(extended)


def test_keys_added_after_version_1_are_optional(single: dict[str, Any]) -> None:
    """Files written before `scenario.reconnect` and `timeseries[].connected_min` existed
    still read."""
    assert "reconnect" not in single["scenario"]  # ScenarioInfo without it: the key is absent
    older = copy.deepcopy(single)
    for row in older["timeseries"]:
        del row["connected_min"]
    validate_results(older)
    newer = copy.deepcopy(single)
    newer["scenario"]["reconnect"] = {"policy": "full-jitter", "base_s": 0.5, "cap_s": 10}
    validate_results(newer)


def test_build_results_records_the_reconnect_policy() -> None:
    info = attrs.evolve(
        SCENARIO, reconnect=ReconnectInfo(policy="full-jitter", base_s=0.5, cap_s=10.0)
    )
    results = build_results(
        run_id="abcd1234",
        scenario=info,
        target=TARGET,
        start_ns=T0,
        duration_s=1.0,
        ledger=Ledger(1, [[0]], Expect.MEMBERS).state(T0 + S),
        generator=generator(),
    )
    assert results["scenario"]["reconnect"] == {
        "policy": "full-jitter",
        "base_s": 0.5,
        "cap_s": 10.0,
    }


def test_iso_times() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000000Z"
    assert parse_iso_utc(iso_utc(T0)) == T0
    assert parse_iso_utc("2025-11-24T17:00:00.123456+01:00") == T0
    with pytest.raises(ValueError, match="no time zone"):
        parse_iso_utc("2025-11-24T16:00:00")


def test_run_clock_reads_the_monotonic_clock_plus_its_offset() -> None:
    clock = RunClock.from_system()
    first = clock.now_ns()
    assert clock.now_ns() >= first
    assert clock.from_monotonic_ns(5) == 5 + clock.offset_ns
    assert clock.info() == ClockInfo(source=CLOCK_SOURCE, offset_ns=clock.offset_ns)
