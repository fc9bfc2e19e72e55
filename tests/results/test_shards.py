"""Sharded results (loadtool.results.shards): the shard record, the checks that refuse
anything but one complete partition of one run, and cross-shard accounting. The partials
here are real: each shard's `Ledger` sees only its own clients' events, as in a run."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest

from loadtool.results.ledger import Expect, Ledger
from loadtool.results.runclock import CLOCK_SOURCE
from loadtool.results.schema import (
    ClockInfo,
    ClockSync,
    GeneratorInfo,
    ScenarioInfo,
    TargetInfo,
    build_results,
    iso_utc,
)
from loadtool.results.shards import (
    ShardSetError,
    check_shard_set,
    membership_digest,
    merge_shards,
    owned_clients,
    shard_record,
)
from loadtool.results.timeseries import TimeSeries

S = 1_000_000_000
MS = 1_000_000
T0 = 1_764_000_000 * S
END = T0 + 10 * S
N = 4
ROOMS_OF = [[0]] * 8  # eight clients, one room: client k runs on shard k mod 4 + 1
SCENARIO = ScenarioInfo(name="cross", file="cross.yaml", sha256="cd" * 32, seed=3)
Pairs = frozenset[tuple[int, int]]  # (recipient, sender)
TARGET = TargetInfo(urls=["ws://127.0.0.1:8080/"], dialect="v1", embedded=False)


def clock(host: str = "gen-a", synchronized: bool = True) -> ClockInfo:
    return ClockInfo(
        source=CLOCK_SOURCE,
        offset_ns=1_700_000_000 * S,
        host=host,
        wall="clock_gettime(CLOCK_REALTIME)",
        resolution_ns=1,
        sync=ClockSync(synchronized=synchronized, max_error_us=2500, est_error_us=800),
    )


@attrs.define
class Part:
    index: int
    ledger: Ledger = attrs.field(factory=lambda: Ledger(len(ROOMS_OF), ROOMS_OF, Expect.MEMBERS))

    def owns(self, client: int) -> bool:
        return client % N == self.index - 1


def play(parts: list[Part], *, skip: Pairs, twice: Pairs) -> None:
    """Every client joins, then each sends one message to room 0 that every member gets,
    except (recipient, sender) pairs in `skip` (never arrive) and in `twice` (arrive twice).
    Each event is recorded only by the shard owning the client it concerns."""

    def on(client: int) -> Ledger:
        return next(p.ledger for p in parts if p.owns(client))

    for client in range(len(ROOMS_OF)):
        on(client).connected(client, T0)
        on(client).member_since(client, 0, T0)
    for sender in range(len(ROOMS_OF)):
        t = T0 + S + sender * MS
        on(sender).sent(sender, 1, 0, t)
        on(sender).acked(sender, 1, t, t + MS)
        for recipient in range(len(ROOMS_OF)):
            if (recipient, sender) in skip:
                continue
            for copy_ in range(2 if (recipient, sender) in twice else 1):
                on(recipient).received(recipient, sender, 1, 0, t, t + (2 + copy_) * MS)


def results(part: Part, **shard: Any) -> dict[str, Any]:
    doc = build_results(
        run_id="feed0123",
        scenario=SCENARIO,
        target=TARGET,
        start_ns=T0,
        duration_s=10.0,
        ledger=part.ledger.state(END),
        generator=GeneratorInfo(
            workers=1, cpu_s=0.1, loop_lag_ms_p99=0.2, saturated=False, clock=clock()
        ),
        timeseries=TimeSeries(T0),
        thresholds=[{"expr": "lost == 0", "value": 0.0, "ok": True}],
    )
    doc["shard"] = (
        shard_record(
            index=part.index,
            count=N,
            owned=list(owned_clients(part.index, N, len(ROOMS_OF))),
            membership=ROOMS_OF,
            start_at=iso_utc(T0),
        )
        | shard
    )
    return doc


def shard_files(skip: Pairs = frozenset(), twice: Pairs = frozenset()) -> list[dict[str, Any]]:
    parts = [Part(i) for i in range(1, N + 1)]
    play(parts, skip=skip, twice=twice)
    return [results(part) for part in parts]


SOURCES = [f"shard-{i}.json" for i in range(1, N + 1)]


def test_a_message_sent_on_shard_1_and_received_on_shard_3_counts_once() -> None:
    merged = merge_shards(shard_files(), SOURCES)
    totals = merged["totals"]
    assert totals["sent"] == 8
    assert totals["expected_deliveries"] == totals["delivered"] == 8 * 8
    assert (totals["lost"], totals["duplicates"]) == (0, 0)
    assert merged["latency_ms"]["count"] == 64
    assert [s["index"] for s in merged["shards"]] == [1, 2, 3, 4]
    assert [s["file"] for s in merged["shards"]] == SOURCES


def test_alone_a_shard_cannot_tell_loss_the_merge_can() -> None:
    # Client 2 (shard 3) never gets client 0's message (shard 1).
    files = shard_files(skip=frozenset({(2, 0)}))
    sender_side = files[0]["totals"]  # shard 1 sent it and expects only its own clients' copies
    assert (sender_side["sent"], sender_side["expected_deliveries"]) == (2, 2 * 2)
    receiver_side = files[2]["totals"]  # shard 3 sent nothing to check against on its own
    assert receiver_side["lost"] == 0
    merged = merge_shards(files, SOURCES)["totals"]
    assert (merged["expected_deliveries"], merged["delivered"]) == (64, 63)
    assert (merged["lost"], merged["duplicates"]) == (1, 0)


def test_a_cross_shard_duplicate_counts_once_and_is_not_a_delivery() -> None:
    merged = merge_shards(shard_files(twice=frozenset({(6, 1)})), SOURCES)["totals"]
    assert (merged["delivered"], merged["lost"], merged["duplicates"]) == (64, 0, 1)


def test_order_of_the_files_does_not_matter() -> None:
    files = shard_files(skip=frozenset({(5, 3)}))
    forward = merge_shards(files, SOURCES)
    backward = merge_shards(files[::-1], SOURCES[::-1])
    assert forward["totals"] == backward["totals"]
    assert forward["histograms"] == backward["histograms"]
    assert forward["shards"] == backward["shards"]


def test_a_dropped_shard_file_is_named_not_merged() -> None:
    files = shard_files()
    with pytest.raises(ShardSetError, match=r"missing shard 3/4: got 3 of 4 shard files") as err:
        check_shard_set(files[:2] + files[3:], SOURCES[:2] + SOURCES[3:])
    assert err.value.missing == (3,)
    with pytest.raises(ShardSetError, match=r"missing shards 2/4, 4/4") as err:
        check_shard_set(files[::2], SOURCES[::2])
    assert err.value.missing == (2, 4)


def test_a_shard_given_twice_names_both_files() -> None:
    files = shard_files()
    with pytest.raises(ShardSetError, match=r"shard 2/4 given twice: shard-2.json and copy.json"):
        check_shard_set([*files, files[1]], [*SOURCES, "copy.json"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(run_id="0badf00d"), r"shard-3.json: run_id is '0badf00d'"),
        (lambda d: d["scenario"].update(seed=4), r"shard-3.json: scenario.seed is 4"),
        (lambda d: d["scenario"].update(sha256="ef" * 32), r"scenario.sha256 is 'efef"),
        (lambda d: d["shard"].update(count=5), r"shard-3.json: shard.count is 5"),
        (lambda d: d["shard"].update(membership_sha256="00"), r"shard.membership_sha256 is '00'"),
        (lambda d: d["thresholds"].clear(), r"shard-3.json: thresholds is \[\]"),
        (lambda d: d["shard"].update(clients_sha256="00"), r"ran other clients than the parti"),
        (lambda d: d["shard"].update(index=7), r"shard-3.json: shard 7/4 is out of range"),
        (lambda d: d.pop("shard"), r"shard-3.json: not a shard's results \(no `shard` key\)"),
        (lambda d: d["shard"].update(index="3"), r"shard-3.json: shard.index: expected int"),
    ],
)
def test_shards_of_different_runs_are_refused(change: Any, message: str) -> None:
    files = shard_files()
    files[2] = copy.deepcopy(files[2])
    change(files[2])
    with pytest.raises(ShardSetError, match=message):
        merge_shards(files, SOURCES)


def test_the_record_reflects_what_the_shard_ran() -> None:
    record = shard_record(
        index=2, count=4, owned=[1, 5], membership=ROOMS_OF, start_at="2026-11-29T10:00:00Z"
    )
    assert record["clients"] == 2
    assert record["membership_sha256"] == membership_digest(ROOMS_OF)
    assert record["membership_sha256"] != membership_digest([[1]] * 8)
    wrong = shard_record(index=2, count=4, owned=[1, 6], membership=ROOMS_OF, start_at=None)
    files = shard_files()
    files[1]["shard"] = record | {"clients_sha256": wrong["clients_sha256"]}
    with pytest.raises(ShardSetError, match=r"shard-2\.json: shard 2/4 ran other clients"):
        check_shard_set(files, SOURCES)


def test_one_machine_gives_no_skew_warning() -> None:
    assert merge_shards(shard_files(), SOURCES)["warnings"] == []


def test_several_machines_warn_that_skew_adds_to_latency() -> None:
    files = shard_files()
    files[1]["generator"]["clock"] = _clock_dict(clock("gen-b", synchronized=False))
    warnings = merge_shards(files, SOURCES)["warnings"]
    assert len(warnings) == 1
    assert "shards ran on 2 machines" in warnings[0]
    assert "clock skew adds to" in warnings[0]
    assert "gen-a (synchronized, kernel max error 2.5 ms)" in warnings[0]
    assert "gen-b (NOT synchronized, kernel max error 2.5 ms)" in warnings[0]


def test_a_late_shard_and_different_start_times_are_warned_about() -> None:
    files = shard_files()
    files[3]["start"] = iso_utc(T0 + 3 * S)
    files[3]["shard"]["start_at"] = iso_utc(T0 + 3 * S)
    warnings = merge_shards(files, SOURCES)["warnings"]
    assert any("shard 4 started 3.0 s after shard 1" in w for w in warnings), warnings
    assert any("different --start-at times" in w for w in warnings), warnings


def _clock_dict(info: ClockInfo) -> dict[str, Any]:
    doc = build_results(
        run_id="feed0123",
        scenario=SCENARIO,
        target=TARGET,
        start_ns=T0,
        duration_s=1.0,
        ledger=Ledger(1, [[0]], Expect.MEMBERS).state(T0),
        generator=GeneratorInfo(
            workers=1, cpu_s=0.0, loop_lag_ms_p99=0.0, saturated=False, clock=info
        ),
    )
    clock_doc: dict[str, Any] = doc["generator"]["clock"]
    return clock_doc
