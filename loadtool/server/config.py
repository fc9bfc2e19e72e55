"""The reference server's configuration: one frozen value, every limit with its default.

Defaults are the ones docs/protocol.md §7 documents; `loadtool serve --help` shows them
too. A config is built once by the CLI (or a test) and never changes while serving.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import attrs

DEFAULT_PORT: Final = 8080
MIN_SECRET_CHARS: Final = 8


class Fault(enum.StrEnum):
    """Deliberate protocol violations, for proving that the conformance gate has teeth.

    Test-only: `loadtool serve --inject-fault NAME` is hidden from --help.
    """

    DROP_DELIVERY = "drop-delivery"  # one member of each room misses each message
    DUPLICATE_DELIVERY = "duplicate-delivery"  # every member gets every message twice
    SKIP_SEQ = "skip-seq"  # seqs go up by 2
    BROADCAST_PINGS = "broadcast-pings"  # app pings are relayed to the rooms, as the seed does
    IGNORE_SIZE_LIMIT = "ignore-size-limit"  # no 1009 close and no too_long error
    # A reserved opcode is answered with Close 1005, a code RFC 6455 §7.4.1 forbids on the
    # wire (a raw-frame bug for `loadtool fuzz --layer websocket` to find).
    BAD_CLOSE_CODE = "bad-close-code"


def _faults(values: Iterable[str]) -> frozenset[Fault]:
    return frozenset(Fault(v) for v in values)


class SlowConsumerPolicy(enum.StrEnum):
    """What happens when a connection's outbound queue is full (docs/protocol.md §7.6)."""

    CLOSE = "close"  # close the connection with 1013; the client re-syncs on reconnect
    DROP = "drop"  # drop the frame for that recipient; it sees a seq gap and re-syncs


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _positive(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be greater than 0, got {value!r}")


def _port(_inst: Any, _attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"port must be 0-65535, got {value}")


_NODE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _node_id(_inst: Any, _attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not _NODE_ID.fullmatch(value):
        raise ValueError(f"node id must be 1-64 characters from [A-Za-z0-9_.:-], got {value!r}")


def _redis_url(_inst: Any, _attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            f"--redis wants a URL like redis://HOST:PORT/DB (or rediss://, unix://), got {value!r}"
        )


def _secret(_inst: Any, _attribute: attrs.Attribute[Any], value: str) -> None:
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"secret must be at least {MIN_SECRET_CHARS} characters long")


@attrs.frozen(kw_only=True)
class Limits:
    """Per-connection and per-server limits (docs/protocol.md §7)."""

    max_message_bytes: int = attrs.field(default=64 * 1024, validator=_positive)  # close 1009
    max_text_chars: int = attrs.field(default=4096, validator=_positive)  # error too_long
    rate_per_s: float = attrs.field(default=20.0, converter=float, validator=_positive)  # /s
    rate_burst: int = attrs.field(default=40, validator=_positive)  # bucket size, frames
    abuse_refusals: int = attrs.field(default=100, validator=_positive)  # per window -> 1008
    abuse_window_s: float = attrs.field(default=10.0, validator=_positive)
    max_rooms_per_connection: int = attrs.field(default=100, validator=_positive)
    max_connections_per_user: int = attrs.field(default=10, validator=_positive)  # HTTP 429
    max_connections: int = attrs.field(default=100_000, validator=_positive)  # HTTP 503
    outbound_queue_bytes: int = attrs.field(default=1024 * 1024, validator=_positive)
    slow_consumer: SlowConsumerPolicy = attrs.field(
        default=SlowConsumerPolicy.CLOSE, converter=SlowConsumerPolicy
    )
    history_page_max: int = attrs.field(default=100, validator=_positive)  # messages/page
    resync_max: int = attrs.field(default=500, validator=_positive)  # messages on join since
    history_cache: int = attrs.field(default=1000, validator=_positive)  # per room, in memory
    dedupe_window_s: float = attrs.field(default=600.0, validator=_positive)
    dedupe_max_entries: int = attrs.field(default=500_000, validator=_positive)

    def advertised(self) -> dict[str, float]:
        """The limits a client can act on, sent in `welcome`."""
        return {
            "maxMessageBytes": self.max_message_bytes,
            "maxTextChars": self.max_text_chars,
            "ratePerSecond": int(rate) if (rate := float(self.rate_per_s)).is_integer() else rate,
            "rateBurst": self.rate_burst,
            "maxRoomsPerConnection": self.max_rooms_per_connection,
            "historyPageMax": self.history_page_max,
            "resyncMax": self.resync_max,
            "dedupeWindowSeconds": int(self.dedupe_window_s),
        }


@attrs.frozen(kw_only=True)
class ServerConfig:
    """Everything `loadtool serve` needs to run."""

    secret: str = attrs.field(validator=_secret, repr=False)
    host: str = "127.0.0.1"
    port: int = attrs.field(default=DEFAULT_PORT, validator=_port)
    allowed_origins: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)  # () = any
    require_origin: bool = False  # refuse upgrades without an Origin header (browsers only)
    limits: Limits = attrs.field(factory=Limits)
    heartbeat_interval_s: float = attrs.field(default=20.0, validator=_positive)
    idle_timeout_s: float = attrs.field(default=60.0, validator=_positive)
    handshake_timeout_s: float = attrs.field(default=10.0, validator=_positive)
    close_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    db_path: Path | None = None  # None: history in memory only
    certfile: Path | None = None
    keyfile: Path | None = None
    faults: frozenset[Fault] = attrs.field(factory=frozenset, converter=_faults)  # tests only
    # One demux task reads every plain-TCP connection (Linux); False: one reader task per
    # connection, the plain path (tests compare the two; docs/performance.md).
    read_demux: bool = True
    # Cluster mode (docs/scaling.md): nodes sharing this Redis share rooms, seq and dedupe.
    redis_url: str | None = attrs.field(default=None, validator=_redis_url)
    node_id: str | None = attrs.field(default=None, validator=_node_id)  # None: generated

    def __attrs_post_init__(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("TLS needs both a certificate and a key (--cert and --key)")
        if self.redis_url is not None and self.db_path is not None:
            raise ValueError(
                "--redis and --db exclude each other: in cluster mode Redis keeps the history"
            )
        if self.node_id is not None and self.redis_url is None:
            raise ValueError("--node-id names a node of a cluster: give --redis as well")
        if self.idle_timeout_s <= self.heartbeat_interval_s:
            raise ValueError(
                "idle timeout must be longer than the heartbeat interval, got "
                f"{self.idle_timeout_s}s <= {self.heartbeat_interval_s}s"
            )
