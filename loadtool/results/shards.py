"""Sharded runs, sans-IO: what a shard records about itself, and the checks and merge that
turn a set of shard files into one exact results document (docs/scaling.md).

A shard (`loadtool run --shard I/N`) runs client k exactly when k mod N = I - 1, builds
the whole membership from the seed (so it knows whom every message is for, including
clients on other shards) and writes `shard` into its results: its place in the
partition, a digest of the clients it ran and of the membership it used. `merge_shards`
refuses a set that is not one complete, consistent partition of one run (naming the
file and what differs, or the shards missing), then merges through `merge_results`
(ledger states, histograms and time series merge exactly) and adds which shard ran
where with which clock, and warnings about what may bend the latencies (clock skew
between machines, shards that did not start together).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from .schema import ResultsError, ThresholdEvaluator, merge_results, parse_iso_utc

PARTITION: Final = "mod"  # client k runs on shard (k mod N) + 1
START_SPREAD_WARN_S: Final = 1.0  # shards whose starts differ more than this get a warning
_MS_PER_US: Final = 1000


class ShardSetError(ValueError):
    """The shard files are not one complete, consistent partition of one run.

    `missing` lists the shard indexes (1-based) of which no file was given.
    """

    def __init__(self, message: str, missing: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


def owned_clients(index: int, count: int, clients: int) -> range:
    """The clients shard `index` (1-based) of `count` runs: k with k mod count = index - 1."""
    return range(index - 1, clients, count)


def _digest(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value)).hexdigest()


def membership_digest(membership: Sequence[Sequence[int]]) -> str:
    """SHA-256 of the rooms of every client, in client order (the same on every shard)."""
    return _digest([list(rooms) for rooms in membership])


def shard_record(
    *,
    index: int,
    count: int,
    owned: Sequence[int],
    membership: Sequence[Sequence[int]],
    start_at: str | None,
) -> dict[str, Any]:
    """results.json `shard` of shard `index`/`count`: its partition, the digest of the
    clients it ran (`owned`, ascending: what the engine actually ran, checked against the
    rule by `check_shard_set`) and of the membership, and the common start it was given."""
    return {
        "index": index,
        "count": count,
        "partition": PARTITION,
        "clients": len(owned),
        "clients_sha256": _digest(list(owned)),
        "membership_sha256": membership_digest(membership),
        "start_at": start_at,
    }


def _shard_of(part: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    shard = part.get("shard")
    if not isinstance(shard, Mapping):
        raise ShardSetError(
            f"{source}: not a shard's results (no `shard` key): merge the files written by "
            "`loadtool run --shard I/N`"
        )
    for key, kind in (
        ("index", int),
        ("count", int),
        ("clients", int),
        ("partition", str),
        ("clients_sha256", str),
        ("membership_sha256", str),
    ):
        value = shard.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ShardSetError(f"{source}: shard.{key}: expected {kind.__name__}, found {value!r}")
    return shard


def _agree(
    parts: Sequence[Mapping[str, Any]], sources: Sequence[str], key: str, value: Any
) -> None:
    first = value(parts[0])
    for part, source in zip(parts[1:], sources[1:], strict=True):
        if value(part) != first:
            raise ShardSetError(
                f"{source}: {key} is {value(part)!r} but {sources[0]} has {first!r}: "
                "these are not shards of one run (give every shard the same scenario, "
                "--seed, --run-id and --start-at)"
            )


def check_shard_set(parts: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> None:
    """Refuse anything but one complete partition of one run, each shard exactly once.

    Checks, naming the file: every part is a shard's results; run id, scenario (name,
    file digest, seed), dialect, client count, shard count, partition rule, membership
    digest and thresholds agree; each index 1..N appears once; each shard ran exactly the
    clients the rule gives it (so the shards are disjoint and cover every client).

    Raises:
        ShardSetError: what is wrong; `missing` names absent shards.
    """
    if not parts:
        raise ShardSetError("no shard files given")
    if len(parts) != len(sources):
        raise ValueError("one source name per part")
    shards = [_shard_of(part, source) for part, source in zip(parts, sources, strict=True)]
    _agree(parts, sources, "run_id", lambda p: p["run_id"])
    _agree(parts, sources, "scenario.name", lambda p: p["scenario"]["name"])
    _agree(parts, sources, "scenario.sha256", lambda p: p["scenario"]["sha256"])
    _agree(parts, sources, "scenario.seed", lambda p: p["scenario"]["seed"])
    _agree(parts, sources, "target.dialect", lambda p: p["target"]["dialect"])
    _agree(parts, sources, "ledger.clients", lambda p: p["ledger"]["clients"])
    _agree(parts, sources, "ledger.expect", lambda p: p["ledger"]["expect"])
    _agree(parts, sources, "shard.count", lambda p: p["shard"]["count"])
    _agree(parts, sources, "shard.partition", lambda p: p["shard"]["partition"])
    _agree(parts, sources, "shard.membership_sha256", lambda p: p["shard"]["membership_sha256"])
    _agree(parts, sources, "thresholds", lambda p: [t["expr"] for t in p["thresholds"]])
    count = int(shards[0]["count"])
    if shards[0]["partition"] != PARTITION:
        raise ShardSetError(
            f"{sources[0]}: shard.partition {shards[0]['partition']!r} is unknown to this "
            f"loadtool (it merges {PARTITION!r})"
        )
    clients = int(parts[0]["ledger"]["clients"])
    # Each index once, each shard running exactly its residue class mod N, all N present:
    # the shards are disjoint and cover every client.
    seen: dict[int, str] = {}
    for shard, source in zip(shards, sources, strict=True):
        index = int(shard["index"])
        if not 1 <= index <= count:
            raise ShardSetError(f"{source}: shard {index}/{count} is out of range")
        if index in seen:
            raise ShardSetError(
                f"shard {index}/{count} given twice: {seen[index]} and {source} "
                "(each shard must be merged exactly once)"
            )
        seen[index] = source
        owned = owned_clients(index, count, clients)
        if shard["clients"] != len(owned) or shard["clients_sha256"] != _digest(list(owned)):
            raise ShardSetError(
                f"{source}: shard {index}/{count} ran other clients than the partition gives "
                f"it (clients k with k mod {count} = {index - 1} of {clients}): it was not "
                "run with the same scenario and loadtool version as the others"
            )
    missing = [i for i in range(1, count + 1) if i not in seen]
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing)
        raise ShardSetError(
            f"missing shard{'s' if len(missing) > 1 else ''} {names}: got {len(seen)} of "
            f"{count} shard files; merge all of them (a shard's clients are expected "
            "recipients of every other shard's messages, so a partial merge is not exact)",
            missing=missing,
        )


def _host_line(clock: Mapping[str, Any]) -> str:
    host = clock.get("host") or "unknown host"
    sync = clock.get("sync")
    if not isinstance(sync, Mapping):
        return f"{host} (sync state unknown)"
    state = "synchronized" if sync.get("synchronized") else "NOT synchronized"
    max_ms = int(sync.get("max_error_us", 0)) / _MS_PER_US
    return f"{host} ({state}, kernel max error {max_ms:g} ms)"


def shard_warnings(parts: Sequence[Mapping[str, Any]], merged: Mapping[str, Any]) -> list[str]:
    """What may have bent the merged latencies: several machines' clocks, shards that did
    not start together, negative latencies (only skew makes those)."""
    warnings: list[str] = []
    clocks = [part["generator"]["clock"] for part in parts]
    hosts = {str(c.get("host")) for c in clocks if c.get("host")}
    if len(hosts) > 1 or any(not c.get("host") for c in clocks):
        by_host = {str(c.get("host") or "unknown host"): c for c in clocks}
        listed = "; ".join(_host_line(c) for _, c in sorted(by_host.items()))
        warnings.append(
            f"shards ran on {len(by_host)} machines: latencies between machines are measured "
            "with each machine's own wall clock, so their clock skew adds to (or subtracts "
            f"from) every such latency. Clocks: {listed}. Keep the machines on NTP and read "
            "latencies below the skew with care."
        )
    clamped = int(merged["latency_ms"]["clamped"])
    if clamped:
        warnings.append(
            f"latency_ms.clamped = {clamped}: some deliveries arrived before their intended "
            "send time on the receiver's clock, which only clock skew between machines does"
        )
    starts = [(parse_iso_utc(part["start"]), int(part["shard"]["index"])) for part in parts]
    first_ns, first_index = min(starts)
    for start_ns, index in sorted(starts):
        late = (start_ns - first_ns) / 1e9
        if late > START_SPREAD_WARN_S:
            warnings.append(
                f"shard {index} started {late:.1f} s after shard {first_index}: give every "
                "shard the same --start-at, far enough ahead for all to be ready"
            )
    start_ats = {part["shard"].get("start_at") for part in parts}
    if len(start_ats) > 1:
        shown = ", ".join(sorted(str(s) for s in start_ats))
        warnings.append(f"the shards were given different --start-at times ({shown})")
    return warnings


def merge_shards(
    parts: Sequence[Mapping[str, Any]],
    sources: Sequence[str],
    *,
    thresholds: ThresholdEvaluator | None = None,
) -> dict[str, Any]:
    """One results document from the shard results `parts` (read from `sources`).

    `check_shard_set` first; then `merge_results` (exact: loss and duplicates are those
    of one ledger that saw every shard), plus `shards` (each shard's file, host, clock,
    start and client count) and `warnings` (`shard_warnings`).

    Raises:
        ShardSetError: the parts are not one complete partition of one run.
        ResultsError: a part is malformed.
    """
    check_shard_set(parts, sources)
    order = sorted(range(len(parts)), key=lambda i: int(parts[i]["shard"]["index"]))
    ordered = [parts[i] for i in order]
    try:
        merged = merge_results(ordered, thresholds=thresholds)
    except ResultsError as exc:  # name the file, not its position
        where = exc.source
        if where.startswith("results[") and where.endswith("]"):
            where = sources[order[int(where[8:-1])]]
        raise ShardSetError(f"{where}: {exc.key}: {exc.problem}" if exc.key else where) from exc
    merged["shards"] = [
        {
            "index": int(part["shard"]["index"]),
            "count": int(part["shard"]["count"]),
            "file": sources[i],
            "clients": int(part["shard"]["clients"]),
            "start": part["start"],
            "start_at": part["shard"].get("start_at"),
            "clock": dict(part["generator"]["clock"]),
        }
        for i, part in zip(order, ordered, strict=True)
    ]
    merged["warnings"] = shard_warnings(ordered, merged)
    return merged
