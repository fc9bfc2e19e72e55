"""Simulated clients (loadtool.client.simclient) against a real reference server.

Hand-made plans (2-3 clients of room "lt-0", protocol v1, tokens minted with the test
SECRET) feed a real Ledger and TimeSeries through a Recorder on a RunClock. Covered:
exactly-once delivery to every member with acks counted; a client-side drop with
reconnect, outbox replay (the server dedupes, docs/protocol.md §4.3) and re-sync with
`join {since}` and its history page (§5.2) ending with nothing lost or duplicated;
`leave()` closing with 1000 (§8.2) and never reconnecting; sends while disconnected
without an outbox counted as unsent; refused upgrades counted and retried.

Waits are on events: the recorder below wakes waiters on every call the client makes.
Intended send times start LEAD_S after a client's first connect, so that every member
has joined (its membership span has begun) before the first message is meant to go out;
each test checks that precondition rather than assuming it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
import trio
import trustme
from wsproto.events import AcceptConnection, TextMessage

from loadtool import protocol as p
from loadtool.client.policies import Backoff, ExponentialBackoff
from loadtool.client.simclient import DEAD_PEER_CODE, ClientPlan, Dialect, SimClient
from loadtool.client.stats import ClientStats
from loadtool.client.transport import Endpoint
from loadtool.netio.demux import Demux
from loadtool.results.correlation import decode_text
from loadtool.results.ledger import Expect, Ledger, LedgerSummary, Receipt
from loadtool.results.recorder import Recorder
from loadtool.results.runclock import RunClock
from loadtool.results.timeseries import TimeSeries
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits
from tests.client.test_transport import WELCOME, Scripted, scripted_server
from tests.conftest import Clients, token

CEILING_S: Final = 20
SETTLE_S: Final = 10  # for the last deliveries and acks (then the counters tell)
RUN_ID: Final = "0badc0de"
ROOM: Final = "lt-0"
LEAD_S: Final = 0.3  # first intended send after a client's first connect
GAP_S: Final = 0.02  # between intended sends
NS: Final = 1_000_000_000
DROP_CODE: Final = 4001  # what SimClient records for a drop() (never sent)
ROOMY: Final = Limits(rate_per_s=1000.0, rate_burst=1000)  # no rate limiting in the way

# --- a recorder that can be waited on ---------------------------------------------------------


@attrs.define(eq=False)
class Call:
    name: str
    args: tuple[int, ...]
    result: Any = None


@attrs.define(eq=False)
class WatchedRecorder(Recorder):
    """The real Recorder (ledger + time series), plus a log of every call and a way to
    wait until a condition on it holds. `hooks` run synchronously inside each call."""

    calls: list[Call] = attrs.field(factory=list)
    hooks: list[Callable[[Call], None]] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def _note(self, name: str, *args: int, result: Any = None) -> Any:
        call = Call(name, args, result)
        self.calls.append(call)
        for hook in self.hooks:
            hook(call)
        self.changed.set()
        self.changed = trio.Event()
        return result

    def member_since(self, client: int, room: int, now_ns: int) -> None:
        super().member_since(client, room, now_ns)
        self._note("member_since", client, room, now_ns)

    def member_until(self, client: int, room: int, now_ns: int) -> None:
        super().member_until(client, room, now_ns)
        self._note("member_until", client, room, now_ns)

    def connected(self, client: int, now_ns: int) -> None:
        super().connected(client, now_ns)
        self._note("connected", client, now_ns)

    def disconnected(self, client: int, now_ns: int) -> None:
        super().disconnected(client, now_ns)
        self._note("disconnected", client, now_ns)

    def sent(self, sender: int, seq: int, room: int, intended_ns: int) -> None:
        super().sent(sender, seq, room, intended_ns)
        self._note("sent", sender, seq, room, intended_ns)

    def received(
        self, recipient: int, sender: int, seq: int, room: int, intended_ns: int, now_ns: int
    ) -> Receipt:
        receipt = super().received(recipient, sender, seq, room, intended_ns, now_ns)
        args = (recipient, sender, seq, room, intended_ns, now_ns)
        result: Receipt = self._note("received", *args, result=receipt)
        return result

    def acked(self, sender: int, seq: int, intended_ns: int, now_ns: int) -> None:
        super().acked(sender, seq, intended_ns, now_ns)
        self._note("acked", sender, seq, intended_ns, now_ns)

    def error(self, now_ns: int) -> None:
        super().error(now_ns)
        self._note("error", now_ns)

    def of(self, name: str, client: int | None = None) -> list[Call]:
        """The calls named `name` (for `client`: the first argument)."""
        return [c for c in self.calls if c.name == name and (client is None or c.args[0] == client)]

    def count(self, name: str, client: int | None = None) -> int:
        return len(self.of(name, client))

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self.changed.wait()

    async def settle(self, condition: Callable[[], bool]) -> None:
        """`wait_for` that gives up after SETTLE_S without raising, so that the
        assertions on the counters that follow show what is missing.

        Conditions include the `sent` count: a sender records `sent` after its write
        returns, and the worker's reader may account the echo and the ack before that."""
        with trio.move_on_after(SETTLE_S):
            await self.wait_for(condition)


# --- schedules and the swarm of a test --------------------------------------------------------


@attrs.define(eq=False)
class Schedule:
    """`n` intended send times GAP_S apart, the first LEAD_S after the first call."""

    clock: RunClock
    n: int
    lead_s: float = LEAD_S
    times: list[int] = attrs.field(factory=list)
    done: trio.Event = attrs.field(factory=trio.Event)  # asked for the time after the last

    def __call__(self, prev: int | None) -> int | None:
        if len(self.times) >= self.n:
            self.done.set()
            return None
        t = self.clock.now_ns() + int(self.lead_s * NS) if prev is None else prev + int(GAP_S * NS)
        self.times.append(t)
        return t


@attrs.define(eq=False)
class Swarm:
    """The clients of one test sharing one recorder, stats and clock."""

    endpoint: Endpoint
    clients: int
    clock: RunClock = attrs.field(factory=RunClock.from_system)
    stats: ClientStats = attrs.field(factory=ClientStats)
    ledger: Ledger = attrs.field(init=False)
    recorder: WatchedRecorder = attrs.field(init=False)
    sims: list[SimClient] = attrs.field(factory=list)
    schedules: list[Schedule] = attrs.field(factory=list)
    finished: list[trio.Event] = attrs.field(factory=list)
    demux: Demux | None = None  # None: each client reads in its own task

    def __attrs_post_init__(self) -> None:
        self.ledger = Ledger(self.clients, [[0]] * self.clients, Expect.MEMBERS)
        self.recorder = WatchedRecorder(ledger=self.ledger, series=TimeSeries(self.clock.now_ns()))

    def add(
        self,
        *,
        sends: int,
        backoff: Backoff | None = None,
        outbox: bool = True,
        heartbeat_s: float | None = None,
        user_token: str | None = None,
        endpoint: Endpoint | None = None,
    ) -> SimClient:
        index = len(self.sims)
        plan = ClientPlan(
            index=index,
            rooms=(0,),
            room_names=(ROOM,),
            endpoint=endpoint or self.endpoint,
            token=user_token or token(f"u{index}", [ROOM]),
            explicit_join=False,
            dialect=Dialect.V1,
            run_id=RUN_ID,
            heartbeat_s=heartbeat_s,
            outbox=outbox,
            resync=True,
        )
        schedule = Schedule(self.clock, sends)
        sim = SimClient(
            plan,
            ledger=self.recorder,
            stats=self.stats,
            clock=self.clock,
            backoff=backoff or ExponentialBackoff(base=0.05, cap=0.05),
            rng=random.Random(index),
            schedule=schedule,
            size=lambda rng: 64,
            demux=self.demux,
        )
        self.sims.append(sim)
        self.schedules.append(schedule)
        self.finished.append(trio.Event())
        return sim

    def start(self, nursery: trio.Nursery) -> None:
        for sim, finished in zip(self.sims, self.finished, strict=True):
            nursery.start_soon(self._run, sim, finished)

    @staticmethod
    async def _run(sim: SimClient, finished: trio.Event) -> None:
        await sim.run()
        finished.set()

    async def all_joined(self) -> None:
        for sim in self.sims:
            await sim.connected.wait()
        await self.recorder.wait_for(lambda: self.recorder.count("member_since") == self.clients)

    def check_joined_before_first_send(self) -> None:
        """The precondition of exact expectations: every member's span began before the
        first message was meant to be sent."""
        last_join = max(c.args[2] for c in self.recorder.of("member_since"))
        first_send = min(s.times[0] for s in self.schedules if s.times)
        assert last_join < first_send, "a client joined after the first intended send"

    def summary(self) -> LedgerSummary:
        return self.ledger.summary(self.clock.now_ns())

    async def leave_all(self) -> None:
        for sim in self.sims:
            sim.leave()
        for finished in self.finished:
            await finished.wait()


@contextmanager
def ceiling() -> Iterator[None]:
    with trio.fail_after(CEILING_S):
        yield


def receipts(swarm: Swarm) -> Counter[tuple[int, ...]]:
    """(recipient, sender, seq) -> how many times it was received."""
    return Counter(c.args[:3] for c in swarm.recorder.of("received"))


def assert_exactly_once(swarm: Swarm, sends: dict[int, int]) -> None:
    """Every member received every (sender, seq) exactly once, and nothing else."""
    want = Counter(
        {
            (recipient, sender, seq): 1
            for recipient in range(swarm.clients)
            for sender, n in sends.items()
            for seq in range(1, n + 1)
        }
    )
    assert receipts(swarm) == want


# --- delivery ----------------------------------------------------------------------------------


async def test_every_message_reaches_every_member_exactly_once(clients: Clients) -> None:
    srv = await clients.start(limits=ROOMY)
    swarm = Swarm(Endpoint.from_url(srv.url), clients=3)
    n = 10
    for _ in range(3):
        swarm.add(sends=n)
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            await swarm.all_joined()
            await rec.settle(
                lambda: (
                    rec.count("sent") == 3 * n
                    and rec.delivered_count == 3 * 3 * n
                    and rec.count("acked") == 3 * n
                )
            )
            summary = swarm.summary()
            await swarm.leave_all()
    swarm.check_joined_before_first_send()
    assert summary.counters() == {
        "sent": 3 * n,
        "delivered": 9 * n,
        "expected_deliveries": 9 * n,
        "received_expected": 9 * n,
        "lost": 0,
        "duplicates": 0,
        "out_of_order": 0,
        "leaked": 0,
        "acks": 3 * n,
        "acks_duplicate": 0,
        "connects": 3,
        "reconnects": 0,
    }
    assert (summary.latency.count, summary.ack_latency.count, summary.reconnect.count) == (
        9 * n,
        3 * n,
        0,
    )
    assert_exactly_once(swarm, {0: n, 1: n, 2: n})
    assert {c.result for c in rec.of("received")} == {Receipt.NEW}
    # The intended times sent are the schedule's, in seq order, one per message.
    for sender, schedule in enumerate(swarm.schedules):
        sent = [(c.args[1], c.args[3]) for c in rec.of("sent", sender)]
        assert sent == list(enumerate(schedule.times, start=1))
    assert swarm.stats == ClientStats()  # no closes, errors, refusals, unsent, foreign...
    assert (srv.metrics.messages_in, srv.metrics.deliveries) == (3 * n, 9 * n)
    rows = rec.series.export()
    assert sum(r["sent"] for r in rows) == 3 * n
    assert sum(r["delivered"] for r in rows) == 9 * n
    assert sum(r["acks"] for r in rows) == 3 * n
    assert sum(r["connects"] for r in rows) == 3


async def test_the_wire_text_carries_the_correlation(clients: Clients) -> None:
    """What a plain client in the room sees of a simulated client's messages."""
    srv = await clients.start(limits=ROOMY)
    watcher = await clients.connect(srv, "watcher", [ROOM])
    swarm = Swarm(Endpoint.from_url(srv.url), clients=1)
    swarm.add(sends=3)
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            assert await watcher.recv() == p.Presence(room=ROOM, user_id="u0", status="joined")
            seen = [await watcher.recv_type(p.Message) for _ in range(3)]
            await swarm.leave_all()
    times = swarm.schedules[0].times
    assert [(m.id, m.sender_id, m.room, m.seq) for m in seen] == [
        (f"{RUN_ID}-0-{k}", "u0", ROOM, k) for k in (1, 2, 3)
    ]
    for k, message in enumerate(seen, start=1):
        corr = decode_text(message.text)
        assert corr is not None
        assert (corr.run_id, corr.sender, corr.seq, corr.room, corr.intended_ns) == (
            RUN_ID,
            0,
            k,
            0,
            times[k - 1],
        )
        assert len(message.text) == 64  # the size function's answer


# --- drop, reconnect, replay, re-sync ----------------------------------------------------------


def drop_at(swarm: Swarm, client: int, seq: int) -> list[bool]:
    """Drop `client` right after its message `seq` was written; returns drop()'s answer."""
    answers: list[bool] = []

    def hook(call: Call) -> None:
        if call.name == "sent" and call.args[:2] == (client, seq):
            answers.append(swarm.sims[client].drop())

    swarm.recorder.hooks.append(hook)
    return answers


@pytest.mark.parametrize(
    "limits",
    [ROOMY, attrs.evolve(ROOMY, resync_max=2, history_page_max=2)],
    ids=["one-history-page", "paged-history"],
)
async def test_a_dropped_client_reconnects_and_loses_nothing(
    clients: Clients, limits: Limits
) -> None:
    srv = await clients.start(limits=limits)
    swarm = Swarm(Endpoint.from_url(srv.url), clients=3)
    n = 15
    for _ in range(3):
        swarm.add(sends=n, backoff=ExponentialBackoff(base=0.1, cap=0.1))
    dropped = drop_at(swarm, client=1, seq=5)
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            await swarm.all_joined()
            await rec.settle(
                lambda: (
                    rec.count("sent") == 3 * n
                    and rec.delivered_count == 3 * 3 * n
                    and rec.count("acked") == 3 * n
                )
            )
            summary = swarm.summary()
            await swarm.leave_all()
    swarm.check_joined_before_first_send()
    assert dropped == [True]
    assert [rec.count("connected", c) for c in range(3)] == [1, 2, 1]
    assert [rec.count("disconnected", c) for c in range(3)] == [1, 2, 1]  # the 2nd: leave()
    assert swarm.stats.closes == {DROP_CODE: 1}
    # The test did exercise both repairs: messages of others sent while client 1 was away
    # (only the re-sync's history can bring them), and its own sends made while away
    # (written from the outbox after the reconnect).
    down = rec.of("disconnected", 1)[0].args[1]
    up = rec.of("connected", 1)[1].args[1]
    missed = [c for c in rec.of("sent") if c.args[0] != 1 and down <= c.args[3] < up]
    queued = [c for c in rec.of("sent", 1) if down <= c.args[3] < up]
    assert missed, "nothing was sent while client 1 was away"
    assert queued, "client 1 scheduled nothing while it was away"
    assert srv.metrics.frames_in["join"] == 1  # the re-sync: join {since}
    # Pages beyond the first come from history {after} requests, one per page.
    assert srv.metrics.frames_in["history"] == swarm.stats.history_pages
    if limits.resync_max == 2:
        assert swarm.stats.history_pages >= 1
    else:
        assert swarm.stats.history_pages == 0
    counters = summary.counters()
    counters.pop("out_of_order")  # may be > 0: live messages can overtake the history page
    assert counters == {
        "sent": 3 * n,
        "delivered": 9 * n,
        "expected_deliveries": 9 * n,
        "received_expected": 9 * n,
        "lost": 0,
        "duplicates": 0,
        "leaked": 0,
        "acks": 3 * n,
        "acks_duplicate": 0,
        "connects": 4,
        "reconnects": 1,
    }
    assert summary.reconnect.count == 1
    assert_exactly_once(swarm, {0: n, 1: n, 2: n})
    assert swarm.stats.unsent == 0
    assert srv.metrics.messages_in == 3 * n  # replays of stored messages were deduped


@pytest.mark.parametrize("outbox", [False, True], ids=["no-outbox", "outbox"])
async def test_sends_while_disconnected(clients: Clients, outbox: bool) -> None:
    srv = await clients.start(limits=ROOMY)
    swarm = Swarm(Endpoint.from_url(srv.url), clients=1)
    n, drop_after = 10, 3
    # Without an outbox the client stays away for the rest of the schedule (60 s back-off);
    # with one it comes back at once and replays.
    backoff = ExponentialBackoff(base=0.05 if outbox else 60, cap=60)
    swarm.add(sends=n, backoff=backoff, outbox=outbox)
    dropped = drop_at(swarm, client=0, seq=drop_after)
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            await swarm.all_joined()
            await swarm.schedules[0].done.wait()  # every send was attempted
            if outbox:
                await rec.settle(
                    lambda: (
                        rec.count("sent") == n
                        and rec.delivered_count == n
                        and rec.count("acked") == n
                    )
                )
            summary = swarm.summary()
            await swarm.leave_all()  # during the 60 s back-off too: at once
    assert dropped == [True]
    if outbox:
        swarm.check_joined_before_first_send()
        assert swarm.stats.unsent == 0
        assert (summary.sent, summary.delivered, summary.lost, summary.duplicates) == (n, n, 0, 0)
        assert rec.count("connected") == 2
    else:
        assert swarm.stats.unsent == n - drop_after
        assert summary.sent == drop_after
        assert [c.args[1] for c in rec.of("sent")] == list(range(1, drop_after + 1))
        assert rec.count("connected") == 1


# --- leaving -------------------------------------------------------------------------------------


async def test_leave_closes_1000_and_does_not_reconnect(clients: Clients) -> None:
    srv = await clients.start(limits=ROOMY)
    watcher = await clients.connect(srv, "watcher", [ROOM])
    swarm = Swarm(Endpoint.from_url(srv.url), clients=1)
    sim = swarm.add(sends=0, backoff=ExponentialBackoff(base=0.01, cap=0.01))
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            await swarm.all_joined()
            assert await watcher.recv() == p.Presence(room=ROOM, user_id="u0", status="joined")
            sim.leave()
            await swarm.finished[0].wait()  # run() returned: no reconnect follows
            assert await watcher.recv() == p.Presence(room=ROOM, user_id="u0", status="left")
    assert srv.metrics.closes == {1000: 1}
    assert [c.name for c in rec.calls] == [
        "connected",
        "member_since",
        "disconnected",
        "member_until",
    ]
    assert swarm.stats.closes == {}  # leaving is not a disconnect to count
    assert not sim.is_connected
    assert sim.drop() is False


async def test_leave_during_back_off_ends_the_client_at_once(clients: Clients) -> None:
    srv = await clients.start(limits=ROOMY)
    swarm = Swarm(Endpoint.from_url(srv.url), clients=1)
    sim = swarm.add(sends=0, backoff=ExponentialBackoff(base=60, cap=60))
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            await swarm.all_joined()
            assert sim.drop() is True
            await rec.wait_for(lambda: rec.count("disconnected") == 1)
            sim.leave()
            await swarm.finished[0].wait()  # long before the 60 s back-off
    assert [c.name for c in rec.calls] == [
        "connected",
        "member_since",
        "disconnected",
        "member_until",
    ]
    assert swarm.stats.closes == {DROP_CODE: 1}


# --- refused and failed dials --------------------------------------------------------------------


async def test_a_refused_upgrade_is_counted_and_retried(clients: Clients) -> None:
    srv = await clients.start(limits=ROOMY)
    swarm = Swarm(Endpoint.from_url(srv.url), clients=1)
    sim = swarm.add(sends=5, user_token="not-a-token", backoff=ExponentialBackoff(0.01, 0.01))
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            await rec.wait_for(lambda: rec.count("error") >= 3)
            sim.leave()
            await swarm.finished[0].wait()
    errors = rec.count("error")
    assert swarm.stats.refused == {401: errors}
    assert swarm.stats.last_error.startswith("HTTP 401: 401 Unauthorized: ")
    assert swarm.stats.connect_failures == 0
    assert not sim.connected.is_set()
    assert [c.name for c in rec.calls] == ["error"] * errors
    assert srv.metrics.refused == {401: errors}


@pytest.fixture
async def untrusted_tls(clients: Clients, tmp_path: Path) -> RunningServer:
    """A wss:// server whose certificate comes from a CA nobody trusts."""
    cert = trustme.CA().issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    return await clients.start(certfile=tmp_path / "server.pem", keyfile=tmp_path / "server.key")


async def test_a_failed_tls_handshake_is_a_connect_failure_and_retried(
    untrusted_tls: RunningServer,
) -> None:
    swarm = Swarm(Endpoint.from_url(untrusted_tls.url), clients=1)
    sim = swarm.add(sends=5, backoff=ExponentialBackoff(0.01, 0.01))
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        swarm.start(nursery)
        with ceiling():
            await rec.wait_for(lambda: rec.count("error") >= 3)
            sim.leave()
            await swarm.finished[0].wait()
    assert swarm.stats.connect_failures == rec.count("error")
    assert swarm.stats.refused == {}


# --- heartbeats ----------------------------------------------------------------------------------


needs_epoll = pytest.mark.skipif(not Demux.available(), reason="select.epoll is Linux-only")


@pytest.mark.parametrize("demux", [False, pytest.param(True, marks=needs_epoll)])
async def test_a_client_that_stopped_sending_keeps_a_quiet_connection(
    clients: Clients, demux: bool
) -> None:
    # The server's own pings are rarer (2 s) than the client's dead-peer window (0.3 s):
    # only the client's pings (and their pongs) keep data flowing. With the demux, the
    # pongs it reads must move the dead-peer deadline (`Demux.now`).
    srv = await clients.start(limits=ROOMY, heartbeat_interval_s=2.0, idle_timeout_s=10.0)
    swarm = Swarm(Endpoint.from_url(srv.url), clients=1, demux=Demux() if demux else None)
    sim = swarm.add(sends=0, heartbeat_s=0.1)
    rec = swarm.recorder
    async with trio.open_nursery() as nursery:
        if swarm.demux is not None:
            nursery.start_soon(swarm.demux.run)
        swarm.start(nursery)
        with ceiling():
            await swarm.all_joined()
            sim.stop_sending()  # what the swarm does when the drain phase starts
            # Waiting for an event that must not happen: bounded by 5 dead-peer windows.
            with trio.move_on_after(1.5):
                await rec.wait_for(lambda: rec.count("disconnected") > 0)
            await swarm.leave_all()
            nursery.cancel_scope.cancel()  # the demux runs until cancelled
    assert swarm.stats.dead_peers == 0
    assert rec.count("connected") == 1


@pytest.mark.parametrize("demux", [False, pytest.param(True, marks=needs_epoll)])
async def test_a_server_that_goes_silent_is_a_dead_peer(nursery: trio.Nursery, demux: bool) -> None:
    """A server that upgrades, welcomes, then says nothing (no pongs): after three
    heartbeat intervals without data the client gives the connection up as a dead peer."""

    async def script(conn: Scripted) -> None:
        await conn.send(AcceptConnection(), TextMessage(WELCOME))
        await trio.sleep_forever()  # holds the socket open and silent until cancelled

    port = await scripted_server(nursery, script)
    swarm = Swarm(
        Endpoint.from_url(f"ws://127.0.0.1:{port}/"), clients=1, demux=Demux() if demux else None
    )
    sim = swarm.add(sends=0, heartbeat_s=0.1, backoff=ExponentialBackoff(base=30.0, cap=30.0))
    rec = swarm.recorder
    async with trio.open_nursery() as inner:
        if swarm.demux is not None:
            inner.start_soon(swarm.demux.run)
        swarm.start(inner)
        with ceiling():
            await rec.wait_for(lambda: rec.count("disconnected") == 1)
        sim.leave()
        inner.cancel_scope.cancel()
    assert swarm.stats.dead_peers == 1
    assert swarm.stats.closes == Counter({DEAD_PEER_CODE: 1})
