"""Generator honesty: is this process keeping up, or is it the bottleneck?

Event-loop lag (how late a timer fires) and CPU share are measured for the whole run. When
the generator saturates, latencies measure the generator, not the server, and the results
say so (`generator.saturated`) instead of blaming the server.
"""

from __future__ import annotations

import time
from typing import Final

import attrs
import trio

from ..results.histogram import LatencyHistogram

LAG_PROBE_S: Final = 0.1  # seconds between loop-lag probes
SATURATED_LAG_MS: Final = 50.0  # p99 loop lag above this: the loop cannot keep its schedule
SATURATED_CPU: Final = 0.9  # CPU share of one core above this: no headroom left


@attrs.frozen(kw_only=True)
class HealthReport:
    cpu_s: float
    wall_s: float
    loop_lag_ms_p99: float
    loop_lag_ms_max: float
    saturated: bool
    reasons: tuple[str, ...]

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


@attrs.define
class HealthMonitor:
    """Owns the lag histogram; `run` is its probe task (cancel it to stop)."""

    lag: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    _cpu0: float = attrs.field(factory=time.process_time)
    _wall0: float = attrs.field(factory=time.perf_counter)

    async def run(self) -> None:
        while True:
            start = trio.current_time()
            await trio.sleep(LAG_PROBE_S)
            late = trio.current_time() - start - LAG_PROBE_S
            self.lag.record_ns(max(1_000, int(late * 1e9)))

    def cpu_share_now(self) -> float:
        wall = time.perf_counter() - self._wall0
        return (time.process_time() - self._cpu0) / wall if wall > 0 else 0.0

    def report(self) -> HealthReport:
        cpu = time.process_time() - self._cpu0
        wall = time.perf_counter() - self._wall0
        p99 = self.lag.percentile_ms(99) if self.lag.count else 0.0
        reasons = []
        if p99 > SATURATED_LAG_MS:
            reasons.append(f"event-loop lag p99 {p99:.0f} ms > {SATURATED_LAG_MS:.0f} ms")
        if wall > 0 and cpu / wall > SATURATED_CPU:
            reasons.append(f"CPU {100 * cpu / wall:.0f}% of a core > {100 * SATURATED_CPU:.0f}%")
        return HealthReport(
            cpu_s=round(cpu, 3),
            wall_s=round(wall, 3),
            loop_lag_ms_p99=round(p99, 3),
            loop_lag_ms_max=round(self.lag.max_ms if self.lag.count else 0.0, 3),
            saturated=bool(reasons),
            reasons=tuple(reasons),
        )
