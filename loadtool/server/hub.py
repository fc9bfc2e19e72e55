"""The reference server's chat state, sans-IO: rooms, membership, seq, dedupe, history.

Why sans-IO: this is the executable spec of docs/protocol.md §4-§5, so it must be
testable without sockets and readable on its own. The I/O layer (`connection.py`) hands
it decoded frames and `Peer` objects; the hub answers by calling `Peer.deliver` with
ready-framed bytes and never awaits.

Durability (§9): an accepted message gets its seq at once, but its ack and deliveries
are *released* only when `release()` is called. In memory mode that happens at once; with
a file database the server's group-commit task calls it after the batch is on disk, so no
client ever sees a seq that a crash could take back.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any, Final, Literal, Protocol

import attrs
import orjson

from .. import protocol as p
from ..protocol._fields import MAX_TEXT_CHARS_HARD
from .config import Fault, Limits
from .metrics import Metrics
from .storage import Snapshot, StoredMessage
from .wsframe import text_frame


class Peer(Protocol):
    """What the hub needs of one client connection."""

    @property
    def grant(self) -> p.Grant: ...

    def deliver(self, wire: bytes) -> None:
        """Queue one framed message; never blocks (the queue policy is the peer's)."""


def frame_bytes(frame: p.ServerFrame) -> bytes:
    """A server frame, encoded and framed, ready for `Peer.deliver`."""
    return text_frame(p.encode(frame))


# The per-message frames are built from fields the server has already validated (the
# client's frame, the token's user id, the server's own seq and clock), straight to JSON:
# no frame object whose validators would check them again (docs/performance.md). The
# bytes equal `frame_bytes` of the frame classes (tests/server/test_hub_fast.py checks it).


def message_wire(stored: StoredMessage) -> bytes:
    """`frame_bytes(stored.to_frame())`, without re-validating what was stored."""
    return text_frame(
        orjson.dumps(
            {
                "type": "message",
                "id": stored.id,
                "room": stored.room,
                "senderId": stored.sender_id,
                "text": stored.text,
                "sentAt": stored.sent_at,
                "seq": stored.seq,
            }
        )
    )


def ack_wire(msg_id: str, room: str, seq: int, *, duplicate: bool = False) -> bytes:
    """`frame_bytes(p.Ack(...))` for an accepted message's id, room and seq."""
    return text_frame(
        orjson.dumps(
            {"type": "ack", "id": msg_id, "room": room, "seq": seq, "duplicate": duplicate}
        )
    )


_SIMPLE_MESSAGE_KEYS: Final = 4  # type, id, room, text: what a v1 client sends


class _IsoNow:
    """`p.utc_now_iso()` (millisecond precision, `Z`), with the date and time of day
    formatted once per second instead of once per message."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        second, milli = divmod(time.time_ns() // 1_000_000, 1000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{milli:03d}Z"


utc_now_iso: Final = _IsoNow()


@attrs.define(eq=False)
class PendingMessage:
    """An accepted message whose ack and deliveries wait for durable storage."""

    stored: StoredMessage
    sender: Peer
    duplicate_acks: list[Peer] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class HistoryQuery:
    """A history page the in-memory cache cannot answer: the I/O layer asks the store."""

    peer: Peer
    room: str
    before: int | None
    after: int | None
    limit: int


@attrs.define(eq=False)
class _Seen:
    room: str
    seq: int
    received_at: float
    pending: PendingMessage | None


@attrs.define(eq=False)
class _Room:
    name: str
    head: int = 0  # last seq assigned
    released: int = 0  # last seq whose ack and deliveries went out
    ring: deque[StoredMessage] = attrs.field(factory=deque)
    members: dict[Peer, None] = attrs.field(factory=dict)  # insertion-ordered set
    users: Counter[str] = attrs.field(factory=Counter)  # user id -> member connections
    # Cluster mode (shared.py): the head is known only once the room is followed in Redis;
    # joins wait for it. A single node always knows its rooms.
    following: bool = True
    waiting: list[tuple[Peer, int | None]] = attrs.field(factory=list)  # (peer, since)
    # seq -> (message, this node's submission or None), waiting for a smaller seq
    held: dict[int, tuple[StoredMessage, Any]] = attrs.field(factory=dict)
    read_to: int = 0  # the last seq read from the room's stream


class Hub:
    """All rooms of one server process. Single-threaded: call from one trio task at a time."""

    def __init__(
        self,
        limits: Limits,
        *,
        durable: bool,
        clock: Callable[[], float],
        metrics: Metrics,
        on_pending: Callable[[], None] = lambda: None,
        faults: frozenset[Fault] = frozenset(),
    ) -> None:
        self._limits = limits
        self._durable = durable
        self._clock = clock
        self._metrics = metrics
        self._on_pending = on_pending
        self._faults = faults  # deliberate violations, for the gate's own tests
        self._rooms: dict[str, _Room] = {}
        self._joined: dict[Peer, dict[str, None]] = {}  # peer -> its rooms, in join order
        self._user_connections: Counter[str] = Counter()
        self._seen: OrderedDict[tuple[str, str], _Seen] = OrderedDict()
        self._pending: list[PendingMessage] = []
        self._reserved = 0  # admitted upgrades whose 101 is still being sent

    # --- start-up and admission -------------------------------------------------------

    def restore(self, snapshot: Snapshot) -> None:
        """Continue seq numbering, history and dedupe from a store's start-up snapshot."""
        for name, head in snapshot.heads.items():
            room = self._room(name)
            room.head = room.released = head
            room.ring = deque(snapshot.recent.get(name, ()), maxlen=self._limits.history_cache)
        for stored in snapshot.dedupe:
            self._remember(stored, pending=None)

    def refuse_reason(self, user_id: str) -> HTTPStatus | None:
        """Why a new connection for `user_id` must be refused (§2.5), or None."""
        if len(self._joined) + self._reserved >= self._limits.max_connections:
            return HTTPStatus.SERVICE_UNAVAILABLE
        if self._user_connections[user_id] >= self._limits.max_connections_per_user:
            return HTTPStatus.TOO_MANY_REQUESTS
        return None

    @property
    def connections(self) -> int:
        return len(self._joined)

    # --- connection lifecycle ------------------------------------------------------------

    def reserve(self, user_id: str) -> None:
        """Hold a connection slot from the admission check until `connect` (or
        `unreserve` if the handshake fails), so concurrent upgrades cannot all pass it."""
        self._user_connections[user_id] += 1
        self._reserved += 1

    def unreserve(self, user_id: str) -> None:
        self._reserved -= 1
        self._drop_user_connection(user_id)

    def connect(self, peer: Peer, rooms: Sequence[str], *, reserved: bool = False) -> None:
        """Register a connection that has been sent `welcome`; join its connect-time rooms.

        `reserved`: the slot was taken by `reserve` at admission.
        """
        self._joined[peer] = {}
        if reserved:
            self._reserved -= 1
        else:
            self._user_connections[peer.grant.user_id] += 1
        for room in rooms:
            self._join(peer, room, since=None)

    def disconnect(self, peer: Peer) -> None:
        """Forget a closed connection: it leaves every room (presence `left` as due)."""
        rooms = self._joined.pop(peer, None)
        if rooms is None:
            return
        for room in rooms:
            self._leave(peer, room)
        self._drop_user_connection(peer.grant.user_id)

    def _drop_user_connection(self, user: str) -> None:
        self._user_connections[user] -= 1
        if self._user_connections[user] <= 0:
            del self._user_connections[user]

    # --- frames --------------------------------------------------------------------------

    def handle(self, peer: Peer, frame: p.ClientFrame) -> HistoryQuery | None:
        """Apply one client frame. Answers go out through `peer.deliver`.

        Returns a `HistoryQuery` when the answer needs the durable store.
        """
        self._metrics.frames_in[frame.TYPE] += 1
        match frame:
            case p.SendMessage(id=msg_id, room=room, text=text, sent_at=sent_at):
                self._post(peer, msg_id, room, text, sent_at)
            case p.Join(room=room, since=since):
                if self._may_join(peer, room):
                    return self._join(peer, room, since=since)
            case p.Leave(room=room):
                if room not in self._joined[peer]:
                    self._error(peer, p.ErrorCode.NOT_MEMBER, f"not in room {room!r}", room=room)
                else:
                    self._leave(peer, room)
                    peer.deliver(frame_bytes(p.Left(room=room)))
            case p.HistoryRequest():
                return self._history(peer, frame)
            case p.Ping(ts=ts):
                peer.deliver(frame_bytes(p.Pong(ts=ts)))
                if Fault.BROADCAST_PINGS in self._faults:
                    relayed = text_frame(p.encode(frame))
                    for name in self._joined[peer]:
                        for member in self._rooms[name].members:
                            if member is not peer:
                                member.deliver(relayed)
            case p.Typing(room=room, typing=typing):
                self._typing(peer, room, typing)
        return None

    def handle_simple(self, peer: Peer, obj: dict[str, Any]) -> bool:
        """The common frame, fast: a v1 `message` of exactly `type`, `id`, `room` and
        `text`, valid, to a room the peer is in. Applies it and returns True; returns
        False without doing anything for every other object, which then goes through
        `p.decode_object` and `handle` (so every error is still the codec's).
        """
        if len(obj) != _SIMPLE_MESSAGE_KEYS or obj.get("type") != "message":
            return False
        msg_id = obj.get("id")
        room = obj.get("room")
        text = obj.get("text")
        if (
            type(msg_id) is not str
            or type(room) is not str
            or type(text) is not str
            or not 0 < len(msg_id) <= p.MAX_ID_CHARS
            or len(text) > MAX_TEXT_CHARS_HARD
            or room not in self._joined[peer]  # a joined room's name was validated
            or not msg_id.isprintable()
        ):
            return False
        self._metrics.frames_in["message"] += 1
        self._post(peer, msg_id, room, text, None)
        return True

    def error(self, peer: Peer, exc: p.ProtocolError, *, retry_after_ms: int | None = None) -> None:
        """Answer a frame the codec or the connection refused with an `error` frame."""
        self._error(
            peer,
            exc.code,
            exc.message,
            frame_id=exc.frame_id,
            room=exc.room,
            retry_after_ms=retry_after_ms,
        )

    # --- durability ----------------------------------------------------------------------

    def take_pending(self) -> list[PendingMessage]:
        """The accepted messages awaiting storage, in acceptance order (group commit)."""
        batch, self._pending = self._pending, []
        return batch

    def release(self, batch: Iterable[PendingMessage]) -> None:
        """Send acks and deliveries of stored messages (§4.1 order: ack, then message)."""
        for pending in batch:
            stored = pending.stored
            seen = self._seen.get((stored.sender_id, stored.id))
            if seen is not None and seen.pending is pending:
                seen.pending = None
            room = self._room(stored.room)
            room.released = stored.seq
            room.ring.append(stored)
            pending.sender.deliver(ack_wire(stored.id, stored.room, stored.seq))
            if pending.duplicate_acks:
                again = ack_wire(stored.id, stored.room, stored.seq, duplicate=True)
                for peer in pending.duplicate_acks:
                    peer.deliver(again)
            wire = message_wire(stored)
            members = list(room.members) if self._faults else room.members
            if Fault.DROP_DELIVERY in self._faults:
                members = [m for m in members if m is pending.sender] + [
                    m for m in members if m is not pending.sender
                ][:-1]
            if Fault.DUPLICATE_DELIVERY in self._faults:
                members = [*members, *members]
            for member in members:
                member.deliver(wire)
            self._metrics.deliveries += len(members)

    # --- internals -----------------------------------------------------------------------

    def _room(self, name: str) -> _Room:
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = _Room(
                name=name, ring=deque(maxlen=self._limits.history_cache)
            )
        return room

    def _error(
        self,
        peer: Peer,
        code: p.ErrorCode,
        message: str,
        *,
        frame_id: str | None = None,
        room: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        self._metrics.errors[code.value] += 1
        frame = p.Error(
            code=code, message=message, id=frame_id, room=room, retry_after_ms=retry_after_ms
        )
        peer.deliver(frame_bytes(frame))

    def _post(
        self, peer: Peer, msg_id: str, room_name: str, text: str, sent_at: str | None
    ) -> None:
        """A chat message from `peer` (fields validated by the codec or `handle_simple`)."""
        user = peer.grant.user_id
        if room_name not in self._joined[peer]:
            self._error(
                peer,
                p.ErrorCode.NOT_MEMBER,
                f"join room {room_name!r} before sending to it",
                frame_id=msg_id,
                room=room_name,
            )
            return
        seen = self._seen.get((user, msg_id))
        if (
            seen is not None
            and seen.pending is None
            and seen.received_at < self._clock() - self._limits.dedupe_window_s
        ):
            seen = None  # outside the window: a new message that reuses an old id
        if seen is not None:
            self._metrics.duplicates += 1
            if seen.pending is not None:
                seen.pending.duplicate_acks.append(peer)
            else:
                peer.deliver(ack_wire(msg_id, seen.room, seen.seq, duplicate=True))
            return
        if len(text) > self._limits.max_text_chars and Fault.IGNORE_SIZE_LIMIT not in self._faults:
            self._error(
                peer,
                p.ErrorCode.TOO_LONG,
                f"text has {len(text)} characters; the limit is {self._limits.max_text_chars}",
                frame_id=msg_id,
                room=room_name,
            )
            return
        room = self._room(room_name)
        room.head += 2 if Fault.SKIP_SEQ in self._faults else 1
        now = self._clock()
        stored = StoredMessage(
            room=room_name,
            seq=room.head,
            id=msg_id,
            sender_id=user,
            text=text,
            sent_at=sent_at or utc_now_iso(),
            received_at=now,
        )
        pending = PendingMessage(stored=stored, sender=peer)
        self._remember(stored, pending=pending)
        self._metrics.messages_in += 1
        if self._durable:
            self._pending.append(pending)
            self._on_pending()
        else:
            self.release((pending,))

    def _remember(self, stored: StoredMessage, *, pending: PendingMessage | None) -> None:
        key = (stored.sender_id, stored.id)
        self._seen[key] = _Seen(
            room=stored.room, seq=stored.seq, received_at=stored.received_at, pending=pending
        )
        self._seen.move_to_end(key)
        horizon = self._clock() - self._limits.dedupe_window_s
        seen = self._seen
        while seen:
            oldest = next(iter(seen.values()))
            if oldest.pending is not None:
                break  # never forget an id whose ack has not gone out
            if oldest.received_at >= horizon and len(seen) <= self._limits.dedupe_max_entries:
                break
            seen.popitem(last=False)

    def _may_join(self, peer: Peer, room: str) -> bool:
        if not peer.grant.allows(room):
            self._error(
                peer, p.ErrorCode.FORBIDDEN, f"your token does not grant room {room!r}", room=room
            )
            return False
        rooms = self._joined[peer]
        if room not in rooms and len(rooms) >= self._limits.max_rooms_per_connection:
            self._error(
                peer,
                p.ErrorCode.TOO_MANY_ROOMS,
                f"already in {len(rooms)} rooms, the limit per connection",
                room=room,
            )
            return False
        return True

    def _join(self, peer: Peer, name: str, *, since: int | None) -> HistoryQuery | None:
        room = self._room(name)
        if peer not in room.members:
            room.members[peer] = None
            self._joined[peer][name] = None
            if len(room.members) == 1:
                self._metrics.rooms += 1
            user = peer.grant.user_id
            room.users[user] += 1
            if room.users[user] == 1:
                self._presence(room, peer, "joined")
        return self._answer_join(peer, room, since)

    def _leave(self, peer: Peer, name: str) -> None:
        room = self._rooms[name]
        del room.members[peer]
        self._joined.get(peer, {}).pop(name, None)
        if not room.members:
            self._metrics.rooms -= 1
        user = peer.grant.user_id
        room.users[user] -= 1
        if room.users[user] <= 0:
            del room.users[user]
            self._presence(room, peer, "left")
        self._after_leave(peer, room)

    # Hooks: what a cluster node (shared.py) does differently around the same bookkeeping.

    def _presence(self, room: _Room, peer: Peer, status: Literal["joined", "left"]) -> None:
        """`peer`'s user got its first connection in `room`, or lost its last (§4.7)."""
        user = peer.grant.user_id
        self._broadcast_except(room, peer, p.Presence(room=room.name, user_id=user, status=status))

    def _answer_join(self, peer: Peer, room: _Room, since: int | None) -> HistoryQuery | None:
        """What a joining connection is sent: `joined`, then the resync page if asked."""
        peer.deliver(frame_bytes(p.Joined(room=room.name, seq=room.released)))
        if since is None:
            return None
        return self._page(peer, room, before=None, after=since, limit=self._limits.resync_max)

    def _after_leave(self, peer: Peer, room: _Room) -> None:
        """`peer` has left `room` (which may now be empty)."""
        if not room.members and room.head == 0:
            del self._rooms[room.name]  # nothing to remember about a room that never had a message

    def _broadcast_except(self, room: _Room, exclude: Peer, frame: p.ServerFrame) -> None:
        if len(room.members) <= 1 and exclude in room.members:
            return
        wire = frame_bytes(frame)
        for member in room.members:
            if member is not exclude:
                member.deliver(wire)

    def _typing(self, peer: Peer, name: str, typing: bool) -> None:
        if name not in self._joined[peer]:
            self._error(peer, p.ErrorCode.NOT_MEMBER, f"not in room {name!r}", room=name)
            return
        notice = p.TypingNotice(room=name, user_id=peer.grant.user_id, typing=typing)
        self._broadcast_except(self._rooms[name], peer, notice)

    def _history(self, peer: Peer, req: p.HistoryRequest) -> HistoryQuery | None:
        if not peer.grant.allows(req.room):
            self._error(
                peer,
                p.ErrorCode.FORBIDDEN,
                f"your token does not grant room {req.room!r}",
                room=req.room,
            )
            return None
        limit = min(req.limit or self._limits.history_page_max, self._limits.history_page_max)
        room = self._rooms.get(req.room) or _Room(name=req.room)
        return self._page(peer, room, before=req.before, after=req.after, limit=limit)

    def _page(
        self, peer: Peer, room: _Room, *, before: int | None, after: int | None, limit: int
    ) -> HistoryQuery | None:
        """Answer from the in-memory ring when it holds the page, else defer to the store.

        The ring holds released messages with contiguous seqs `first..room.released`.
        Memory mode has nothing older, so a page reaching past the ring is cut short and
        `hasMore` never points at messages nobody can fetch.
        """
        top = room.released
        first = room.ring[0].seq if room.ring else top + 1
        if after is not None:
            lo = after + 1
            if lo < first and not self._durable:
                lo = first  # memory mode: the oldest message still held
            hi = min(top, lo + limit - 1)
        elif before is not None:
            hi = min(before - 1, top)
            lo = max(1, hi - limit + 1)
        else:
            hi = top
            lo = max(1, top - limit + 1)
        if hi >= lo and lo < first and self._durable:
            return HistoryQuery(peer=peer, room=room.name, before=before, after=after, limit=limit)
        lo = max(lo, first)
        messages = [room.ring[seq - first].to_frame() for seq in range(lo, hi + 1)]
        if after is not None:
            has_more = hi < top
        else:
            oldest = first if not self._durable else 1
            has_more = bool(messages) and lo > oldest
        page = p.HistoryPage(room=room.name, messages=messages, has_more=has_more)
        peer.deliver(frame_bytes(page))
        return None
