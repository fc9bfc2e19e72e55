"""`/metrics` rendering in Prometheus text format 0.0.4 and `Metrics.snapshot()` (protocol §10).

HELP/TYPE lines for every metric the decisions list, labelled counters, values after
increments; a snapshot is a copy that later increments do not change.
"""

from __future__ import annotations

from typing import Final

from loadtool.server.metrics import CONTENT_TYPE, Metrics

KINDS: Final = {
    "loadtool_connections": "gauge",
    "loadtool_rooms": "gauge",
    "loadtool_connections_total": "counter",
    "loadtool_messages_in_total": "counter",
    "loadtool_deliveries_total": "counter",
    "loadtool_duplicates_total": "counter",
    "loadtool_dropped_total": "counter",
    "loadtool_frames_in_total": "counter",
    "loadtool_errors_total": "counter",
    "loadtool_closes_total": "counter",
    "loadtool_upgrades_refused_total": "counter",
}


def samples(text: str) -> dict[str, str]:
    """Sample lines as {name+labels: value}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            assert key not in out
            out[key] = value
    return out


def test_content_type() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_help_and_type_lines_for_every_metric() -> None:
    text = Metrics().render_prometheus()
    assert text.endswith("\n")
    lines = text.splitlines()
    for name, kind in KINDS.items():
        help_index = next(i for i, line in enumerate(lines) if line.startswith(f"# HELP {name} "))
        assert len(lines[help_index]) > len(f"# HELP {name} ")  # non-empty help text
        assert lines[help_index + 1] == f"# TYPE {name} {kind}"
    declared = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    assert declared == list(KINDS)


def test_fresh_metrics_render_zeros_and_no_labelled_samples() -> None:
    assert samples(Metrics().render_prometheus()) == {
        "loadtool_connections": "0",
        "loadtool_rooms": "0",
        "loadtool_connections_total": "0",
        "loadtool_messages_in_total": "0",
        "loadtool_deliveries_total": "0",
        "loadtool_duplicates_total": "0",
        "loadtool_dropped_total": "0",
    }


def test_values_after_increments() -> None:
    m = Metrics()
    m.connections += 3
    m.connections -= 1
    m.rooms = 4
    m.connections_total += 5
    m.messages_in += 6
    m.deliveries += 70
    m.duplicates += 8
    m.dropped += 9
    m.frames_in["message"] += 6
    m.frames_in["join"] += 2
    m.errors["not_member"] += 1
    m.errors["forbidden"] += 2
    m.errors["not_member"] += 1
    m.closes[1000] += 1
    m.closes[4000] += 3
    m.refused[401] += 2
    m.refused[429] += 1
    assert samples(m.render_prometheus()) == {
        "loadtool_connections": "2",
        "loadtool_rooms": "4",
        "loadtool_connections_total": "5",
        "loadtool_messages_in_total": "6",
        "loadtool_deliveries_total": "70",
        "loadtool_duplicates_total": "8",
        "loadtool_dropped_total": "9",
        'loadtool_frames_in_total{type="join"}': "2",
        'loadtool_frames_in_total{type="message"}': "6",
        'loadtool_errors_total{code="forbidden"}': "2",
        'loadtool_errors_total{code="not_member"}': "2",
        'loadtool_closes_total{code="1000"}': "1",
        'loadtool_closes_total{code="4000"}': "3",
        'loadtool_upgrades_refused_total{status="401"}': "2",
        'loadtool_upgrades_refused_total{status="429"}': "1",
    }


def test_labelled_samples_follow_their_type_line_sorted() -> None:
    m = Metrics()
    m.errors["too_long"] += 1
    m.errors["bad_json"] += 4
    lines = m.render_prometheus().splitlines()
    start = lines.index("# TYPE loadtool_errors_total counter")
    assert lines[start + 1 : start + 3] == [
        'loadtool_errors_total{code="bad_json"} 4',
        'loadtool_errors_total{code="too_long"} 1',
    ]
    assert lines[start + 3].startswith("# HELP loadtool_closes_total ")


def test_snapshot_is_a_copy() -> None:
    m = Metrics()
    m.deliveries = 2
    m.frames_in["ping"] += 1
    m.errors["forbidden"] += 1
    m.closes[1001] += 1
    m.refused[503] += 1
    snap = m.snapshot()
    m.deliveries += 10
    m.rooms += 1
    m.frames_in["ping"] += 1
    m.frames_in["join"] += 1
    m.errors["forbidden"] += 1
    m.closes[1001] += 1
    m.refused[503] += 1
    assert snap.deliveries == 2
    assert snap.rooms == 0
    assert snap.frames_in == {"ping": 1}
    assert snap.errors == {"forbidden": 1}
    assert snap.closes == {1001: 1}
    assert snap.refused == {503: 1}
    snap.frames_in["ping"] = 99  # and changing the copy leaves the metrics alone
    assert m.frames_in["ping"] == 2
    assert type(snap.frames_in) is dict


def test_snapshot_fields_match_metrics() -> None:
    m = Metrics(
        connections=1,
        rooms=2,
        connections_total=3,
        messages_in=4,
        deliveries=5,
        duplicates=6,
        dropped=7,
    )
    m.closes[1013] += 2
    snap = m.snapshot()
    assert (
        snap.connections,
        snap.rooms,
        snap.connections_total,
        snap.messages_in,
        snap.deliveries,
        snap.duplicates,
        snap.dropped,
    ) == (1, 2, 3, 4, 5, 6, 7)
    assert snap.closes == {1013: 2}
    assert snap.frames_in == snap.errors == snap.refused == {}
