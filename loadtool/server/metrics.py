"""Server counters, one owner, rendered as Prometheus text for `/metrics`.

A plain mutable object owned by the running server (no module-level state); the
reference server is single-threaded under trio, so no locking.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import attrs

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


@attrs.frozen(kw_only=True)
class MetricsSnapshot:
    connections: int
    rooms: int
    connections_total: int
    messages_in: int
    deliveries: int
    duplicates: int
    dropped: int
    frames_in: dict[str, int]
    errors: dict[str, int]
    closes: dict[int, int]
    refused: dict[int, int]


@attrs.define
class Metrics:
    """Counters and gauges of one server process (names: docs/protocol.md §10)."""

    connections: int = 0
    rooms: int = 0
    connections_total: int = 0
    messages_in: int = 0
    deliveries: int = 0
    duplicates: int = 0
    dropped: int = 0
    frames_in: Counter[str] = attrs.field(factory=Counter)
    errors: Counter[str] = attrs.field(factory=Counter)
    closes: Counter[int] = attrs.field(factory=Counter)
    refused: Counter[int] = attrs.field(factory=Counter)
    redis_up: int | None = None  # cluster mode only: 1 while Redis answers, else 0
    redis_reconnects: int = 0  # cluster mode: times Redis answered again after failing

    def snapshot(self) -> MetricsSnapshot:
        return MetricsSnapshot(
            connections=self.connections,
            rooms=self.rooms,
            connections_total=self.connections_total,
            messages_in=self.messages_in,
            deliveries=self.deliveries,
            duplicates=self.duplicates,
            dropped=self.dropped,
            frames_in=dict(self.frames_in),
            errors=dict(self.errors),
            closes=dict(self.closes),
            refused=dict(self.refused),
        )

    def render_prometheus(self) -> str:
        """The Prometheus text exposition format, version 0.0.4."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: dict[str, int | float]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples.items():
                lines.append(f"{name}{labels} {value}")

        def labelled(label: str, counts: Counter[str] | Counter[int]) -> dict[str, int | float]:
            return {f'{{{label}="{key}"}}': value for key, value in sorted(counts.items())}

        metric(
            "loadtool_connections", "gauge", "Open WebSocket connections.", {"": self.connections}
        )
        metric("loadtool_rooms", "gauge", "Rooms with at least one member.", {"": self.rooms})
        metric(
            "loadtool_connections_total",
            "counter",
            "WebSocket connections accepted.",
            {"": self.connections_total},
        )
        metric(
            "loadtool_messages_in_total", "counter", "Chat messages stored.", {"": self.messages_in}
        )
        metric(
            "loadtool_deliveries_total",
            "counter",
            "Chat messages delivered to members.",
            {"": self.deliveries},
        )
        metric(
            "loadtool_duplicates_total",
            "counter",
            "Replayed message ids acked again without delivery.",
            {"": self.duplicates},
        )
        metric(
            "loadtool_dropped_total",
            "counter",
            "Frames dropped for slow consumers (policy drop).",
            {"": self.dropped},
        )
        metric(
            "loadtool_frames_in_total",
            "counter",
            "Frames received, by type.",
            labelled("type", self.frames_in),
        )
        metric(
            "loadtool_errors_total",
            "counter",
            "Error frames sent, by code.",
            labelled("code", self.errors),
        )
        metric(
            "loadtool_closes_total",
            "counter",
            "Connections closed, by close code.",
            labelled("code", self.closes),
        )
        metric(
            "loadtool_upgrades_refused_total",
            "counter",
            "WebSocket upgrades refused, by HTTP status.",
            labelled("status", self.refused),
        )
        if self.redis_up is not None:
            metric(
                "loadtool_redis_up",
                "gauge",
                "Cluster mode: 1 while Redis answers, 0 while it is unreachable.",
                {"": self.redis_up},
            )
            metric(
                "loadtool_redis_reconnects_total",
                "counter",
                "Cluster mode: times Redis answered again after being unreachable.",
                {"": self.redis_reconnects},
            )
        return "\n".join(lines) + "\n"
