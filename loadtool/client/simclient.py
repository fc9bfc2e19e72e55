"""One simulated chat user: the seed article's `ChatSocket`, instrumented.

It connects with a token, joins its rooms, sends on an open-loop schedule (intended send
times are fixed in advance, so a stalled server cannot hide behind coordinated omission),
receives, heartbeats, buffers sends in an outbox while disconnected and replays them with
the same `id`, and reconnects with a back-off policy. Every delivery goes to the ledger
(sans-IO accounting); this module only moves bytes and keeps per-connection state.

Sends and heartbeats are called by a `Pacer` (one timer for all the clients of a worker)
and write without waiting; a writer task exists only while the socket buffer is full. An
idle client is one task (its connection loop) and no nursery (docs/performance.md).
"""

from __future__ import annotations

import bisect
import enum
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import orjson
import trio

from ..netio.demux import Demux
from ..results.correlation import decode_fields, encode_text, run_prefix
from ..results.recorder import Recorder
from ..results.runclock import RunClock
from .pacer import Pacer
from .policies import Backoff
from .rng import Rng
from .stats import ClientStats
from .transport import Closed, Endpoint, Rejected, WsClient

CONNECT_TIMEOUT_S: Final = 10.0  # a dial (TCP + TLS + upgrade) that takes longer failed
DEAD_AFTER_HEARTBEATS: Final = 3  # nothing received for this many intervals: peer is dead
_DROP_CODE: Final = 4001  # recorded for a client-side drop fault (never sent)
GOODBYE_S: Final = 2.0  # seconds a leaving client waits for its last pong
DEAD_PEER_CODE: Final = 4002  # recorded when the server went silent (never sent)


class Dialect(enum.StrEnum):
    V1 = "v1"
    SEED = "seed"


@attrs.frozen(kw_only=True)
class ClientPlan:
    """Everything one simulated client needs, decided by the swarm before the run."""

    index: int
    rooms: tuple[int, ...]  # room indices (membership)
    room_names: tuple[str, ...]  # their wire names, same order
    endpoint: Endpoint
    token: str | None
    explicit_join: bool  # v1 without minted tokens: send `join` for each room
    dialect: Dialect
    run_id: str
    heartbeat_s: float | None
    outbox: bool
    resync: bool


@attrs.define(eq=False)
class _Pending:
    seq: int
    room: int
    intended_ns: int
    text: str
    written: bool = False


@attrs.define(eq=False)
class _RoomSync:
    top: int = 0  # highest seq received live
    resync_floor: int | None = None  # top at reconnect while a re-sync is running
    live_during_resync: set[int] = attrs.field(factory=set)


@attrs.define(eq=False)
class _Wake:
    """What the demux's handler tells a client's task: something to do, last data time."""

    event: trio.Event
    last: float  # trio time of the last read


# previous intended send time (None: the first) -> the next one, or None: no more sends
SendSchedule = Callable[[int | None], int | None]
SizeFn = Callable[[Rng], int]


class SimClient:
    """Runs until cancelled; `drop()` injects a client-side connection loss."""

    __slots__ = (
        "_backoff",
        "_backoff_wake",
        "_clock",
        "_conn",
        "_demux",
        "_drop_scope",
        "_joined_once",
        "_leaving",
        "_ledger",
        "_left_at",
        "_outbox",
        "_pacer",
        "_pacing",
        "_ping_owed",
        "_plan",
        "_prefix",
        "_requests",
        "_rng",
        "_room_index",
        "_schedule",
        "_sending_done",
        "_seq",
        "_size",
        "_stats",
        "_sync",
        "_unacked",
        "_writer",
        "connected",
    )

    def __init__(
        self,
        plan: ClientPlan,
        *,
        ledger: Recorder,
        stats: ClientStats,
        clock: RunClock,
        backoff: Backoff,
        rng: Rng,
        schedule: SendSchedule,
        size: SizeFn,
        first_seq: int = 1,
        demux: Demux | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self._plan = plan
        self._prefix = sys.intern(run_prefix(plan.run_id))  # one string for every client
        self._demux = demux  # None: this client reads in its own task
        self._pacer = pacer  # None: `run` starts one of its own (tests, single clients)
        self._ledger = ledger
        self._stats = stats
        self._clock = clock
        self._backoff = backoff
        self._rng = rng
        self._schedule = schedule
        self._size = size
        self._conn: WsClient | None = None
        # Lists, not deques: short, and an idle client should not carry two 600-byte blocks.
        self._outbox: list[_Pending] = []  # not yet written (v1 and seed)
        self._unacked: dict[int, _Pending] = {}  # v1: written, waiting for `ack`
        self._seq = first_seq - 1  # seqs (and so message ids) run on across arrivals
        self._sync = {name: _RoomSync() for name in plan.room_names}
        self._room_index = dict(zip(plan.room_names, plan.rooms, strict=True))
        self._joined_once: set[str] = set()
        self._requests: list[str] = []  # frames to send after handling a batch
        self._drop_scope: trio.CancelScope | None = None
        self._sending_done = False
        self._pacing = False  # the pacer calls this client (from the first connect to the end)
        self._writer: WsClient | None = None  # the connection a writer task is draining
        self._ping_owed = False  # a heartbeat found the socket full: the writer sends it
        # Plain flags and an event only while one is awaited: an idle client should not
        # carry trio.Events (each holds a 216-byte set) it does not wait on.
        self._leaving = False
        self._backoff_wake: trio.Event | None = None  # set by leave() during a back-off
        self._left_at: int | None = None
        self.connected = trio.Event()  # set on the first successful connect

    @property
    def index(self) -> int:
        return self._plan.index

    @property
    def backlog(self) -> int:
        """Messages scheduled but never written (the outbox)."""
        return len(self._outbox)

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    def drop(self) -> bool:
        """Abort the current connection as a network fault would. False if not connected."""
        if self._drop_scope is None:
            return False
        self._drop_scope.cancel()
        return True

    def stop_sending(self) -> None:
        self._sending_done = True

    def leave(self, *, grace_s: float = 0.0) -> None:
        """Leave for good: stop sending, say goodbye, close with 1000, do not reconnect.

        Membership ends `grace_s` before now: messages intended in that last stretch may
        still be on their way through the server when this client says goodbye, so they
        are not owed to it (a departure mid-run is not loss). The goodbye (a ping round
        trip, v1) first takes in what the server had already fanned out to this client.
        """
        if self._leaving:
            return
        self._left_at = self._clock.now_ns() - int(grace_s * 1e9)
        self._sending_done = True
        self._leaving = True
        if self._backoff_wake is not None:
            self._backoff_wake.set()
        if self._drop_scope is not None:
            self._drop_scope.cancel()

    async def run(self, on_end: Callable[[SimClient], None] | None = None) -> None:
        """Connect, serve and reconnect until `leave()` (or cancelled), then `on_end(self)`.

        This is the client's one task (no nursery, no wrapper task: an idle client is
        this coroutine chain and its connection); sends and heartbeats come from the pacer.
        """
        if self._pacer is None:
            await self._run_with_own_pacer(on_end)
            return
        try:
            plan = self._plan
            while True:
                self._backoff.on_dial()
                conn: WsClient | None = None
                try:
                    with trio.fail_after(CONNECT_TIMEOUT_S):
                        conn = await WsClient.connect(plan.endpoint, target=self._target())
                except Rejected as exc:
                    self._stats.refused[exc.status] += 1
                    self._stats.last_error = str(exc)
                    self._ledger.error(self._clock.now_ns())
                except (Closed, OSError, trio.TooSlowError) as exc:
                    self._stats.connect_failures += 1
                    self._stats.last_error = f"{type(exc).__name__}: {exc}"
                    self._ledger.error(self._clock.now_ns())
                if conn is not None:
                    now = self._clock.now_ns()
                    self._backoff.on_connected()
                    self._ledger.connected(plan.index, now)
                    if not self.connected.is_set():
                        self.connected.set()
                        self._start_pacing(now)
                    code = await self._serve(conn)
                    self._ledger.disconnected(plan.index, self._clock.now_ns())
                    if self._leaving:
                        break
                    self._stats.closes[code] += 1
                delay = self._backoff.next_delay()
                if delay is None or self._leaving:
                    break
                wake = self._backoff_wake = trio.Event()
                with trio.move_on_after(delay):
                    await wake.wait()
                self._backoff_wake = None
                if wake.is_set():  # leave() during the back-off
                    break
            until = self._left_at if self._left_at is not None else self._clock.now_ns()
            for name in self._joined_once:
                self._ledger.member_until(plan.index, self._room_index[name], until)
        finally:
            self._pacing = False  # calls still in the shared pacer's heap are ignored
            if on_end is not None:
                on_end(self)

    async def _run_with_own_pacer(self, on_end: Callable[[SimClient], None] | None) -> None:
        async with trio.open_nursery() as nursery:
            self._pacer = Pacer(self._clock, precise=False)
            nursery.start_soon(self._pacer.run)
            try:
                await self.run(on_end)
            finally:
                nursery.cancel_scope.cancel()

    def _target(self) -> str | None:
        """The request target with the token (made per dial, not kept: ~200 bytes)."""
        plan = self._plan
        return plan.endpoint.with_query(token=plan.token) if plan.token else None

    # --- connections ---------------------------------------------------------------------

    async def _serve(self, conn: WsClient) -> int:
        """Use one connection until it ends; returns its close code."""
        code = _DROP_CODE
        with trio.CancelScope() as self._drop_scope:
            try:
                await self._open(conn)
                await self._read(conn)
            except Closed as exc:
                code = exc.code
        self._drop_scope = None
        self._conn = None
        if self._leaving and code == _DROP_CODE:
            await self._goodbye(conn)
            await conn.close(1000, "leaving")
        else:
            await conn.abort()
        if self._plan.outbox:
            for pending in sorted(self._unacked.values(), key=lambda p: p.seq, reverse=True):
                self._outbox.insert(0, pending)  # replay unacked first, in order
        self._unacked.clear()
        return code

    async def _goodbye(self, conn: WsClient) -> None:
        """Read until the answer to a last ping (bounded): what the server sent before it
        is delivered before the pong, on a v1 server."""
        if self._plan.dialect is not Dialect.V1:
            return
        mark = f"bye-{self._plan.index}"
        with trio.move_on_after(GOODBYE_S):
            try:
                await conn.send_text(orjson.dumps({"type": "ping", "ts": mark}).decode())
                while True:
                    batch = await conn.receive_batch()
                    self._handle(batch)
                    if any(mark in text and '"pong"' in text for text in batch):
                        return
            except Closed:
                return

    async def _open(self, conn: WsClient) -> None:
        plan = self._plan
        if plan.dialect is Dialect.V1:
            for name in plan.room_names:
                sync = self._sync[name]
                since = sync.top if (plan.resync and name in self._joined_once) else None
                if since is not None:
                    sync.resync_floor = since
                    sync.live_during_resync.clear()
                if since is not None or plan.explicit_join:
                    frame: dict[str, Any] = {"type": "join", "room": name}
                    if since is not None:
                        frame["since"] = since
                    await conn.send_text(orjson.dumps(frame).decode())
        # Replay the outbox in order; what the pacer adds meanwhile is sent too.
        while self._outbox:
            pending = self._outbox.pop(0)
            await self._write(conn, pending)
        self._conn = conn

    async def _write(self, conn: WsClient, pending: _Pending) -> None:
        plan = self._plan
        if plan.dialect is Dialect.V1:
            self._unacked[pending.seq] = pending
        await conn.send_text(pending.text)
        if not pending.written:
            pending.written = True
            self._ledger.sent(plan.index, pending.seq, pending.room, pending.intended_ns)

    # --- sending (called by the pacer; nothing here waits) ------------------------------

    def _start_pacing(self, now_ns: int) -> None:
        """The schedule starts with the first connection; heartbeats go on until the end."""
        pacer = self._pacer
        assert pacer is not None
        self._pacing = True
        first = self._schedule(None)
        if first is not None:
            pacer.at(first, self._send_due)
        heartbeat = self._plan.heartbeat_s
        if heartbeat:
            pacer.at(now_ns + int(heartbeat * 1e9), self._ping_due)

    def _send_due(self, intended_ns: int) -> None:
        if not self._pacing or self._sending_done:
            return
        self._send_one(intended_ns)
        following = self._schedule(intended_ns)
        if following is not None:
            assert self._pacer is not None
            self._pacer.at(following, self._send_due)

    def _ping_due(self, due_ns: int) -> None:
        if not self._pacing:
            return
        self._ping()
        heartbeat = self._plan.heartbeat_s
        assert heartbeat
        assert self._pacer is not None
        self._pacer.at(due_ns + int(heartbeat * 1e9), self._ping_due)

    def _send_one(self, intended_ns: int) -> None:
        plan = self._plan
        self._seq += 1
        slot = self._rng.randrange(len(plan.rooms))
        room, name = plan.rooms[slot], plan.room_names[slot]
        text = encode_text(
            plan.run_id, plan.index, self._seq, room, intended_ns, self._size(self._rng)
        )
        msg_id = f"{plan.run_id}-{plan.index}-{self._seq}"
        frame: dict[str, Any] = {"id": msg_id, "room": name, "text": text}
        if plan.dialect is Dialect.V1:
            frame = {"type": "message", **frame}
        else:  # the seed's ChatMessage.toJson(), senderId and sentAt included
            frame["senderId"] = f"user{plan.index}"
            frame["sentAt"] = _iso(intended_ns)
        pending = _Pending(
            seq=self._seq, room=room, intended_ns=intended_ns, text=orjson.dumps(frame).decode()
        )
        conn = self._conn
        if conn is None:  # disconnected, or the connection loop is replaying the outbox
            if plan.outbox:
                self._outbox.append(pending)
            else:
                self._stats.unsent += 1
            return
        if self._outbox or self._writer is not None:
            self._outbox.append(pending)  # behind what the writer task still has to send
        else:
            try:
                if conn.send_text_nowait(pending.text):
                    self._written(pending)
                else:
                    self._outbox.append(pending)  # socket full (or TLS): the writer sends it
            except Closed:
                if plan.outbox:
                    self._outbox.append(pending)  # replayed on the next connection
                else:
                    self._stats.unsent += 1
                return  # the connection loop sees the loss on its side
        if self._outbox or conn.backlogged:
            self._start_writer(conn)

    def _written(self, pending: _Pending) -> None:
        """`pending` is on the wire (or in the connection's backlog, which goes first)."""
        if self._plan.dialect is Dialect.V1:
            self._unacked[pending.seq] = pending
        if not pending.written:
            pending.written = True
            self._ledger.sent(self._plan.index, pending.seq, pending.room, pending.intended_ns)

    def _ping(self) -> None:
        conn = self._conn
        if conn is None:
            return
        if self._writer is not None:
            self._ping_owed = True
            return
        try:
            if not conn.send_text_nowait(self._ping_text()):
                self._ping_owed = True
                self._start_writer(conn)
                return
        except Closed:
            return
        self._stats.pings += 1
        if conn.backlogged:
            self._start_writer(conn)

    def _ping_text(self) -> str:
        return orjson.dumps({"type": "ping", "ts": _iso(self._clock.now_ns())}).decode()

    def _start_writer(self, conn: WsClient) -> None:
        if self._writer is None:
            self._writer = conn
            assert self._pacer is not None
            self._pacer.start_soon(self._write_backlog, conn)

    async def _write_backlog(self, conn: WsClient) -> None:
        """While the socket buffer is full: send the queue in order, waiting for room.

        Ends when the queue is empty or the connection is no longer current (the
        connection loop replays what is left on the next one)."""
        pending: _Pending | None = None
        try:
            await conn.flush()
            while self._conn is conn:  # what the pacer queues meanwhile is sent too
                if self._outbox:
                    pending = self._outbox.pop(0)
                    await self._write(conn, pending)
                    pending = None
                elif self._ping_owed:
                    self._ping_owed = False
                    await conn.send_text(self._ping_text())
                    self._stats.pings += 1
                else:
                    break
        except Closed:
            if pending is not None and not self._known(pending):
                if self._plan.outbox:
                    bisect.insort(self._outbox, pending, key=lambda p: p.seq)
                else:
                    self._stats.unsent += 1
        finally:
            self._writer = None
        if self._conn is not conn and not self._plan.outbox:
            self._stats.unsent += len(self._outbox)  # queued behind a full socket, now lost
            self._outbox.clear()
        elif self._conn is not None and self._conn is not conn and self._outbox:
            self._start_writer(self._conn)  # queued for the new connection meanwhile

    def _known(self, pending: _Pending) -> bool:
        """Already set for a replay: waiting for its ack, or back in the outbox."""
        return self._unacked.get(pending.seq) is pending or any(p is pending for p in self._outbox)

    # --- receiving -----------------------------------------------------------------------

    async def _read(self, conn: WsClient) -> None:
        heartbeat = self._plan.heartbeat_s
        dead_after = heartbeat * DEAD_AFTER_HEARTBEATS if heartbeat else float("inf")
        if self._demux is not None and conn.fileno() >= 0:
            await self._read_demuxed(conn, self._demux, dead_after)
            return
        while True:
            with trio.move_on_after(dead_after) as quiet:
                batch = await conn.receive_batch()
            if quiet.cancelled_caught:
                self._stats.dead_peers += 1
                raise Closed(DEAD_PEER_CODE, "nothing from the server: dead peer")
            self._handle(batch)
            while self._requests:
                await conn.send_text(self._requests.pop(0))

    async def _read_demuxed(self, conn: WsClient, demux: Demux, dead_after: float) -> None:
        """The demux reads and accounts (`on_readable`, no task switch per delivery); this
        task answers control frames, sends follow-up requests and watches for silence."""
        state = _Wake(event=trio.Event(), last=trio.current_time())
        fd = conn.fileno()

        def on_readable() -> None:
            texts = conn.read_nowait()
            state.last = demux.now
            if texts:
                self._handle(texts)
            if conn.needs_attention or self._requests:
                if conn.done_reading:
                    demux.remove(fd, on_readable)  # before anyone closes the socket
                state.event.set()

        self._handle(conn.take_early())
        demux.add(fd, on_readable)
        try:
            while True:
                with trio.move_on_at(state.last + dead_after):
                    await state.event.wait()
                if not state.event.is_set():
                    if trio.current_time() < state.last + dead_after:
                        continue  # data came while the timer was running
                    self._stats.dead_peers += 1
                    raise Closed(DEAD_PEER_CODE, "nothing from the server: dead peer")
                state.event = trio.Event()
                await conn.attend()
                while self._requests:
                    await conn.send_text(self._requests.pop(0))
        finally:
            demux.remove(fd, on_readable)

    def _handle(self, batch: list[str]) -> None:
        for text in batch:
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                self._stats.bad_frames += 1
                continue
            if not isinstance(obj, dict):
                self._stats.bad_frames += 1
                continue
            kind = obj.get("type")
            if kind == "message" or (kind is None and "text" in obj):
                self._receipt(obj, live=True)
            elif kind == "ack":
                self._ack(obj)
            elif kind == "history":
                self._history(obj)
            elif kind == "joined":
                self._joined(obj)
            elif kind == "error":
                self._stats.errors[str(obj.get("code"))] += 1
                self._ledger.error(self._clock.now_ns())
            # welcome, pong, presence, typing and relayed pings need no accounting

    def _receipt(self, obj: dict[str, Any], *, live: bool) -> None:
        # Per delivery: kept flat (no `Correlation`, one branch for the common case).
        text = obj.get("text")
        fields = decode_fields(text, self._prefix) if type(text) is str else None
        if fields is None:
            self._stats.foreign_messages += 1
            return
        seq = obj.get("seq")
        name = obj.get("room")
        sync = self._sync.get(name) if type(name) is str else None
        if sync is not None and type(seq) is int:
            if sync.resync_floor is not None:  # a re-sync is running (after a reconnect)
                if live:
                    sync.live_during_resync.add(seq)
                elif seq <= sync.resync_floor or seq in sync.live_during_resync:
                    return  # re-sync overlap: this client already had it
            if seq > sync.top:
                sync.top = seq
        sender, msg_seq, room, intended_ns = fields
        self._ledger.received(
            self._plan.index, sender, msg_seq, room, intended_ns, self._clock.now_ns()
        )

    def _ack(self, obj: dict[str, Any]) -> None:
        msg_id = obj.get("id")
        if not isinstance(msg_id, str):
            return
        _, _, tail = msg_id.rpartition("-")
        if not tail.isdigit():
            return
        pending = self._unacked.pop(int(tail), None)
        if pending is not None:
            self._ledger.acked(
                self._plan.index, pending.seq, pending.intended_ns, self._clock.now_ns()
            )
        elif obj.get("duplicate"):
            self._stats.duplicate_acks += 1

    def _joined(self, obj: dict[str, Any]) -> None:
        name = obj.get("room")
        if not isinstance(name, str) or name not in self._room_index:
            return
        if name not in self._joined_once:
            self._joined_once.add(name)
            self._ledger.member_since(
                self._plan.index, self._room_index[name], self._clock.now_ns()
            )
            seq = obj.get("seq")
            if type(seq) is int:
                self._sync[name].top = seq

    def _history(self, obj: dict[str, Any]) -> None:
        name = obj.get("room")
        messages = obj.get("messages")
        if not isinstance(name, str) or not isinstance(messages, list):
            return
        for message in messages:
            if isinstance(message, dict):
                self._receipt({**message, "room": name}, live=False)
        sync = self._sync.get(name)
        if sync is None:
            return
        if obj.get("hasMore") and messages and self._conn is not None:
            last = messages[-1].get("seq") if isinstance(messages[-1], dict) else None
            if type(last) is int:
                self._stats.history_pages += 1
                frame = {"type": "history", "room": name, "after": last}
                self._requests.append(orjson.dumps(frame).decode())
                return
        sync.resync_floor = None
        sync.live_during_resync.clear()


def _iso(run_ns: int) -> str:
    """The run clock is the wall clock at the run's start plus monotonic time."""
    return (
        datetime.fromtimestamp(run_ns / 1e9, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
