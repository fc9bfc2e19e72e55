"""The cluster node's hub, sans-IO (loadtool/server/shared.py): what it releases, in what
order, and where it asks the reader to read from, driven by hand without Redis."""

from __future__ import annotations

from loadtool import protocol as p
from loadtool.server.config import Limits
from loadtool.server.metrics import Metrics
from loadtool.server.shared import Accepted, Appended, SharedHub, Submission
from loadtool.server.storage import StoredMessage
from tests.server.test_hub import FakePeer

SENT_AT = "2026-11-29T10:00:00.000Z"


def _hub() -> tuple[SharedHub, list[str]]:
    follows: list[str] = []
    hub = SharedHub(
        Limits(),
        node_id="n1",
        clock=lambda: 1000.0,
        metrics=Metrics(),
        on_submit=lambda: None,
        on_follow=follows.append,
    )
    return hub, follows


def _peer(user: str, *rooms: str) -> FakePeer:
    return FakePeer(grant=p.Grant(user_id=user, rooms=frozenset(rooms), expires_at=2e9))


def _entry(room: str, seq: int, msg_id: str, sender: str, nonce: str) -> Appended:
    stored = StoredMessage(
        room=room, seq=seq, id=msg_id, sender_id=sender, text="t", sent_at=SENT_AT,
        received_at=1000.0,
    )  # fmt: skip
    return Appended(message=stored, nonce=nonce)


def _joined(hub: SharedHub, follows: list[str], peer: FakePeer, *rooms: str) -> None:
    hub.connect(peer, rooms)
    for room in follows:
        hub.followed(room, 0)
    follows.clear()
    assert [f for f in peer.take() if isinstance(f, p.Joined)] == [
        p.Joined(room=r, seq=0) for r in rooms
    ]


def _sent(hub: SharedHub, peer: FakePeer, msg_id: str, room: str) -> Submission:
    hub.handle(peer, p.SendMessage(id=msg_id, room=room, text="t"))
    (item,) = [s for s in hub.take_outgoing() if isinstance(s, Submission)]
    return item


def test_the_reader_still_reads_other_nodes_messages_below_this_node_s_own() -> None:
    """Node n1's message got seq 2; seq 1 (another node's) is not read yet: the reader's
    cursor stays at 0, and seq 2 is released only after seq 1."""
    hub, follows = _hub()
    alice = _peer("alice", "r")
    _joined(hub, follows, alice, "r")
    mine = _sent(hub, alice, "m-1", "r")
    hub.settle(mine, Accepted(seq=2))
    assert hub.followed_rooms() == {"r": 0}
    assert alice.take() == []  # held: seq 1 has not been released here
    hub.apply(
        "r", [_entry("r", 1, "o-1", "bob", "n2/1"), _entry("r", 2, "m-1", "alice", mine.nonce)]
    )
    frames = alice.take()
    assert [type(f).__name__ for f in frames] == ["Message", "Ack", "Message"]
    assert [getattr(f, "seq", None) for f in frames] == [1, 2, 2]
    assert hub.followed_rooms() == {"r": 2}


def test_own_messages_are_acked_in_send_order_even_if_read_back_first() -> None:
    """Two rooms; the reader reads the second message back before either send returns:
    the acks still go out in the order the client sent (§4.1, answers in order)."""
    hub, follows = _hub()
    alice = _peer("alice", "a", "b")
    _joined(hub, follows, alice, "a", "b")
    first = _sent(hub, alice, "m-1", "a")
    second = _sent(hub, alice, "m-2", "b")
    hub.apply("b", [_entry("b", 1, "m-2", "alice", second.nonce)])
    assert alice.take() == []
    hub.settle(first, Accepted(seq=1))
    hub.settle(second, Accepted(seq=1))
    frames = alice.take()
    assert [(type(f).__name__, getattr(f, "id", None)) for f in frames] == [
        ("Ack", "m-1"),
        ("Message", "m-1"),
        ("Ack", "m-2"),
        ("Message", "m-2"),
    ]
    assert hub.followed_rooms() == {"a": 1, "b": 1}  # released in order: nothing to re-read


def test_a_join_waits_for_the_head_and_the_sender_s_early_ack_is_not_lost() -> None:
    """A connection sends before its room's head is known: the ack waits for the head;
    a message at or below the head is in the history, so it gets the ack only."""
    hub, follows = _hub()
    alice = _peer("alice", "r")
    hub.connect(alice, ["r"])
    assert follows == ["r"]
    assert alice.take() == []  # no joined before the head is read
    mine = _sent(hub, alice, "m-1", "r")
    hub.settle(mine, Accepted(seq=5))
    assert alice.take() == []
    hub.followed("r", 5)
    assert alice.take() == [
        p.Ack(id="m-1", room="r", seq=5),
        p.Joined(room="r", seq=5),
    ]


def test_a_message_stored_while_its_room_is_left_is_still_acked() -> None:
    """The sender leaves before the room's head is read: its stored message is acked
    anyway (§4.2: a stored message is acked), with no delivery and no joined."""
    hub, _ = _hub()
    alice = _peer("alice", "r")
    hub.connect(alice, ["r"])
    mine = _sent(hub, alice, "m-1", "r")
    hub.settle(mine, Accepted(seq=1))
    hub.handle(alice, p.Leave(room="r"))
    assert alice.take() == [p.Ack(id="m-1", room="r", seq=1), p.Left(room="r")]
    assert hub.followed("r", 1) == []  # the late head finds no room to release
    assert alice.take() == []
