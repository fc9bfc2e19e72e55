"""Reconnect back-off policies, sans-IO: each answers "how long until the next dial?".

Randomness is injected (a seeded `Rng`: the client's own stream, or a `random.Random`), so
a run replays from its seed and tests check exact timelines. Definitions: the seed
article's `ChatSocket` for `seed`; the AWS Architecture Blog's "Exponential Backoff And
Jitter" (Marc Brooker, 2015) for the others.
"""

from __future__ import annotations

import enum
from typing import Final, Protocol

import attrs

from .rng import Rng

SEED_BASE_MS: Final = 500  # the article's 0.5 s first delay
SEED_MAX_ATTEMPT: Final = 7  # attempt.clamp(1, 7): 0.5 s doubling to 32 s
SEED_JITTER_MS: Final = 250  # Random().nextInt(250): 0-249 ms


class PolicyName(enum.StrEnum):
    SEED = "seed"
    EXPONENTIAL = "exponential"
    FULL_JITTER = "full-jitter"
    DECORRELATED_JITTER = "decorrelated-jitter"
    NONE = "none"


class Backoff(Protocol):
    def on_dial(self) -> None:
        """A dial is starting (the seed client resets its attempt counter here)."""

    def on_connected(self) -> None:
        """The connection opened and the server accepted it."""

    def next_delay(self) -> float | None:
        """Seconds to wait before the next dial, or None: do not reconnect."""


@attrs.define
class SeedBackoff:
    """The seed article's `_expBackoffMs` with its quirk kept: `_connectInternal` sets
    `_attempt = 0` on every dial, failed ones included, so after a dial the next delay is
    always the first step (0.5 s + 0-249 ms). It grows only when `_scheduleReconnect`
    runs twice without a dial in between (onError and onDone both firing)."""

    rng: Rng
    attempt: int = 0

    def on_dial(self) -> None:
        self.attempt = 0

    def on_connected(self) -> None:
        pass

    def next_delay(self) -> float | None:
        self.attempt += 1
        capped = min(max(self.attempt, 1), SEED_MAX_ATTEMPT)
        base_ms: int = SEED_BASE_MS * 2 ** (capped - 1)
        return (base_ms + self.rng.randrange(SEED_JITTER_MS)) / 1000.0


@attrs.define
class ExponentialBackoff:
    """base * 2**attempt, capped; no jitter (the thundering-herd baseline)."""

    base: float
    cap: float
    attempt: int = 0

    def on_dial(self) -> None:
        pass

    def on_connected(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float | None:
        delay: float = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return delay


@attrs.define
class FullJitterBackoff:
    """AWS "Full Jitter": sleep = random_between(0, min(cap, base * 2**attempt))."""

    base: float
    cap: float
    rng: Rng
    attempt: int = 0

    def on_dial(self) -> None:
        pass

    def on_connected(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float | None:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(0.0, ceiling)


@attrs.define
class DecorrelatedJitterBackoff:
    """AWS "Decorrelated Jitter": sleep = min(cap, random_between(base, sleep * 3))."""

    base: float
    cap: float
    rng: Rng
    sleep: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.sleep = self.base

    def on_dial(self) -> None:
        pass

    def on_connected(self) -> None:
        self.sleep = self.base

    def next_delay(self) -> float | None:
        self.sleep = min(self.cap, self.rng.uniform(self.base, self.sleep * 3))
        return self.sleep


@attrs.define
class NoReconnect:
    def on_dial(self) -> None:
        pass

    def on_connected(self) -> None:
        pass

    def next_delay(self) -> float | None:
        return None


def make_backoff(name: PolicyName, *, base: float, cap: float, rng: Rng) -> Backoff:
    """A fresh policy state for one client (`base`/`cap` in seconds; `seed` ignores them)."""
    if name is PolicyName.SEED:
        return SeedBackoff(rng=rng)
    if name is PolicyName.EXPONENTIAL:
        return ExponentialBackoff(base=base, cap=cap)
    if name is PolicyName.FULL_JITTER:
        return FullJitterBackoff(base=base, cap=cap, rng=rng)
    if name is PolicyName.DECORRELATED_JITTER:
        return DecorrelatedJitterBackoff(base=base, cap=cap, rng=rng)
    return NoReconnect()
