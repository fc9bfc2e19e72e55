"""Every conformance case, numbered by the protocol section it checks."""

from __future__ import annotations

from ..model import Case
from . import (
    acks,
    frames,
    handshake,
    heartbeat,
    history,
    limits,
    reconnect,
    rooms,
    shutdown,
    websocket,
)


def all_cases() -> tuple[Case, ...]:
    """The whole suite, in case order."""
    cases = [*handshake.CASES]
    cases += [*heartbeat.CASES, *history.CASES, *limits.CASES, *reconnect.CASES, *shutdown.CASES]
    cases += [*frames.CASES, *rooms.CASES, *acks.CASES, *websocket.CASES]
    ids = [c.id for c in cases]
    duplicated = {i for i in ids if ids.count(i) > 1}
    if duplicated:
        raise RuntimeError(f"duplicate case ids: {sorted(duplicated)}")
    return tuple(sorted(cases, key=lambda c: c.sort_key))
