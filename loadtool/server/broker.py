"""Cluster mode's edge to Redis (coredis, which runs on anyio and so under trio).

Every atomic step is one Lua script, so no node ever sees half of another's work:

- `send`: dedupe check, seq increment and stream append of one message (one per
  submission, pipelined per batch: one round trip for everything accepted meanwhile).
- `follow`: a room's head and the last id of its event stream, read together.
- `presence`: a user's first/last connection on a node, counted per room across nodes;
  publishes `presence` when the user's first node joins or its last one leaves.
- `reset_node`: forget a dead node's presence (publishing the `left` events it owed).

Keys (one Redis, db from the URL; docs/scaling.md has the table):
`loadtool:{ROOM}:head` (INCR counter), `loadtool:{ROOM}:log` (stream, entry id `SEQ-0`),
`loadtool:{ROOM}:ev` (presence/typing stream, capped), `loadtool:{ROOM}:present:USER` (set
of node ids), `loadtool:id:USER:ID` (dedupe, expires after the window),
`loadtool:node:NODE:alive|presence|wake` and `loadtool:nodes`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, Literal

import attrs
import coredis
import coredis.exceptions
import trio
from coredis.tokens import PureToken

from .shared import (
    Accepted,
    Appended,
    Barrier,
    Duplicate,
    Outcome,
    Outgoing,
    PresenceChange,
    RoomEvent,
    Submission,
    TooLong,
)
from .storage import StorageError, StoredMessage

PREFIX: Final = "loadtool:"
EVENTS_KEPT: Final = 1000  # presence/typing entries kept per room (approximate, MAXLEN ~)
READ_COUNT: Final = 1000  # entries per stream per XREAD
CONNECT_TIMEOUT_S: Final = 5.0

# Errors that mean "Redis is not reachable right now" (retry with backoff), as opposed to
# a refused command, which is a bug and stops the node.
DOWN: Final = (coredis.exceptions.ConnectionError, TimeoutError, OSError)

_SEND: Final = """
local seen = redis.call('GET', KEYS[1])
if seen then
  local seq, nonce, room = string.match(seen, '^(%d+) (%S+) (.*)$')
  if nonce == ARGV[7] then return {1, tonumber(seq)} end
  return {2, tonumber(seq), room}
end
if ARGV[9] == '1' then return {3} end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], seq .. '-0', 'i', ARGV[2], 'u', ARGV[3], 't', ARGV[4],
  's', ARGV[5], 'r', ARGV[6], 'n', ARGV[7])
redis.call('SET', KEYS[1], seq .. ' ' .. ARGV[7] .. ' ' .. ARGV[1], 'PX', ARGV[8])
return {1, seq}
"""

_FOLLOW: Final = """
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local ev = '0-0'
if #last > 0 then ev = last[1][1] end
return {head, ev}
"""

_PRESENCE: Final = """
local function event(status)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
    'o', ARGV[1], 'u', ARGV[2], 'k', 'presence', 'v', status)
end
if ARGV[3] == '1' then
  if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[4])
    if redis.call('SCARD', KEYS[1]) == 1 then event('joined') end
  end
else
  if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then
    redis.call('SREM', KEYS[2], ARGV[4])
    if redis.call('SCARD', KEYS[1]) == 0 then event('left') end
  end
end
return 0
"""

_RESET_NODE: Final = """
local members = redis.call('SMEMBERS', KEYS[1])
for _, m in ipairs(members) do
  local room, user = string.match(m, '^(%S+) (%S+)$')
  local set = ARGV[2] .. '{' .. room .. '}:present:' .. user
  if redis.call('SREM', set, ARGV[1]) == 1 and redis.call('SCARD', set) == 0 then
    redis.call('XADD', ARGV[2] .. '{' .. room .. '}:ev', 'MAXLEN', '~', ARGV[3], '*',
      'o', ARGV[1], 'u', user, 'k', 'presence', 'v', 'left')
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return #members
"""


class BrokerUnreachable(Exception):
    """Redis cannot be reached (at start-up: `loadtool serve` exits 3 with this text)."""


def room_key(room: str, part: str) -> str:
    return f"{PREFIX}{{{room}}}:{part}"


def node_key(node: str, part: str) -> str:
    return f"{PREFIX}node:{node}:{part}"


@attrs.frozen(kw_only=True)
class Read:
    """One XREAD's worth: new log entries and events per room, and the node's wake cursor."""

    entries: dict[str, list[Appended]]
    events: list[RoomEvent]
    event_cursors: dict[str, str]  # room -> id of the last event read
    wake_cursor: str


class Broker:
    """One node's Redis connection pool and the scripts above. Use `Broker.connect`."""

    def __init__(self, client: coredis.Redis[str], url: str, node_id: str) -> None:
        self._client = client
        self.url = url
        self.node_id = node_id
        self._send = client.register_script(_SEND)
        self._follow = client.register_script(_FOLLOW)
        self._presence = client.register_script(_PRESENCE)
        self._reset = client.register_script(_RESET_NODE)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, node_id: str) -> AsyncIterator[Broker]:
        """Connect and PING once.

        Raises:
            BrokerUnreachable: no answer within CONNECT_TIMEOUT_S, or the URL is refused.
        """
        try:
            client: coredis.Redis[str] = coredis.Redis.from_url(
                url,
                decode_responses=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                verify_version=False,
            )
        except ValueError as exc:
            raise BrokerUnreachable(f"invalid Redis URL {url!r}: {exc}") from None
        try:
            async with client:
                try:
                    with trio.fail_after(CONNECT_TIMEOUT_S):
                        await client.ping()
                except (*DOWN, trio.TooSlowError) as exc:
                    raise BrokerUnreachable(f"cannot reach Redis at {url}: {exc}") from None
                yield cls(client, url, node_id)
        except BaseExceptionGroup as group:  # the pool's task group wraps what escapes it
            unreachable = group.subgroup(BrokerUnreachable)
            if unreachable is not None and unreachable.exceptions:
                raise unreachable.exceptions[0] from None
            raise

    # --- messages -----------------------------------------------------------------------

    async def submit(
        self, batch: Sequence[Outgoing], window_ms: int
    ) -> list[Outcome | dict[str, int] | None]:
        """Send messages (the send script), presence changes and typing, in order, in one
        round trip; an `Outcome` per message, the heads of a `Barrier`'s rooms, None for
        the rest.

        Safe to retry after a failure: a message that was stored answers `Accepted` again
        (its nonce is remembered with its id), never a second seq; presence changes are
        set operations; a typing notice may repeat, which is harmless.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            requests: list[Any] = [self._queue(pipe, item, window_ms) for item in batch]
        results: list[Outcome | dict[str, int] | None] = []
        for item, request in zip(batch, requests, strict=True):
            answer = await request
            if isinstance(item, Submission):
                results.append(_outcome(answer))
            elif isinstance(item, Barrier):
                rooms = list(item.heads)
                results.append({r: int(h or 0) for r, h in zip(rooms, answer, strict=True)})
            else:
                results.append(None)
        return results

    def _queue(self, pipe: Any, item: Outgoing, window_ms: int) -> Any:
        if isinstance(item, Submission):
            m = item.message
            return self._send(
                keys=[
                    f"{PREFIX}id:{m.sender_id}:{m.id}",
                    room_key(m.room, "head"),
                    room_key(m.room, "log"),
                ],
                args=[
                    m.room,
                    m.id,
                    m.sender_id,
                    m.text,
                    m.sent_at,
                    repr(m.received_at),
                    item.nonce,
                    window_ms,
                    "1" if item.too_long else "0",
                ],
                client=pipe,
            )
        if isinstance(item, Barrier):
            return pipe.mget([room_key(room, "head") for room in item.heads])
        if isinstance(item, PresenceChange):
            return self._presence(
                keys=[
                    room_key(item.room, f"present:{item.user}"),
                    node_key(self.node_id, "presence"),
                    room_key(item.room, "ev"),
                ],
                args=[
                    self.node_id,
                    item.user,
                    "1" if item.joined else "0",
                    f"{item.room} {item.user}",
                    EVENTS_KEPT,
                ],
                client=pipe,
            )
        return pipe.xadd(
            room_key(item.room, "ev"),
            {"o": item.origin, "u": item.user, "k": "typing", "v": item.value},
            trim_strategy=PureToken.MAXLEN,
            threshold=EVENTS_KEPT,
            trim_operator=PureToken.APPROXIMATELY,
        )

    async def follow(self, rooms: Sequence[str]) -> list[tuple[int, str]]:
        """(head, last event id) of each room."""
        async with self._client.pipeline(transaction=False) as pipe:
            requests: list[Any] = [
                self._follow(keys=[room_key(r, "head"), room_key(r, "ev")], client=pipe)
                for r in rooms
            ]
        answers = [await request for request in requests]
        return [(int(head), str(ev)) for head, ev in (_pair(a) for a in answers)]

    async def page(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """A history page from the room's stream (the semantics of `SqliteStore.page`).

        Raises:
            StorageError: Redis is unreachable (the client gets error `unavailable`).
        """
        try:
            return await self._page(room, before=before, after=after, limit=limit)
        except DOWN as exc:
            raise StorageError(f"cannot read history from Redis at {self.url}: {exc}") from None

    async def _page(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        key = room_key(room, "log")
        if after is not None:
            found = await self._client.xrange(key, f"{after + 1}-0", "+", count=limit + 1)
            rows = [_stored(room, e) for e in found]
            return rows[:limit], len(rows) > limit
        if before is not None:
            if before <= 1:
                return [], False
            found = await self._client.xrevrange(key, f"{before - 1}-0", "-", count=limit + 1)
        else:
            found = await self._client.xrevrange(key, "+", "-", count=limit + 1)
        rows = [_stored(room, e) for e in found]
        return rows[:limit][::-1], len(rows) > limit

    async def read(
        self,
        rooms: Mapping[str, int],
        event_cursors: Mapping[str, str],
        wake_cursor: str,
        block_ms: int,
    ) -> Read:
        """Block until a followed room's log or events grow (or this node is woken)."""
        streams: dict[str, str] = {node_key(self.node_id, "wake"): wake_cursor}
        owner: dict[str, tuple[str, bool]] = {}
        for room, released in rooms.items():
            log, ev = room_key(room, "log"), room_key(room, "ev")
            streams[log] = f"{released}-0"
            streams[ev] = event_cursors.get(room, "$")
            owner[log], owner[ev] = (room, True), (room, False)
        answer = await self._client.xread(streams, count=READ_COUNT, block=block_ms)
        entries: dict[str, list[Appended]] = {}
        events: list[RoomEvent] = []
        cursors: dict[str, str] = {}
        for key, found in (answer or {}).items():
            if key not in owner:
                wake_cursor = str(found[-1].identifier)
                continue
            room, is_log = owner[key]
            if is_log:
                entries[room] = [
                    Appended(message=_stored(room, e), nonce=str(e.field_values["n"]))
                    for e in found
                ]
            else:
                cursors[room] = str(found[-1].identifier)
                events.extend(_event(room, e) for e in found)
        return Read(entries=entries, events=events, event_cursors=cursors, wake_cursor=wake_cursor)

    async def wake(self) -> None:
        """Interrupt this node's blocked `read` (a room was followed: read its keys too)."""
        await self._client.xadd(
            node_key(self.node_id, "wake"), {"w": "1"}, trim_strategy=PureToken.MAXLEN, threshold=10
        )

    # --- presence, typing and liveness --------------------------------------------------

    async def heartbeat(self, ttl_ms: int) -> bool:
        """Mark this node alive for `ttl_ms`. True if it had been declared dead meanwhile
        (its presence was reset by another node: the caller publishes it again)."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(node_key(self.node_id, "alive"), "1", px=ttl_ms)
            added = pipe.sadd(f"{PREFIX}nodes", [self.node_id])
        return bool(await added)

    async def reap(self, *, include_self: bool = False) -> list[str]:
        """Reset the presence of every registered node that is no longer alive."""
        nodes = await self._client.smembers(f"{PREFIX}nodes")
        reaped: list[str] = []
        for node in sorted(nodes):
            if node == self.node_id and not include_self:
                continue
            if node != self.node_id and await self._client.exists([node_key(node, "alive")]):
                continue
            await self.reset(node)
            reaped.append(node)
        return reaped

    async def reset(self, node: str) -> None:
        await self._reset(
            keys=[node_key(node, "presence"), f"{PREFIX}nodes"],
            args=[node, PREFIX, EVENTS_KEPT],
        )


def _pair(answer: Any) -> tuple[Any, Any]:
    return answer[0], answer[1]


def _outcome(answer: Any) -> Outcome:
    code = int(answer[0])
    if code == 1:
        return Accepted(seq=int(answer[1]))
    if code == 2:
        return Duplicate(room=str(answer[2]), seq=int(answer[1]))
    return TooLong()


def _stored(room: str, entry: Any) -> StoredMessage:
    fields = entry.field_values
    return StoredMessage(
        room=room,
        seq=int(str(entry.identifier).split("-", 1)[0]),
        id=str(fields["i"]),
        sender_id=str(fields["u"]),
        text=str(fields["t"]),
        sent_at=str(fields["s"]),
        received_at=float(fields["r"]),
    )


def _event(room: str, entry: Any) -> RoomEvent:
    fields = entry.field_values
    kind: Literal["presence", "typing"] = "typing" if fields["k"] == "typing" else "presence"
    return RoomEvent(
        room=room, origin=str(fields["o"]), user=str(fields["u"]), kind=kind, value=str(fields["v"])
    )
