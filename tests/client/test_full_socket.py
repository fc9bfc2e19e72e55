"""Writing without waiting, and what happens when the socket buffer is full.

The pacer's clients write with `WsClient.send_text_nowait` and fall back to a writer task
only when the socket does not take a frame (docs/performance.md). Here a real server on
127.0.0.1 (wsproto by hand) accepts the upgrade and then stops reading, so the kernel
buffers fill for real; once it reads again, every frame must arrive whole, once, in the
order it was sent: the part of a frame the socket did not take goes first, then what
queued behind it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import attrs
import orjson
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from loadtool.client.pacer import Pacer
from loadtool.client.policies import ExponentialBackoff
from loadtool.client.rng import ClientRandom
from loadtool.client.simclient import ClientPlan, Dialect, SimClient
from loadtool.client.stats import ClientStats
from loadtool.client.transport import Endpoint, WsClient
from loadtool.results.ledger import Expect, Ledger
from loadtool.results.recorder import Recorder
from loadtool.results.runclock import RunClock
from loadtool.results.timeseries import TimeSeries

CEILING_S: Final = 30
BIG: Final = 256 * 1024  # characters per message: a few fill the loopback buffers
MS: Final = 1_000_000


@contextmanager
def ceiling() -> Iterator[None]:
    with trio.fail_after(CEILING_S):
        yield


@attrs.define(eq=False)
class StallingServer:
    """Accepts one WebSocket, then reads nothing until `resume` is set; then collects
    every text message until the client closes or `expect` messages have come."""

    expect: int
    resume: trio.Event = attrs.field(factory=trio.Event)
    accepted: trio.Event = attrs.field(factory=trio.Event)
    texts: list[str] = attrs.field(factory=list)
    complete: trio.Event = attrs.field(factory=trio.Event)

    async def handle(self, stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        async with stream:
            while True:
                data = await stream.receive_some()
                if not data:
                    return
                ws.receive_data(data)
                if any(isinstance(e, Request) for e in ws.events()):
                    break
            await stream.send_all(ws.send(AcceptConnection()))
            self.accepted.set()
            await self.resume.wait()
            part = ""  # wsproto hands a big frame over in pieces as its bytes arrive
            try:
                while data := await stream.receive_some():
                    ws.receive_data(data)
                    for event in ws.events():
                        if isinstance(event, TextMessage):
                            part += event.data
                            if event.message_finished:
                                self.texts.append(part)
                                part = ""
                        elif isinstance(event, CloseConnection):
                            await stream.send_all(ws.send(event.response()))
                            return
                    if len(self.texts) >= self.expect:
                        self.complete.set()
            except trio.BrokenResourceError:
                return

    async def start(self, nursery: trio.Nursery) -> int:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, self.handle, 0))
        port: int = listeners[0].socket.getsockname()[1]
        return port


async def test_send_nowait_keeps_the_rest_of_a_frame_and_flush_sends_it(
    nursery: trio.Nursery,
) -> None:
    server = StallingServer(expect=0)
    port = await server.start(nursery)
    sent: list[str] = []
    with ceiling():
        conn = await WsClient.connect(Endpoint.from_url(f"ws://127.0.0.1:{port}/"))
        await server.accepted.wait()
        for i in range(2000):  # at most 128 MB: far more than loopback buffers hold
            text = f"{i:06d}" + "x" * (64 * 1024)
            if not conn.send_text_nowait(text):
                break  # not a byte of it went: the caller keeps it
            sent.append(text)
            if conn.backlogged:
                break  # part of it went; the rest is owed
        else:
            pytest.fail("the socket never filled up")
        assert conn.backlogged, "the socket took whole frames only (expected a partial write)"
        assert not conn.send_text_nowait("queued"), "a frame jumped the owed bytes"
        server.expect = len(sent) + 1
        server.resume.set()
        await conn.flush()
        assert not conn.backlogged
        await conn.send_text("last")
        await server.complete.wait()
        await conn.close()
    assert server.texts == [*sent, "last"]


@attrs.define(eq=False)
class Times:
    """`n` intended send times 2 ms apart from 50 ms after the first call; `done` is set
    when asked for the one after the last."""

    clock: RunClock
    n: int
    given: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, prev: int | None) -> int | None:
        if self.given >= self.n:
            self.done.set()
            return None
        self.given += 1
        return self.clock.now_ns() + 50 * MS if prev is None else prev + 2 * MS


@pytest.mark.parametrize("shared", [True, False], ids=["shared-pacer", "own-pacer"])
async def test_a_client_queues_behind_a_full_socket_and_sends_everything_in_order(
    nursery: trio.Nursery, shared: bool
) -> None:
    sends = 40  # 10 MB in all
    server = StallingServer(expect=sends)
    port = await server.start(nursery)
    clock = RunClock.from_system()
    plan = ClientPlan(
        index=0,
        rooms=(0,),
        room_names=("lt-0",),
        endpoint=Endpoint.from_url(f"ws://127.0.0.1:{port}/"),
        token=None,
        explicit_join=False,
        dialect=Dialect.SEED,
        run_id="full",
        heartbeat_s=None,
        outbox=True,
        resync=False,
    )
    ledger = Ledger(1, [[0]], Expect.CONNECTED)
    stats = ClientStats()
    times = Times(clock, sends)
    pacer = Pacer(clock) if shared else None
    sim = SimClient(
        plan,
        ledger=Recorder(ledger=ledger, series=TimeSeries(clock.now_ns())),
        stats=stats,
        clock=clock,
        backoff=ExponentialBackoff(base=0.05, cap=0.05),
        rng=ClientRandom("full"),  # one room: every draw picks it
        schedule=times,
        size=lambda _rng: BIG,
        pacer=pacer,
    )
    finished = trio.Event()

    async def live() -> None:
        await sim.run()
        finished.set()

    with ceiling():
        if pacer is not None:
            nursery.start_soon(pacer.run)
        nursery.start_soon(live)
        await times.done.wait()  # every send was due and handled while nothing was read
        assert sim.backlog > 0, "nothing queued behind the full socket"
        assert sim.is_connected
        server.resume.set()
        await server.complete.wait()
        assert sim.backlog == 0
        sim.leave()
        await finished.wait()
    ids = [orjson.loads(t)["id"] for t in server.texts]
    assert ids == [f"full-0-{seq}" for seq in range(1, sends + 1)]
    assert all(len(orjson.loads(t)["text"]) == BIG for t in server.texts)
    assert ledger.summary(clock.now_ns()).sent == sends
    assert stats.unsent == 0
    assert stats.closes == {}  # no connection was lost on the way
