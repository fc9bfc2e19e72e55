"""`loadtool run --shard I/4 --start-at T` x4 + `loadtool merge` against one shared
reference server (`loadtool serve`, a real process) equal a single run of the same
deterministic scenario; `loadtool merge` refuses what is not one complete set of shards
(exit 2, naming the file or the missing shard) and re-evaluates the thresholds (exit 1).

Two runs never measure the same latencies, so the comparison with the single run is on
what is deterministic: the counters and the membership. The latencies are checked where
they must be exact: the merged histogram is the union of the shards' histograms, rebuilt
here with hdrh directly (not through loadtool's merge).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import orjson
import trio
from hdrh.histogram import HdrHistogram

from loadtool.results.schema import parse_iso_utc, read_results
from loadtool.results.shards import membership_digest
from loadtool.scenario import load_scenario
from tests.conftest import SECRET
from tests.serveproc import LOADTOOL, serve_process

SHARDS: Final = 4
CEILING_S: Final = 60  # one run: ~1 s to start, 2 s of load, a short drain
# --start-at this far ahead: four processes start on two cores, maybe shared with others
# (a shard ready after T starts late and its clients miss the others' first sends).
START_AHEAD_S: Final = 15.0
TOTAL_COUNTERS: Final = (
    "sent",
    "expected_deliveries",
    "delivered",
    "received_expected",
    "lost",
    "duplicates",
    "out_of_order",
    "leaked",
    "acks",
    "connects",
    "reconnects",
)

# Deterministic: every client connects during the silent first phase (long, for a busy
# machine), so every send time and every membership span (hence the expected deliveries)
# follows from the scenario.
SCENARIO: Final = """\
name: sharded
population:
  clients: 12
  rooms: 3
phases:
  - name: connect
    duration: 2500ms
    send_rate: 0
  - name: steady
    duration: 1500ms
drain: 3s
behaviour:
  send_rate: 4/s
thresholds:
  - lost == 0
  - duplicates == 0
  - sent >= 60
"""


async def loadtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(CEILING_S):
        return await trio.run_process(
            [str(LOADTOOL), *args],
            cwd=str(cwd),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def recorded(hist_text: str) -> Counter[int]:
    """{value (us, bucket's representative): count} of an encoded HdrHistogram."""
    hist = HdrHistogram.decode(hist_text.encode("ascii"))
    return Counter(
        {
            int(item.value_iterated_to): int(item.count_at_value_iterated_to)
            for item in hist.get_recorded_iterator()
        }
    )


async def test_four_merged_shards_equal_a_single_run(tmp_path: Path) -> None:
    scenario = tmp_path / "sharded.yaml"
    scenario.write_text(SCENARIO)
    async with serve_process(tmp_path / "serve.log") as server:
        common = ["--target", server.url, "--secret", SECRET, "--quiet", "--no-report"]
        single = await loadtool("run", str(scenario), "--out", "single", *common, cwd=tmp_path)
        assert single.returncode == 0, single.stderr.decode()
        start_at = f"{time.time() + START_AHEAD_S:.3f}"
        done: list[subprocess.CompletedProcess[bytes]] = []

        async def shard(index: int) -> None:
            argv = ["run", str(scenario), "--shard", f"{index}/{SHARDS}", "--start-at", start_at]
            done.append(await loadtool(*argv, "--out", f"shard-{index}", *common, cwd=tmp_path))

        async with trio.open_nursery() as nursery:
            for index in range(1, SHARDS + 1):
                nursery.start_soon(shard, index)
    for run in done:
        assert run.returncode == 0, run.stderr.decode()
        assert b": partial results; `loadtool merge` decides  results: shard-" in run.stdout
        assert b"PASSED" not in run.stdout
    files = [str(tmp_path / f"shard-{i}" / "results.json") for i in range(1, SHARDS + 1)]
    merged_run = await loadtool("merge", *files[::-1], "-o", "merged.json", cwd=tmp_path)
    assert merged_run.returncode == 0, merged_run.stderr.decode()
    one = read_results(tmp_path / "single" / "results.json")
    parts = [read_results(f) for f in files]
    merged = read_results(tmp_path / "merged.json")

    # They started together (--start-at), so the same clients were members at each send.
    starts = [parse_iso_utc(p["start"]) for p in parts]
    assert max(starts) - min(starts) < 500_000_000, [p["start"] for p in parts]

    # The counters of the merged shards are those of the single run, exactly.
    assert {k: merged["totals"][k] for k in TOTAL_COUNTERS} == {
        k: one["totals"][k] for k in TOTAL_COUNTERS
    }
    assert one["totals"]["sent"] == 12 * 6  # 4/s for 1.5 s, every client
    assert one["totals"]["expected_deliveries"] == 12 * 6 * 4  # rooms of 4 members
    assert (merged["totals"]["lost"], merged["totals"]["duplicates"]) == (0, 0)
    # ... while no shard alone has them: a quarter of the senders, and cross-shard receipts.
    assert sum(p["totals"]["sent"] for p in parts) == merged["totals"]["sent"]
    assert all(p["totals"]["sent"] == 3 * 6 for p in parts)
    assert all(p["totals"]["expected_deliveries"] < 3 * 6 * 4 for p in parts)

    # The same membership and partition everywhere: what the scenario gives, disjoint.
    membership = membership_digest(load_scenario(scenario).membership())
    assert {p["shard"]["membership_sha256"] for p in parts} == {membership}
    assert [p["shard"]["index"] for p in parts] == [1, 2, 3, 4]
    assert [p["shard"]["clients"] for p in parts] == [3, 3, 3, 3]
    assert len({p["run_id"] for p in parts}) == 1
    assert one["ledger"]["expect"] == merged["ledger"]["expect"] == "members"

    # Latency: the merged histogram is the exact union of the shards' histograms.
    union: Counter[int] = Counter()
    for part in parts:
        union.update(recorded(part["histograms"]["latency"]))
    assert recorded(merged["histograms"]["latency"]) == union
    assert sum(union.values()) == merged["latency_ms"]["count"] == merged["totals"]["delivered"]
    assert merged["latency_ms"]["count"] == one["latency_ms"]["count"]
    rebuilt = HdrHistogram(1, 3_600_000_000, 3)
    for value, count in union.items():
        rebuilt.record_value(value, count)
    for key, q in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)):
        expected_ms = rebuilt.get_value_at_percentile(q) / 1000
        assert abs(merged["latency_ms"][key] - expected_ms) <= 0.001 * expected_ms + 0.001, key

    # Time series on the wall clock: rows add up, second 0 is the earliest shard's start.
    assert parse_iso_utc(merged["start"]) == min(starts)
    assert sum(row["sent"] for row in merged["timeseries"]) == merged["totals"]["sent"]
    assert sum(row["delivered"] for row in merged["timeseries"]) == merged["totals"]["delivered"]

    # Thresholds were evaluated on the whole: `sent >= 60` fails on every quarter.
    assert all(not p["passed"] for p in parts)
    assert [(t["expr"], t["ok"]) for t in merged["thresholds"]] == [
        ("lost == 0", True),
        ("duplicates == 0", True),
        ("sent >= 60", True),
    ]
    assert merged["passed"] is True
    assert [s["file"] for s in merged["shards"]] == files
    assert {s["clock"]["host"] for s in merged["shards"]} == {one["generator"]["clock"]["host"]}
    assert not [w for w in merged["warnings"] if "machines" in w or "clamped" in w]
    assert merged["generator"]["workers"] == SHARDS
    stdout = merged_run.stdout.decode()
    assert "PASSED  results: merged.json" in stdout

    await _merge_errors(tmp_path, files, parts)


async def _merge_errors(tmp_path: Path, files: list[str], parts: list[dict[str, Any]]) -> None:
    """The CLI's answers to what is not one complete set (real shard files, edited)."""
    missing = await loadtool("merge", files[0], files[1], files[3], "-o", "m.json", cwd=tmp_path)
    assert missing.returncode == 2
    assert "Error: missing shard 3/4: got 3 of 4 shard files" in missing.stderr.decode()
    assert not (tmp_path / "m.json").exists()

    twice = await loadtool("merge", *files, files[1], "-o", "m.json", cwd=tmp_path)
    assert twice.returncode == 2
    assert f"shard 2/4 given twice: {files[1]} and {files[1]}" in twice.stderr.decode()

    other = tmp_path / "other-run.json"
    other.write_bytes(orjson.dumps(parts[2] | {"run_id": "0badf00d"}))
    wrong = await loadtool("merge", *files[:2], str(other), files[3], "-o", "m.json", cwd=tmp_path)
    assert wrong.returncode == 2
    assert f"Error: {other}: run_id is '0badf00d' but {files[0]} has" in wrong.stderr.decode()

    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad = await loadtool("merge", *files[:3], str(broken), "-o", "m.json", cwd=tmp_path)
    assert bad.returncode == 2
    assert f"Error: {broken}: not valid JSON" in bad.stderr.decode()

    absent = await loadtool("merge", *files[:3], "nope.json", "-o", "m.json", cwd=tmp_path)
    assert absent.returncode == 2
    assert "Error: nope.json: cannot read" in absent.stderr.decode()
    assert "Traceback" not in absent.stderr.decode()

    usage = await loadtool("merge", *files, cwd=tmp_path)
    assert usage.returncode == 2
    assert "Missing option '-o' / '--out'" in usage.stderr.decode()

    # Thresholds decide on the merged run: a failing one exits 1, the file is written.
    strict = []
    for i, part in enumerate(parts, start=1):
        extra = {"expr": "latency.p99 < 0.001ms", "value": 1.0, "ok": False}
        doc = part | {"thresholds": [*part["thresholds"], extra]}
        path = tmp_path / f"strict-{i}.json"
        path.write_bytes(orjson.dumps(doc))
        strict.append(str(path))
    failing = await loadtool("merge", *strict, "-o", "strict.json", cwd=tmp_path)
    assert failing.returncode == 1, failing.stderr.decode()
    assert "  FAIL  latency.p99 < 0.001ms  (value " in failing.stdout.decode()
    assert read_results(tmp_path / "strict.json")["passed"] is False

    typo = tmp_path / "typo.json"
    typo.write_bytes(
        orjson.dumps(parts[0] | {"thresholds": [{"expr": "lost = 0", "value": 0.0, "ok": True}]})
    )
    unparsable = await loadtool("merge", str(typo), *files[1:], "-o", "m.json", cwd=tmp_path)
    assert unparsable.returncode == 2
    assert f"Error: {typo}: thresholds[0].expr: expected a comparison" in unparsable.stderr.decode()

    # Shards from two machines: the skew warning goes to stderr and into the file.
    moved = []
    for i, part in enumerate(parts, start=1):
        clock = part["generator"]["clock"] | {"host": f"gen-{i % 2}"}
        doc = part | {"generator": part["generator"] | {"clock": clock}}
        path = tmp_path / f"moved-{i}.json"
        path.write_bytes(orjson.dumps(doc))
        moved.append(str(path))
    skewed = await loadtool("merge", *moved, "-o", "moved.json", cwd=tmp_path)
    assert skewed.returncode == 0, skewed.stderr.decode()
    assert "WARNING: shards ran on 2 machines" in skewed.stderr.decode()
    assert "clock skew adds to" in read_results(tmp_path / "moved.json")["warnings"][0]


async def test_a_shard_without_a_common_run_id_or_start_is_a_usage_error(tmp_path: Path) -> None:
    scenario = tmp_path / "sharded.yaml"
    scenario.write_text(SCENARIO)
    url = "ws://127.0.0.1:9/"  # never dialled: the usage error comes first
    done = await loadtool("run", str(scenario), "--shard", "2/4", "--target", url, cwd=tmp_path)
    assert done.returncode == 2
    assert "same --start-at (the run id is derived from it) or the same --run-id" in (
        done.stderr.decode()
    )
    bad = await loadtool("run", str(scenario), "--shard", "5/4", "--target", url, cwd=tmp_path)
    assert bad.returncode == 2
    assert "shard 5/4: use I/N with 1 <= I <= N" in bad.stderr.decode()


async def test_workers_on_one_machine_are_shards_merged_the_same_way(tmp_path: Path) -> None:
    scenario = tmp_path / "sharded.yaml"
    scenario.write_text(SCENARIO)
    argv = ["run", str(scenario), "--workers", "2", "--out", "w", "--no-report"]
    done = await loadtool(*argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    merged = read_results(tmp_path / "w" / "results.json")
    parts = [read_results(tmp_path / "w" / f"worker-{i}" / "results.json") for i in (1, 2)]
    assert [p["shard"]["index"] for p in parts] == [1, 2]
    assert [(s["index"], s["clients"]) for s in merged["shards"]] == [(1, 6), (2, 6)]
    assert merged["generator"]["workers"] == 2
    assert merged["totals"]["sent"] == 12 * 6
    assert merged["totals"]["delivered"] == merged["totals"]["expected_deliveries"] == 12 * 6 * 4
    assert (merged["totals"]["lost"], merged["totals"]["duplicates"]) == (0, 0)
    assert merged["target"]["embedded"] is True
    # One machine: no clock-skew warning (a worker slow to start on a busy machine may
    # still be warned about as late).
    assert not [w for w in merged["warnings"] if "machines" in w or "clamped" in w]
