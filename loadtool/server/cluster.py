"""Cluster mode's background tasks: the I/O between a node's `SharedHub` and Redis.

One task per flow, each with its own retry loop, so a slow flow never holds another up:

- submit: what the hub sends out, in order (messages through the send script, presence
  changes, typing, ping barriers), one pipeline per batch (group commit, one round trip);
- read: XREAD BLOCK on the streams of every followed room -> deliveries, presence, typing;
- follow: a room's head for joins that wait on it, then the re-sync pages they asked for;
- liveness: this node's heartbeat key, and the reaping of nodes whose key expired.

While Redis is unreachable every flow retries with capped exponential backoff; the node
holds new messages unacked (then refuses them with error `unavailable`), refuses new
connections, /healthz answers 503, and nothing is acked that Redis has not stored. A read
resumes from the last seq read, so nothing is skipped or repeated once Redis is back.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import trio

from .. import protocol as p
from .broker import DOWN, Broker
from .config import ServerConfig
from .hub import HistoryQuery, frame_bytes
from .metrics import Metrics
from .shared import Barrier, Outcome, Outgoing, SharedHub, Submission
from .storage import StorageError

log = logging.getLogger("loadtool.server")

_T = TypeVar("_T")

BLOCK_MS: Final = 2000  # one XREAD waits at most this long before it is reissued
BACKOFF_MIN_S: Final = 0.05
BACKOFF_MAX_S: Final = 2.0
HEARTBEAT_S: Final = 1.0  # a node refreshes its liveness key this often
NODE_TTL_MS: Final = 5000  # ...which expires after this long: then other nodes reap it


def default_node_id() -> str:
    """host-pid-random: unique per process, readable in logs."""
    host = "".join(c if c.isalnum() or c in "_.-" else "-" for c in socket.gethostname())[:32]
    return f"{host or 'node'}-{os.getpid()}-{secrets.token_hex(3)}"


class ClusterEdge:
    """Owns a node's `SharedHub` and runs its Redis flows (`run`, in a nursery)."""

    def __init__(
        self,
        config: ServerConfig,
        broker: Broker,
        *,
        clock: Callable[[], float],
        metrics: Metrics,
    ) -> None:
        self._config = config
        self._broker = broker
        self._metrics = metrics
        self._window_ms = max(1, round(config.limits.dedupe_window_s * 1000))
        self.hub = SharedHub(
            config.limits,
            node_id=broker.node_id,
            clock=clock,
            metrics=metrics,
            on_submit=self._wake_submit,
            on_follow=self._request_follow,
        )
        self.up = True
        metrics.redis_up = 1
        self._submit_ready = trio.Event()
        self._submit_lock = trio.Lock()
        self._follow_ready = trio.Event()
        self._to_follow: dict[str, None] = {}
        self._event_cursors: dict[str, str] = {}
        self._wake_cursor = "0-0"

    async def run(self) -> None:
        """The node's flows, until cancelled."""
        await self._retry("reset this node's presence", self._broker.reset, self.node_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._submit_loop)
            nursery.start_soon(self._read_loop)
            nursery.start_soon(self._follow_loop)
            nursery.start_soon(self._liveness_loop)

    @property
    def node_id(self) -> str:
        return self._broker.node_id

    async def flush(self) -> None:
        """Shutdown: store what was accepted so its acks go out, if Redis answers now.

        What Redis does not take is never acked: its senders replay it elsewhere (§9).
        """
        try:
            async with self._submit_lock:
                batch = self.hub.take_outgoing()
                if batch:
                    outcomes = await self._broker.submit(batch, self._window_ms)
                    self._settle(batch, outcomes)
        except DOWN as exc:
            log.warning(
                "redis unreachable at shutdown; unstored messages stay unacked",
                extra={"fields": {"url": self._broker.url, "error": str(exc)}},
            )

    # --- hub callbacks (never block) ------------------------------------------------------

    def _wake_submit(self) -> None:
        self._submit_ready.set()

    def _request_follow(self, room: str) -> None:
        self._to_follow[room] = None
        self._follow_ready.set()

    # --- flows ------------------------------------------------------------------------------

    async def _submit_loop(self) -> None:
        while True:
            await self._submit_ready.wait()
            self._submit_ready = trio.Event()
            await self._submit_batch()

    async def _submit_batch(self) -> None:
        async with self._submit_lock:
            batch = self.hub.take_outgoing()
            if not batch:
                return
            outcomes = await self._retry(
                "store messages", self._broker.submit, batch, self._window_ms
            )
            self._settle(batch, outcomes)

    def _settle(
        self, batch: list[Outgoing], outcomes: list[Outcome | dict[str, int] | None]
    ) -> None:
        for item, outcome in zip(batch, outcomes, strict=True):
            if isinstance(item, Submission) and outcome is not None:
                assert not isinstance(outcome, dict)
                self.hub.settle(item, outcome)
            elif isinstance(item, Barrier) and isinstance(outcome, dict):
                self.hub.reached(item, outcome)

    async def _read_loop(self) -> None:
        while True:
            rooms = self.hub.followed_rooms()
            cursors = {
                room: self._event_cursors[room] for room in rooms if room in self._event_cursors
            }
            self._event_cursors = cursors
            read = await self._retry(
                "read room streams", self._broker.read, rooms, cursors, self._wake_cursor, BLOCK_MS
            )
            self._wake_cursor = read.wake_cursor
            for room, cursor in read.event_cursors.items():
                self._advance(room, cursor)
            for room, entries in read.entries.items():
                self.hub.apply(room, entries)
            for event in read.events:
                self.hub.apply_event(event)

    async def _follow_loop(self) -> None:
        while True:
            await self._follow_ready.wait()
            self._follow_ready = trio.Event()
            rooms = list(self._to_follow)
            self._to_follow.clear()
            answers = await self._retry("follow rooms", self._broker.follow, rooms)
            for room, (_, event_cursor) in zip(rooms, answers, strict=True):
                self._event_cursors.pop(room, None)  # a cursor from an earlier follow is stale
                self._advance(room, event_cursor)
            # Room by room, each join's page before the next room's `joined` (§5.1: pages
            # in the order of the requests); the reader is woken to read the new rooms.
            for room, (head, _) in zip(rooms, answers, strict=True):
                queries = self.hub.followed(room, head)
                if queries:
                    await self._retry("wake the reader", self._broker.wake)
                for query in queries:
                    await self._answer(query)
            await self._retry("wake the reader", self._broker.wake)

    def _advance(self, room: str, cursor: str) -> None:
        """Move a room's event cursor forward only (a late read cannot replay events)."""
        known = self._event_cursors.get(room)
        if known is None or _stream_id(cursor) > _stream_id(known):
            self._event_cursors[room] = cursor

    async def _answer(self, query: HistoryQuery) -> None:
        try:
            messages, has_more = await self._broker.page(
                query.room, before=query.before, after=query.after, limit=query.limit
            )
        except StorageError as exc:
            log.warning("history read failed", extra={"fields": {"error": str(exc)}})
            self.hub.error(
                query.peer,
                p.ProtocolError(
                    p.ErrorCode.UNAVAILABLE, "history is unavailable right now", room=query.room
                ),
            )
            return
        page = p.HistoryPage(
            room=query.room, messages=[m.to_frame() for m in messages], has_more=has_more
        )
        query.peer.deliver(frame_bytes(page))

    async def _liveness_loop(self) -> None:
        first = True
        while True:
            was_reaped = await self._retry("heartbeat", self._broker.heartbeat, NODE_TTL_MS)
            if was_reaped and not first:
                # Declared dead while paused or cut off: publish our presence again.
                log.warning("node was reaped; republishing its presence")
                self.hub.republish_presence()
            first = False
            reaped = await self._retry("reap dead nodes", self._broker.reap)
            for node in reaped:
                log.info("reaped a dead node", extra={"fields": {"node": node}})
            await trio.sleep(HEARTBEAT_S)

    # --- Redis up and down ------------------------------------------------------------------

    async def _retry(self, what: str, call: Callable[..., Awaitable[_T]], *args: object) -> _T:
        """`call(*args)` until it succeeds, backing off while Redis is unreachable."""
        delay = BACKOFF_MIN_S
        while True:
            try:
                result = await call(*args)
            except DOWN as exc:
                self._set_up(False, what, exc)
                await trio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self._set_up(True, what, None)
            return result

    def _set_up(self, up: bool, what: str, exc: BaseException | None) -> None:
        if up == self.up:
            return
        self.up = up
        self.hub.available = up
        self._metrics.redis_up = int(up)
        if up:
            self._metrics.redis_reconnects += 1
            log.info("redis reachable again", extra={"fields": {"url": self._broker.url}})
        else:
            log.warning(
                "redis unreachable",
                extra={"fields": {"url": self._broker.url, "during": what, "error": str(exc)}},
            )


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
