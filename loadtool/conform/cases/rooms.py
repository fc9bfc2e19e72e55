"""3.x Rooms and fan-out: who receives a message, join and leave, their errors, presence
and typing (docs/protocol.md §4.1, §4.4-§4.7).

Absence ("Carol never receives it") is proven with a marker round trip (`Peer.sync`)
taken after a member has received the message: the server fans a message out to every
member when it releases it, so anything meant for Carol was queued before her marker's
answer. The connection whose absence is checked is always in the case's default room,
so the marker also works on servers without application pings.
"""

from __future__ import annotations

from ..harness import Frame, Harness, Peer
from ..model import CaseFailure, Feature
from ._case import case
from .frames import (
    check_delivery,
    delivery,
    expect_error,
    expect_none,
    of_type,
    short,
    typed,
    wait_for,
)


async def _send_and_deliver(h: Harness, sender: Peer, room: str, *receivers: Peer) -> str:
    """`sender` sends a chat message to `room`; every receiver must get it. Returns its id."""
    msg_id = h.name("m")
    await sender.send(h.chat_frame(msg_id, room, text=f"to {room}"))
    for peer in receivers:
        await wait_for(peer, delivery(msg_id), f"message {msg_id!r} in {room!r}")
    return msg_id


@case("3.1", "every member receives a message, the sender included", "§4.1",
      Feature.SEED_DIALECT)  # fmt: skip
async def everyone_receives(h: Harness) -> None:
    """Alice, Bob and Carol are in one room. Alice sends a chat message (in the server's
    dialect): all three receive it, Alice too. On a v1 server each copy is a `message`
    with `senderId` = Alice's sub and the same seq."""
    room = h.default_room
    alice_id = h.user("alice")
    peers = [await h.connect(alice_id, [room])]
    peers += [await h.connect(h.user(name), [room]) for name in ("bob", "carol")]
    msg_id = h.name("m")
    await peers[0].send(h.chat_frame(msg_id, room, text="to everyone"))
    seqs = set()
    for peer in peers:
        got = await wait_for(peer, delivery(msg_id), f"Alice's message {msg_id!r}")
        if got.get("text") != "to everyone":
            raise CaseFailure(f"{peer.name} got {short(got)}", expected="text 'to everyone'")
        if Feature.ROOMS in h.features:
            seqs.add(check_delivery(got, msg_id=msg_id, room=room, sender=alice_id,
                                    text="to everyone"))  # fmt: skip
    if len(seqs) > 1:
        raise CaseFailure(f"the copies carry seqs {sorted(seqs)}", expected="one seq for all")


@case("3.2", "room isolation: a non-member never receives a room's messages", "§4.4",
      Feature.ROOMS)  # fmt: skip
async def isolation(h: Harness) -> None:
    """Alice and Bob are in room A. Carol's token grants A too, but she joined only room B;
    Dave is granted only B. Alice sends to A: Bob receives it; Carol and Dave receive
    nothing from A (marker round trip after Bob's delivery)."""
    room_a, room_b = h.room("a"), h.default_room
    alice = await h.connect(h.user("alice"), [room_a])
    bob = await h.connect(h.user("bob"), [room_a])
    carol = await h.connect(h.user("carol"), [room_a, room_b], query=f"rooms={room_b}")
    dave = await h.connect(h.user("dave"), [room_b])
    msg_id = await _send_and_deliver(h, alice, room_a, bob)
    for peer in (carol, dave):
        await expect_none(
            peer,
            lambda f: f.get("id") == msg_id or f.get("room") == room_a,
            f"received a frame of room {room_a!r}, which it has not joined",
            "nothing from a room the connection is not a member of (§4.4)",
        )


@case("3.3", "after join, a connection receives the room's next messages", "§4.4", Feature.ROOMS)
async def join_then_receive(h: Harness) -> None:
    """Carol connects joining no room (granted A). Alice posts m1 to A. Carol sends `join A`:
    she gets `joined {room A, seq}` with seq = m1's seq (the head). Alice posts m2: Carol
    receives m2 with seq = joined.seq + 1, and never m1."""
    room = h.default_room
    alice = await h.connect(h.user("alice"), [room])
    carol = await h.connect(h.user("carol"), [room], query="rooms=")
    first = h.name("m")
    await alice.send(h.chat_frame(first, room, text="before the join"))
    head = (await wait_for(alice, delivery(first), "Alice's own copy of m1")).get("seq")
    await carol.send({"type": "join", "room": room})
    joined = await carol.expect("joined", what=f"joined {room!r}")
    if joined.get("room") != room or joined.get("seq") != head:
        raise CaseFailure(
            f"Carol got {short(joined)} after m1 was delivered as seq {head}",
            expected=f"joined {{room {room!r}, seq {head}}}: the room's head (§4.4 step 4)",
        )
    second = h.name("m")
    await alice.send(h.chat_frame(second, room, text="after the join"))
    got = await wait_for(carol, of_type("message", room=room), "the message after the join")
    if got.get("id") != second or got.get("seq") != joined["seq"] + 1:
        raise CaseFailure(
            f"Carol's first message after joining is {short(got)}",
            expected=f"{second!r} with seq {joined['seq'] + 1}, never m1 {first!r}",
        )


@case("3.4", "after leave, a connection no longer receives the room", "§4.5", Feature.ROOMS)
async def leave_then_silence(h: Harness) -> None:
    """Bob is in rooms A and B (B the default room). He sends `leave A` and gets `left
    {room A}`. Alice then posts to A; Bob receives nothing from A, but still gets a message
    in B."""
    room_a, room_b = h.room("a"), h.default_room
    alice = await h.connect(h.user("alice"), [room_a, room_b])
    bob = await h.connect(h.user("bob"), [room_a, room_b])
    await _send_and_deliver(h, alice, room_a, bob)
    await bob.send({"type": "leave", "room": room_a})
    left = await wait_for(bob, lambda f: f.get("type") == "left", f"left {room_a!r}")
    if left.get("room") != room_a:
        raise CaseFailure(f"Bob got {short(left)}", expected=f"left {{room {room_a!r}}}")
    after, in_b = h.name("m"), h.name("m")
    for msg_id, room in ((after, room_a), (in_b, room_b)):
        await alice.send(h.chat_frame(msg_id, room, text=f"to {room} after the leave"))
        await wait_for(alice, delivery(msg_id), f"Alice's own copy of {msg_id!r}")
    frames = await bob.sync()
    leaked = [f for f in frames if f.get("id") == after or of_type("message", room=room_a)(f)]
    if leaked:
        raise CaseFailure(
            f"Bob received {short(leaked[0])} after leaving {room_a!r}",
            expected="nothing from a room after `left` (§4.5)",
        )
    if not any(delivery(in_b)(f) for f in frames):
        raise CaseFailure(
            f"Bob did not receive Alice's message {in_b!r} in {room_b!r}",
            expected="leaving one room leaves the others alone",
        )


@case("3.5", "join of a room the token does not grant gets forbidden", "§4.4",
      Feature.ROOMS, Feature.AUTH)  # fmt: skip
async def join_forbidden(h: Harness) -> None:
    """Dave is in room X. Alice, not granted X, sends `join X`: error `forbidden` echoing
    the room. It had no effect: Dave gets no presence for Alice, and Alice's message to X
    is then refused `not_member`."""
    h.require_room_grants()
    room_x = h.room("x")
    dave = await h.connect(h.user("dave"), [room_x, h.default_room])
    alice_id = h.user("alice")
    alice = await h.connect(alice_id, [h.default_room])
    await alice.send({"type": "join", "room": room_x})
    await expect_error(alice, "forbidden", f"join {room_x!r}", room=room_x)
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room_x))
    await expect_error(alice, "not_member", f"a message to {room_x!r}", msg_id=msg_id,
                       room=room_x)  # fmt: skip
    await expect_none(
        dave,
        lambda f: (
            (f.get("userId") == alice_id and f.get("room") == room_x) or f.get("id") == msg_id
        ),
        "heard of Alice's refused join",
        "a refused join has no effect (§8.1)",
    )


@case("3.6", "leave of a room not joined gets not_member", "§4.5", Feature.ROOMS)
async def leave_not_member(h: Harness) -> None:
    """Alice, granted rooms A and B but joined only to B, sends `leave A`: error
    `not_member` echoing the room, and no `left` frame."""
    room_a, room_b = h.room("a"), h.default_room
    alice = await h.connect(h.user("alice"), [room_a, room_b], query=f"rooms={room_b}")
    await alice.send({"type": "leave", "room": room_a})
    await expect_error(alice, "not_member", f"leave {room_a!r}", room=room_a)
    await expect_none(
        alice,
        lambda f: f.get("type") == "left",
        "got `left` for a room it never joined",
        "only the error (§4.5)",
    )


@case("3.7", "a message to a room not joined gets not_member and reaches nobody", "§4.1",
      Feature.ROOMS)  # fmt: skip
async def send_not_member(h: Harness) -> None:
    """Bob is in room A. Alice, granted A but joined only to B, sends a message to A: error
    `not_member` with its `id` and `room`; Bob receives nothing. The id was not remembered:
    after `join A` the same id is acked as new (with acks and dedupe)."""
    room_a, room_b = h.room("a"), h.default_room
    bob = await h.connect(h.user("bob"), [room_a, room_b])
    alice = await h.connect(h.user("alice"), [room_a, room_b], query=f"rooms={room_b}")
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room_a, "not a member"))
    await expect_error(alice, "not_member", f"a message to {room_a!r}", msg_id=msg_id,
                       room=room_a)  # fmt: skip
    await expect_none(
        bob,
        lambda f: f.get("id") == msg_id,
        "received a message its sender was refused",
        "a refused message reaches nobody (§8.1)",
    )
    if {Feature.ACKS, Feature.DEDUPE} <= h.features:
        await alice.send({"type": "join", "room": room_a})
        await alice.expect("joined", what=f"joined {room_a!r}")
        await alice.send(typed(msg_id, room_a, "now a member"))
        ack = await wait_for(alice, of_type("ack", id=msg_id), f"the ack for {msg_id!r}")
        if ack.get("duplicate", False) is not False:
            raise CaseFailure(
                f"after the refusal, the same id got {short(ack)}",
                expected="a first ack (duplicate false): a refused id is not remembered (§4.2)",
            )


@case("3.8", "presence joined and left reach the other members only", "§4.7",
      Feature.ROOMS, Feature.PRESENCE)  # fmt: skip
async def presence(h: Harness) -> None:
    """Bob is in room A; Carol only in B. Alice (granted A, joined B) sends `join A`: Bob
    gets `presence {room A, userId Alice, status joined}`; Alice and Carol get none. Alice
    sends `leave A`: Bob gets presence `left`; Alice gets `left`, no presence."""
    room_a, room_b = h.room("a"), h.default_room
    bob = await h.connect(h.user("bob"), [room_a])
    carol = await h.connect(h.user("carol"), [room_b])
    alice_id = h.user("alice")
    alice = await h.connect(alice_id, [room_a, room_b], query=f"rooms={room_b}")
    about_alice = of_type("presence", userId=alice_id, room=room_a)
    for action, status, answer in (("join", "joined", "joined"), ("leave", "left", "left")):
        await alice.send({"type": action, "room": room_a})
        got = await wait_for(bob, about_alice, f"presence {status} for Alice")
        if got.get("status") != status:
            raise CaseFailure(
                f"Bob got {short(got)}", expected=f"presence {status} for Alice in {room_a!r}"
            )
        before: list[Frame] = []
        await wait_for(alice, of_type(answer, room=room_a), f"{answer} {room_a!r}", skipped=before)
        for peer in (alice, carol):
            await expect_none(
                peer,
                about_alice,
                f"received presence about Alice after her {action}",
                "presence to the room's other members only, never to its cause (§4.7)",
                earlier=before if peer is alice else (),
            )


@case("3.9", "typing reaches the other members, not the sender", "§4.6",
      Feature.ROOMS, Feature.PRESENCE)  # fmt: skip
async def typing(h: Harness) -> None:
    """Alice and Bob are in room A, Carol only in B. Alice sends `typing {room A}` then
    `typing {room A, typing false}`: Bob gets `typing {room A, userId Alice, typing true}`
    then `... typing false`; neither Alice nor Carol gets any typing frame."""
    room_a, room_b = h.room("a"), h.default_room
    alice_id = h.user("alice")
    alice = await h.connect(alice_id, [room_a, room_b])
    bob = await h.connect(h.user("bob"), [room_a])
    carol = await h.connect(h.user("carol"), [room_b])
    await alice.send({"type": "typing", "room": room_a})
    await alice.send({"type": "typing", "room": room_a, "typing": False})
    for flag in (True, False):
        got = await wait_for(bob, of_type("typing", userId=alice_id), f"typing {flag} from Alice")
        if got.get("room") != room_a or got.get("typing") is not flag:
            raise CaseFailure(
                f"Bob got {short(got)}",
                expected=f"typing {{room {room_a!r}, userId Alice, typing {str(flag).lower()}}}",
            )
    for peer in (alice, carol):
        await expect_none(
            peer,
            lambda f: f.get("type") == "typing",
            "received a typing frame",
            "typing to the other members of the room only (§4.6)",
        )


@case("3.10", "every connection of the sending user receives the message", "§4.1",
      Feature.ROOMS)  # fmt: skip
async def same_user_twice(h: Harness) -> None:
    """Alice has two connections in room A. The first sends a message: both receive it as
    a `message`, once; the second gets no `ack` (only the sending connection does, §4.2)."""
    room = h.default_room
    alice_id = h.user("alice")
    first, second = await h.connect(alice_id, [room]), await h.connect(alice_id, [room])
    msg_id = await _send_and_deliver(h, first, room, first)
    before: list[Frame] = []
    await wait_for(second, delivery(msg_id), f"message {msg_id!r}", skipped=before)
    await expect_none(
        second,
        lambda f: f.get("type") == "ack" or delivery(msg_id)(f),
        "got the ack of a message sent on the other connection, or a second copy",
        "the message once and the ack to the sending connection only (§4.2)",
        earlier=before,
    )


@case("3.11", "membership is per connection, not per user", "§4.1", Feature.ROOMS)
async def per_connection(h: Harness) -> None:
    """Alice's first connection is in room A; her second joined only B. From the second, a
    message and a `typing` to A each get error `not_member`; the first receives nothing."""
    room_a, room_b = h.room("a"), h.default_room
    alice_id = h.user("alice")
    first = await h.connect(alice_id, [room_a, room_b])
    second = await h.connect(alice_id, [room_a, room_b], query=f"rooms={room_b}")
    msg_id = h.name("m")
    await second.send(typed(msg_id, room_a, "from the non-member connection"))
    await second.send({"type": "typing", "room": room_a})
    await expect_error(second, "not_member", f"a message to {room_a!r}", msg_id=msg_id,
                       room=room_a)  # fmt: skip
    await expect_error(second, "not_member", f"typing in {room_a!r}", room=room_a)
    await expect_none(
        first,
        lambda f: f.get("id") == msg_id or f.get("type") == "typing",
        "received what the non-member connection was refused",
        "nothing: membership is per connection (§4.1 step 1)",
    )


CASES = (
    everyone_receives,
    isolation,
    join_then_receive,
    leave_then_silence,
    join_forbidden,
    leave_not_member,
    send_not_member,
    presence,
    typing,
    same_user_twice,
    per_connection,
)
