"""Per-connection rate limiting with explicit clock readings (protocol §7.3, "Limits").

Token bucket: burst, refill, the retry-after value of a refusal; abuse window: refusals
counted per window, reset when a new window starts, `abusive` past the maximum.
"""

from __future__ import annotations

import pytest

from loadtool.server.config import Limits
from loadtool.server.ratelimit import RateLimiter

T0 = 500.0  # the limiter's creation time, seconds


def limiter(
    *, rate: float = 2.0, burst: int = 3, refusals: int = 4, window: float = 10.0
) -> RateLimiter:
    limits = Limits(
        rate_per_s=rate, rate_burst=burst, abuse_refusals=refusals, abuse_window_s=window
    )
    return RateLimiter.from_limits(limits, now=T0)


def test_from_limits_copies_the_limits() -> None:
    lim = limiter(rate=5.0, burst=7, refusals=9, window=3.0)
    assert (lim.rate, lim.burst, lim.abuse_refusals, lim.abuse_window_s) == (5.0, 7.0, 9, 3.0)
    assert lim.refuse_count == 0
    assert not lim.abusive


def test_default_limits_allow_a_burst_of_40() -> None:
    lim = RateLimiter.from_limits(Limits(), now=T0)
    assert [lim.take(T0) for _ in range(40)] == [None] * 40
    assert lim.take(T0) == pytest.approx(1 / 20)


def test_burst_then_refusal() -> None:
    lim = limiter(burst=3)
    assert [lim.take(T0) for _ in range(3)] == [None, None, None]
    assert lim.take(T0) == pytest.approx(0.5)  # one token at 2 tokens/s
    assert lim.refuse_count == 1


def test_retry_after_shrinks_as_the_bucket_refills() -> None:
    lim = limiter(rate=2.0, burst=1)
    assert lim.take(T0) is None
    assert lim.take(T0 + 0.1) == pytest.approx(0.4)  # 0.2 tokens in, 0.8 missing
    assert lim.take(T0 + 0.25) == pytest.approx(0.25)
    assert lim.take(T0 + 0.5) is None  # exactly one token refilled
    assert lim.take(T0 + 0.5) == pytest.approx(0.5)


def test_refill_is_capped_at_burst() -> None:
    lim = limiter(rate=2.0, burst=3)
    for _ in range(3):
        assert lim.take(T0) is None
    later = T0 + 3600.0
    assert [lim.take(later) for _ in range(3)] == [None, None, None]
    assert lim.take(later) == pytest.approx(0.5)


def test_partial_refill_accumulates() -> None:
    lim = limiter(rate=4.0, burst=2)
    assert lim.take(T0) is None
    assert lim.take(T0) is None
    assert lim.take(T0 + 0.125) == pytest.approx(0.125)  # half a token
    assert lim.take(T0 + 0.25) is None  # the second half arrived
    assert lim.take(T0 + 0.25) == pytest.approx(0.25)


def test_refusals_take_no_token() -> None:
    lim = limiter(rate=1.0, burst=1)
    assert lim.take(T0) is None
    for _ in range(3):
        assert lim.take(T0) == pytest.approx(1.0)
    assert lim.take(T0 + 1.0) is None


def test_a_clock_going_backwards_refills_nothing() -> None:
    lim = limiter(rate=1.0, burst=1)
    assert lim.take(T0) is None
    assert lim.take(T0 - 5.0) == pytest.approx(1.0)
    assert lim.take(T0 + 1.0) is None


def test_abusive_after_more_than_max_refusals_in_window() -> None:
    lim = limiter(rate=0.001, burst=1, refusals=4, window=10.0)
    assert lim.take(T0) is None
    for count in range(1, 5):
        assert lim.take(T0 + count) is not None
        assert lim.refuse_count == count
        assert not lim.abusive  # at most 4 refusals is tolerated
    assert lim.take(T0 + 9.0) is not None
    assert lim.refuse_count == 5
    assert lim.abusive


def test_abuse_window_resets_at_its_end() -> None:
    lim = limiter(rate=0.001, burst=1, refusals=4, window=10.0)
    assert lim.take(T0) is None
    for _ in range(4):
        assert lim.take(T0 + 1.0) is not None
    assert lim.refuse_count == 4
    assert lim.take(T0 + 10.0) is not None  # the window that started at T0 is over
    assert lim.refuse_count == 1
    assert not lim.abusive
    for _ in range(4):
        assert lim.take(T0 + 19.9) is not None  # still inside the window from T0 + 10
    assert lim.refuse_count == 5
    assert lim.abusive
    assert lim.take(T0 + 20.0) is not None
    assert lim.refuse_count == 1
    assert not lim.abusive


def test_allowed_frames_do_not_reset_the_count() -> None:
    lim = limiter(rate=1.0, burst=1, refusals=2, window=10.0)
    assert lim.take(T0) is None
    assert lim.take(T0) is not None
    assert lim.take(T0 + 1.0) is None
    assert lim.take(T0 + 1.0) is not None
    assert lim.take(T0 + 2.0) is None
    assert lim.take(T0 + 2.0) is not None
    assert lim.refuse_count == 3
    assert lim.abusive
