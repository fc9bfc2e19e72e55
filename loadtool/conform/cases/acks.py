"""5.x Acks and dedupe: what an ack carries, per-room seqs, the ack before the sender's own
delivery, replays of a message id (docs/protocol.md §4.1-§4.3).

Every case uses fresh rooms, so their first seq is 1. That a replay is *not* delivered
again is proven with a marker round trip (`Peer.sync`) after the duplicate ack.
"""

from __future__ import annotations

from ..harness import Frame, Harness, Peer
from ..model import CaseFailure, Feature
from ._case import case
from .frames import delivery, expect_ack, expect_error, expect_none, short, typed, wait_for
from .limits import advertised, connect_welcome, not_checked


async def _collect(peer: Peer, ids: list[str], *, acks: bool) -> list[Frame]:
    """Read until `peer` has every delivery of `ids` (and, with `acks`, every ack): the ack
    and message frames about them, in arrival order."""
    want = {(kind, i) for i in ids for kind in (("ack", "message") if acks else ("message",))}
    seen: list[Frame] = []
    while want:
        frame = await wait_for(
            peer,
            lambda f: f.get("type") in ("ack", "message") and f.get("id") in ids,
            f"{len(want)} more acks/deliveries of {ids}",
        )
        want.discard((str(frame.get("type")), str(frame.get("id"))))
        seen.append(frame)
    return seen


def _seqs(frames: list[Frame], kind: str) -> list[int]:
    """The seqs of the `kind` frames, in order; each must be an integer."""
    out = []
    for frame in frames:
        if frame.get("type") == kind:
            if type(seq := frame.get("seq")) is not int:
                raise CaseFailure(f"{kind} {short(frame)}", expected="an integer seq")
            out.append(seq)
    return out


@case("5.1", "an ack carries the message's id, room and seq, to the sender only", "§4.2",
      Feature.ACKS)  # fmt: skip
async def ack_fields(h: Harness) -> None:
    """Alice sends the first message of a fresh room: she gets `ack {id, room, seq 1,
    duplicate false}` (an absent duplicate counts as false). Every delivery carries seq 1;
    Bob, a member, gets the `message` but no `ack`."""
    room = h.default_room
    alice = await h.connect(h.user("alice"), [room])
    bob = await h.connect(h.user("bob"), [room])
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room, "first"))
    seq = await expect_ack(alice, msg_id, room)
    if seq != 1:
        raise CaseFailure(f"the first message of a fresh room got seq {seq}", expected="seq 1")
    before: list[Frame] = []
    for peer in (alice, bob):
        skipped = before if peer is bob else None
        got = await wait_for(peer, delivery(msg_id), f"the delivery of {msg_id!r}", skipped=skipped)
        if got.get("seq") != seq:
            raise CaseFailure(f"{peer.name} got {short(got)}", expected=f"seq {seq}, the ack's")
    await expect_none(
        bob,
        lambda f: f.get("type") == "ack",
        "got an ack for a message it did not send",
        "the ack to the sending connection only (§4.2)",
        earlier=before,
    )


@case("5.2", "seqs of a room go up by exactly 1 per message", "§4.1", Feature.ACKS)
async def seq_increments(h: Harness) -> None:
    """Alice sends 4 messages and Bob 4, interleaved, to one fresh room: the 8 acks hold
    seqs 1-8, each once; each sender's acks increase; Carol receives the 8 messages in
    strictly increasing seq, 1 to 8, each once."""
    room = h.default_room
    alice = await h.connect(h.user("alice"), [room])
    bob = await h.connect(h.user("bob"), [room])
    carol = await h.connect(h.user("carol"), [room])
    ids = {alice.name: [h.name("a") for _ in range(4)], bob.name: [h.name("b") for _ in range(4)]}
    for i in range(4):
        for peer in (alice, bob):
            await peer.send(typed(ids[peer.name][i], room, f"#{i}"))
    acked: list[int] = []
    for peer in (alice, bob):
        seqs = _seqs(await _collect(peer, ids[peer.name], acks=True), "ack")
        if seqs != sorted(set(seqs)):
            raise CaseFailure(f"{peer.name}'s acks carry seqs {seqs}", expected="increasing")
        acked += seqs
    if sorted(acked) != list(range(1, 9)):
        raise CaseFailure(f"the acks carry seqs {sorted(acked)}", expected="1 to 8, each once")
    delivered = _seqs(await _collect(carol, ids[alice.name] + ids[bob.name], acks=False), "message")
    if delivered != list(range(1, 9)):
        raise CaseFailure(
            f"Carol received seqs {delivered}",
            expected="1, 2, ..., 8: strictly increasing, no gap, each once (§4.1)",
        )


@case("5.3", "the ack comes before the sender's own delivery", "§4.1", Feature.ACKS)
async def ack_first(h: Harness) -> None:
    """Alice sends 5 messages at once: on her connection each message's `ack` arrives
    before its `message` frame (§4.1 step 6)."""
    room = h.default_room
    alice = await h.connect(h.user("alice"), [room])
    ids = [h.name("m") for _ in range(5)]
    for msg_id in ids:
        await alice.send(typed(msg_id, room))
    acked: set[object] = set()
    for frame in await _collect(alice, ids, acks=True):
        if frame.get("type") == "ack":
            acked.add(frame.get("id"))
        elif frame.get("id") not in acked:
            raise CaseFailure(
                f"Alice got {short(frame)} before its ack",
                expected="the ack first, then the message (§4.1 step 6)",
            )


@case("5.4", "a replayed id is acked again as a duplicate and not delivered again", "§4.3",
      Feature.ACKS, Feature.DEDUPE)  # fmt: skip
async def replay(h: Harness) -> None:
    """Alice's message is acked with seq s and delivered. She sends the same frame again,
    then once more with another text: each gets `ack {id, room, seq s, duplicate true}`;
    neither Alice nor Bob receives another delivery; the room's next message is s + 1."""
    room = h.default_room
    alice = await h.connect(h.user("alice"), [room])
    bob = await h.connect(h.user("bob"), [room])
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room, "original"))
    seq = await expect_ack(alice, msg_id, room)
    for peer in (alice, bob):
        await wait_for(peer, delivery(msg_id), f"the delivery of {msg_id!r}")
    for text in ("original", "another text"):
        await alice.send(typed(msg_id, room, text))
        again = await expect_ack(alice, msg_id, room, duplicate=True)
        if again != seq:
            raise CaseFailure(
                f"the replay ({text!r}) was acked with seq {again}",
                expected=f"seq {seq}, the original's (§4.2)",
            )
    for peer in (alice, bob):
        await expect_none(
            peer,
            delivery(msg_id),
            "received a replayed message again",
            "no delivery for a duplicate (§4.1 step 2)",
        )
    follow = h.name("m")
    await alice.send(typed(follow, room, "next"))
    if (got := await expect_ack(alice, follow, room)) != seq + 1:
        raise CaseFailure(
            f"the message after the replays got seq {got}",
            expected=f"seq {seq + 1}: a duplicate takes no seq",
        )


@case("5.5", "a replay naming another room is acked with the original room and seq", "§4.3",
      Feature.ACKS, Feature.DEDUPE, Feature.ROOMS)  # fmt: skip
async def replay_other_room(h: Harness) -> None:
    """Alice is in rooms A and B. Her message to A is acked (seq s). The same id sent to B
    gets `ack {room A, seq s, duplicate true}`: the dedupe key is (user, id), not the
    room; Bob, in B, receives nothing and B's first message is still seq 1."""
    room_a, room_b = h.room("a"), h.default_room
    alice = await h.connect(h.user("alice"), [room_a, room_b])
    bob = await h.connect(h.user("bob"), [room_b])
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room_a, "to A"))
    seq = await expect_ack(alice, msg_id, room_a)
    await alice.send(typed(msg_id, room_b, "to B"))
    ack = await wait_for(
        alice, lambda f: f.get("type") == "ack", f"the ack for the replay {msg_id!r}"
    )
    if (ack.get("room"), ack.get("seq"), ack.get("duplicate")) != (room_a, seq, True):
        raise CaseFailure(
            f"the replay into {room_b!r} got {short(ack)}",
            expected=f"ack {{room {room_a!r}, seq {seq}, duplicate true}} (§4.2, §4.3)",
        )
    await expect_none(bob, delivery(msg_id), "received the replay", "nothing (§4.3)")
    first = h.name("m")
    await alice.send(typed(first, room_b, "B's first"))
    if (got := await expect_ack(alice, first, room_b)) != 1:
        raise CaseFailure(f"B's first message got seq {got}", expected="seq 1")


@case("5.6", "the same id from another user is a new message", "§4.3",
      Feature.ACKS, Feature.DEDUPE)  # fmt: skip
async def other_user_same_id(h: Harness) -> None:
    """Alice sends id X (acked seq s). Bob sends the same id X to the same room: he gets a
    first ack (`duplicate` false) with seq s + 1, and Alice receives Bob's message."""
    room = h.default_room
    alice = await h.connect(h.user("alice"), [room])
    bob = await h.connect(h.user("bob"), [room])
    msg_id = h.name("shared")
    await alice.send(typed(msg_id, room, "Alice's"))
    seq = await expect_ack(alice, msg_id, room)
    await bob.send(typed(msg_id, room, "Bob's"))
    got = await expect_ack(bob, msg_id, room, duplicate=False)
    if got != seq + 1:
        raise CaseFailure(f"Bob's message got seq {got}", expected=f"seq {seq + 1}")
    frame = await wait_for(
        alice, lambda f: delivery(msg_id)(f) and f.get("seq") == got, "Bob's message"
    )
    if frame.get("text") != "Bob's" or frame.get("senderId") != bob.name:
        raise CaseFailure(f"Alice got {short(frame)}", expected="Bob's text and senderId")


@case("5.7", "a replay after a reconnect, or from another connection, is deduped", "§4.3",
      Feature.ACKS, Feature.DEDUPE)  # fmt: skip
async def replay_reconnect(h: Harness) -> None:
    """Alice's message is acked (seq s) and her connection closes. On a new connection she
    replays it: duplicate ack with seq s; a second, concurrent connection of hers replays
    it too: the same. Bob receives it once only."""
    room = h.default_room
    alice_id = h.user("alice")
    bob = await h.connect(h.user("bob"), [room])
    first = await h.connect(alice_id, [room])
    msg_id = h.name("m")
    await first.send(typed(msg_id, room, "before the reconnect"))
    seq = await expect_ack(first, msg_id, room)
    await wait_for(bob, delivery(msg_id), f"the delivery of {msg_id!r}")
    await first.close()
    h.log(alice_id, "!!", "closed (1000)")
    again = await h.connect(alice_id, [room])
    other = await h.connect(alice_id, [room])
    for peer in (again, other):
        await peer.send(typed(msg_id, room, "replayed"))
        if (got := await expect_ack(peer, msg_id, room, duplicate=True)) != seq:
            raise CaseFailure(f"{peer.name}'s replay got seq {got}", expected=f"seq {seq}")
    await expect_none(bob, delivery(msg_id), "received the message twice", "once (§4.3)")


@case("5.8", "two rooms have independent seqs", "§4.1", Feature.ACKS, Feature.ROOMS)
async def independent_rooms(h: Harness) -> None:
    """Alice is in two fresh rooms A and B. She sends to A, A, B, A, B: the acks carry
    seqs 1, 2, 1, 3, 2."""
    room_a, room_b = h.room("a"), h.default_room
    alice = await h.connect(h.user("alice"), [room_a, room_b])
    plan = [room_a, room_a, room_b, room_a, room_b]
    ids = [h.name("m") for _ in plan]
    for msg_id, room in zip(ids, plan, strict=True):
        await alice.send(typed(msg_id, room))
    got = []
    for msg_id, room in zip(ids, plan, strict=True):
        got.append(await expect_ack(alice, msg_id, room))
        await wait_for(alice, delivery(msg_id), f"the delivery of {msg_id!r}")
    if got != [1, 2, 1, 3, 2]:
        raise CaseFailure(f"acks in A, A, B, A, B carry seqs {got}", expected="1, 2, 1, 3, 2")


@case("5.9", "dedupe comes before the text length check", "§4.1",
      Feature.ACKS, Feature.DEDUPE, Feature.LIMITS)  # fmt: skip
async def dedupe_before_length(h: Harness) -> None:
    """Alice's message is acked (seq s). A replay of its id with a text of `maxTextChars` + 1
    code points is answered with the duplicate ack (seq s), not `too_long` (§4.1 step 2
    precedes step 3)."""
    room = h.default_room
    alice, hello = await connect_welcome(h, h.user("alice"), [room])
    chars = int(advertised(hello, "maxTextChars"))
    if chars + 200 > advertised(hello, "maxMessageBytes"):
        not_checked(f"maxTextChars {chars} does not fit in maxMessageBytes")
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room, "short"))
    seq = await expect_ack(alice, msg_id, room)
    await alice.send(typed(msg_id, room, "x" * (chars + 1)))
    if (got := await expect_ack(alice, msg_id, room, duplicate=True)) != seq:
        raise CaseFailure(f"the long replay got seq {got}", expected=f"seq {seq}")


@case("5.10", "membership is checked before dedupe", "§4.3",
      Feature.ACKS, Feature.DEDUPE, Feature.ROOMS)  # fmt: skip
async def membership_before_dedupe(h: Harness) -> None:
    """Alice (in room A) sends a message, acked. She leaves A and replays it to A: error
    `not_member` with the id and room, not a duplicate ack."""
    room_a = h.room("a")
    alice = await h.connect(h.user("alice"), [room_a, h.default_room])
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room_a))
    await expect_ack(alice, msg_id, room_a)
    await alice.send({"type": "leave", "room": room_a})
    await wait_for(alice, lambda f: f.get("type") == "left", f"left {room_a!r}")
    await alice.send(typed(msg_id, room_a))
    await expect_error(alice, "not_member", f"a replay to {room_a!r} after leaving it",
                       msg_id=msg_id, room=room_a)  # fmt: skip


CASES = (
    ack_fields,
    seq_increments,
    ack_first,
    replay,
    replay_other_room,
    other_user_same_id,
    replay_reconnect,
    independent_rooms,
    dedupe_before_length,
    membership_before_dedupe,
)
