"""The swarm: run one scenario from start to results.

Composes the pure parts (scenario model, ledger, time series) with the I/O ones (simulated
clients, the embedded server). Structure, as trio teaches it: one nursery owns every client
task; the run's phases are deadlines on trio's clock; connects are paced by a token bucket;
every client closes under a bounded, shielded scope at the end. Nothing here sleeps to wait
for an event except the schedule itself (phases, faults, progress ticks).
"""

from __future__ import annotations

import random
import secrets
from pathlib import Path
from typing import Any, Final

import attrs
import trio

from .. import protocol as p
from ..client.pacer import Pacer
from ..client.policies import PolicyName, make_backoff
from ..client.rng import ClientRandom
from ..client.simclient import ClientPlan, Dialect, SimClient
from ..client.stats import ClientStats
from ..client.transport import Closed, Endpoint, Rejected, WsClient
from ..netio.demux import Demux
from ..results.ledger import Expect, Ledger
from ..results.recorder import Recorder
from ..results.runclock import RunClock
from ..results.schema import Fault as FaultRecord
from ..results.schema import (
    GeneratorInfo,
    ReconnectInfo,
    ScenarioInfo,
    TargetInfo,
    build_results,
    iso_utc,
    results_metrics,
)
from ..results.shards import shard_record
from ..results.timeseries import TimeSeries
from ..scenario import CommandFault, DropFault, RestartServerFault, Scenario
from ..scenario.thresholds import evaluate
from .embedded import EmbeddedOptions, EmbeddedServer
from .health import HealthMonitor
from .progress import Progress, ProgressSample

ROOM_PREFIX: Final = "lt-"
CONTROL_TICK_S: Final = 0.05  # seconds between population-control steps
DRAIN_CHECK_S: Final = 0.25  # seconds between "is anything still missing?" checks
LEAVE_TIMEOUT_S: Final = 5.0
# A member leaving mid-run (ramp-down, end of an arrival's lifetime) is owed the messages
# intended until this long before it left; later ones may still be in flight. Seconds.
DEPARTURE_GRACE_S: Final = 1.0  # seconds for every client to close at the end
PREFLIGHT_TIMEOUT_S: Final = 10.0
COMMAND_TIMEOUT_S: Final = 60.0  # a `command` fault that runs longer is killed
TOKEN_GRACE_S: Final = 3600.0  # tokens outlive the run by this much


class TargetUnreachable(Exception):
    """No connection to the target could be made (exit code 3)."""


@attrs.frozen
class Shard:
    """This process runs clients `index` (1-based) of `count`: client k if k % count ==
    index - 1. Every shard builds the same membership from the same seed."""

    index: int = attrs.field()
    count: int = attrs.field()

    @count.validator
    def _check(self, _attr: object, count: int) -> None:
        if not 1 <= self.index <= count:
            raise ValueError(f"shard {self.index}/{count}: use I/N with 1 <= I <= N")

    def owns(self, client: int) -> bool:
        return client % self.count == self.index - 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """From "I/N". Raises ValueError with the expected form."""
        index, sep, count = text.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError(f"{text!r} is not a shard: write I/N, e.g. 1/4")
        return cls(int(index), int(count))


@attrs.frozen(kw_only=True)
class RunSettings:
    scenario: Scenario
    out_dir: Path
    run_id: str = attrs.field(factory=lambda: secrets.token_hex(4))
    progress: Progress | None = None
    shard: Shard | None = None
    start_at_ns: int | None = None  # run clock (= wall clock) time to start the load at


class _SendTimes:
    """One client's open-loop intended send times: the rate from the phase, a per-client
    phase offset. A slotted object, not a closure: one of these per client."""

    __slots__ = ("_clock", "_offset", "_scenario", "_start_ns")

    def __init__(self, scenario: Scenario, clock: RunClock, start_ns: int, offset: float) -> None:
        self._scenario = scenario
        self._clock = clock
        self._start_ns = start_ns
        self._offset = offset

    def __call__(self, prev_ns: int | None) -> int | None:
        scenario, start_ns = self._scenario, self._start_ns
        end_s = scenario.total_duration_s
        t = ((self._clock.now_ns() if prev_ns is None else prev_ns) - start_ns) / 1e9
        first = prev_ns is None
        while t < end_s:
            window = scenario.phase_at(t)
            if window is None:
                return None
            rate = window.send_rate
            if rate <= 0:
                t, first = window.end_s, True
                continue
            t_next = t + (self._offset if first else 1.0) / rate
            if t_next >= end_s:
                return None
            return start_ns + int(t_next * 1e9)
        return None


class _Swarm:
    """State of one run: clients, their plans, the server, the recorders."""

    def __init__(self, settings: RunSettings, clock: RunClock) -> None:
        scenario = settings.scenario
        self.settings = settings
        self.scenario = scenario
        self.clock = clock
        self.rng = random.Random(scenario.seed)
        population = scenario.population
        self.capacity = (
            population.clients if population.clients is not None else population.capacity
        )
        self.membership = scenario.membership()
        dialect = Dialect(scenario.target.dialect.value)
        self.dialect = dialect
        expect = (
            Expect.MEMBERS
            if dialect is Dialect.V1 and scenario.behaviour.resync
            else Expect.CONNECTED
        )
        self.ledger = Ledger(self.capacity, self.membership, expect)
        self.start_ns = clock.now_ns()
        self.recorder = Recorder(ledger=self.ledger, series=TimeSeries(self.start_ns))
        self.stats = ClientStats()
        self.health = HealthMonitor()
        # One reader for every plain-TCP client (docs/performance.md); None: per-client tasks
        self.demux: Demux | None = Demux() if Demux.available() else None
        # One timer for every client's sends and heartbeats (docs/performance.md)
        self.pacer = Pacer(clock)
        # The live clients by index. No task, scope or event of the swarm's per client:
        # the run's end cancels the clients' nursery, arrivals' lifetimes are in `_retiring`.
        self.members: dict[int, SimClient] = {}
        self._emptied = trio.Event()  # set when the last member ends
        self._retiring: dict[int, trio.CancelScope] = {}  # open model: lifetimes running
        self.next_seq: dict[int, int] = {}  # per index: where the next client's seqs start
        self.faults: list[FaultRecord] = []
        self.server: EmbeddedServer | None = None
        self.urls: tuple[str, ...] = ()
        self.secret: str | None = None
        self._endpoints: dict[str, Endpoint] = {}
        shard = settings.shard
        self.own = [shard is None or shard.owns(i) for i in range(self.capacity)]
        self.share = 1.0 / shard.count if shard is not None else 1.0

    # --- target ---------------------------------------------------------------------------

    async def open_target(self) -> None:
        target = self.scenario.target
        auth = target.auth
        if target.embedded:
            restarts = any(isinstance(f, RestartServerFault) for f in self.scenario.faults)
            out = self.settings.out_dir
            options = EmbeddedOptions(
                db_path=out / "server.db" if restarts else None,
                log_path=out / "server.log",
                max_connections=max(1000, 2 * self.capacity),
            )
            self.server = EmbeddedServer(options, secret=auth.secret if auth else None)
            self.urls = (await self.server.start(),)
            self.secret = self.server.secret
        else:
            self.urls = target.urls
            self.secret = auth.secret if auth else None
        for url in dict.fromkeys(self.urls):
            self._endpoints[url] = Endpoint.from_url(
                url,
                insecure=target.insecure,
                ca_file=Path(target.ca_file) if target.ca_file else None,
            )
        await self._preflight()

    async def _preflight(self) -> None:
        """One connection per target URL before any load, so a wrong URL, a refused
        token or a dead server ends the run at once with exit code 3."""
        for url, endpoint in self._endpoints.items():
            token = self._token(0)
            target = endpoint.with_query(token=token) if token else None
            try:
                with trio.fail_after(PREFLIGHT_TIMEOUT_S):
                    conn = await WsClient.connect(endpoint, target=target)
            except Rejected as exc:
                raise TargetUnreachable(f"{url} refused the upgrade: {exc}") from None
            except (OSError, Closed, trio.TooSlowError) as exc:
                raise TargetUnreachable(
                    f"{url} is unreachable: {exc or type(exc).__name__}"
                ) from None
            await conn.close(1000, "preflight")

    def room_name(self, room: int) -> str:
        return f"{ROOM_PREFIX}{room}"

    def _token(self, client: int) -> str | None:
        auth = self.scenario.target.auth
        if self.secret is not None:
            rooms = [self.room_name(r) for r in self.membership[client]]
            ttl = self.scenario.total_duration_s + self.scenario.drain_s + TOKEN_GRACE_S
            return p.mint_token(self.secret, f"u{client}", rooms, ttl_s=ttl)
        if auth is not None and auth.tokens:
            return auth.token_for(client)
        return None

    # --- clients --------------------------------------------------------------------------

    def _plan(self, client: int) -> ClientPlan:
        rooms = self.membership[client]
        auth = self.scenario.target.auth
        behaviour = self.scenario.behaviour
        return ClientPlan(
            index=client,
            rooms=tuple(rooms),
            room_names=tuple(self.room_name(r) for r in rooms),
            endpoint=self._endpoints[self.urls[client % len(self.urls)]],
            token=self._token(client),
            explicit_join=self.secret is None and auth is not None and bool(auth.tokens),
            dialect=self.dialect,
            run_id=self.settings.run_id,
            heartbeat_s=behaviour.heartbeat_s or None,
            outbox=behaviour.outbox,
            resync=behaviour.resync,
        )

    def _schedule(self, client: int) -> _SendTimes:
        offset = random.Random(f"{self.scenario.seed}:{client}").random()
        return _SendTimes(self.scenario, self.clock, self.start_ns, offset)

    def _spawn(self, nursery: trio.Nursery, client: int) -> None:
        behaviour = self.scenario.behaviour
        # A 100-byte stream, not a 2.5 KB random.Random: the same seed, the same draws
        rng = ClientRandom(f"{self.scenario.seed}:client:{client}")
        sim = SimClient(
            self._plan(client),
            ledger=self.recorder,
            stats=self.stats,
            clock=self.clock,
            backoff=make_backoff(
                PolicyName(behaviour.reconnect.policy.value),
                base=behaviour.reconnect.base_s,
                cap=behaviour.reconnect.cap_s,
                rng=rng,
            ),
            rng=rng,
            schedule=self._schedule(client),
            size=behaviour.message_size.sample,
            first_seq=self.next_seq.get(client, 1),
            demux=self.demux,
            pacer=self.pacer,
        )
        if client in self.next_seq:
            self.ledger.new_identity(client)  # an arrival on a departed client's index
        self.members[client] = sim
        nursery.start_soon(sim.run, self._ended)

    def _ended(self, sim: SimClient) -> None:
        """A client's run ended (left, gave up reconnecting, or cancelled)."""
        self.members.pop(sim.index, None)
        self.next_seq[sim.index] = sim.last_seq + 1
        lifetime = self._retiring.pop(sim.index, None)
        if lifetime is not None:
            lifetime.cancel()  # ended before its lifetime: nothing left to retire
        if not self.members:
            self._emptied.set()

    async def control_population(self, nursery: trio.Nursery) -> None:
        """Closed model: keep the target count of clients (ramps), pacing connects.

        The clients wanted at time t are 0..n(t)-1 over all shards; this process runs
        the ones it owns, so the union over shards is the single-process run.
        """
        scenario = self.scenario
        rate = scenario.population.connect_rate * self.share
        allowance = 1.0
        last = trio.current_time()
        end_s = scenario.total_duration_s
        while True:
            now = trio.current_time()
            allowance = min(max(1.0, rate * CONTROL_TICK_S * 2), allowance + (now - last) * rate)
            last = now
            t = (self.clock.now_ns() - self.start_ns) / 1e9
            if t >= end_s:
                return
            want = min(self.capacity, scenario.clients_at(t))
            for client in range(want):
                if allowance < 1.0:
                    break
                if self.own[client] and client not in self.members:
                    self._spawn(nursery, client)
                    allowance -= 1.0
            for client in [i for i in self.members if i >= want]:
                self.members[client].leave(grace_s=DEPARTURE_GRACE_S)
            await trio.sleep(CONTROL_TICK_S)

    async def open_arrivals(self, nursery: trio.Nursery) -> None:
        """Open model: Poisson arrivals; each client lives `lifetime` then leaves."""
        arrival = self.scenario.population.arrival
        assert arrival is not None
        rng = random.Random(f"{self.scenario.seed}:arrivals")
        end_s = self.scenario.total_duration_s
        t = 0.0
        arrivals = -1
        while True:
            t += rng.expovariate(arrival.rate)
            if t >= end_s:
                return
            await trio.sleep_until(self._deadline(t))
            arrivals += 1
            if not self.own[arrivals % len(self.own)] and self.settings.shard is not None:
                continue  # another shard's arrival (arrival k goes to shard k mod N)
            free = next(
                (i for i in range(self.capacity) if self.own[i] and i not in self.members),
                None,
            )
            if free is None:
                self.stats.errors["arrival_dropped"] += 1
                continue
            self._spawn(nursery, free)
            nursery.start_soon(self._retire, self.members[free], arrival.lifetime_s)

    async def _retire(self, sim: SimClient, lifetime_s: float) -> None:
        if self.members.get(sim.index) is not sim:
            return  # already ended
        with trio.move_on_after(lifetime_s) as lifetime:
            self._retiring[sim.index] = lifetime
            await trio.sleep_forever()
        if self._retiring.get(sim.index) is lifetime:
            del self._retiring[sim.index]
        sim.leave(grace_s=DEPARTURE_GRACE_S)

    def _deadline(self, t_s: float) -> float:
        """trio's clock time at run time `t_s`."""
        elapsed = (self.clock.now_ns() - self.start_ns) / 1e9
        return trio.current_time() + (t_s - elapsed)

    # --- faults and progress -----------------------------------------------------------------

    async def run_faults(self) -> None:
        for fault in sorted(self.scenario.faults, key=lambda f: f.at_s):
            await trio.sleep_until(self._deadline(fault.at_s))
            detail = fault.detail
            if isinstance(fault, DropFault):
                connected = [sim for sim in self.members.values() if sim.is_connected]
                count = round(len(connected) * fault.fraction)
                for sim in random.Random(f"{self.scenario.seed}:drop:{fault.at_s}").sample(
                    connected, count
                ):
                    sim.drop()
                detail = f"dropped {count} of {len(connected)} connections"
            elif isinstance(fault, RestartServerFault) and self.server is not None:
                await self.server.restart()
                detail = f"killed (SIGKILL) and restarted the embedded server on {self.urls[0]}"
            elif isinstance(fault, CommandFault):
                with trio.move_on_after(COMMAND_TIMEOUT_S):
                    done = await trio.run_process(
                        list(fault.argv), check=False, capture_stdout=True, capture_stderr=True
                    )
                    detail = f"{fault.detail}: exit {done.returncode}"
            at = (self.clock.now_ns() - self.start_ns) / 1e9
            self.faults.append(FaultRecord(at_s=round(at, 3), kind=fault.kind, detail=detail))

    async def report_progress(self, progress: Progress) -> None:
        total = self.scenario.total_duration_s + self.scenario.drain_s
        last_sent = last_delivered = 0
        last = trio.current_time()
        while True:
            await trio.sleep(progress.interval_s)
            now = trio.current_time()
            span = max(1e-9, now - last)
            recorder = self.recorder
            latency = self.ledger.latency
            progress.update(
                ProgressSample(
                    elapsed_s=(self.clock.now_ns() - self.start_ns) / 1e9,
                    total_s=total,
                    connected=recorder.connected_now,
                    clients=len(self.members),
                    sent_per_s=(recorder.sent_count - last_sent) / span,
                    delivered_per_s=(recorder.delivered_count - last_delivered) / span,
                    p50_ms=latency.percentile_ms(50) if latency.count else None,
                    p99_ms=latency.percentile_ms(99) if latency.count else None,
                    errors=self.stats.error_total,
                )
            )
            last, last_sent, last_delivered = now, recorder.sent_count, recorder.delivered_count

    # --- the end -------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Keep receiving for `drain` seconds, or until nothing owed is missing."""
        with trio.move_on_after(self.scenario.drain_s):
            while True:
                await trio.sleep(DRAIN_CHECK_S)
                settled = all(sim.is_connected and not sim.backlog for sim in self.members.values())
                if settled and self.ledger.summary(self.clock.now_ns()).lost == 0:
                    return

    async def finish_clients(self, clients: trio.Nursery) -> None:
        """Every client leaves; those not gone within LEAVE_TIMEOUT_S are cancelled (with
        the rest of `clients`, the nursery that runs them)."""
        for sim in list(self.members.values()):
            self.stats.unsent += sim.backlog  # scheduled, never written
            sim.leave()
        with trio.move_on_after(LEAVE_TIMEOUT_S):
            while self.members:
                self._emptied = trio.Event()
                await self._emptied.wait()
        clients.cancel_scope.cancel()

    def results(self, end_ns: int) -> dict[str, Any]:
        scenario = self.scenario
        health = self.health.report()
        errors: dict[str, int] = dict(self.stats.errors)
        for status, count in self.stats.refused.items():
            errors[f"http_{status}"] = count
        if self.stats.connect_failures:
            errors["connect_failed"] = self.stats.connect_failures
        if self.stats.unsent:
            errors["unsent"] = self.stats.unsent
        results = build_results(
            run_id=self.settings.run_id,
            scenario=ScenarioInfo(
                name=scenario.name,
                file=str(scenario.file) if scenario.file else None,
                sha256=scenario.sha256 or "",
                seed=scenario.seed,
                reconnect=ReconnectInfo(
                    policy=scenario.behaviour.reconnect.policy.value,
                    base_s=scenario.behaviour.reconnect.base_s,
                    cap_s=scenario.behaviour.reconnect.cap_s,
                ),
            ),
            target=TargetInfo(
                urls=list(self.urls), dialect=self.dialect.value, embedded=scenario.target.embedded
            ),
            start_ns=self.start_ns,
            duration_s=round((end_ns - self.start_ns) / 1e9, 3),
            ledger=self.ledger.state(end_ns),
            generator=GeneratorInfo(
                workers=1,  # one process; merges add them up
                cpu_s=health.cpu_s,
                loop_lag_ms_p99=health.loop_lag_ms_p99,
                saturated=health.saturated,
                clock=self.clock.describe(),
            ),
            timeseries=self.recorder.series,
            errors_by_code=errors,
            closes={str(code): n for code, n in self.stats.closes.items()},
            faults=self.faults,
        )
        shard = self.settings.shard
        if shard is not None:
            start_at = self.settings.start_at_ns
            results["shard"] = shard_record(
                index=shard.index,
                count=shard.count,
                owned=[client for client, mine in enumerate(self.own) if mine],
                membership=self.membership,
                start_at=iso_utc(start_at) if start_at is not None else None,
            )
        checks = evaluate(scenario.thresholds, results_metrics(results))
        results["thresholds"] = [c.as_dict() for c in checks]
        results["passed"] = all(c.ok for c in checks)
        if health.reasons:
            results["generator"]["saturation_reasons"] = list(health.reasons)
        return results


async def run_scenario(settings: RunSettings) -> dict[str, Any]:
    """Run the scenario and return its results document (not yet written).

    Raises:
        TargetUnreachable: no connection could be made to the target before the load.
        EmbeddedServerError: the embedded server did not start.
    """
    clock = RunClock.from_system()
    swarm = _Swarm(settings, clock)
    scenario = settings.scenario
    try:
        await swarm.open_target()
        if settings.start_at_ns is not None:
            # Shards start together on the wall clock (`--start-at`), so their time series
            # align; the wait is the point of the option, not a race being dodged.
            await trio.sleep(max(0.0, (settings.start_at_ns - clock.now_ns()) / 1e9))
        swarm.start_ns = clock.now_ns()
        swarm.recorder.series = TimeSeries(swarm.start_ns)
        async with trio.open_nursery() as background:
            background.start_soon(swarm.health.run)
            if swarm.demux is not None:
                background.start_soon(swarm.demux.run)
            background.start_soon(swarm.pacer.run)
            if settings.progress is not None:
                background.start_soon(swarm.report_progress, settings.progress)
            async with trio.open_nursery() as clients:
                background.start_soon(swarm.run_faults)
                if scenario.population.arrival is not None:
                    await swarm.open_arrivals(clients)
                else:
                    await swarm.control_population(clients)
                with trio.move_on_after(
                    max(0.0, scenario.total_duration_s - (clock.now_ns() - swarm.start_ns) / 1e9)
                ):
                    await trio.sleep_forever()
                for sim in swarm.members.values():
                    sim.stop_sending()
                await swarm.drain()
                await swarm.finish_clients(clients)
            background.cancel_scope.cancel()
        end_ns = clock.now_ns()
        if settings.progress is not None:
            settings.progress.close()
        return swarm.results(end_ns)
    finally:
        if swarm.server is not None:
            await swarm.server.stop()
