"""7.x Limits: message size, text length, rate limit, rooms per connection (docs/protocol.md §7).

Every value comes from the server's `welcome` (`limits`), never from the reference
defaults. A limit too large to exercise quickly is reported as INFO, not guessed at.
Slow consumers (§7.6) are not checked: filling a 1 MiB queue black-box takes too long.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NoReturn

import orjson
import trio

from ...client import wsframes as wsf
from ..harness import Frame, Harness, Peer
from ..model import CaseFailure, Feature, Verdict
from ._case import case

MAX_PROBE_BYTES = 8 * 1024 * 1024  # larger size limits are not probed (INFO)
MAX_PROBE_ROOMS = 200  # more rooms per connection than this are not probed (INFO)
MAX_PROBE_FRAMES = 2000  # a rate limit needing more frames than this is not probed (INFO)


# --- helpers shared with the other sections ---------------------------------------------------


async def connect_welcome(
    h: Harness, user: str | None = None, rooms: Sequence[str] | None = None, *, query: str = ""
) -> tuple[Peer, Frame]:
    """Connect and return the peer with its `welcome` (the `joined` frames are read too)."""
    peer = await h.connect(user, rooms, query=query, welcome=False)
    hello = await peer.expect("welcome", skip=(), what="a welcome frame first")
    joined = hello.get("rooms")
    if not isinstance(joined, list):
        raise CaseFailure(f"welcome.rooms is {joined!r}", expected="an array of room names")
    for room in joined:
        frame = await peer.expect("joined", what=f"joined for {room!r}")
        if frame.get("room") != room:
            raise CaseFailure(f"joined {frame}", expected="joined frames in welcome.rooms order")
    return peer, hello


def advertised(hello: Frame, key: str) -> float:
    """A limit from `welcome.limits` (or a top-level member such as `heartbeatMs`)."""
    limits = hello.get("limits")
    value = hello.get(key) if key in ("heartbeatMs", "idleTimeoutMs") else None
    if value is None and isinstance(limits, dict):
        value = limits.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        where = key if key in ("heartbeatMs", "idleTimeoutMs") else f"limits.{key}"
        raise CaseFailure(
            f"welcome.{where} is {value!r}: the case needs it", expected=f"a positive {where}"
        )
    return float(value)


def not_checked(reason: str) -> NoReturn:
    """End the case as INFO: what it checks cannot be exercised on this server quickly."""
    raise CaseFailure(f"not checked: {reason}", verdict=Verdict.INFO)


def sized_message(msg_id: str, room: str, size: int) -> bytes:
    """A typed `message` frame of exactly `size` bytes, padded with an unknown member
    (which servers MUST ignore, §3.1) so that the text stays short."""
    frame = {"type": "message", "id": msg_id, "room": room, "text": "size probe", "pad": ""}
    base = len(orjson.dumps(frame))
    if size < base:
        raise ValueError(f"a message frame needs at least {base} bytes")
    frame["pad"] = "p" * (size - base)
    return orjson.dumps(frame)


def _error(frame: Frame, code: str) -> bool:
    return frame.get("type") == "error" and frame.get("code") == code


# --- 7.1 and 7.2: message size ----------------------------------------------------------------


@case("7.1", "a message over maxMessageBytes is closed with 1009", "§7.1", Feature.LIMITS)
async def over_size(h: Harness) -> None:
    """A text message of `maxMessageBytes` + 1 bytes (a valid `message` frame padded with an
    unknown member) must make the server close the connection with 1009."""
    room = h.room()
    peer, hello = await connect_welcome(h, h.user(), [room])
    size = int(advertised(hello, "maxMessageBytes"))
    if size > MAX_PROBE_BYTES:
        not_checked(f"maxMessageBytes is {size}, over the {MAX_PROBE_BYTES} bytes probed")
    data = sized_message("too-big", room, size + 1)
    await peer.send_raw(wsf.text_frame(data.decode()), f"a message frame of {size + 1} bytes")
    closed = await peer.expect_close(wait_s=5.0)
    if closed.code != 1009:
        raise CaseFailure(f"closed with {closed.code} {closed.reason}", expected="close 1009")


@case(
    "7.2", "a message of exactly maxMessageBytes is accepted", "§7.1", Feature.LIMITS, Feature.ACKS
)
async def at_size(h: Harness) -> None:
    """A `message` frame of exactly `maxMessageBytes` bytes (padded with an unknown member)
    is within the limit: it must be acked, and the connection stays open."""
    room = h.room()
    peer, hello = await connect_welcome(h, h.user(), [room])
    size = int(advertised(hello, "maxMessageBytes"))
    if size > MAX_PROBE_BYTES:
        not_checked(f"maxMessageBytes is {size}, over the {MAX_PROBE_BYTES} bytes probed")
    await peer.send(sized_message("just-fits", room, size).decode())
    await peer.expect(
        lambda f: f.get("type") == "ack" and f.get("id") == "just-fits",
        what=f"an ack for the {size}-byte message",
    )
    await peer.sync()


# --- 7.3 and 7.4: text length -----------------------------------------------------------------


@case("7.3", "text over maxTextChars gets too_long; the connection stays", "§7.2", Feature.LIMITS)
async def text_too_long(h: Harness) -> None:
    """A message whose text has `maxTextChars` + 1 code points gets error `too_long` echoing
    `id` and `room`; the connection stays open and the id is not remembered: the same id
    with a short text is then acked as new (`duplicate` false)."""
    room = h.room()
    peer, hello = await connect_welcome(h, h.user(), [room])
    chars = int(advertised(hello, "maxTextChars"))
    size = advertised(hello, "maxMessageBytes")
    if chars + 200 > size:
        not_checked(f"maxTextChars {chars} does not fit in maxMessageBytes {size:.0f}")
    await peer.send({"type": "message", "id": "long-1", "room": room, "text": "x" * (chars + 1)})
    error = await peer.expect("error", what="error too_long")
    if error.get("code") != "too_long":
        raise CaseFailure(f"error {error.get('code')!r}", expected="error too_long")
    if error.get("id") != "long-1" or error.get("room") != room:
        raise CaseFailure(
            f"too_long echoes id {error.get('id')!r}, room {error.get('room')!r}",
            expected=f"id 'long-1', room {room!r}",
        )
    await peer.send({"type": "message", "id": "long-1", "room": room, "text": "short now"})
    ack = await peer.expect("ack", what="an ack for the corrected message")
    if ack.get("id") != "long-1" or ack.get("duplicate") is True:
        raise CaseFailure(
            f"the corrected message got {ack}",
            expected="a first ack (duplicate false): a refused id is not remembered (§7.2)",
        )


@case(
    "7.4",
    "text of exactly maxTextChars code points is accepted",
    "§7.2",
    Feature.LIMITS,
    Feature.ACKS,
)
async def text_at_limit(h: Harness) -> None:
    """A text of exactly `maxTextChars` code points outside the BMP (4 UTF-8 bytes, 2 UTF-16
    units each) must be acked: lengths count code points, not bytes or UTF-16 units (§1)."""
    room = h.room()
    peer, hello = await connect_welcome(h, h.user(), [room])
    chars = int(advertised(hello, "maxTextChars"))
    size = advertised(hello, "maxMessageBytes")
    glyph = "\U0001f600" if chars * 4 + 200 <= size else "x"
    if chars + 200 > size:
        not_checked(f"maxTextChars {chars} does not fit in maxMessageBytes {size:.0f}")
    await peer.send({"type": "message", "id": "at-limit", "room": room, "text": glyph * chars})
    answer = await peer.expect(
        lambda f: f.get("type") in ("ack", "error"), what="an ack for the message"
    )
    if answer.get("type") != "ack" or answer.get("id") != "at-limit":
        raise CaseFailure(
            f"a text of {chars} code points ({glyph!a}) got {answer}",
            expected="an ack: the text is exactly at the limit",
        )


# --- 7.5: rate limit --------------------------------------------------------------------------


@case("7.5", "a burst over rateBurst gets rate_limited with retryAfterMs", "§7.3",
      Feature.LIMITS, Feature.PING)  # fmt: skip
async def rate_limited(h: Harness) -> None:
    """`rateBurst` + `ratePerSecond` + 5 `ping` frames sent at once on a fresh connection:
    the first `rateBurst` must be answered with `pong` (the bucket is full at connect), at
    least one later frame with error `rate_limited` carrying an integer `retryAfterMs` of
    1 ms up to the time one token takes; after waiting `retryAfterMs`, a ping is answered
    again."""
    peer, hello = await connect_welcome(h, h.user(), [])
    rate = advertised(hello, "ratePerSecond")
    burst = int(advertised(hello, "rateBurst"))
    count = burst + math.ceil(rate) + 5
    if count > MAX_PROBE_FRAMES:
        not_checked(f"rateBurst {burst} and ratePerSecond {rate:g} need {count} frames")
    tag = h.name("rate")
    frames = b"".join(
        wsf.text_frame(orjson.dumps({"type": "ping", "ts": f"{tag}-{i}"}).decode())
        for i in range(count)
    )
    await peer.send_raw(frames, f"{count} ping frames at once (ts {tag}-0...)")
    ponged: set[int] = set()
    refusals: list[Frame] = []
    for _ in range(count):
        frame = await peer.expect(
            lambda f: f.get("type") in ("pong", "error"), what="a pong or an error per ping"
        )
        if frame.get("type") == "pong":
            ts = frame.get("ts")
            if not isinstance(ts, str) or not ts.startswith(f"{tag}-"):
                raise CaseFailure(f"pong with ts {ts!r}", expected="the ping's ts echoed")
            ponged.add(int(ts.rsplit("-", 1)[1]))
        elif _error(frame, "rate_limited"):
            refusals.append(frame)
        else:
            raise CaseFailure(f"got {frame}", expected="pong or error rate_limited")
    missing = sorted(set(range(burst)) - ponged)
    if missing:
        raise CaseFailure(
            f"pings {missing[:5]}... of the first {burst} were refused",
            expected=f"the first rateBurst ({burst}) frames accepted: the bucket is full",
        )
    if not refusals:
        raise CaseFailure(
            f"all {count} pings were answered", expected=f"rate_limited after about {burst}"
        )
    slowest = math.ceil(1000 / rate) + 1
    for refusal in refusals:
        after = refusal.get("retryAfterMs")
        if type(after) is not int or not 1 <= after <= slowest:
            raise CaseFailure(
                f"rate_limited with retryAfterMs {after!r}",
                expected=f"an integer from 1 to {slowest} (the time until one token, §7.3)",
            )
    wait_ms = refusals[-1]["retryAfterMs"]
    await trio.sleep(wait_ms / 1000)  # the server's own contract: retry after this long
    await peer.send({"type": "ping", "ts": f"{tag}-retry"})
    answer = await peer.expect(lambda f: f.get("type") in ("pong", "error"), what="a pong")
    if answer.get("type") != "pong" or answer.get("ts") != f"{tag}-retry":
        raise CaseFailure(
            f"after waiting retryAfterMs ({wait_ms} ms) a ping got {answer}",
            expected="a pong: a token is available after retryAfterMs",
        )


# --- 7.6 and 7.7: rooms per connection --------------------------------------------------------


async def _room_limit(h: Harness) -> int:
    probe, hello = await connect_welcome(h, h.user("probe"), [], query="rooms=")
    await probe.close()
    most = int(advertised(hello, "maxRoomsPerConnection"))
    if most > MAX_PROBE_ROOMS:
        not_checked(f"maxRoomsPerConnection is {most}, over the {MAX_PROBE_ROOMS} probed")
    return most


@case("7.6", "a join beyond maxRoomsPerConnection gets too_many_rooms", "§7.4",
      Feature.LIMITS, Feature.ROOMS)  # fmt: skip
async def too_many_rooms(h: Harness) -> None:
    """A connection holding `maxRoomsPerConnection` rooms (joined at connect) that joins
    one more gets error `too_many_rooms` naming the room; joining a room it already holds
    still succeeds; after a `leave`, the extra room can be joined."""
    most = await _room_limit(h)
    rooms = [h.room() for _ in range(most + 1)]
    extra = rooms[-1]
    peer = await h.connect(h.user(), rooms, query="rooms=" + ",".join(rooms[:-1]))
    await peer.send({"type": "join", "room": extra})
    error = await peer.expect(lambda f: f.get("type") in ("error", "joined"), what="an error")
    if not _error(error, "too_many_rooms") or error.get("room") != extra:
        raise CaseFailure(
            f"join of room {most + 1} got {error}",
            expected=f"error too_many_rooms with room {extra!r}",
        )
    await peer.send({"type": "join", "room": rooms[0]})
    again = await peer.expect(lambda f: f.get("type") in ("error", "joined"), what="joined")
    if again.get("type") != "joined" or again.get("room") != rooms[0]:
        raise CaseFailure(
            f"re-joining a room already held got {again}",
            expected="joined: a join of a room already joined always succeeds (§7.4)",
        )
    await peer.send({"type": "leave", "room": rooms[0]})
    await peer.expect(lambda f: f.get("type") == "left" and f.get("room") == rooms[0])
    await peer.send({"type": "join", "room": extra})
    joined = await peer.expect(lambda f: f.get("type") in ("error", "joined"), what="joined")
    if joined.get("type") != "joined" or joined.get("room") != extra:
        raise CaseFailure(
            f"after a leave, the join got {joined}", expected="joined: leave frees a place"
        )


@case("7.7", "more connect-time rooms than maxRoomsPerConnection: HTTP 403", "§7.4",
      Feature.LIMITS, Feature.ROOMS, Feature.AUTH)  # fmt: skip
async def too_many_rooms_at_connect(h: Harness) -> None:
    """An upgrade whose token grants (and so joins) `maxRoomsPerConnection` + 1 rooms must
    be refused with HTTP 403; the server never joins a subset (§2.4)."""
    most = await _room_limit(h)
    rooms = [h.room() for _ in range(most + 1)]
    token = await h.token(h.user(), rooms)
    target = h.endpoint.target
    query = f"token={token}"
    if h.fixed_grants:  # tokens that grant every room name none: ask for them instead
        query += f"&rooms={','.join(rooms)}"
    status = await h.refusal(target=f"{target}{'&' if '?' in target else '?'}{query}")
    if status != 403:
        raise CaseFailure(f"HTTP {status}", expected=f"HTTP 403 for {most + 1} rooms")


CASES = (
    over_size,
    at_size,
    text_too_long,
    text_at_limit,
    rate_limited,
    too_many_rooms,
    too_many_rooms_at_connect,
)
