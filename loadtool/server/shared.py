"""Cluster mode's room state, sans-IO: the hub when several nodes share one Redis.

What changes from the single-node `Hub` (docs/scaling.md, "Cluster mode"):

- **Seq and dedupe live in Redis.** A `message` becomes a `Submission` (no seq yet); the
  I/O edge sends a batch of them to Redis, where one script per message does the dedupe
  check, the seq increment and the stream append atomically, and hands back an
  `Outcome` per submission (`settle`). The ack goes out only then, or earlier when this
  node reads the appended entry back (so the ack still precedes the sender's copy).
- **Deliveries come from the room's stream**, on every node alike, the sending node
  included (`apply`): each node reads the streams of the rooms it has members in, in seq
  order, from the seq it last released; what it released is its cache (`ring`).
- **A room's head is Redis's.** Joining a room this node does not follow yet waits until
  the edge has read the head (`followed`); until then the connection is a member (it may
  send) but its `joined` is held.
- **Presence and typing cross nodes** as events (`apply_event`): a user's first/last
  connection *on this node* is reported to the edge (`PresenceChange`), which asks Redis
  whether it is the first/last *in the cluster* and publishes the event.

The hub never awaits; the edge (`broker.py`, `app.py`) does all I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Final, Literal

import attrs

from .. import protocol as p
from .config import Limits
from .hub import HistoryQuery, Hub, Peer, _Room, ack_wire, frame_bytes, message_wire, utc_now_iso
from .metrics import Metrics
from .storage import StoredMessage


@attrs.define(eq=False)
class Submission:
    """A `message` frame on its way to Redis; `message.seq` is 0 until it is accepted."""

    message: StoredMessage
    sender: Peer
    nonce: str  # unique per submission cluster-wide: matches the stream entry it creates
    too_long: bool  # refused after the dedupe check, as §4.1 orders them
    acked: bool = False


@attrs.frozen
class Accepted:
    seq: int


@attrs.frozen
class Duplicate:
    room: str
    seq: int


@attrs.frozen
class TooLong:
    pass


Outcome = Accepted | Duplicate | TooLong


@attrs.define(eq=False)
class Barrier:
    """An application `ping` from a member of rooms: its `pong` waits until this node has
    released everything Redis had stored in those rooms when the ping arrived, so a pong
    still means "you have what was sent before your ping", across nodes too."""

    peer: Peer
    ts: str | int | float | None
    heads: dict[str, int] = attrs.field(factory=dict)  # room -> seq to reach; filled by Redis


@attrs.frozen(kw_only=True)
class Appended:
    """One entry of a room's stream: a stored message and the submission that made it."""

    message: StoredMessage
    nonce: str


@attrs.frozen(kw_only=True)
class PresenceChange:
    """A user's first connection in a room on this node joined, or its last one left."""

    room: str
    user: str
    joined: bool


@attrs.frozen(kw_only=True)
class RoomEvent:
    """Presence or typing published by a node, as read back from a room's event stream."""

    room: str
    origin: str  # node id
    user: str
    kind: Literal["presence", "typing"]
    value: str  # presence: "joined"/"left"; typing: "1"/"0"


# While Redis is unreachable a node holds this many outgoing items (messages, presence,
# typing) for it, unacked, and answers further messages with error `unavailable`.
HOLD_MAX: Final = 10_000

Outgoing = Submission | PresenceChange | RoomEvent | Barrier  # what a node sends to Redis, in order


class SharedHub(Hub):
    """The hub of one node of a cluster (see the module docstring)."""

    def __init__(
        self,
        limits: Limits,
        *,
        node_id: str,
        clock: Callable[[], float],
        metrics: Metrics,
        on_submit: Callable[[], None],
        on_follow: Callable[[str], None],
    ) -> None:
        super().__init__(limits, durable=True, clock=clock, metrics=metrics)
        self._node_id = node_id
        self._on_submit = on_submit
        self._on_follow = on_follow
        # Messages, presence changes and typing, in the order they happened on this node:
        # Redis applies them in that order, so a client that saw its message acked knows
        # its join was counted cluster-wide before.
        self._outgoing: list[Outgoing] = []
        self._inflight: dict[str, Submission] = {}  # nonce -> submission not settled yet
        self._barriers: list[Barrier] = []  # pongs waiting for the reader to catch up
        # Accepted before the room's head was read (its join still waits): room -> them.
        self._early: dict[str, list[tuple[StoredMessage, Submission]]] = {}
        self._nonces = 0
        # False while Redis is unreachable: messages are held (unacked) up to HOLD_MAX,
        # then refused; new connections are refused (503).
        self.available = True

    # --- the edge's side ----------------------------------------------------------------

    def followed_rooms(self) -> dict[str, int]:
        """Room -> the seq to read its stream after (the last one read, or released), for
        every room whose stream is read. Messages this node offered itself (`settle`) do
        not move it: the reader must still read the other nodes' messages before them."""
        return {
            name: max(room.released, room.read_to)
            for name, room in self._rooms.items()
            if room.following
        }

    def has_room(self, name: str) -> bool:
        """This node has members in `name` (followed, or waiting for its head)."""
        return name in self._rooms

    def local_presence(self) -> list[PresenceChange]:
        """Every (room, user) with a member connection here, as `joined` changes."""
        return [
            PresenceChange(room=name, user=user, joined=True)
            for name, room in self._rooms.items()
            for user in room.users
        ]

    def take_outgoing(self) -> list[Outgoing]:
        batch, self._outgoing = self._outgoing, []
        return batch

    def republish_presence(self) -> None:
        """Count every local (room, user) again (this node was reaped as dead)."""
        for change in self.local_presence():
            self._emit(change)

    def settle(self, submission: Submission, outcome: Outcome) -> None:
        """Answer a submission with what Redis did with it."""
        self._inflight.pop(submission.nonce, None)
        sender, message = submission.sender, submission.message
        match outcome:
            case Accepted(seq=seq):
                self._metrics.messages_in += 1
                stored = attrs.evolve(message, seq=seq)
                room = self._rooms.get(message.room)
                if room is None:  # nobody here is in the room any more: just the ack
                    self._ack(submission, seq)
                elif not room.following:
                    self._early.setdefault(room.name, []).append((stored, submission))
                else:
                    self._offer(room, stored, submission)
            case Duplicate(room=room_name, seq=seq):
                self._metrics.duplicates += 1
                sender.deliver(ack_wire(message.id, room_name, seq, duplicate=True))
            case TooLong():
                self._error(
                    sender,
                    p.ErrorCode.TOO_LONG,
                    f"text has {len(message.text)} characters; the limit is "
                    f"{self._limits.max_text_chars}",
                    frame_id=message.id,
                    room=message.room,
                )

    def handle(self, peer: Peer, frame: p.ClientFrame) -> HistoryQuery | None:
        if isinstance(frame, p.Ping) and self._joined[peer]:
            self._metrics.frames_in[frame.TYPE] += 1
            self._emit(Barrier(peer=peer, ts=frame.ts, heads=dict.fromkeys(self._joined[peer], 0)))
            return None
        return super().handle(peer, frame)

    def reached(self, barrier: Barrier, heads: dict[str, int]) -> None:
        """Redis's heads for a barrier's rooms: pong once this node has released them."""
        barrier.heads = heads
        if not self._pong_if_reached(barrier):
            self._barriers.append(barrier)

    def _pong_if_reached(self, barrier: Barrier) -> bool:
        for name, head in barrier.heads.items():
            room = self._rooms.get(name)
            if room is not None and room.following and room.released < head:
                return False
        barrier.peer.deliver(frame_bytes(p.Pong(ts=barrier.ts)))
        return True

    def followed(self, name: str, head: int) -> list[HistoryQuery]:
        """The edge read `name`'s head: release the joins that waited for it.

        Returns the re-sync pages (join with `since`) the edge must read from Redis.
        """
        room = self._rooms.get(name)
        if room is None or room.following:
            return []  # left meanwhile, or an earlier read already did it
        room.following = True
        room.head = room.released = room.read_to = head
        early = self._early.pop(name, [])
        for stored, submission in early:
            if stored.seq <= head:  # in the history below joined.seq: the ack only
                self._ack(submission, stored.seq)
        queries: list[HistoryQuery] = []
        waiting, room.waiting = room.waiting, []
        for peer, since in waiting:
            if peer not in room.members:
                continue
            peer.deliver(frame_bytes(p.Joined(room=name, seq=head)))
            if since is not None:
                query = self._page(
                    peer, room, before=None, after=since, limit=self._limits.resync_max
                )
                if query is not None:
                    queries.append(query)
        for stored, submission in early:
            if stored.seq > head:
                self._offer(room, stored, submission)
        return queries

    def apply(self, name: str, entries: Iterable[Appended]) -> None:
        """Entries read from a room's stream, ascending: release what is now in order."""
        room = self._rooms.get(name)
        if room is None or not room.following:
            return
        for entry in entries:
            room.read_to = max(room.read_to, entry.message.seq)
            if entry.nonce in self._inflight:
                # This node's own message, read back before its send returned: `settle`
                # offers it, so this node's acks go out in the order its clients sent.
                continue
            self._offer(room, entry.message, None)

    def _offer(self, room: _Room, stored: StoredMessage, submission: Submission | None) -> None:
        """A stored message with its seq, from the reader or from this node's own send;
        released (ack, then deliveries) once every smaller seq of the room is."""
        if stored.seq <= room.released:
            if submission is not None:
                self._ack(submission, stored.seq)  # released already (read back first)
            return
        held = room.held.get(stored.seq)
        if held is None or (submission is not None and held[1] is None):
            room.held[stored.seq] = (stored, submission)
        while (ready := room.held.pop(room.released + 1, None)) is not None:
            message, sender = ready
            if sender is not None:
                self._ack(sender, message.seq)  # §4.1: the ack precedes the sender's copy
            room.head = room.released = message.seq
            room.ring.append(message)
            wire = message_wire(message)
            for member in room.members:
                member.deliver(wire)
            self._metrics.deliveries += len(room.members)
        if self._barriers:
            self._barriers = [b for b in self._barriers if not self._pong_if_reached(b)]

    def _ack(self, submission: Submission, seq: int) -> None:
        if not submission.acked:
            submission.acked = True
            message = submission.message
            submission.sender.deliver(ack_wire(message.id, message.room, seq))

    def apply_event(self, event: RoomEvent) -> None:
        """Presence or typing from a node (this one's typing was delivered at once)."""
        room = self._rooms.get(event.room)
        if room is None or not room.following:
            return
        if event.kind == "typing":
            if event.origin == self._node_id:
                return
            frame: p.ServerFrame = p.TypingNotice(
                room=event.room, user_id=event.user, typing=event.value == "1"
            )
            wire = frame_bytes(frame)
            for member in room.members:
                member.deliver(wire)
            return
        status: Literal["joined", "left"] = "joined" if event.value == "joined" else "left"
        wire = frame_bytes(p.Presence(room=event.room, user_id=event.user, status=status))
        # The connection that caused it never receives it: for "joined" it is the user's
        # only connection in the room cluster-wide; for "left" the user has none left.
        for member in room.members:
            if member.grant.user_id != event.user:
                member.deliver(wire)

    def _emit(self, item: Outgoing) -> None:
        self._outgoing.append(item)
        self._on_submit()

    # --- overrides of the single-node hub -------------------------------------------------

    def refuse_reason(self, user_id: str) -> HTTPStatus | None:
        """A node that cannot reach Redis takes no new connections (503, as when full)."""
        if not self.available:
            return HTTPStatus.SERVICE_UNAVAILABLE
        return super().refuse_reason(user_id)

    def _room(self, name: str) -> _Room:
        room = self._rooms.get(name)
        if room is None:
            ring: deque[StoredMessage] = deque(maxlen=self._limits.history_cache)
            room = self._rooms[name] = _Room(name=name, ring=ring, following=False)
        return room

    def _post(
        self, peer: Peer, msg_id: str, room_name: str, text: str, sent_at: str | None
    ) -> None:
        if room_name not in self._joined[peer]:
            self._error(
                peer,
                p.ErrorCode.NOT_MEMBER,
                f"join room {room_name!r} before sending to it",
                frame_id=msg_id,
                room=room_name,
            )
            return
        if not self.available and len(self._outgoing) >= HOLD_MAX:
            self._error(
                peer,
                p.ErrorCode.UNAVAILABLE,
                "the message store (Redis) is unreachable; retry later",
                frame_id=msg_id,
                room=room_name,
            )
            return
        self._nonces += 1
        message = StoredMessage(
            room=room_name,
            seq=0,
            id=msg_id,
            sender_id=peer.grant.user_id,
            text=text,
            sent_at=sent_at or utc_now_iso(),
            received_at=self._clock(),
        )
        submission = Submission(
            message=message,
            sender=peer,
            nonce=f"{self._node_id}/{self._nonces}",
            too_long=len(text) > self._limits.max_text_chars,
        )
        self._inflight[submission.nonce] = submission
        self._emit(submission)

    def _presence(self, room: _Room, peer: Peer, status: Literal["joined", "left"]) -> None:
        """Through Redis: every node (this one included) delivers it when it reads it."""
        self._emit(
            PresenceChange(room=room.name, user=peer.grant.user_id, joined=status == "joined")
        )

    def _answer_join(self, peer: Peer, room: _Room, since: int | None) -> HistoryQuery | None:
        if not room.following:
            if not room.waiting:
                self._on_follow(room.name)
            room.waiting.append((peer, since))
            return None
        return super()._answer_join(peer, room, since)

    def _after_leave(self, peer: Peer, room: _Room) -> None:
        room.waiting = [(w, since) for w, since in room.waiting if w is not peer]
        if not room.members:
            del self._rooms[room.name]  # stop reading its stream; Redis keeps the room
            # Messages of this node waiting for an earlier seq (or for the room's head)
            # are stored: ack them now.
            for stored, submission in [*room.held.values(), *self._early.pop(room.name, [])]:
                if submission is not None:
                    self._ack(submission, stored.seq)

    def _typing(self, peer: Peer, name: str, typing: bool) -> None:
        if name not in self._joined[peer]:
            self._error(peer, p.ErrorCode.NOT_MEMBER, f"not in room {name!r}", room=name)
            return
        user = peer.grant.user_id
        self._broadcast_except(
            self._rooms[name], peer, p.TypingNotice(room=name, user_id=user, typing=typing)
        )
        self._emit(
            RoomEvent(
                room=name,
                origin=self._node_id,
                user=user,
                kind="typing",
                value="1" if typing else "0",
            )
        )

    def _history(self, peer: Peer, req: p.HistoryRequest) -> HistoryQuery | None:
        """Always from Redis: a client acked on another node finds its message here too,
        though this node may not have read it yet."""
        if not peer.grant.allows(req.room):
            self._error(
                peer,
                p.ErrorCode.FORBIDDEN,
                f"your token does not grant room {req.room!r}",
                room=req.room,
            )
            return None
        limit = min(req.limit or self._limits.history_page_max, self._limits.history_page_max)
        return HistoryQuery(
            peer=peer, room=req.room, before=req.before, after=req.after, limit=limit
        )
