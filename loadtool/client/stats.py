"""What the simulated clients count besides deliveries (those belong to the ledger)."""

from __future__ import annotations

from collections import Counter

import attrs


@attrs.define
class ClientStats:
    """One owner per worker process, shared by its clients (single-threaded under trio)."""

    closes: Counter[int] = attrs.field(factory=Counter)  # close codes seen, 1006 = dropped
    refused: Counter[int] = attrs.field(factory=Counter)  # HTTP status of refused upgrades
    errors: Counter[str] = attrs.field(factory=Counter)  # `error` frames by code
    connect_failures: int = 0  # TCP/TLS failures and handshake drops
    unsent: int = 0  # sends dropped because the client was disconnected and had no outbox
    pings: int = 0
    dead_peers: int = 0
    duplicate_acks: int = 0
    history_pages: int = 0
    bad_frames: int = 0
    foreign_messages: int = 0  # chat messages not from this run (other traffic)
    last_error: str = ""

    @property
    def error_total(self) -> int:
        return sum(self.errors.values()) + sum(self.refused.values()) + self.connect_failures
