"""results.json (schema_version 1): build, validate, write, read and merge results files.

A results file is the whole outcome of a run: what ran against what, the delivery
counters, latency summaries and histograms, the per-second series, the thresholds, and
the ledger state that lets results of several processes or machines merge *exactly*
(docs/results.md documents every field). Building and merging are pure; `write_results`
and `read_results` do blocking file I/O (call them from a worker thread under trio).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import attrs
import orjson

from loadtool import __version__

from .ledger import HISTOGRAMS, LedgerState, LedgerStateError
from .timeseries import COUNTERS as SERIES_COUNTERS
from .timeseries import GAUGE_LOWS as SERIES_GAUGE_LOWS
from .timeseries import GAUGES as SERIES_GAUGES
from .timeseries import TimeSeries, merge_timeseries

SCHEMA_VERSION: Final = 1
TOOL_NAME: Final = "loadtool"
SUMMARY_STATS: Final = ("p50", "p90", "p95", "p99", "p999", "max", "mean")
LEDGER_TOTALS: Final = (
    "sent",
    "delivered",
    "expected_deliveries",
    "received_expected",
    "lost",
    "duplicates",
    "out_of_order",
    "leaked",
    "acks",
    "acks_duplicate",
    "connects",
    "reconnects",
)
# The counters a threshold can name (docs/scenarios.md); `results_metrics` provides them.
METRIC_COUNTERS: Final = (
    "sent",
    "delivered",
    "expected_deliveries",
    "lost",
    "duplicates",
    "out_of_order",
    "leaked",
    "errors",
    "acks",
    "connects",
    "reconnects",
)
_HISTOGRAM_SECTIONS: Final = {
    "latency": "latency_ms",
    "ack_latency": "ack_latency_ms",
    "reconnect": "reconnect_ms",
}
_NS_PER_S: Final = 1_000_000_000


class ResultsError(ValueError):
    """A results file (or dict) is unreadable or malformed.

    `source` is the file (or "results[i]" for dicts), `key` the dotted path of the bad
    field (None when the problem is the whole document).
    """

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class ReconnectInfo:
    """The clients' back-off between reconnect attempts (reports label reconnect times by it)."""

    policy: str  # scenario behaviour.reconnect.policy: "exponential", "full-jitter", ...
    base_s: float
    cap_s: float


@attrs.frozen(kw_only=True)
class ScenarioInfo:
    name: str
    file: str | None  # the scenario file as given on the command line; None when built in code
    sha256: str  # of the scenario file's bytes (or of its canonical text when built in code)
    seed: int
    reconnect: ReconnectInfo | None = None  # optional in results.json (added after version 1)


@attrs.frozen(kw_only=True)
class TargetInfo:
    urls: tuple[str, ...] = attrs.field(converter=_str_tuple)
    dialect: str  # "v1" | "seed"
    embedded: bool  # the embedded reference server was the target


@attrs.frozen(kw_only=True)
class ClockSync:
    """The kernel's view of wall-clock discipline (Linux adjtimex, read-only)."""

    synchronized: bool  # NTP (or PTP...) keeps the clock in sync: STA_UNSYNC is clear
    max_error_us: int  # the kernel's maximum error estimate, microseconds
    est_error_us: int  # its estimated error, microseconds


@attrs.frozen(kw_only=True)
class ClockInfo:
    """How a process read time. The optional fields describe the machine's wall clock,
    which is what shards on different machines compare (their skew adds to latency)."""

    source: str  # how run-clock times were read (loadtool.results.runclock.CLOCK_SOURCE)
    offset_ns: int  # time_ns() - monotonic_ns() of the process when the run clock was made
    host: str | None = None  # the machine's host name
    wall: str | None = None  # the wall clock's implementation, e.g. clock_gettime(CLOCK_REALTIME)
    resolution_ns: int | None = None  # that clock's resolution
    sync: ClockSync | None = None  # None: not readable on this system


@attrs.frozen(kw_only=True)
class GeneratorInfo:
    """How the load generator itself fared: saturation makes latencies suspect."""

    workers: int
    cpu_s: float  # CPU seconds of all workers (user + system)
    loop_lag_ms_p99: float  # p99 of the event-loop lag probe, ms
    saturated: bool  # the generator could not keep its schedule
    clock: ClockInfo


@attrs.frozen(kw_only=True)
class Fault:
    at_s: float  # seconds since the run start
    kind: str  # "drop" | "restart_server" | "command"
    detail: str


class ThresholdLike(Protocol):
    """What `build_results` needs of a threshold outcome (scenario.ThresholdResult fits)."""

    @property
    def expr(self) -> str: ...

    @property
    def value(self) -> float | None: ...  # None: the metric was not measured

    @property
    def ok(self) -> bool: ...


ThresholdEvaluator = Callable[[Mapping[str, Any]], Sequence[ThresholdLike]]


def iso_utc(ns: int) -> str:
    """Run-clock nanoseconds as ISO 8601 UTC with microseconds: 2026-11-29T12:00:00.123456Z."""
    seconds, rest = divmod(ns, _NS_PER_S)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=rest // 1000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso_utc(text: str) -> int:
    """Nanoseconds since the epoch (microsecond precision) of an ISO 8601 time with a zone.

    Raises:
        ValueError: not ISO 8601, or no time zone.
    """
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (write e.g. 2026-11-29T12:00:00Z)")
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (stamp - epoch) // dt.timedelta(microseconds=1) * 1000


def _scenario_dict(scenario: ScenarioInfo) -> dict[str, Any]:
    out = attrs.asdict(scenario)
    if scenario.reconnect is None:
        del out["reconnect"]  # optional key: absent rather than null
    return out


def _threshold_dict(item: ThresholdLike | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, Mapping):
        expr, value, ok = item["expr"], item["value"], item["ok"]
    else:
        expr, value, ok = item.expr, item.value, item.ok
    return {"expr": str(expr), "value": None if value is None else float(value), "ok": bool(ok)}


def _code_counts(counts: Mapping[Any, int]) -> dict[str, int]:
    def order(code: str) -> tuple[int, int | str]:
        return (0, int(code)) if code.isdigit() else (1, code)

    merged: dict[str, int] = {}
    for code, n in counts.items():
        merged[str(code)] = merged.get(str(code), 0) + int(n)
    return {code: merged[code] for code in sorted(merged, key=order)}


def _add_counts(parts: Sequence[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for code, n in part.items():
            total[code] = total.get(code, 0) + n
    return _code_counts(total)


def _generator_dict(info: GeneratorInfo) -> dict[str, Any]:
    return {
        "workers": info.workers,
        "cpu_s": float(info.cpu_s),
        "loop_lag_ms_p99": float(info.loop_lag_ms_p99),
        "saturated": info.saturated,
        "clock": _clock_dict(info.clock),
    }


def _clock_dict(clock: ClockInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"source": clock.source, "offset_ns": clock.offset_ns}
    if clock.host is not None:
        out["host"] = clock.host
    if clock.wall is not None:
        out["wall"] = clock.wall
    if clock.resolution_ns is not None:
        out["resolution_ns"] = clock.resolution_ns
    if clock.host is not None or clock.wall is not None:
        out["sync"] = attrs.asdict(clock.sync) if clock.sync is not None else None
    return out


def _assemble(
    *,
    tool: Mapping[str, str],
    run_id: str,
    scenario: Mapping[str, Any],
    target: Mapping[str, Any],
    start_ns: int,
    duration_s: float,
    ledger: LedgerState,
    errors_by_code: dict[str, int],
    closes: dict[str, int],
    thresholds: list[dict[str, Any]],
    generator: Mapping[str, Any],
    timeseries: list[dict[str, Any]],
    faults: list[dict[str, Any]],
    passed: bool,
) -> dict[str, Any]:
    summary = ledger.summary()
    counters = summary.counters()
    totals: dict[str, Any] = {name: counters[name] for name in LEDGER_TOTALS}
    totals["errors"] = sum(errors_by_code.values())
    totals["closes"] = closes
    totals["errors_by_code"] = errors_by_code
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": dict(tool),
        "run_id": run_id,
        "scenario": dict(scenario),
        "target": {
            "urls": list(target["urls"]),
            "dialect": target["dialect"],
            "embedded": target["embedded"],
        },
        "start": iso_utc(start_ns),
        "duration_s": duration_s,
        "totals": totals,
    }
    for name, section in _HISTOGRAM_SECTIONS.items():
        results[section] = ledger.histogram(name).summary()
    results["thresholds"] = thresholds
    results["generator"] = dict(generator)
    results["timeseries"] = timeseries
    results["histograms"] = {name: ledger.histogram(name).encode() for name in HISTOGRAMS}
    results["ledger"] = ledger.to_dict()
    results["faults"] = faults
    results["passed"] = passed
    return results


def build_results(
    *,
    run_id: str,
    scenario: ScenarioInfo,
    target: TargetInfo,
    start_ns: int,
    duration_s: float,
    ledger: LedgerState,
    generator: GeneratorInfo,
    timeseries: TimeSeries | None = None,
    errors_by_code: Mapping[str, int] | None = None,
    closes: Mapping[int | str, int] | None = None,
    thresholds: Sequence[ThresholdLike | Mapping[str, Any]] = (),
    faults: Sequence[Fault] = (),
    passed: bool | None = None,
    tool_version: str = __version__,
) -> dict[str, Any]:
    """The results.json document of one run (or one shard/worker of it).

    `start_ns` is the run-clock start (the time series' second 0); `ledger` is
    `Ledger.state(end_ns)`. `errors_by_code` counts every error by its code (error frame
    codes and loadtool's own, e.g. connect_failed); `totals.errors` is their sum.
    `passed` defaults to "every threshold ok".

    Raises:
        ValueError: the time series does not start at `start_ns`.
    """
    if timeseries is not None and timeseries.start_ns != start_ns:
        raise ValueError(
            f"time series starts at {timeseries.start_ns}, the results at {start_ns} (run clock)"
        )
    threshold_rows = [_threshold_dict(t) for t in thresholds]
    return _assemble(
        tool={"name": TOOL_NAME, "version": tool_version},
        run_id=run_id,
        scenario=_scenario_dict(scenario),
        target={"urls": list(target.urls), "dialect": target.dialect, "embedded": target.embedded},
        start_ns=start_ns,
        duration_s=float(duration_s),
        ledger=ledger,
        errors_by_code=_code_counts(errors_by_code or {}),
        closes=_code_counts(closes or {}),
        thresholds=threshold_rows,
        generator=_generator_dict(generator),
        timeseries=timeseries.export() if timeseries is not None else [],
        faults=[{"at_s": float(f.at_s), "kind": f.kind, "detail": f.detail} for f in faults],
        passed=all(t["ok"] for t in threshold_rows) if passed is None else passed,
    )


# --- validation -------------------------------------------------------------------------
# A spec is a type name ("int", "num", "str", "bool", "iso", "object", "str?", "num?"), a dict of
# required keys (unknown keys are allowed: readers of version 1 ignore what they do not
# know), a one-element list (a list of that), or {"*": spec} (an object of any keys).
# A key ending in "?" is optional (added after version 1: older files lack it).

_SUMMARY_SPEC: Final[dict[str, Any]] = {"count": "int", "clamped": "int"} | {
    stat: "num" for stat in SUMMARY_STATS
}
_ROW_SPEC: Final[dict[str, Any]] = (
    {"t": "int"}
    | {name: "int" for name in (*SERIES_COUNTERS, *SERIES_GAUGES)}
    | {f"{name}?": "int" for name in SERIES_GAUGE_LOWS}
    | {"latency": {"p50": "num", "p90": "num", "p99": "num", "max": "num"}, "hist": "str"}
)
_SPEC: Final[dict[str, Any]] = {
    "schema_version": "int",
    "tool": {"name": "str", "version": "str"},
    "run_id": "str",
    "scenario": {
        "name": "str",
        "file": "str?",
        "sha256": "str",
        "seed": "int",
        "reconnect?": {"policy": "str", "base_s": "num", "cap_s": "num"},
    },
    "target": {"urls": ["str"], "dialect": "str", "embedded": "bool"},
    "start": "iso",
    "duration_s": "num",
    "totals": {name: "int" for name in (*LEDGER_TOTALS, "errors")}
    | {"closes": {"*": "int"}, "errors_by_code": {"*": "int"}},
    "latency_ms": _SUMMARY_SPEC,
    "ack_latency_ms": _SUMMARY_SPEC,
    "reconnect_ms": _SUMMARY_SPEC,
    "thresholds": [{"expr": "str", "value": "num?", "ok": "bool"}],
    "generator": {
        "workers": "int",
        "cpu_s": "num",
        "loop_lag_ms_p99": "num",
        "saturated": "bool",
        "clock": {"source": "str", "offset_ns": "int"},
    },
    "timeseries": [_ROW_SPEC],
    "histograms": {name: "str" for name in HISTOGRAMS},
    "ledger": "object",
    "faults": [{"at_s": "num", "kind": "str", "detail": "str"}],
    "passed": "bool",
}
_TYPE_NAMES: Final = {
    "int": "an integer",
    "num": "a number",
    "str": "a string",
    "str?": "a string or null",
    "num?": "a number or null",
    "bool": "true or false",
    "iso": "an ISO 8601 UTC time",
    "object": "an object",
}


def _type_ok(value: object, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "num":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "num?":
        return value is None or _type_ok(value, "num")
    if kind == "str?":
        return value is None or isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "iso":
        if not isinstance(value, str):
            return False
        try:
            parse_iso_utc(value)
        except ValueError:
            return False
        return True
    raise AssertionError(kind)


def _found(value: object) -> str:
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 60 else text


def _check(value: object, spec: Any, key: str, source: str) -> None:
    if isinstance(spec, str):
        if not _type_ok(value, spec):
            raise ResultsError(source, key, f"expected {_TYPE_NAMES[spec]}, found {_found(value)}")
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise ResultsError(source, key, f"expected a list, found {_found(value)}")
        for i, item in enumerate(value):
            _check(item, spec[0], f"{key}[{i}]", source)
    elif "*" in spec:
        if not isinstance(value, Mapping):
            raise ResultsError(source, key, f"expected an object, found {_found(value)}")
        for name, item in value.items():
            _check(item, spec["*"], f"{key}.{name}", source)
    else:
        if not isinstance(value, Mapping):
            raise ResultsError(source, key or None, f"expected an object, found {_found(value)}")
        for spec_name, sub in spec.items():
            name = spec_name.removesuffix("?")
            path = f"{key}.{name}" if key else name
            if name not in value:
                if spec_name.endswith("?"):
                    continue
                raise ResultsError(source, path, "missing key")
            _check(value[name], sub, path, source)


def validate_results(results: object, source: str = "results") -> LedgerState:
    """Check `results` against schema version 1; returns its decoded ledger state.

    Raises:
        ResultsError: naming `source` and the dotted key that is missing or wrong.
    """
    if not isinstance(results, Mapping):
        raise ResultsError(source, None, f"expected a JSON object, found {_found(results)}")
    if "schema_version" not in results:
        raise ResultsError(source, "schema_version", "missing key (is this a results file?)")
    version = results["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ResultsError(
            source,
            "schema_version",
            f"unsupported version {_found(version)} (this loadtool reads {SCHEMA_VERSION})",
        )
    _check(results, _SPEC, "", source)
    try:
        return LedgerState.from_dict(results["ledger"])
    except LedgerStateError as exc:
        raise ResultsError(source, f"ledger.{exc.key}", exc.problem) from exc


def write_results(path: str | os.PathLike[str], results: Mapping[str, Any]) -> None:
    """Validate `results` and write it as indented JSON, atomically (temp file + rename).

    Blocking file I/O.

    Raises:
        ResultsError: `results` does not follow the schema (nothing is written).
        OSError: the file cannot be written.
    """
    target = Path(path)
    validate_results(results, str(target))
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n"
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, target)


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The results document in `path`, validated (schema_version 1). Blocking file I/O.

    Raises:
        ResultsError: the file cannot be read, is not JSON, or a key is missing or wrong;
            the message names the file and the dotted key.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ResultsError(source, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        results = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ResultsError(source, None, f"not valid JSON: {exc}") from exc
    validate_results(results, source)
    if not isinstance(results, dict):  # validate_results checked it is an object
        raise ResultsError(source, None, "expected a JSON object")
    return results


def _merge_generators(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    sources = {part["clock"]["source"] for part in parts}
    reasons = list(
        dict.fromkeys(str(r) for part in parts for r in part.get("saturation_reasons", ()))
    )
    merged = {
        "workers": sum(int(part["workers"]) for part in parts),
        "cpu_s": round(sum(float(part["cpu_s"]) for part in parts), 6),
        "loop_lag_ms_p99": max(float(part["loop_lag_ms_p99"]) for part in parts),
        "saturated": any(bool(part["saturated"]) for part in parts),
        "clock": {
            "source": sources.pop() if len(sources) == 1 else "mixed",
            "offset_ns": int(parts[0]["clock"]["offset_ns"]),
        },
    }
    if reasons:  # why any part saturated: the report shows it next to the warning
        merged["saturation_reasons"] = reasons
    return merged


def _same(
    parts: Sequence[Mapping[str, Any]], key: str, value: Callable[[Mapping[str, Any]], Any]
) -> Any:
    """The value every part agrees on (they must be shards of one run).

    Raises:
        ResultsError: a part differs from the first one.
    """
    first = value(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if value(part) != first:
            raise ResultsError(
                f"results[{i}]",
                key,
                f"{_found(value(part))} differs from results[0]'s {_found(first)}",
            )
    return first


def merge_results(
    parts: Sequence[Mapping[str, Any]], *, thresholds: ThresholdEvaluator | None = None
) -> dict[str, Any]:
    """One results document for a run whose clients were split across `parts`.

    Exact: the ledger states merge (so lost, expected and the other counters are those of
    one ledger that saw everything), histograms merge, counters by code add, the time
    series merge on the run clock. The parts must come from the same run (run_id,
    scenario, dialect). `thresholds`, when given, is called with the merged document
    (without thresholds) and its outcomes decide `passed`; without it the merged file has
    no thresholds and passes when every part passed.

    Raises:
        ResultsError: a part is malformed, or the parts are of different runs.
    """
    if not parts:
        raise ValueError("no results to merge")
    states = [validate_results(part, f"results[{i}]") for i, part in enumerate(parts)]
    run_id = _same(parts, "run_id", lambda p: p["run_id"])
    scenario = _same(parts, "scenario", lambda p: p["scenario"])
    dialect = _same(parts, "target.dialect", lambda p: p["target"]["dialect"])
    _same(parts, "ledger.expect", lambda p: p["ledger"]["expect"])
    _same(parts, "ledger.clients", lambda p: p["ledger"]["clients"])
    urls = list(dict.fromkeys(url for part in parts for url in part["target"]["urls"]))
    starts = [parse_iso_utc(part["start"]) for part in parts]
    start_ns = min(starts)
    end_ns = max(
        s + round(float(p["duration_s"]) * _NS_PER_S) for s, p in zip(starts, parts, strict=True)
    )
    _, series = merge_timeseries([(s, p["timeseries"]) for s, p in zip(starts, parts, strict=True)])
    faults = sorted(
        (
            {
                "at_s": round(float(f["at_s"]) + (s - start_ns) / _NS_PER_S, 6),
                "kind": f["kind"],
                "detail": f["detail"],
            }
            for s, part in zip(starts, parts, strict=True)
            for f in part["faults"]
        ),
        key=lambda f: (f["at_s"], f["kind"], f["detail"]),
    )
    merged = _assemble(
        tool=parts[0]["tool"],
        run_id=run_id,
        scenario=scenario,
        target={
            "urls": urls,
            "dialect": dialect,
            "embedded": any(p["target"]["embedded"] for p in parts),
        },
        start_ns=start_ns,
        duration_s=round((end_ns - start_ns) / _NS_PER_S, 6),
        ledger=LedgerState.merge(states),
        errors_by_code=_add_counts([p["totals"]["errors_by_code"] for p in parts]),
        closes=_add_counts([p["totals"]["closes"] for p in parts]),
        thresholds=[],
        generator=_merge_generators([p["generator"] for p in parts]),
        timeseries=series,
        faults=faults,
        passed=all(p["passed"] for p in parts),
    )
    if thresholds is not None:
        rows = [_threshold_dict(t) for t in thresholds(merged)]
        merged["thresholds"] = rows
        merged["passed"] = all(t["ok"] for t in rows)
    return merged


def results_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """The threshold metrics of a results document (names as in docs/scenarios.md).

    latency.*, ack_latency.*, reconnect.* in ms, left out when their histogram is empty
    (nothing was measured); the counters; and the ratios
    lost.rate = lost / expected_deliveries, duplicates.rate = duplicates / delivered,
    errors.rate = errors / (sent + connects), delivery.rate = delivered /
    expected_deliveries (0.0 when the denominator is 0).
    """
    metrics: dict[str, float] = {}
    for name, section in _HISTOGRAM_SECTIONS.items():
        if results[section]["count"] == 0:
            continue  # not measured: a threshold on it cannot pass (docs/scenarios.md)
        for stat in SUMMARY_STATS:
            metrics[f"{name}.{stat}"] = float(results[section][stat])
    totals = results["totals"]
    for name in METRIC_COUNTERS:
        metrics[name] = float(totals[name])

    def ratio(num: float, den: float) -> float:
        return num / den if den else 0.0

    metrics["lost.rate"] = ratio(totals["lost"], totals["expected_deliveries"])
    metrics["duplicates.rate"] = ratio(totals["duplicates"], totals["delivered"])
    metrics["errors.rate"] = ratio(totals["errors"], totals["sent"] + totals["connects"])
    metrics["delivery.rate"] = ratio(totals["delivered"], totals["expected_deliveries"])
    return metrics
