"""The shared pacer (loadtool.client.pacer): every registered call runs once, in due order
and never before its due time, on both timers (timerfd and trio's); a call registered
earlier than the armed one re-arms the timer; calls registered from inside a call run
too; the writer-task nursery exists only while the pacer runs.

Waits are on events with a `fail_after` ceiling; due times are a few ms ahead."""

from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio
import trio.testing

from loadtool.client.pacer import Pacer
from loadtool.results.runclock import RunClock

MS = 1_000_000
CEILING_S = 10


@contextmanager
def ceiling() -> Iterator[None]:
    with trio.fail_after(CEILING_S):
        yield


@pytest.fixture(params=[True, False], ids=["timerfd", "trio-timer"])
def precise(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_calls_run_in_due_order_and_never_early(precise: bool) -> None:
    clock = RunClock.from_system()
    pacer = Pacer(clock, precise=precise)
    base = clock.now_ns() + 20 * MS
    dues = [base + k * MS // 2 for k in range(40)] + [base + 5 * MS] * 3  # ties too
    order = list(range(len(dues)))
    random.Random(4).shuffle(order)
    ran: list[tuple[int, int, int]] = []  # (due, registration order, run-clock time)
    done = trio.Event()

    def call(tag: int) -> None:
        def on_due(due: int) -> None:
            ran.append((due, tag, clock.now_ns()))
            if len(ran) == len(dues):
                done.set()

        pacer.at(dues[tag], on_due)

    with ceiling():
        async with trio.open_nursery() as nursery:
            for tag in order[:20]:
                call(tag)  # before the pacer runs
            nursery.start_soon(pacer.run)
            await trio.testing.wait_all_tasks_blocked()
            for tag in order[20:]:
                call(tag)  # while it waits
            await done.wait()
            nursery.cancel_scope.cancel()
    assert [due for due, _, _ in ran] == sorted(dues)
    assert all(at >= due for due, _, at in ran), "a call ran before its due time"
    ties = [tag for due, tag, _ in ran if due == base + 5 * MS]
    assert ties == [t for t in order if dues[t] == base + 5 * MS]  # registration order
    assert len(pacer) == 0


async def test_an_earlier_call_re_arms_a_distant_timer(precise: bool) -> None:
    clock = RunClock.from_system()
    pacer = Pacer(clock, precise=precise)
    soon = trio.Event()
    with ceiling():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.run)
            pacer.at(clock.now_ns() + 3600 * 1000 * MS, lambda _due: None)  # an hour away
            await trio.testing.wait_all_tasks_blocked()
            pacer.at(clock.now_ns() + 2 * MS, lambda _due: soon.set())
            await soon.wait()
            nursery.cancel_scope.cancel()
    assert len(pacer) == 1  # the distant one is still waiting


async def test_a_call_may_register_its_successor(precise: bool) -> None:
    clock = RunClock.from_system()
    pacer = Pacer(clock, precise=precise)
    ticks: list[int] = []
    done = trio.Event()

    def tick(due: int) -> None:
        ticks.append(due)
        if len(ticks) < 10:
            pacer.at(due + MS, tick)  # a heartbeat's pattern
        else:
            done.set()

    with ceiling():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.run)
            pacer.at(clock.now_ns() + MS, tick)
            await done.wait()
            nursery.cancel_scope.cancel()
    assert [b - a for a, b in itertools.pairwise(ticks)] == [MS] * 9


async def test_past_due_calls_run_at_once(precise: bool) -> None:
    clock = RunClock.from_system()
    pacer = Pacer(clock, precise=precise)
    done = trio.Event()
    with ceiling():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.run)
            pacer.at(clock.now_ns() - 1000 * MS, lambda _due: done.set())
            await done.wait()
            nursery.cancel_scope.cancel()


async def test_writer_tasks_live_in_the_pacer_while_it_runs() -> None:
    clock = RunClock.from_system()
    pacer = Pacer(clock)
    with pytest.raises(RuntimeError, match="not running"):
        pacer.start_soon(trio.sleep, 0)
    wrote = trio.Event()

    async def writer(event: trio.Event) -> None:
        event.set()

    with ceiling():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.run)
            pacer.at(clock.now_ns(), lambda _due: pacer.start_soon(writer, wrote))
            await wrote.wait()
            nursery.cancel_scope.cancel()
    with pytest.raises(RuntimeError, match="not running"):
        pacer.start_soon(trio.sleep, 0)


async def test_the_swarm_gets_the_timerfd_on_linux() -> None:
    pacer = Pacer(RunClock.from_system())
    running = trio.Event()
    with ceiling():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.run)
            pacer.at(0, lambda _due: running.set())
            await running.wait()
            precise = pacer.precise
            nursery.cancel_scope.cancel()
    assert precise == sys.platform.startswith("linux")
