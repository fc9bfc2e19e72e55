"""8.x Reconnect and presence: presence per user across several connections, catching up
after a reconnect, replaying the outbox (docs/protocol.md §4.7, §5.2, §7.5).

Absence ("Bob hears nothing") is proven with a marker round trip (`Peer.sync`).
"""

from __future__ import annotations

from ..harness import Frame, Harness, Peer
from ..model import CaseFailure, Feature
from ._case import case
from .history import check_page, expect_page, page, post


def _presence(frames: list[Frame], user: str) -> list[Frame]:
    return [f for f in frames if f.get("type") == "presence" and f.get("userId") == user]


async def _expect_presence(peer: Peer, room: str, user: str, status: str) -> None:
    frame = await peer.expect(
        lambda f: f.get("type") == "presence" and f.get("userId") == user,
        skip=("typing", "pong"),
        what=f"presence {status} for {user}",
    )
    if frame.get("status") != status or frame.get("room") != room:
        raise CaseFailure(f"{peer.name} got {frame}", expected=f"presence {status} in {room!r}")


@case("8.1", "presence joined is sent once for two connections of one user", "§4.7",
      Feature.PRESENCE, Feature.ROOMS)  # fmt: skip
async def presence_joined_once(h: Harness) -> None:
    """Bob is in the room. Alice connects to it: Bob gets `presence` joined for Alice. A
    second connection of Alice joins: nobody gets presence for it, and neither of Alice's
    connections ever receives presence about Alice herself."""
    room = h.room()
    bob = await h.connect(h.user("bob"), [room])
    alice_id = h.user("alice")
    alice1 = await h.connect(alice_id, [room])
    await _expect_presence(bob, room, alice_id, "joined")
    alice2 = await h.connect(alice_id, [room])
    for peer in (bob, alice1, alice2):
        extra = _presence(await peer.sync(), alice_id)
        if extra:
            raise CaseFailure(
                f"{peer.name} got {extra[0]} after Alice's second connection joined",
                expected="no presence: only a user's first connection in a room causes it",
            )


@case("8.2", "presence left only when the user's last connection closes", "§4.7",
      Feature.PRESENCE, Feature.ROOMS)  # fmt: skip
async def presence_left_last(h: Harness) -> None:
    """Alice has two connections in Bob's room. The first closes (close 1000): Bob hears
    nothing. The second drops without a close handshake: Bob gets `presence` left for
    Alice, once."""
    room = h.room()
    bob = await h.connect(h.user("bob"), [room])
    alice_id = h.user("alice")
    alice1 = await h.connect(alice_id, [room])
    alice2 = await h.connect(alice_id, [room])
    await _expect_presence(bob, room, alice_id, "joined")
    await alice1.close()
    h.log(alice_id, "!!", "first connection closed (1000)")
    early = _presence(await bob.sync(), alice_id)
    if early:
        raise CaseFailure(
            f"Bob got {early[0]} while Alice still has a connection in the room",
            expected="no presence until Alice's last connection leaves",
        )
    await alice2.conn.abort()
    h.log(alice_id, "!!", "second connection dropped (no close handshake)")
    await _expect_presence(bob, room, alice_id, "left")
    again = _presence(await bob.sync(), alice_id)
    if again:
        raise CaseFailure(f"Bob got a second presence {again[0]}", expected="presence left once")


@case("8.3", "after a reconnect, join since returns what was missed in each room", "§5.2",
      Feature.ROOMS, Feature.HISTORY, Feature.ACKS)  # fmt: skip
async def missed_while_away(h: Harness) -> None:
    """Bob is in rooms A and B and has seen one message in each; he drops. Alice posts 2
    to A and 3 to B. Bob reconnects joining nothing (`rooms=`), then sends `join {since}`
    for A and B: each answer is `joined` (the room's head) then exactly that room's missed
    messages, in order; a later message to B reaches him live."""
    room_a, room_b = h.room("a"), h.room("b")
    bob_id = h.user("bob")
    bob = await h.connect(bob_id, [room_a, room_b])
    alice = await h.connect(h.user("alice"), [room_a, room_b])
    last = {room: (await post(h, alice, room, 1, h.user("seen")))[0] for room in (room_a, room_b)}
    await bob.sync()
    await bob.conn.abort()
    h.log(bob_id, "!!", "dropped (no close handshake)")
    missed = {room_a: h.user("missed-a"), room_b: h.user("missed-b")}
    counts = {room_a: 2, room_b: 3}
    seqs = {room: await post(h, alice, room, counts[room], missed[room]) for room in counts}
    bob = await h.connect(bob_id, [room_a, room_b], query="rooms=")
    for room in (room_a, room_b):
        await bob.send({"type": "join", "room": room, "since": last[room]})
    for room in (room_a, room_b):
        joined = await bob.expect("joined", what=f"joined {room}")
        if joined.get("room") != room or joined.get("seq") != seqs[room][-1]:
            raise CaseFailure(f"joined {joined}", expected=f"{room!r} at seq {seqs[room][-1]}")
        got = check_page(await bob.expect("history", what=f"the page of {room}"), room)
        expect_page(got, seqs[room], False, f"join {room} since {last[room]}")
        ids = [m.get("id") for m in got[2]]
        want = [f"{missed[room]}-{i}" for i in range(counts[room])]
        if ids != want:
            raise CaseFailure(f"{room} page ids {ids}", expected=str(want))
    live = await post(h, alice, room_b, 1, h.name("live"))
    frame = await bob.expect("message", what="the live message in room B")
    if frame.get("room") != room_b or frame.get("seq") != live[0]:
        raise CaseFailure(f"got {frame}", expected=f"message {live[0]} in {room_b!r}")


@case("8.4", "an outbox replay after a reconnect is acked as a duplicate", "§5.2",
      Feature.ROOMS, Feature.ACKS, Feature.DEDUPE, Feature.HISTORY)  # fmt: skip
async def outbox_replay(h: Harness) -> None:
    """Bob's message is acked (seq s), then his connection drops. On a new connection he
    re-sends it with the same `id` and another text: the answer is an ack with
    `duplicate` true, the original room and seq s, and no `message` delivery; the room's
    history holds the id once."""
    room = h.room()
    bob_id = h.user("bob")
    bob = await h.connect(bob_id, [room])
    tag = h.name("out")
    (seq,) = await post(h, bob, room, 1, tag)
    await bob.conn.abort()
    h.log(bob_id, "!!", "dropped (no close handshake)")
    bob = await h.connect(bob_id, [room])
    await bob.send(h.chat_frame(f"{tag}-0", room, text="replayed from the outbox"))
    ack = await bob.expect("ack", what="an ack for the replay")
    want = {"id": f"{tag}-0", "room": room, "seq": seq, "duplicate": True}
    if {k: ack.get(k) for k in want} != want:
        raise CaseFailure(f"replay acked with {ack}", expected=str(want))
    delivered = [f for f in await bob.sync() if f.get("type") == "message"]
    if delivered:
        raise CaseFailure(f"the replay was delivered: {delivered[0]}", expected="no delivery")
    seqs, _, messages = await page(bob, room, after=0)
    ids = [m.get("id") for m in messages]
    if ids.count(f"{tag}-0") != 1 or seqs != [seq]:
        raise CaseFailure(f"history holds seqs {seqs}, ids {ids}", expected=f"[{seq}] once")


CASES = (presence_joined_once, presence_left_last, missed_while_away, outbox_replay)
