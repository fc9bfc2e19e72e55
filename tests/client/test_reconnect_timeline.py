"""A simulated client's redial timeline follows its back-off policy (virtual clock).

The target is a closed port on 127.0.0.1, so every dial is refused at once; trio's
MockClock jumps over the back-off sleeps, and the dial times recorded by a spy policy
must be exactly the delays the policy chose, in virtual seconds.
"""

from __future__ import annotations

import random
import socket

import attrs
import pytest
import trio
import trio.testing

from loadtool.client.policies import PolicyName, make_backoff
from loadtool.client.simclient import ClientPlan, Dialect, SimClient
from loadtool.client.stats import ClientStats
from loadtool.client.transport import Endpoint
from loadtool.results.ledger import Expect, Ledger
from loadtool.results.recorder import Recorder
from loadtool.results.runclock import RunClock
from loadtool.results.timeseries import TimeSeries

DIALS = 8


@pytest.fixture
def clock() -> trio.testing.MockClock:
    # Jump over sleeps only after 50 ms of real idleness, so that the kernel's immediate
    # refusal of each dial is seen before virtual time moves on.
    return trio.testing.MockClock(autojump_threshold=0.05)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class _Spy:
    """Wraps a policy and records the virtual time of every dial and every delay chosen."""

    inner: object
    dials: list[float] = attrs.field(factory=list)
    delays: list[float] = attrs.field(factory=list)
    enough: trio.Event = attrs.field(factory=trio.Event)

    def on_dial(self) -> None:
        self.dials.append(trio.current_time())
        if len(self.dials) >= DIALS:
            self.enough.set()
        self.inner.on_dial()  # type: ignore[attr-defined]

    def on_connected(self) -> None:
        self.inner.on_connected()  # type: ignore[attr-defined]

    def next_delay(self) -> float | None:
        delay: float | None = self.inner.next_delay()  # type: ignore[attr-defined]
        if delay is not None:
            self.delays.append(delay)
        return delay


def _client(policy: PolicyName, spy_seed: int) -> tuple[SimClient, _Spy]:
    plan = ClientPlan(
        index=0,
        rooms=(0,),
        room_names=("lt-0",),
        endpoint=Endpoint.from_url(f"ws://127.0.0.1:{_closed_port()}/"),
        token=None,
        explicit_join=False,
        dialect=Dialect.V1,
        run_id="t",
        heartbeat_s=None,
        outbox=True,
        resync=True,
    )
    rng = random.Random(spy_seed)
    spy = _Spy(make_backoff(policy, base=0.5, cap=4.0, rng=rng))
    ledger = Ledger(1, [(0,)], Expect.MEMBERS)
    run_clock = RunClock.from_system()
    sim = SimClient(
        plan,
        ledger=Recorder(ledger=ledger, series=TimeSeries(run_clock.now_ns())),
        stats=ClientStats(),
        clock=run_clock,
        backoff=spy,  # type: ignore[arg-type]
        rng=rng,
        schedule=lambda _prev: None,
        size=lambda _rng: 64,
    )
    return sim, spy


@pytest.mark.parametrize(
    "policy",
    [
        PolicyName.SEED,
        PolicyName.EXPONENTIAL,
        PolicyName.FULL_JITTER,
        PolicyName.DECORRELATED_JITTER,
    ],
)
async def test_redials_follow_the_policy(clock: trio.testing.MockClock, policy: PolicyName) -> None:
    sim, spy = _client(policy, spy_seed=42)
    with trio.fail_after(600):  # virtual seconds
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sim.run)
            await spy.enough.wait()
            nursery.cancel_scope.cancel()
    gaps = [b - a for a, b in zip(spy.dials, spy.dials[1:], strict=False)]
    assert len(gaps) >= DIALS - 1
    for gap, delay in zip(gaps, spy.delays, strict=False):
        assert gap == pytest.approx(delay, abs=1e-6)


async def test_exponential_timeline_doubles_to_the_cap(clock: trio.testing.MockClock) -> None:
    sim, spy = _client(PolicyName.EXPONENTIAL, spy_seed=1)
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sim.run)
            await spy.enough.wait()
            nursery.cancel_scope.cancel()
    gaps = [round(b - a, 6) for a, b in zip(spy.dials, spy.dials[1:], strict=False)]
    assert gaps[:7] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


async def test_no_reconnect_policy_dials_once(clock: trio.testing.MockClock) -> None:
    sim, spy = _client(PolicyName.NONE, spy_seed=1)
    with trio.fail_after(60):
        await sim.run()  # returns by itself: no reconnect after the refused dial
    assert len(spy.dials) == 1
