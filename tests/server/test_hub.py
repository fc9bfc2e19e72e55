"""The hub, sans-IO: membership and presence, seq, dedupe, history, durability, metrics.

Drives `loadtool.server.hub.Hub` with fake peers that parse every framed byte string the
hub hands them back into server frames (protocol §4-§5 frames, §7 limits, §9 durability,
§10 metrics; /tmp/lt/decisions.md "Frames" and "Limits"). No sockets.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

import attrs
import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from loadtool import protocol as p
from loadtool.server.config import Limits
from loadtool.server.hub import HistoryQuery, Hub, PendingMessage
from loadtool.server.metrics import Metrics
from loadtool.server.storage import Snapshot, StoredMessage

SENT_AT: Final = "2026-11-29T10:00:00.000Z"
START: Final = 1_000_000.0  # the injected clock's first reading, unix seconds
WINDOW: Final = 60.0  # dedupe window used by the window tests, seconds


def parse_wire(wire: bytes) -> p.ServerFrame:
    """Exactly one complete, unmasked text frame -> the server frame it carries."""
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(wire)
    frames = list(proto.received_frames())
    assert len(frames) == 1
    (frame,) = frames
    assert frame.opcode is Opcode.TEXT
    assert frame.frame_finished
    assert frame.message_finished
    assert isinstance(frame.payload, str)
    return p.decode(frame.payload, source=p.Source.SERVER)


@attrs.define(eq=False)
class FakePeer:
    """A connection as the hub sees it; records every frame delivered to it."""

    grant: p.Grant
    frames: list[p.ServerFrame] = attrs.field(factory=list)

    def deliver(self, wire: bytes) -> None:
        self.frames.append(parse_wire(wire))

    def take(self) -> list[p.ServerFrame]:
        """The frames received since the last call."""
        out, self.frames = self.frames, []
        return out


@attrs.define
class Clock:
    """A clock the test moves by hand."""

    now: float = START

    def __call__(self) -> float:
        return self.now


@attrs.define
class Setup:
    hub: Hub
    metrics: Metrics
    clock: Clock
    pending_calls: list[None]


def make(*, durable: bool = False, **limits: Any) -> Setup:
    metrics = Metrics()
    clock = Clock()
    calls: list[None] = []
    hub = Hub(
        Limits(**limits),
        durable=durable,
        clock=clock,
        metrics=metrics,
        on_pending=lambda: calls.append(None),
    )
    return Setup(hub=hub, metrics=metrics, clock=clock, pending_calls=calls)


def peer(user: str, grant: tuple[str, ...] = ("a", "b", "c")) -> FakePeer:
    """A peer whose token grants the rooms `grant`."""
    return FakePeer(grant=p.Grant(user_id=user, rooms=grant, expires_at=START + 3600))


def joined(
    hub: Hub, user: str, rooms: tuple[str, ...] = ("a",), grant: tuple[str, ...] = ("a", "b", "c")
) -> FakePeer:
    """A peer connected to `rooms` whose connect-time frames were read."""
    conn = peer(user, grant)
    hub.connect(conn, rooms)
    conn.take()
    return conn


def send(hub: Hub, conn: FakePeer, msg_id: str, room: str = "a", text: str = "hi") -> None:
    assert hub.handle(conn, p.SendMessage(id=msg_id, room=room, text=text, sent_at=SENT_AT)) is None


def msg(
    msg_id: str, seq: int, *, room: str = "a", sender: str = "alice", text: str = "hi"
) -> p.Message:
    return p.Message(id=msg_id, room=room, sender_id=sender, text=text, sent_at=SENT_AT, seq=seq)


def ack(msg_id: str, seq: int, *, room: str = "a", duplicate: bool = False) -> p.Ack:
    return p.Ack(id=msg_id, room=room, seq=seq, duplicate=duplicate)


def stored(
    seq: int, *, room: str = "a", sender: str = "alice", received_at: float = START
) -> StoredMessage:
    return StoredMessage(
        room=room,
        seq=seq,
        id=f"m{seq}",
        sender_id=sender,
        text=f"text {seq}",
        sent_at=SENT_AT,
        received_at=received_at,
    )


def fill(hub: Hub, conn: FakePeer, count: int, room: str = "a") -> None:
    """Post messages m1..m<count> (text 'text <n>') and drop every peer's frames."""
    for n in range(1, count + 1):
        send(hub, conn, f"m{n}", room=room, text=f"text {n}")
    conn.take()


def page_seqs(frame: p.ServerFrame) -> tuple[list[int], bool]:
    assert isinstance(frame, p.HistoryPage)
    return [m.seq for m in frame.messages], frame.has_more


def history(hub: Hub, conn: FakePeer, **kw: Any) -> tuple[list[int], bool]:
    """Ask for a history page answered from memory; its seqs and hasMore."""
    assert hub.handle(conn, p.HistoryRequest(room="a", **kw)) is None
    (frame,) = conn.take()
    return page_seqs(frame)


def only_error(conn: FakePeer) -> p.Error:
    (frame,) = conn.take()
    assert isinstance(frame, p.Error)
    return frame


# --- connect, presence, leave ----------------------------------------------------------


def test_connect_joins_rooms_in_order_with_joined_frames() -> None:
    s = make()
    alice = peer("alice")
    s.hub.connect(alice, ["b", "a"])
    assert alice.take() == [p.Joined(room="b", seq=0), p.Joined(room="a", seq=0)]
    assert s.hub.connections == 1
    assert s.metrics.rooms == 2


def test_connect_without_rooms_joins_nothing() -> None:
    s = make()
    alice = peer("alice")
    s.hub.connect(alice, [])
    assert alice.take() == []
    assert s.hub.connections == 1
    assert s.metrics.rooms == 0


def test_presence_joined_goes_to_others_only() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob = peer("bob")
    s.hub.connect(bob, ["a"])
    assert bob.take() == [p.Joined(room="a", seq=0)]
    assert alice.take() == [p.Presence(room="a", user_id="bob", status="joined")]


def test_presence_joined_only_on_first_connection_of_user() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob1 = joined(s.hub, "bob")
    alice.take()
    bob2 = peer("bob")
    s.hub.connect(bob2, ["a"])
    assert bob2.take() == [p.Joined(room="a", seq=0)]
    assert alice.take() == []
    assert bob1.take() == []


def test_presence_left_only_on_last_connection_of_user() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob1 = joined(s.hub, "bob")
    bob2 = joined(s.hub, "bob")
    alice.take()
    s.hub.disconnect(bob2)
    assert alice.take() == []
    assert bob1.take() == []
    s.hub.disconnect(bob1)
    assert alice.take() == [p.Presence(room="a", user_id="bob", status="left")]
    assert s.hub.connections == 1


def test_presence_per_room_on_disconnect() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a",))
    carol = joined(s.hub, "carol", ("b",))
    bob = joined(s.hub, "bob", ("a", "b"))
    assert alice.take() == [p.Presence(room="a", user_id="bob", status="joined")]
    assert carol.take() == [p.Presence(room="b", user_id="bob", status="joined")]
    s.hub.disconnect(bob)
    assert alice.take() == [p.Presence(room="a", user_id="bob", status="left")]
    assert carol.take() == [p.Presence(room="b", user_id="bob", status="left")]
    assert bob.take() == []


def test_join_frame_answers_joined_and_announces_presence() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a",))
    bob = joined(s.hub, "bob", ())
    assert s.hub.handle(bob, p.Join(room="a")) is None
    assert bob.take() == [p.Joined(room="a", seq=0)]
    assert alice.take() == [p.Presence(room="a", user_id="bob", status="joined")]


def test_join_twice_is_idempotent() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice.take()
    send(s.hub, alice, "x")
    alice.take()
    bob.take()
    s.hub.handle(bob, p.Join(room="a"))
    assert bob.take() == [p.Joined(room="a", seq=1)]
    assert alice.take() == []
    send(s.hub, alice, "y")
    assert bob.take() == [msg("y", 2)]  # still one membership, not two


def test_leave_answers_left_and_announces_presence_to_others() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice.take()
    assert s.hub.handle(bob, p.Leave(room="a")) is None
    assert bob.take() == [p.Left(room="a")]
    assert alice.take() == [p.Presence(room="a", user_id="bob", status="left")]
    send(s.hub, alice, "x")
    assert bob.take() == []  # no longer a member
    send(s.hub, bob, "y")
    err = only_error(bob)
    assert (err.code, err.id, err.room) == (p.ErrorCode.NOT_MEMBER, "y", "a")
    assert alice.take() == [ack("x", 1), msg("x", 1)]


def test_leave_with_other_connection_of_user_still_in_room_sends_no_presence() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob1 = joined(s.hub, "bob")
    joined(s.hub, "bob")
    alice.take()
    s.hub.handle(bob1, p.Leave(room="a"))
    assert bob1.take() == [p.Left(room="a")]
    assert alice.take() == []


def test_leave_when_not_member_is_error_with_room() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a",))
    s.hub.handle(alice, p.Leave(room="b"))
    (frame,) = alice.take()
    assert isinstance(frame, p.Error)
    assert (frame.code, frame.id, frame.room) == (p.ErrorCode.NOT_MEMBER, None, "b")
    assert s.metrics.errors == {"not_member": 1}


def test_disconnect_twice_is_harmless() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    s.hub.disconnect(alice)
    s.hub.disconnect(alice)
    assert s.hub.connections == 0
    assert s.metrics.rooms == 0
    assert s.hub.refuse_reason("alice") is None


# --- messages ----------------------------------------------------------------------------


def test_message_acked_then_delivered_to_every_member_including_sender() -> None:
    s = make()
    alice1 = joined(s.hub, "alice")
    alice2 = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    outsider = joined(s.hub, "carol", ("b",))
    for conn in (alice1, alice2):
        conn.take()
    send(s.hub, alice1, "x", text="hello")
    assert alice1.take() == [ack("x", 1), msg("x", 1, text="hello")]
    assert alice2.take() == [msg("x", 1, text="hello")]
    assert bob.take() == [msg("x", 1, text="hello")]
    assert outsider.take() == []
    assert s.metrics.deliveries == 3
    assert s.metrics.messages_in == 1


def test_sender_id_is_the_token_subject_not_the_frame_field() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    frame = p.SendMessage(id="x", room="a", text="hi", sent_at=SENT_AT, sender_id="mallory")
    s.hub.handle(alice, frame)
    assert alice.take() == [ack("x", 1), msg("x", 1, sender="alice")]


def test_missing_sent_at_is_filled_with_receive_time() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    s.hub.handle(alice, p.SendMessage(id="x", room="a", text="hi"))
    _ack, delivered = alice.take()
    assert isinstance(delivered, p.Message)
    assert delivered.sent_at.endswith("Z")  # a valid UTC timestamp (the frame validated it)


def test_seq_counts_per_room_independently() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a", "b"))
    acks: list[tuple[str, int]] = []
    for n, room in enumerate(["a", "b", "a", "a", "b"]):
        send(s.hub, alice, f"id{n}", room=room)
        frame = alice.take()[0]
        assert isinstance(frame, p.Ack)
        acks.append((frame.room, frame.seq))
    assert acks == [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2)]


def test_joined_reports_room_head() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 3)
    bob = peer("bob")
    s.hub.connect(bob, ["a"])
    assert bob.take() == [p.Joined(room="a", seq=3)]


# --- dedupe ------------------------------------------------------------------------------


def test_duplicate_is_acked_with_original_seq_and_not_delivered() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice.take()
    send(s.hub, alice, "x")
    send(s.hub, alice, "y")
    alice.take()
    bob.take()
    send(s.hub, alice, "x", text="changed")
    assert alice.take() == [ack("x", 1, duplicate=True)]
    assert bob.take() == []
    assert s.metrics.duplicates == 1
    assert s.metrics.messages_in == 2
    assert s.metrics.deliveries == 4


def test_duplicate_into_another_room_gets_original_room_and_seq() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a", "b"))
    fill(s.hub, alice, 2, room="a")
    send(s.hub, alice, "m2", room="b")
    assert alice.take() == [ack("m2", 2, room="a", duplicate=True)]
    send(s.hub, alice, "fresh", room="b")
    assert alice.take()[0] == ack("fresh", 1, room="b")  # b's seq was not consumed


def test_duplicate_from_another_connection_of_same_user() -> None:
    s = make()
    alice1 = joined(s.hub, "alice")
    alice2 = joined(s.hub, "alice")
    send(s.hub, alice1, "x")
    alice1.take()
    alice2.take()
    send(s.hub, alice2, "x")
    assert alice2.take() == [ack("x", 1, duplicate=True)]
    assert alice1.take() == []


def test_same_id_from_different_sender_is_not_a_duplicate() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice.take()
    send(s.hub, alice, "x")
    alice.take()
    bob.take()
    send(s.hub, bob, "x")
    assert bob.take() == [ack("x", 2), msg("x", 2, sender="bob")]
    assert alice.take() == [msg("x", 2, sender="bob")]
    assert s.metrics.duplicates == 0


def test_dedupe_remembers_within_window() -> None:
    s = make(dedupe_window_s=WINDOW)
    alice = joined(s.hub, "alice")
    send(s.hub, alice, "x")
    s.clock.now = START + WINDOW - 1
    send(s.hub, alice, "y")  # a new message runs the eviction
    alice.take()
    send(s.hub, alice, "x")
    assert alice.take() == [ack("x", 1, duplicate=True)]


def test_dedupe_forgets_ids_older_than_window() -> None:
    s = make(dedupe_window_s=WINDOW)
    alice = joined(s.hub, "alice")
    send(s.hub, alice, "x")
    s.clock.now = START + WINDOW + 1
    send(s.hub, alice, "y")  # a new message runs the eviction
    alice.take()
    send(s.hub, alice, "x")
    assert alice.take() == [ack("x", 3), msg("x", 3)]
    assert s.metrics.duplicates == 0


def test_dedupe_window_applies_without_an_intervening_message() -> None:
    s = make(dedupe_window_s=WINDOW)
    alice = joined(s.hub, "alice")
    send(s.hub, alice, "x")
    alice.take()
    s.clock.now = START + WINDOW + 1
    send(s.hub, alice, "x")  # seen 61 s ago, outside the 60 s window: a new message
    assert alice.take() == [ack("x", 2), msg("x", 2)]


def test_dedupe_max_entries_forgets_oldest_first() -> None:
    s = make(dedupe_max_entries=2)
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 3)  # m1 is forgotten, m2 and m3 remembered
    send(s.hub, alice, "m3")
    assert alice.take() == [ack("m3", 3, duplicate=True)]
    send(s.hub, alice, "m1")
    assert alice.take() == [ack("m1", 4), msg("m1", 4)]  # remembering m1 forgets m2
    send(s.hub, alice, "m2")
    assert alice.take() == [ack("m2", 5), msg("m2", 5)]
    send(s.hub, alice, "m1")
    assert alice.take() == [ack("m1", 4, duplicate=True)]


# --- errors ------------------------------------------------------------------------------


def test_message_to_room_not_joined_is_not_member() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a",))
    bob = joined(s.hub, "bob", ("b",))
    send(s.hub, alice, "x", room="b")
    err = only_error(alice)
    assert (err.code, err.id, err.room) == (p.ErrorCode.NOT_MEMBER, "x", "b")
    assert bob.take() == []
    assert s.metrics.messages_in == 0
    s.hub.handle(alice, p.Join(room="b"))
    assert alice.take() == [p.Joined(room="b", seq=0)]  # no seq consumed


def test_join_room_not_granted_is_forbidden() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a",), grant=("a",))
    assert s.hub.handle(alice, p.Join(room="secret")) is None
    err = only_error(alice)
    assert (err.code, err.id, err.room) == (p.ErrorCode.FORBIDDEN, None, "secret")
    send(s.hub, alice, "x", room="secret")
    assert only_error(alice).code is p.ErrorCode.NOT_MEMBER


def test_wildcard_grant_allows_any_room() -> None:
    s = make()
    alice = joined(s.hub, "alice", (), grant=(p.ANY_ROOM,))
    s.hub.handle(alice, p.Join(room="anything"))
    assert alice.take() == [p.Joined(room="anything", seq=0)]


def test_too_many_rooms() -> None:
    s = make(max_rooms_per_connection=2)
    alice = joined(s.hub, "alice", ("a", "b"))
    s.hub.handle(alice, p.Join(room="c"))
    err = only_error(alice)
    assert (err.code, err.id, err.room) == (p.ErrorCode.TOO_MANY_ROOMS, None, "c")
    s.hub.handle(alice, p.Join(room="a"))  # rejoining a room held is not a new room
    assert alice.take() == [p.Joined(room="a", seq=0)]
    s.hub.handle(alice, p.Leave(room="b"))
    s.hub.handle(alice, p.Join(room="c"))
    assert alice.take() == [p.Left(room="b"), p.Joined(room="c", seq=0)]


def test_text_over_limit_is_too_long() -> None:
    s = make(max_text_chars=5)
    alice = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice.take()
    send(s.hub, alice, "x", text="123456")
    err = only_error(alice)
    assert (err.code, err.id, err.room) == (p.ErrorCode.TOO_LONG, "x", "a")
    assert bob.take() == []
    send(s.hub, alice, "x", text="12345")  # refused ids are not remembered; no seq used
    assert alice.take() == [ack("x", 1), msg("x", 1, text="12345")]


def test_error_from_connection_layer_is_framed_with_retry_after() -> None:
    s = make()
    alice = joined(s.hub, "alice")
    exc = p.ProtocolError(p.ErrorCode.RATE_LIMITED, "slow down", frame_id="x", room="a")
    s.hub.error(alice, exc, retry_after_ms=250)
    assert alice.take() == [
        p.Error(
            code=p.ErrorCode.RATE_LIMITED, message="slow down", id="x", room="a", retry_after_ms=250
        )
    ]
    assert s.metrics.errors == {"rate_limited": 1}


# --- typing and ping ---------------------------------------------------------------------


def test_typing_goes_to_other_member_connections_only() -> None:
    s = make()
    alice1 = joined(s.hub, "alice")
    alice2 = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    outsider = joined(s.hub, "carol", ("b",))
    alice1.take()
    alice2.take()
    s.hub.handle(alice1, p.Typing(room="a"))
    s.hub.handle(alice1, p.Typing(room="a", typing=False))
    expected = [
        p.TypingNotice(room="a", user_id="alice", typing=True),
        p.TypingNotice(room="a", user_id="alice", typing=False),
    ]
    assert bob.take() == expected
    assert alice2.take() == expected
    assert alice1.take() == []
    assert outsider.take() == []


def test_typing_when_not_member() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a",))
    s.hub.handle(alice, p.Typing(room="b"))
    err = only_error(alice)
    assert (err.code, err.id, err.room) == (p.ErrorCode.NOT_MEMBER, None, "b")


@pytest.mark.parametrize("ts", [None, "abc", 12.5, 7])
def test_ping_answers_pong_to_sender_only(ts: str | float | None) -> None:
    s = make()
    alice = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice.take()
    assert s.hub.handle(alice, p.Ping(ts=ts)) is None
    assert alice.take() == [p.Pong(ts=ts)]
    assert bob.take() == []


# --- history, memory mode ----------------------------------------------------------------


@pytest.fixture
def five() -> tuple[Setup, FakePeer]:
    """Memory mode, page max 3, messages 1..5 in room a."""
    s = make(history_page_max=3)
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 5)
    return s, alice


@pytest.mark.parametrize(
    ("kw", "seqs", "has_more"),
    [
        ({}, [3, 4, 5], True),
        ({"limit": 2}, [4, 5], True),
        ({"limit": 1000}, [3, 4, 5], True),  # capped to history_page_max
        ({"after": 0, "limit": 2}, [1, 2], True),
        ({"after": 0}, [1, 2, 3], True),
        ({"after": 2, "limit": 3}, [3, 4, 5], False),
        ({"after": 3, "limit": 2}, [4, 5], False),
        ({"after": 4, "limit": 3}, [5], False),
        ({"after": 5}, [], False),
        ({"after": 99}, [], False),
        ({"before": 4, "limit": 2}, [2, 3], True),
        ({"before": 3, "limit": 2}, [1, 2], False),
        ({"before": 3, "limit": 3}, [1, 2], False),
        ({"before": 2}, [1], False),
        ({"before": 1}, [], False),
        ({"before": 100, "limit": 2}, [4, 5], True),
        ({"before": 6}, [3, 4, 5], True),
    ],
)
def test_history_pages_in_memory(
    five: tuple[Setup, FakePeer], kw: dict[str, int], seqs: list[int], has_more: bool
) -> None:
    s, alice = five
    assert history(s.hub, alice, **kw) == (seqs, has_more)


def test_history_page_carries_the_stored_messages(five: tuple[Setup, FakePeer]) -> None:
    s, alice = five
    s.hub.handle(alice, p.HistoryRequest(room="a", after=3))
    assert alice.take() == [
        p.HistoryPage(
            room="a",
            messages=[msg("m4", 4, text="text 4"), msg("m5", 5, text="text 5")],
            has_more=False,
        )
    ]


def test_history_of_empty_room() -> None:
    s = make()
    alice = joined(s.hub, "alice", ())
    s.hub.handle(alice, p.HistoryRequest(room="c"))
    assert alice.take() == [p.HistoryPage(room="c", messages=[], has_more=False)]


def test_history_needs_grant_not_membership(five: tuple[Setup, FakePeer]) -> None:
    s, _alice = five
    bob = joined(s.hub, "bob", (), grant=("a",))
    assert history(s.hub, bob, limit=1) == ([5], True)
    s.hub.handle(bob, p.HistoryRequest(room="b"))
    err = only_error(bob)
    assert (err.code, err.id, err.room) == (p.ErrorCode.FORBIDDEN, None, "b")


@pytest.mark.parametrize(
    ("kw", "seqs", "has_more"),
    [
        ({}, [3, 4, 5], False),
        ({"limit": 2}, [4, 5], True),
        ({"before": 5, "limit": 1}, [4], True),
        ({"before": 5, "limit": 2}, [3, 4], False),
        ({"before": 4, "limit": 5}, [3], False),
        ({"before": 3}, [], False),
        ({"before": 2}, [], False),
        ({"after": 0, "limit": 2}, [3, 4], True),
        ({"after": 0}, [3, 4, 5], False),
        ({"after": 1, "limit": 1}, [3], True),
        ({"after": 3}, [4, 5], False),
    ],
)
def test_memory_mode_history_is_cut_at_history_cache(
    kw: dict[str, int], seqs: list[int], has_more: bool
) -> None:
    s = make(history_cache=3)
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 5)
    assert history(s.hub, alice, **kw) == (seqs, has_more)


@pytest.mark.parametrize(
    ("since", "seqs", "has_more"),
    [(0, [1, 2], True), (1, [2, 3], True), (3, [4, 5], False), (4, [5], False), (5, [], False)],
)
def test_join_since_sends_joined_then_history(since: int, seqs: list[int], has_more: bool) -> None:
    s = make(resync_max=2)
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 5)
    bob = joined(s.hub, "bob", ())
    assert s.hub.handle(bob, p.Join(room="a", since=since)) is None
    first, page = bob.take()
    assert first == p.Joined(room="a", seq=5)
    assert page_seqs(page) == (seqs, has_more)


def test_join_since_in_memory_mode_starts_at_oldest_cached() -> None:
    s = make(history_cache=3)
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 5)
    s.hub.handle(alice, p.Join(room="a", since=0))
    first, page = alice.take()
    assert first == p.Joined(room="a", seq=5)
    assert page_seqs(page) == ([3, 4, 5], False)


# --- durable mode ------------------------------------------------------------------------


def test_durable_message_waits_for_release() -> None:
    s = make(durable=True)
    alice = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice.take()
    send(s.hub, alice, "x")
    assert alice.take() == []
    assert bob.take() == []
    assert len(s.pending_calls) == 1
    assert s.metrics.messages_in == 1
    assert s.metrics.deliveries == 0
    batch = s.hub.take_pending()
    assert [(m.stored.room, m.stored.seq, m.stored.id) for m in batch] == [("a", 1, "x")]
    assert isinstance(batch[0], PendingMessage)
    assert batch[0].sender is alice
    assert batch[0].duplicate_acks == []
    s.hub.release(batch)
    assert alice.take() == [ack("x", 1), msg("x", 1)]
    assert bob.take() == [msg("x", 1)]
    assert s.metrics.deliveries == 2


def test_durable_joined_shows_released_seq_only() -> None:
    s = make(durable=True)
    alice = joined(s.hub, "alice")
    send(s.hub, alice, "x")
    bob = peer("bob")
    s.hub.connect(bob, ["a"])
    assert bob.take() == [p.Joined(room="a", seq=0)]
    s.hub.release(s.hub.take_pending())
    assert bob.take() == [msg("x", 1)]
    s.hub.handle(bob, p.Join(room="a"))
    assert bob.take() == [p.Joined(room="a", seq=1)]


def test_take_pending_keeps_acceptance_order() -> None:
    s = make(durable=True)
    alice = joined(s.hub, "alice", ("a", "b"))
    for msg_id, room in [("1", "a"), ("2", "b"), ("3", "a"), ("4", "a"), ("5", "b")]:
        send(s.hub, alice, msg_id, room=room)
    batch = s.hub.take_pending()
    assert [(m.stored.id, m.stored.room, m.stored.seq) for m in batch] == [
        ("1", "a", 1),
        ("2", "b", 1),
        ("3", "a", 2),
        ("4", "a", 3),
        ("5", "b", 2),
    ]
    assert s.hub.take_pending() == []
    assert len(s.pending_calls) == 5
    s.hub.release(batch)
    frames = alice.take()
    assert [
        (type(f).__name__, getattr(f, "room", None), getattr(f, "seq", None)) for f in frames
    ] == [
        ("Ack", "a", 1),
        ("Message", "a", 1),
        ("Ack", "b", 1),
        ("Message", "b", 1),
        ("Ack", "a", 2),
        ("Message", "a", 2),
        ("Ack", "a", 3),
        ("Message", "a", 3),
        ("Ack", "b", 2),
        ("Message", "b", 2),
    ]


def test_durable_duplicate_of_pending_is_acked_at_release() -> None:
    s = make(durable=True)
    alice1 = joined(s.hub, "alice")
    alice2 = joined(s.hub, "alice")
    bob = joined(s.hub, "bob")
    alice1.take()
    alice2.take()
    send(s.hub, alice1, "x")
    send(s.hub, alice1, "x")
    send(s.hub, alice2, "x")
    assert alice1.take() == []
    assert alice2.take() == []
    assert s.metrics.duplicates == 2
    batch = s.hub.take_pending()
    assert len(batch) == 1
    s.hub.release(batch)
    assert alice1.take() == [ack("x", 1), ack("x", 1, duplicate=True), msg("x", 1)]
    assert alice2.take() == [ack("x", 1, duplicate=True), msg("x", 1)]
    assert bob.take() == [msg("x", 1)]
    send(s.hub, alice2, "x")  # released: the duplicate ack is immediate now
    assert alice2.take() == [ack("x", 1, duplicate=True)]
    assert s.hub.take_pending() == []


def test_durable_duplicate_during_commit_is_acked_at_release() -> None:
    s = make(durable=True)
    alice = joined(s.hub, "alice")
    send(s.hub, alice, "x")
    batch = s.hub.take_pending()  # the group commit is writing it now
    send(s.hub, alice, "x")
    assert alice.take() == []
    assert s.hub.take_pending() == []
    s.hub.release(batch)
    assert alice.take() == [ack("x", 1), ack("x", 1, duplicate=True), msg("x", 1)]


def test_durable_pending_id_is_not_forgotten_past_window() -> None:
    s = make(durable=True, dedupe_window_s=WINDOW)
    alice = joined(s.hub, "alice")
    send(s.hub, alice, "x")
    s.clock.now = START + WINDOW + 1
    send(s.hub, alice, "y")  # eviction runs, but x's ack has not gone out
    send(s.hub, alice, "x")
    batch = s.hub.take_pending()
    assert [m.stored.id for m in batch] == ["x", "y"]
    s.hub.release(batch)
    assert alice.take() == [
        ack("x", 1),
        ack("x", 1, duplicate=True),
        msg("x", 1),
        ack("y", 2),
        msg("y", 2),
    ]


def test_durable_history_below_ring_goes_to_store() -> None:
    s = make(durable=True, history_cache=3, history_page_max=4, resync_max=50)
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 5)
    s.hub.release(s.hub.take_pending())
    alice.take()
    # In the ring (3..5): answered at once; durable hasMore counts the store's older ones.
    assert history(s.hub, alice, limit=2) == ([4, 5], True)
    assert history(s.hub, alice, limit=3) == ([3, 4, 5], True)
    assert history(s.hub, alice, after=2, limit=2) == ([3, 4], True)
    assert history(s.hub, alice, after=4) == ([5], False)
    # Reaching below the ring: the I/O layer must ask the store.
    cases = [
        ({}, None, None, 4),
        ({"limit": 1000}, None, None, 4),
        ({"before": 4, "limit": 2}, 4, None, 2),
        ({"after": 0, "limit": 2}, None, 0, 2),
    ]
    for kw, before, after, limit in cases:
        query = s.hub.handle(alice, p.HistoryRequest(room="a", **kw))
        assert query == HistoryQuery(peer=alice, room="a", before=before, after=after, limit=limit)
        assert alice.take() == []
    query = s.hub.handle(alice, p.Join(room="a", since=1))
    assert alice.take() == [p.Joined(room="a", seq=5)]
    assert query == HistoryQuery(peer=alice, room="a", before=None, after=1, limit=50)


def test_durable_before_one_is_an_empty_page() -> None:
    s = make(durable=True, history_cache=3)
    alice = joined(s.hub, "alice")
    fill(s.hub, alice, 5)
    s.hub.release(s.hub.take_pending())
    alice.take()
    assert history(s.hub, alice, before=1) == ([], False)


# --- restore -----------------------------------------------------------------------------


def test_restore_continues_seq_history_and_dedupe() -> None:
    s = make(durable=True, dedupe_window_s=WINDOW)
    snapshot = Snapshot(
        heads={"a": 7, "b": 2},
        recent={"a": [stored(5), stored(6), stored(7)], "b": [stored(2, room="b")]},
        dedupe=[stored(6, received_at=START - 10), stored(7, received_at=START - 5)],
    )
    s.hub.restore(snapshot)
    alice = peer("alice")
    s.hub.connect(alice, ["a", "b"])
    assert alice.take() == [p.Joined(room="a", seq=7), p.Joined(room="b", seq=2)]
    send(s.hub, alice, "m7")  # remembered from before the restart
    assert alice.take() == [ack("m7", 7, duplicate=True)]
    send(s.hub, alice, "new")
    send(s.hub, alice, "nb", room="b")
    s.hub.release(s.hub.take_pending())
    assert alice.take() == [
        ack("new", 8),
        msg("new", 8),
        ack("nb", 3, room="b"),
        msg("nb", 3, room="b"),
    ]
    assert history(s.hub, alice, limit=3) == ([6, 7, 8], True)
    s.hub.handle(alice, p.HistoryRequest(room="a", after=4, limit=2))
    (page,) = alice.take()
    assert page == p.HistoryPage(
        room="a",
        messages=[
            msg("m5", 5, text="text 5"),
            msg("m6", 6, text="text 6"),
        ],
        has_more=True,
    )
    assert s.hub.handle(alice, p.HistoryRequest(room="a", before=5)) == HistoryQuery(
        peer=alice, room="a", before=5, after=None, limit=100
    )


def test_restore_forgets_dedupe_entries_older_than_window() -> None:
    s = make(dedupe_window_s=WINDOW)
    s.hub.restore(
        Snapshot(
            heads={"a": 2},
            recent={"a": [stored(1), stored(2)]},
            dedupe=[stored(1, received_at=START - WINDOW - 1), stored(2, received_at=START - 1)],
        )
    )
    alice = joined(s.hub, "alice")
    send(s.hub, alice, "m1")
    assert alice.take() == [ack("m1", 3), msg("m1", 3)]
    send(s.hub, alice, "m2")
    assert alice.take() == [ack("m2", 2, duplicate=True)]


# --- admission ---------------------------------------------------------------------------


def test_refuse_reason_per_user_and_server_limits() -> None:
    s = make(max_connections=2, max_connections_per_user=1)
    assert s.hub.refuse_reason("alice") is None
    alice = joined(s.hub, "alice")
    assert s.hub.refuse_reason("alice") is HTTPStatus.TOO_MANY_REQUESTS
    assert s.hub.refuse_reason("bob") is None
    bob = joined(s.hub, "bob")
    assert s.hub.refuse_reason("carol") is HTTPStatus.SERVICE_UNAVAILABLE
    assert s.hub.refuse_reason("alice") is HTTPStatus.SERVICE_UNAVAILABLE
    s.hub.disconnect(bob)
    assert s.hub.refuse_reason("carol") is None
    assert s.hub.refuse_reason("alice") is HTTPStatus.TOO_MANY_REQUESTS
    s.hub.disconnect(alice)
    assert s.hub.refuse_reason("alice") is None


# --- metrics -----------------------------------------------------------------------------


def test_metrics_counters() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a", "b"))
    bob = joined(s.hub, "bob", ("a",))
    assert s.metrics.rooms == 2
    send(s.hub, alice, "x")
    send(s.hub, alice, "x")
    send(s.hub, bob, "y", room="b")
    s.hub.handle(bob, p.Join(room="zzz"))
    s.hub.handle(bob, p.Ping())
    s.hub.handle(bob, p.Leave(room="a"))
    snap = s.metrics.snapshot()
    assert (snap.messages_in, snap.deliveries, snap.duplicates, snap.rooms) == (1, 2, 1, 2)
    assert snap.frames_in == {"message": 3, "join": 1, "ping": 1, "leave": 1}
    assert snap.errors == {"not_member": 1, "forbidden": 1}
    s.hub.disconnect(alice)
    assert s.metrics.rooms == 0
    s.hub.disconnect(bob)
    assert s.metrics.rooms == 0


def test_rooms_gauge_follows_membership() -> None:
    s = make()
    alice = joined(s.hub, "alice", ("a",))
    bob = joined(s.hub, "bob", ("a",))
    assert s.metrics.rooms == 1
    s.hub.handle(alice, p.Leave(room="a"))
    assert s.metrics.rooms == 1
    s.hub.handle(bob, p.Leave(room="a"))
    assert s.metrics.rooms == 0
    s.hub.handle(bob, p.Join(room="b"))
    assert s.metrics.rooms == 1
