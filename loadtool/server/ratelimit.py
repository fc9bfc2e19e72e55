"""Per-connection rate limiting (docs/protocol.md §7.3): a token bucket plus an abuse window.

Pure and clock-injected: callers pass `now` (trio's clock in the server, plain numbers in
tests).
"""

from __future__ import annotations

import attrs

from .config import Limits


@attrs.define
class RateLimiter:
    """Refills `rate` tokens per second up to `burst`; each data frame takes one.

    `refuse_count` counts refusals in the current abuse window; `abusive` turns true when it
    exceeds the configured maximum, and the server then closes with 1008.
    """

    rate: float
    burst: float
    abuse_refusals: int
    abuse_window_s: float
    _tokens: float = attrs.field(init=False)
    _updated: float = attrs.field(init=False, default=0.0)
    _window_start: float = attrs.field(init=False, default=0.0)
    refuse_count: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._tokens = self.burst

    @classmethod
    def from_limits(cls, limits: Limits, now: float) -> RateLimiter:
        limiter = cls(
            rate=limits.rate_per_s,
            burst=float(limits.rate_burst),
            abuse_refusals=limits.abuse_refusals,
            abuse_window_s=limits.abuse_window_s,
        )
        limiter._updated = limiter._window_start = now
        return limiter

    def take(self, now: float) -> float | None:
        """Take a token. Returns None if allowed, else seconds until a token is available."""
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        if now - self._window_start >= self.abuse_window_s:
            self._window_start = now
            self.refuse_count = 0
        self.refuse_count += 1
        return (1.0 - self._tokens) / self.rate

    @property
    def abusive(self) -> bool:
        return self.refuse_count > self.abuse_refusals
