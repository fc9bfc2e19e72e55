"""Chat messages (docs/protocol.md §4.1-§4.3): the seed dialect (no `type`, the five
ChatMessage fields) and typed frames are stored with the next per-room seq, acked to the
sender before any delivery, and delivered to every member connection; replayed ids are
acked again as duplicates without a second delivery; `not_member`, `too_long` and every
malformed frame get an error frame while the connection, and everybody else, carry on.

Absence of a frame is proven with a marker: after the action that must deliver nothing,
a message or pong that must arrive is sent, and it has to be the very next frame.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
import trio

from loadtool import protocol as p
from tests.conftest import Client, ConnectFn

CEILING_S: Final = 15  # seconds any test here may take
SENT_AT: Final = "2026-11-29T04:38:46.123Z"
MAX_TEXT: Final = 4096  # the default max_text_chars


def seed_frame(msg_id: str, text: str, room: str = "general", sender: str = "x") -> dict[str, Any]:
    """A frame as the seed's Flutter client sends it: no `type`, five ChatMessage fields."""
    return {"id": msg_id, "room": room, "senderId": sender, "text": text, "sentAt": SENT_AT}


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
    client: Client, code: p.ErrorCode, room: str | None, msg_id: str | None
) -> p.Error:
    """The next frame is an error with this code, echoing `room` and `msg_id`."""
    error = await client.recv()
    assert isinstance(error, p.Error), error
    assert (error.code, error.room, error.id) == (code, room, msg_id)
    assert error.message
    return error


# --- the done criterion: alice sends, ack with seq, every other member receives ----------


async def test_seed_dialect_message_is_acked_and_delivered_to_every_member(
    connect_to: ConnectFn,
) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        bob = await connect_to("bob")
        carol = await connect_to("carol")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        assert await alice.recv() == p.Presence(room="general", user_id="carol", status="joined")
        assert await bob.recv() == p.Presence(room="general", user_id="carol", status="joined")
        alice_phone = await connect_to("alice")  # alice is already in: no presence

        await alice.send(seed_frame("seed-1", "hello from the seed client"))
        assert await alice.recv() == p.Ack(id="seed-1", room="general", seq=1)
        expected = p.Message(
            id="seed-1",
            room="general",
            sender_id="alice",
            text="hello from the seed client",
            sent_at=SENT_AT,
            seq=1,
        )
        assert await alice.recv() == expected  # the sender's own delivery, after the ack
        for member in (bob, carol, alice_phone):
            assert await member.recv() == expected
        # Nothing else was delivered to anyone.
        for member in (alice, bob, carol, alice_phone):
            await pong(member, f"quiet-{member.user}")


async def test_seq_increments_per_message_across_senders(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        bob = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        seqs = []
        for n, (sender, other) in enumerate([(alice, bob), (bob, alice), (alice, bob)] * 2):
            delivered = await post(sender, "general", f"m{n}", f"text {n}")
            assert await other.recv() == delivered
            seqs.append(delivered.seq)
        assert seqs == [1, 2, 3, 4, 5, 6]


async def test_ack_comes_before_the_senders_own_delivery(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        for n in range(1, 6):
            await alice.send(seed_frame(f"order-{n}", f"n={n}"))
        frames = [await alice.recv() for _ in range(10)]
    for n in range(1, 6):
        ack, own = frames[2 * n - 2], frames[2 * n - 1]
        assert ack == p.Ack(id=f"order-{n}", room="general", seq=n)
        assert isinstance(own, p.Message)
        assert (own.id, own.seq) == (f"order-{n}", n)


async def test_typed_message_without_sent_at_gets_the_receive_time(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        before = datetime.now(UTC)
        await alice.send({"type": "message", "id": "t1", "room": "general", "text": "no time"})
        assert await alice.recv() == p.Ack(id="t1", room="general", seq=1)
        own = await alice.recv()
        after = datetime.now(UTC)
    assert isinstance(own, p.Message)
    stamped = datetime.fromisoformat(own.sent_at.replace("Z", "+00:00"))
    assert stamped.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stamped <= after + timedelta(seconds=1)


async def test_unknown_fields_are_ignored(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        await alice.send({**seed_frame("u1", "extra"), "color": "blue", "v": 2})
        assert await alice.recv() == p.Ack(id="u1", room="general", seq=1)


# --- dedupe ------------------------------------------------------------------------------


async def test_replay_after_reconnect_is_a_duplicate_without_a_second_delivery(
    connect_to: ConnectFn,
) -> None:
    with trio.fail_after(CEILING_S):
        bob = await connect_to("bob")
        alice = await connect_to("alice")
        assert await bob.recv() == p.Presence(room="general", user_id="alice", status="joined")
        await alice.send(seed_frame("once", "exactly once"))
        assert await alice.recv() == p.Ack(id="once", room="general", seq=1)
        original = await alice.recv()
        assert isinstance(original, p.Message)
        assert await bob.recv() == original

        # The connection drops before alice can be sure; she reconnects and sends again.
        await alice.close()
        assert await bob.recv() == p.Presence(room="general", user_id="alice", status="left")
        alice = await connect_to("alice")
        assert await bob.recv() == p.Presence(room="general", user_id="alice", status="joined")
        await alice.send(seed_frame("once", "exactly once"))
        assert await alice.recv() == p.Ack(id="once", room="general", seq=1, duplicate=True)

        # Marker: the next message anyone sees is the marker, with the next seq.
        marker = await post(alice, "general", "marker", "after the replay")
        assert marker.seq == 2
        assert await bob.recv() == marker


async def test_duplicate_ack_names_the_original_room_and_seq(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["general", "side"])
        await post(alice, "side", "s0")
        first = await post(alice, "general", "dup")
        assert first.seq == 1
        # Same id, other room and text: still the original message.
        await alice.send(seed_frame("dup", "different text", room="side"))
        assert await alice.recv() == p.Ack(id="dup", room="general", seq=1, duplicate=True)
        assert (await post(alice, "side", "s1")).seq == 2


async def test_dedupe_key_is_sender_and_id(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        bob = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        from_alice = await post(alice, "general", "same-id", "alice's")
        assert await bob.recv() == from_alice
        from_bob = await post(bob, "general", "same-id", "bob's")
        assert await alice.recv() == from_bob
        assert (from_alice.seq, from_bob.seq) == (1, 2)


# --- refused messages --------------------------------------------------------------------


async def test_message_to_a_room_not_joined_is_not_member(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice", ["general", "side"], query="&rooms=general")
        bob = await connect_to("bob", ["side"])
        await alice.send(seed_frame("nm-1", "where am I", room="side"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "side", "nm-1")
        await alice.send(seed_frame("nm-2", "no such grant", room="elsewhere"))
        await expect_error(alice, p.ErrorCode.NOT_MEMBER, "elsewhere", "nm-2")
        # Nothing stored in side: bob's first message there is seq 1, and the first frame
        # bob sees.
        marker = await post(bob, "side", "marker")
        assert marker.seq == 1
        await pong(alice, "open")


async def test_text_over_the_limit_is_too_long(connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        bob = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        await alice.send(seed_frame("long", "x" * (MAX_TEXT + 1)))
        await expect_error(alice, p.ErrorCode.TOO_LONG, "general", "long")
        # The limit counts characters, not bytes: 4096 two-byte characters are fine.
        at_limit = await post(alice, "general", "at-limit", "é" * MAX_TEXT)
        assert at_limit.seq == 1
        assert await bob.recv() == at_limit


MALFORMED: Final = [
    pytest.param("{", p.ErrorCode.BAD_JSON, None, None, id="bad-json"),
    pytest.param("", p.ErrorCode.BAD_JSON, None, None, id="empty"),
    pytest.param("[1, 2]", p.ErrorCode.BAD_FRAME, None, None, id="array"),
    pytest.param('"message"', p.ErrorCode.BAD_FRAME, None, None, id="string"),
    pytest.param("null", p.ErrorCode.BAD_FRAME, None, None, id="null"),
    pytest.param('{"type": 7}', p.ErrorCode.BAD_FRAME, None, None, id="type-not-string"),
    pytest.param(
        '{"id": "s1", "room": "general", "text": "no type, not seed"}',
        p.ErrorCode.BAD_FRAME,
        "general",
        "s1",
        id="seed-missing-fields",
    ),
    pytest.param(
        '{"type": "shout", "id": "u1", "room": "general"}',
        p.ErrorCode.UNKNOWN_TYPE,
        "general",
        "u1",
        id="unknown-type",
    ),
    pytest.param(
        '{"type": "ack", "id": "u2", "room": "general", "seq": 1}',
        p.ErrorCode.UNKNOWN_TYPE,
        "general",
        "u2",
        id="server-only-type",
    ),
    pytest.param(
        '{"type": "message", "id": "w1", "room": "general", "text": 5}',
        p.ErrorCode.INVALID_FIELD,
        "general",
        "w1",
        id="text-not-string",
    ),
    pytest.param(
        '{"type": "message", "id": "w2", "room": "general"}',
        p.ErrorCode.INVALID_FIELD,
        "general",
        "w2",
        id="text-missing",
    ),
    pytest.param(
        '{"type": "message", "id": "w3", "room": "general", "text": "t", "sentAt": "today"}',
        p.ErrorCode.INVALID_FIELD,
        "general",
        "w3",
        id="bad-sent-at",
    ),
    pytest.param(
        '{"type": "message", "id": "", "room": "general", "text": "t"}',
        p.ErrorCode.INVALID_FIELD,
        "general",
        "",
        id="empty-id",
    ),
    pytest.param(
        '{"type": "message", "id": "w4", "room": "no spaces allowed", "text": "t"}',
        p.ErrorCode.INVALID_FIELD,
        "no spaces allowed",
        "w4",
        id="bad-room-name",
    ),
    pytest.param(
        '{"type": "join", "room": "general", "since": "3"}',
        p.ErrorCode.INVALID_FIELD,
        "general",
        None,
        id="since-not-int",
    ),
    pytest.param(
        '{"type": "typing", "room": "general", "typing": "yes"}',
        p.ErrorCode.INVALID_FIELD,
        "general",
        None,
        id="typing-not-bool",
    ),
    pytest.param(
        '{"type": "ping", "ts": {"nested": true}}',
        p.ErrorCode.INVALID_FIELD,
        None,
        None,
        id="ping-ts-object",
    ),
    pytest.param(
        b'{"type": "message", "id": "b1", "room": "general", "text": "bin"}',
        p.ErrorCode.UNSUPPORTED_DATA,
        None,
        None,
        id="binary-message",
    ),
]


@pytest.mark.parametrize(("raw", "code", "room", "msg_id"), MALFORMED)
async def test_malformed_frame_gets_an_error_and_everything_carries_on(
    connect_to: ConnectFn,
    raw: str | bytes,
    code: p.ErrorCode,
    room: str | None,
    msg_id: str | None,
) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        bob = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")

        await alice.ws.send_message(raw)  # str: a text message; bytes: a binary message
        await expect_error(alice, code, room, msg_id)

        # alice's connection still works; nothing was stored or delivered: the marker is
        # seq 1 and bob's next frame.
        await pong(alice, "still-open")
        marker = await post(alice, "general", "marker", "after the bad frame")
        assert marker.seq == 1
        assert await bob.recv() == marker
        # bob is unaffected both ways.
        reply = await post(bob, "general", "reply", "bob is fine")
        assert await alice.recv() == reply
