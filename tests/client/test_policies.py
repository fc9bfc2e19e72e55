"""Reconnect policies against recorded timelines (sans-IO, seeded randomness)."""

from __future__ import annotations

import random

import pytest

from loadtool.client.policies import (
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
    FullJitterBackoff,
    NoReconnect,
    PolicyName,
    SeedBackoff,
    make_backoff,
)


def _failing_dials(policy: SeedBackoff | ExponentialBackoff, n: int) -> list[float]:
    """Delays when every dial fails at once (the client calls on_dial, then next_delay)."""
    out = []
    for _ in range(n):
        policy.on_dial()
        delay = policy.next_delay()
        assert delay is not None
        out.append(delay)
    return out


def test_seed_policy_resets_on_every_dial_so_it_never_grows() -> None:
    # The article's quirk: `_attempt = 0` in `_connectInternal`, before the dial succeeds.
    delays = _failing_dials(SeedBackoff(rng=random.Random(7)), 50)
    assert all(0.5 <= d < 0.75 for d in delays)
    assert len(set(delays)) > 10  # jitter of 0-249 ms, whole milliseconds


def test_seed_policy_grows_when_scheduled_twice_without_a_dial() -> None:
    policy = SeedBackoff(rng=random.Random(1))
    policy.on_dial()
    steps = [policy.next_delay() for _ in range(9)]
    bases = [int(d * 1000) // 250 * 250 for d in steps if d is not None]
    # 0.5 s doubling, capped at attempt 7 (32 s), plus 0-249 ms of jitter
    assert [b - b % 500 for b in bases] == [500, 1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000]


def test_exponential_doubles_to_the_cap_and_resets_on_connect() -> None:
    policy = ExponentialBackoff(base=0.5, cap=4.0)
    assert _failing_dials(policy, 6) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    policy.on_connected()
    assert policy.next_delay() == 0.5


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    policy = FullJitterBackoff(base=0.5, cap=8.0, rng=random.Random(3))
    for attempt in range(10):
        delay = policy.next_delay()
        assert delay is not None
        assert 0.0 <= delay <= min(8.0, 0.5 * 2**attempt)


def test_decorrelated_jitter_follows_the_aws_recurrence() -> None:
    rng = random.Random(5)
    policy = DecorrelatedJitterBackoff(base=0.5, cap=10.0, rng=random.Random(5))
    sleep = 0.5
    for _ in range(20):
        sleep = min(10.0, rng.uniform(0.5, sleep * 3))
        assert policy.next_delay() == sleep
    policy.on_connected()
    assert policy.sleep == 0.5


def test_same_seed_same_timeline() -> None:
    a = make_backoff(PolicyName.FULL_JITTER, base=0.2, cap=5, rng=random.Random(11))
    b = make_backoff(PolicyName.FULL_JITTER, base=0.2, cap=5, rng=random.Random(11))
    assert [a.next_delay() for _ in range(8)] == [b.next_delay() for _ in range(8)]


@pytest.mark.parametrize("name", list(PolicyName))
def test_every_policy_name_builds(name: PolicyName) -> None:
    policy = make_backoff(name, base=0.1, cap=1.0, rng=random.Random(0))
    policy.on_dial()
    delay = policy.next_delay()
    if name is PolicyName.NONE:
        assert isinstance(policy, NoReconnect)
        assert delay is None
    else:
        assert delay is not None
        assert delay >= 0
