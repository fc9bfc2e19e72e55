"""2.x Frame schema and errors: the seed and typed dialects, the decoding order and its
error codes, what an error echoes, binary messages, ignored members (docs/protocol.md §3,
§8.1).

A refused frame must leave the connection usable and have no effect: the cases that send
them end with a marker round trip (`Peer.sync`) on that connection, checking what came
back before the marker. Waits are lenient where
the server may interleave other traffic (presence, the markers of other connections, and
on a seed broadcast server every other client's frames): `wait_for` skips what does not
match, and absence is always proven with `sync`, never with a sleep.

The helpers at the top are shared with rooms.py (3.x) and acks.py (5.x).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
import trio

from ...client import wsframes as wsf
from ..harness import DEFAULT_WAIT_S, Frame, Harness, Peer
from ..model import CaseFailure, Feature, NonStrict
from ._case import case

# Frames that may come between a request and its answer without meaning anything for it.
NOISE: Final = ("presence", "typing", "pong", "welcome", "joined")
SERVER_SENT_AT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


# --- helpers shared with rooms.py and acks.py ---------------------------------------------------


def short(frame: Frame | str) -> str:
    text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
    return text if len(text) <= 200 else text[:197] + "..."


def of_type(kind: str, **members: Any) -> Callable[[Frame], bool]:
    """A predicate: a frame of type `kind` whose members equal `members`."""
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in members.items())


def about(msg_id: str) -> Callable[[Frame], bool]:
    """A predicate: any frame carrying message id `msg_id` (a delivery in either dialect, an
    ack, an error echoing it)."""
    return lambda f: f.get("id") == msg_id


def delivery(msg_id: str) -> Callable[[Frame], bool]:
    """A predicate: a delivery of message `msg_id` (typed `message`, or a relayed seed
    frame without `type`)."""
    return lambda f: f.get("id") == msg_id and f.get("type") in ("message", None)


async def wait_for(
    peer: Peer,
    match: Callable[[Frame], bool],
    what: str,
    *,
    wait_s: float = DEFAULT_WAIT_S,
    skipped: list[Frame] | None = None,
) -> Frame:
    """The first frame matching `match`; frames before it are skipped (and appended to
    `skipped`, for a later absence check), except an `error` frame, which fails the case
    at once, shown in the reason."""
    deadline = trio.current_time() + wait_s
    while True:
        frame = await peer.next(max(0.0, deadline - trio.current_time()))
        if frame is None:
            why = f"closed {peer.closed.code}" if peer.closed else f"nothing within {wait_s:g}s"
            raise CaseFailure(f"{peer.name} expected {what}; {why}", expected=what)
        if match(frame):
            return frame
        if frame.get("type") == "error":
            raise CaseFailure(f"{peer.name} expected {what}, got {short(frame)}", expected=what)
        if skipped is not None:
            skipped.append(frame)


async def expect_error(
    peer: Peer,
    code: str,
    sent: str,
    *,
    msg_id: str | None = None,
    room: str | None = None,
) -> Frame:
    """The answer to the frame described by `sent` must be error `code`, echoing `msg_id`
    and `room` when they are given (§8.1). Only `NOISE` may come before it."""
    frame = await peer.expect("error", skip=NOISE, what=f"error {code} for {sent}")
    if frame.get("code") != code:
        raise CaseFailure(
            f"{peer.name} sent {sent} and got error {frame.get('code')!r}: {short(frame)}",
            expected=f"error {code}",
        )
    for key, want in (("id", msg_id), ("room", room)):
        if want is not None and frame.get(key) != want:
            raise CaseFailure(
                f"{peer.name} sent {sent}: error {code} has {key} {frame.get(key)!r}",
                expected=f"the error echoing {key} {want!r} (§8.1)",
            )
    return frame


async def expect_none(
    peer: Peer,
    match: Callable[[Frame], bool],
    why: str,
    expected: str,
    *,
    earlier: Sequence[Frame] = (),
) -> None:
    """Nothing matching `match` reached `peer` before its marker came back (nor is among
    `earlier`, frames a `wait_for` skipped)."""
    seen = [f for f in [*earlier, *await peer.sync()] if match(f)]
    if seen:
        raise CaseFailure(f"{peer.name} {why}: {short(seen[0])}", expected=expected)


async def expect_ack(peer: Peer, msg_id: str, room: str, *, duplicate: bool = False) -> int:
    """The next `ack` must be the one for `msg_id` (deliveries and other frames before it
    are skipped, an error fails): its room and `duplicate` are checked (an absent
    `duplicate` means false, §4.2); returns its seq."""
    ack = await wait_for(peer, lambda f: f.get("type") == "ack", f"the ack for {msg_id!r}")
    seq = ack.get("seq")
    if ack.get("id") != msg_id or ack.get("room") != room or type(seq) is not int or seq < 1:
        raise CaseFailure(
            f"{peer.name} got {short(ack)}",
            expected=f"ack {{id {msg_id!r}, room {room!r}, seq >= 1}} (§4.2)",
        )
    if ack.get("duplicate", False) is not duplicate:
        raise CaseFailure(
            f"{peer.name} got {short(ack)}", expected=f"ack with duplicate {str(duplicate).lower()}"
        )
    return seq


def typed(msg_id: str, room: str, text: str = "hi", **extra: Any) -> Frame:
    return {"type": "message", "id": msg_id, "room": room, "text": text, **extra}


def seed(msg_id: str, room: str, sender: str, text: str = "hi", **extra: Any) -> Frame:
    """A seed-dialect `ChatMessage` (§3.2): the five members, no `type`."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as the seed client sends
    frame = {"id": msg_id, "room": room, "senderId": sender, "text": text, "sentAt": stamp}
    return frame | extra


def check_delivery(frame: Frame, *, msg_id: str, room: str, sender: str, text: str) -> int:
    """A v1 `message` delivery (§3.3): type, id, room, senderId = the token's sub, text,
    an integer seq. Returns the seq."""
    seq = frame.get("seq")
    want = {"type": "message", "id": msg_id, "room": room, "senderId": sender, "text": text}
    wrong = {k: frame.get(k) for k, v in want.items() if frame.get(k) != v}
    if wrong or type(seq) is not int or seq < 1:
        raise CaseFailure(
            f"delivery {short(frame)}: wrong {wrong or {'seq': seq}}",
            expected=f"message {want} with an integer seq >= 1",
        )
    return seq


def utc_iso(value: Any) -> bool:
    """Is `value` a §3.1 sentAt: ISO 8601 date and time, UTC offset zero, <= 64 chars?"""
    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.utcoffset() == timedelta(0)


# --- 2.1 and 2.2: the two dialects ---------------------------------------------------------------


@case("2.1", "a seed-dialect ChatMessage (no type) reaches another client", "§3.2",
      Feature.SEED_DIALECT)  # fmt: skip
async def seed_message(h: Harness) -> None:
    """Alice and Bob are in one room. Alice sends a bare seed `ChatMessage` (the five members
    `id`, `room`, `senderId`, `text`, `sentAt`, no `type`): it MUST be treated as a
    `message` and reach Bob. On a v1 server Alice gets an `ack` and Bob a typed `message`
    with `senderId` = Alice's token sub, a seq, and `sentAt` relayed verbatim."""
    room = h.default_room
    alice_id = h.user("alice")
    alice, bob = await h.connect(alice_id, [room]), await h.connect(h.user("bob"), [room])
    msg_id, text = h.name("m"), f"seed hello {h.name('t')}"
    frame = seed(msg_id, room, alice_id, text)
    await alice.send(frame)
    if Feature.ACKS in h.features:
        await expect_ack(alice, msg_id, room)
    got = await wait_for(bob, delivery(msg_id), f"Alice's seed message {msg_id!r}")
    if got.get("text") != text or got.get("room") != room:
        raise CaseFailure(f"Bob got {short(got)}", expected=f"text {text!r} in room {room!r}")
    if Feature.ROOMS in h.features:
        check_delivery(got, msg_id=msg_id, room=room, sender=alice_id, text=text)
        if got.get("sentAt") != frame["sentAt"]:
            raise CaseFailure(
                f"sentAt {frame['sentAt']!r} was delivered as {got.get('sentAt')!r}",
                expected="the frame's sentAt unchanged (§4.1 step 4)",
            )


@case("2.2", "a typed message is acked and delivered with the token's sub", "§4.1", Feature.ACKS)
async def typed_message(h: Harness) -> None:
    """Alice sends `{"type":"message", id, room, text}` (no `sentAt`): she gets `ack` then
    her own `message` with `senderId` = her token's sub, the ack's seq and a `sentAt`
    stamped by the server (UTC ISO 8601; SHOULD be `YYYY-MM-DDTHH:MM:SS.sssZ`, §4.1)."""
    room = h.default_room
    alice_id = h.user("alice")
    alice = await h.connect(alice_id, [room])
    msg_id = h.name("m")
    await alice.send(typed(msg_id, room, "typed hello"))
    seq = await expect_ack(alice, msg_id, room)
    got = await wait_for(alice, delivery(msg_id), f"the delivery of {msg_id!r}")
    if check_delivery(got, msg_id=msg_id, room=room, sender=alice_id, text="typed hello") != seq:
        raise CaseFailure(f"ack seq {seq}, delivery {short(got)}", expected="the same seq")
    stamp = got.get("sentAt")
    if not utc_iso(stamp):
        raise CaseFailure(
            f"the server stamped sentAt {stamp!r}",
            expected="an ISO 8601 UTC time (§3.1), the server's time of receipt",
        )
    if not SERVER_SENT_AT.fullmatch(str(stamp)):
        raise NonStrict(f"sentAt {stamp!r}", expected="the form YYYY-MM-DDTHH:MM:SS.sssZ (§4.1)")


# --- 2.3 to 2.5: the decoding order -----------------------------------------------------------


@case("2.3", "text that is not JSON gets bad_json; the connection stays usable", "§3.1",
      Feature.ERRORS)  # fmt: skip
async def bad_json(h: Harness) -> None:
    """Five text messages that are not JSON (truncated, single quotes, a trailing comma, an
    empty message, an unpaired surrogate escape) each get error `bad_json`, in order; the
    connection stays open and a marker round trip still works."""
    peer = await h.connect(h.user(), [h.default_room])
    broken = [
        '{"type":"message","id":"m-2","room":"r","text":"oops"',
        "{'type':'ping'}",
        '{"type":"ping",}',
        "",
        '{"type":"ping","ts":"\\ud800"}',
    ]
    for text in broken:
        await peer.send(text)
    for text in broken:
        await expect_error(peer, "bad_json", repr(text))
    await peer.sync()


@case("2.4", "JSON that is not an object, or whose type is not a string, gets bad_frame", "§3.1",
      Feature.ERRORS)  # fmt: skip
async def bad_frame(h: Harness) -> None:
    """`[]`, `[{"type":"ping"}]`, `"message"`, `42`, `null`, `true`, and objects whose `type`
    is `5` or `["message"]` each get error `bad_frame`, in order; the connection stays."""
    peer = await h.connect(h.user(), [h.default_room])
    room = h.default_room
    frames: list[str] = ["[]", '[{"type":"ping"}]', '"message"', "42", "null", "true"]
    frames += [
        orjson.dumps({"type": 5, "id": "t-5", "room": room, "text": "x"}).decode(),
        orjson.dumps({"type": ["message"], "id": "t-l", "room": room, "text": "x"}).decode(),
    ]
    for text in frames:
        await peer.send(text)
    for text in frames:
        await expect_error(peer, "bad_frame", text)
    await peer.sync()


@case("2.5", "a type that is not a client frame type gets unknown_type", "§3.1", Feature.ERRORS)
async def unknown_type(h: Harness) -> None:
    """`type` values `shout`, `MESSAGE` (types are case-sensitive), `ack` and `welcome`
    (server frame types) and the empty string each get error `unknown_type`, even with other
    members missing (the type is checked first), echoing `id` and `room` when present."""
    room = h.default_room
    peer = await h.connect(h.user(), [room])
    cases: list[tuple[Frame, str | None]] = [
        ({"type": "shout", "id": "u-1", "room": room, "text": "x"}, "u-1"),
        ({"type": "MESSAGE", "id": "u-2", "room": room, "text": "x"}, "u-2"),
        ({"type": "ack", "id": "u-3", "room": room, "seq": 1, "duplicate": False}, "u-3"),
        ({"type": "welcome"}, None),
        ({"type": "", "room": room}, None),
    ]
    for frame, _ in cases:
        await peer.send(frame)
    for frame, msg_id in cases:
        await expect_error(
            peer, "unknown_type", short(frame), msg_id=msg_id, room=frame.get("room")
        )
    await peer.sync()


# --- 2.6 to 2.8: fields --------------------------------------------------------------------------


@case("2.6", "a missing required member gets invalid_field naming it", "§3.1", Feature.ERRORS)
async def missing_member(h: Harness) -> None:
    """Typed frames each missing one required member (`message` without `text`, `id` or
    `room`; `join`, `leave`, `typing`, `history` without `room`) each get error
    `invalid_field`; its `message` SHOULD name the member (NON-STRICT otherwise). None of
    them has an effect: nothing is acked or delivered."""
    room = h.default_room
    peer = await h.connect(h.user(), [room])
    msg_id = h.name("m")
    cases: list[tuple[Frame, str]] = [
        ({"type": "message", "id": msg_id, "room": room}, "text"),
        ({"type": "message", "room": room, "text": "no id"}, "id"),
        ({"type": "message", "id": msg_id, "text": "no room"}, "room"),
        ({"type": "join"}, "room"),
        ({"type": "leave"}, "room"),
        ({"type": "typing", "typing": True}, "room"),
        ({"type": "history", "limit": 5}, "room"),
    ]
    for frame, _ in cases:
        await peer.send(frame)
    unnamed: list[str] = []
    for frame, member in cases:
        error = await expect_error(peer, "invalid_field", short(frame))
        if member not in str(error.get("message", "")):
            unnamed.append(f"{short(frame)} -> {error.get('message')!r}")
    await expect_none(
        peer,
        lambda f: f.get("type") in ("ack", "message", "left") or about(msg_id)(f),
        "got an answer other than the error to an invalid frame",
        "no effect: nothing acked, delivered or left (§8.1)",
    )
    if unnamed:
        raise NonStrict(
            f"the error does not name the missing member: {unnamed[0]}",
            expected="an error message naming the member",
        )


@case("2.7", "a member of the wrong type gets invalid_field and has no effect", "§3.1",
      Feature.ERRORS, Feature.ROOMS)  # fmt: skip
async def wrong_type(h: Harness) -> None:
    """A connection granted room R but not in it sends `join R` with `since` `true`, `"3"`,
    `1.5` and `3.0` (integers only, never booleans); `history` with `limit` `true` and
    `1001`; `message` with `text` 5, `id` 7 and `room` 5; `typing` with `typing` "yes";
    `ping` with `ts` `true`; a seed frame with `senderId` 5. Each gets error
    `invalid_field`. No join happened: a message to R is then refused `not_member`."""
    home, other = h.default_room, h.room("r")
    peer = await h.connect(h.user(), [home, other], query=f"rooms={home}")
    msg_id = h.name("m")
    frames: list[Frame] = [
        {"type": "join", "room": other, "since": True},
        {"type": "join", "room": other, "since": "3"},
        {"type": "join", "room": other, "since": 1.5},
        {"type": "join", "room": other, "since": 3.0},
        {"type": "history", "room": home, "limit": True},
        {"type": "history", "room": home, "limit": 1001},
        {"type": "message", "id": msg_id, "room": home, "text": 5},
        {"type": "message", "id": 7, "room": home, "text": "x"},
        {"type": "message", "id": msg_id, "room": 5, "text": "x"},
        {"type": "typing", "room": home, "typing": "yes"},
        {"type": "ping", "ts": True},
        seed(msg_id, home, "x") | {"senderId": 5},
    ]
    for frame in frames:
        await peer.send(frame)  # orjson writes 3.0 as `3.0`
    for frame in frames:
        await expect_error(peer, "invalid_field", short(frame))
    probe = h.name("probe")
    await peer.send(typed(probe, other))
    await expect_error(
        peer, "not_member", f"a message to {other!r} after the refused joins", msg_id=probe,
        room=other,
    )  # fmt: skip
    await expect_none(
        peer,
        lambda f: f.get("type") in ("ack", "message", "joined", "history"),
        "got an answer other than the error to an invalid frame",
        "no effect for a refused frame (§8.1)",
    )


@case("2.8", "an error echoes the frame's id and room, even invalid ones", "§8.1",
      Feature.ERRORS)  # fmt: skip
async def error_echo(h: Harness) -> None:
    """Errors echo the offending frame's `id` and `room` as strings when they could be
    read, even when invalid: a `message` whose `room` is `"no such room!"` (invalid name)
    gets `invalid_field` with that room and the id; one whose `id` is 200 characters long
    gets `invalid_field`; a typeless frame with only `id` and `room` gets `bad_frame`
    with both; a `join` with `since` -1 gets `invalid_field` with its room."""
    room = h.default_room
    peer = await h.connect(h.user(), [room])
    bad_room, long_id, msg_id = "no such room!", "x" * 200, h.name("m")
    cases: list[tuple[Frame, str, str | None, str | None]] = [
        (typed(msg_id, bad_room), "invalid_field", msg_id, bad_room),
        (typed(long_id, room), "invalid_field", long_id, room),
        ({"id": msg_id, "room": room}, "bad_frame", msg_id, room),
        ({"type": "join", "room": room, "since": -1}, "invalid_field", None, room),
    ]
    for frame, *_ in cases:
        await peer.send(frame)
    for frame, code, echo_id, echo_room in cases:
        await expect_error(peer, code, short(frame), msg_id=echo_id, room=echo_room)
    await peer.sync()


# --- 2.9: binary ------------------------------------------------------------------------------


@case("2.9", "a binary message gets unsupported_data and is otherwise ignored", "§3.1",
      Feature.ERRORS)  # fmt: skip
async def binary_message(h: Harness) -> None:
    """A binary WebSocket message whose payload is a valid `message` frame, then an empty
    binary message: each gets error `unsupported_data`; the payload is not processed
    (no ack, no delivery) and the connection stays open. With acks and dedupe, the same id
    sent as text afterwards is a new message (duplicate false): nothing was stored."""
    room = h.default_room
    peer = await h.connect(h.user(), [room])
    msg_id = h.name("m")
    payload = orjson.dumps(typed(msg_id, room, "sent as binary"))
    await peer.send_raw(wsf.client_frame(wsf.OP_BINARY, payload), f"binary {payload.decode()}")
    await peer.send_raw(wsf.client_frame(wsf.OP_BINARY, b""), "binary (empty)")
    await expect_error(peer, "unsupported_data", "a binary message")
    await expect_error(peer, "unsupported_data", "an empty binary message")
    await expect_none(
        peer,
        about(msg_id),
        "got an answer to the binary message's payload",
        "the binary message ignored (§3.1)",
    )
    if {Feature.ACKS, Feature.DEDUPE} <= h.features:
        await peer.send(typed(msg_id, room, "sent as text"))
        await expect_ack(peer, msg_id, room, duplicate=False)


# --- 2.10 and 2.11: members the server ignores ----------------------------------------------


@case("2.10", "senderId in a client frame is ignored: deliveries carry the token's sub",
      "§4.1", Feature.AUTH, Feature.ROOMS)  # fmt: skip
async def sender_ignored(h: Harness) -> None:
    """Alice sends a typed `message` with `senderId` "mallory", and a seed frame with
    `senderId` "mallory": Bob receives both with `senderId` = Alice's token sub (§2.2)."""
    room = h.default_room
    alice_id = h.user("alice")
    alice, bob = await h.connect(alice_id, [room]), await h.connect(h.user("bob"), [room])
    typed_id, seed_id = h.name("typed"), h.name("seed")
    await alice.send(typed(typed_id, room, "forged", senderId="mallory"))
    await alice.send(seed(seed_id, room, "mallory", "forged too"))
    for msg_id, text in ((typed_id, "forged"), (seed_id, "forged too")):
        got = await wait_for(bob, delivery(msg_id), f"Alice's message {msg_id!r}")
        check_delivery(got, msg_id=msg_id, room=room, sender=alice_id, text=text)


@case("2.11", "unknown members are ignored", "§3.1", Feature.SEED_DIALECT)
async def unknown_members(h: Harness) -> None:
    """Alice sends a chat message (in the server's dialect) with extra members `x-future`
    (an object) and `priority` (a number): it MUST be processed as if they were absent and
    reach Bob. On a v1 server, Alice also gets its ack, and a `ping` with an extra member
    gets its pong."""
    room = h.default_room
    alice_id = h.user("alice")
    alice, bob = await h.connect(alice_id, [room]), await h.connect(h.user("bob"), [room])
    msg_id = h.name("m")
    frame = h.chat_frame(msg_id, room, text="with extras")
    frame |= {"x-future": {"nested": [1, 2]}, "priority": 3}
    await alice.send(frame)
    if Feature.ACKS in h.features:
        await expect_ack(alice, msg_id, room)
    got = await wait_for(bob, delivery(msg_id), f"Alice's message {msg_id!r}")
    if got.get("text") != "with extras":
        raise CaseFailure(f"Bob got {short(got)}", expected="text 'with extras'")
    if Feature.PING in h.features:
        mark = h.name("ts")
        await alice.send({"type": "ping", "ts": mark, "x-future": True})
        await wait_for(alice, of_type("pong", ts=mark), f"the pong for {mark!r}")


# --- 2.12 to 2.14: the seed dialect's edges --------------------------------------------------


@case("2.12", "a typeless frame missing seed members gets bad_frame naming them", "§3.2",
      Feature.SEED_DIALECT, Feature.ERRORS)  # fmt: skip
async def seed_incomplete(h: Harness) -> None:
    """A typeless frame without `senderId`, and one with only `id` and `room`, each get error
    `bad_frame` (not `invalid_field`), echoing `id` and `room`; the error message SHOULD
    name the missing members (NON-STRICT otherwise). Neither is acked or delivered."""
    room = h.default_room
    peer = await h.connect(h.user(), [room])
    first, second = h.name("m"), h.name("m")
    full = seed(first, room, peer.name, "incomplete")
    del full["senderId"]
    cases: list[tuple[Frame, list[str]]] = [
        (full, ["senderId"]),
        ({"id": second, "room": room}, ["senderId", "text", "sentAt"]),
    ]
    for frame, _ in cases:
        await peer.send(frame)
    unnamed: list[str] = []
    for frame, missing in cases:
        error = await expect_error(peer, "bad_frame", short(frame), msg_id=frame["id"], room=room)
        said = str(error.get("message", ""))
        if not all(member in said for member in missing):
            unnamed.append(f"{short(frame)} -> {said!r}")
    await expect_none(
        peer,
        lambda f: f.get("id") in (first, second),
        "got an answer other than the error to an incomplete seed frame",
        "no ack and no delivery (§8.1)",
    )
    if unnamed:
        raise NonStrict(
            f"bad_frame does not name the missing members: {unnamed[0]}",
            expected="a message naming the missing members (§3.2)",
        )


@case("2.13", "a seed frame with \"type\": null is a chat message", "§3.2",
      Feature.SEED_DIALECT, Feature.ACKS)  # fmt: skip
async def seed_type_null(h: Harness) -> None:
    """A seed frame (all five members) with `"type":null` (null means absent, §3.1) is a
    `message`: it is acked and delivered like one without `type`, not refused."""
    room = h.default_room
    alice_id = h.user("alice")
    alice = await h.connect(alice_id, [room])
    msg_id = h.name("m")
    await alice.send(seed(msg_id, room, alice_id, "type null", type=None))
    seq = await expect_ack(alice, msg_id, room)
    got = await wait_for(alice, delivery(msg_id), f"the delivery of {msg_id!r}")
    if check_delivery(got, msg_id=msg_id, room=room, sender=alice_id, text="type null") != seq:
        raise CaseFailure(f"ack seq {seq}, delivery {short(got)}", expected="the same seq")


@case("2.14", "a null sentAt is absent: the server stamps its own time", "§3.1",
      Feature.SEED_DIALECT, Feature.ACKS)  # fmt: skip
async def seed_sent_at_null(h: Harness) -> None:
    """A seed frame whose `sentAt` is `null` (null means absent, §3.1, §3.2) is acked and
    delivered with the server's time of receipt as `sentAt` (a UTC ISO 8601 time)."""
    room = h.default_room
    alice_id = h.user("alice")
    alice = await h.connect(alice_id, [room])
    msg_id = h.name("m")
    await alice.send(seed(msg_id, room, alice_id, "no time", sentAt=None))
    seq = await expect_ack(alice, msg_id, room)
    got = await wait_for(alice, delivery(msg_id), f"the delivery of {msg_id!r}")
    if check_delivery(got, msg_id=msg_id, room=room, sender=alice_id, text="no time") != seq:
        raise CaseFailure(f"ack seq {seq}, delivery {short(got)}", expected="the same seq")
    if not utc_iso(got.get("sentAt")):
        raise CaseFailure(
            f"sentAt null was delivered as {got.get('sentAt')!r}",
            expected="the server's time of receipt (null means absent, §3.1)",
        )


CASES = (
    seed_message,
    typed_message,
    bad_json,
    bad_frame,
    unknown_type,
    missing_member,
    wrong_type,
    error_echo,
    binary_message,
    sender_ignored,
    unknown_members,
    seed_incomplete,
    seed_type_null,
    seed_sent_at_null,
)
