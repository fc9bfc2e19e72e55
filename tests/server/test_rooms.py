"""Rooms (docs/protocol.md §4.4-§4.7): isolation between rooms, explicit join and leave
(idempotent join, `forbidden`, `not_member`, `too_many_rooms`), presence joined/left to the
other members (first connection in / last connection out), typing notices to the other
member connections only.

Absence of a frame is proven with a marker: after the action that must deliver nothing,
a message or pong that must arrive is sent, and it has to be the very next frame.
"""

from __future__ import annotations

from typing import Final

import trio

from loadtool import protocol as p
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits
from tests.conftest import Client, Clients, ConnectFn

CEILING_S: Final = 15  # seconds any test here may take


async def post(client: Client, room: str, msg_id: str, text: str = "hi") -> p.Message:
    """Send a message; check the ack and the sender's own delivery; return the delivery."""
    await client.send(p.SendMessage(id=msg_id, room=room, text=text))
    ack = await client.recv()
    assert isinstance(ack, p.Ack), ack
    assert (ack.id, ack.room, ack.duplicate) == (msg_id, room, False)
    own = await client.recv()
    assert isinstance(own, p.Message), own
    assert (own.id, own.room, own.seq, own.text) == (msg_id, room, ack.seq, text)
    return own


async def pong(client: Client, ts: str) -> None:
    """A ping round trip: the pong must be the next frame (nothing else was queued)."""
    await client.send(p.Ping(ts=ts))
    assert await client.recv() == p.Pong(ts=ts)


async def expect_error(
    client: Client, code: p.ErrorCode, room: str, msg_id: str | None = None
) -> p.Error:
    """The next frame is an error with this code, echoing `room` and `msg_id`."""
    error = await client.recv()
    assert isinstance(error, p.Error), error
    assert (error.code, error.room, error.id) == (code, room, msg_id)
    return error


# --- isolation ---------------------------------------------------------------------------


async def test_a_member_of_room_b_never_receives_room_a_messages(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["a", "b"])
        carol = await connect_to("carol", ["a"])
        assert await alice.recv() == p.Presence(room="a", user_id="carol", status="joined")
        # bob may join a (granted) but is only in b.
        bob = await connect_to("bob", ["a", "b"], query="&rooms=b")
        assert await alice.recv() == p.Presence(room="b", user_id="bob", status="joined")

        in_a = await post(alice, "a", "secret-a", "only for room a")
        assert await carol.recv() == in_a
        marker = await post(alice, "b", "marker-b", "for room b")
        assert marker.seq == 1
        # The marker is the first thing bob ever receives: room a's message never came.
        assert await bob.recv() == marker
        # carol (room a only) does not get room b's message either.
        await pong(carol, "carol-clean")


async def test_seq_numbers_are_per_room(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["a", "b"])
        assert [(await post(alice, "a", f"a{n}")).seq for n in range(3)] == [1, 2, 3]
        assert [(await post(alice, "b", f"b{n}")).seq for n in range(2)] == [1, 2]
        assert (await post(alice, "a", "a3")).seq == 4


# --- join and leave ----------------------------------------------------------------------


async def test_explicit_join_and_leave(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["general", "side"], query="&rooms=general")
        bob = await connect_to("bob", ["side"])

        await alice.send(p.Join(room="side"))
        assert await alice.recv() == p.Joined(room="side", seq=0)
        assert await bob.recv() == p.Presence(room="side", user_id="alice", status="joined")

        first = await post(alice, "side", "s1")
        assert await bob.recv() == first

        # Joining again is idempotent: the same answer (seq = room head), no new presence.
        await alice.send(p.Join(room="side"))
        assert await alice.recv() == p.Joined(room="side", seq=1)
        second = await post(alice, "side", "s2")
        assert await bob.recv() == second

        await alice.send(p.Leave(room="side"))
        assert await alice.recv() == p.Left(room="side")
        assert await bob.recv() == p.Presence(room="side", user_id="alice", status="left")

        # No longer a member: cannot post, and bob's messages no longer reach alice.
        await alice.send(p.SendMessage(id="s3", room="side", text="gone"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "side", "s3")
        third = await post(bob, "side", "s3-bob")
        assert third.seq == 3
        await pong(alice, "after-leave")
        # Still a member of general.
        assert (await post(alice, "general", "g1")).seq == 1


async def test_join_of_a_room_not_granted_is_forbidden(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        bob = await connect_to("bob", ["secret"])
        alice = await connect_to("alice", ["general"])
        await alice.send(p.Join(room="secret"))
        await expect_error(alice, p.ErrorCode.FORBIDDEN, "secret")
        # Not a member after the refusal, and bob saw no presence.
        await alice.send(p.SendMessage(id="x1", room="secret", text="let me in"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "secret", "x1")
        marker = await post(bob, "secret", "marker")
        assert marker.seq == 1
        await pong(alice, "still-open")


async def test_leave_of_a_room_not_joined_is_not_member(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["general", "side"], query="&rooms=general")
        await alice.send(p.Leave(room="side"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "side")
        await alice.send(p.Leave(room="general"))
        assert await alice.recv() == p.Left(room="general")
        await alice.send(p.Leave(room="general"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "general")
        await pong(alice, "open")


async def test_too_many_rooms(clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=Limits(max_rooms_per_connection=2))
        alice = await clients.connect(srv, "alice", ["*"], query="&rooms=a,b")
        await alice.send(p.Join(room="c"))
        await expect_error(alice, p.ErrorCode.TOO_MANY_ROOMS, "c")
        # A room already joined does not count again.
        await alice.send(p.Join(room="a"))
        assert await alice.recv() == p.Joined(room="a", seq=0)
        # Not joined after the refusal.
        await alice.send(p.SendMessage(id="c1", room="c", text="x"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "c", "c1")
        # Leaving one frees a place.
        await alice.send(p.Leave(room="b"))
        assert await alice.recv() == p.Left(room="b")
        await alice.send(p.Join(room="c"))
        assert await alice.recv() == p.Joined(room="c", seq=0)
        assert (await post(alice, "c", "c2")).seq == 1


# --- presence ----------------------------------------------------------------------------


async def settle(server: RunningServer, probe: Client, connections: int) -> None:
    """Ping round trips on `probe` until the server counts `connections` connections.

    A closed client's connection is forgotten (rooms left, presence sent) a few scheduler
    steps after its close handshake; each round trip gives the server those steps.
    """
    while server.metrics.connections != connections:
        await pong(probe, "settle")


async def test_presence_first_connection_in_and_last_connection_out(
    server: RunningServer, connect_to: ConnectFn
) -> None:
    with trio.fail_after(CEILING_S):
        probe = await connect_to("probe", ["elsewhere"])
        alice = await connect_to("alice")
        bob_1 = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        # bob's second connection: bob is already in the room, so no presence. And bob is
        # not told about alice, who was there before him (post checks bob's next frames).
        bob_2 = await connect_to("bob")
        marker = await post(bob_1, "general", "marker-1")
        assert await alice.recv() == marker
        assert await bob_2.recv() == marker

        # Closing one of two connections: bob is still in the room, so no presence.
        await bob_2.close()
        await settle(server, probe, 3)
        marker = await post(bob_1, "general", "marker-2")
        assert await alice.recv() == marker

        # Closing the last one: presence left.
        await bob_1.close()
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="left")
        await pong(probe, "probe-quiet")  # not in general: told nothing


async def test_presence_is_per_room(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["a", "b"])
        carol = await connect_to("carol", ["b"])
        assert await alice.recv() == p.Presence(room="b", user_id="carol", status="joined")
        bob = await connect_to("bob", ["a"])
        assert await alice.recv() == p.Presence(room="a", user_id="bob", status="joined")
        # carol (room b) is not told about bob joining room a.
        await pong(carol, "carol")
        await bob.send(p.Join(room="a"))  # idempotent: no second presence
        assert await bob.recv() == p.Joined(room="a", seq=0)
        await pong(alice, "alice")


# --- typing ------------------------------------------------------------------------------


async def test_typing_goes_to_the_other_member_connections_only(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["general", "side"], query="&rooms=general")
        bob = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        alice_2 = await connect_to("alice", ["general", "side"], query="&rooms=general")

        await alice.send(p.Typing(room="general"))
        started = p.TypingNotice(room="general", user_id="alice", typing=True)
        assert await bob.recv() == started
        assert await alice_2.recv() == started  # another connection of the same user
        await pong(alice, "no-echo")  # the sender itself gets nothing

        await alice.send({"type": "typing", "room": "general", "typing": False})
        stopped = p.TypingNotice(room="general", user_id="alice", typing=False)
        assert await bob.recv() == stopped
        assert await alice_2.recv() == stopped
        await pong(alice, "no-echo-2")

        # A bare typing frame means typing: true.
        await bob.send({"type": "typing", "room": "general"})
        from_bob = p.TypingNotice(room="general", user_id="bob", typing=True)
        assert await alice.recv() == from_bob
        assert await alice_2.recv() == from_bob

        # Typing is not stored.
        await bob.send(p.HistoryRequest(room="general"))
        assert await bob.recv() == p.HistoryPage(room="general", messages=[], has_more=False)


async def test_typing_needs_membership(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["general", "side"], query="&rooms=general")
        bob = await connect_to("bob", ["side"])
        await alice.send(p.Typing(room="side"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "side")
        marker = await post(alice, "general", "marker")
        assert marker.seq == 1
        await pong(bob, "nothing-for-bob")
