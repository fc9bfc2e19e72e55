"""6.x History and re-sync: pages, their bounds and `hasMore`, `join` with `since`, and
re-sync after a reconnect without a gap (docs/protocol.md §4.4, §5).

Every case fills a fresh room, so its oldest retained seq is its first one, and asks for
pages from a connection that has not joined the room (membership is not required for
`history`, §5.1), so no live delivery can mix with the answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
import trio

from ..harness import DEFAULT_WAIT_S, Frame, Harness, Peer
from ..model import CaseFailure, Feature
from ._case import case
from .limits import advertised, connect_welcome, not_checked

MAX_PROBE_PAGE = 300  # a historyPageMax above this is not probed (INFO)


# --- helpers shared with reconnect.py ---------------------------------------------------------


async def post(h: Harness, peer: Peer, room: str, count: int, tag: str) -> list[int]:
    """Send `count` messages (ids `<tag>-<i>`) at once and return their acked seqs, in
    order. Deliveries that arrive before an ack are consumed; later ones stay queued."""
    ids = [f"{tag}-{i}" for i in range(count)]
    for i, msg_id in enumerate(ids):
        await peer.send(h.chat_frame(msg_id, room, text=f"{tag} #{i}"))
    acks: dict[str, int] = {}
    deadline = trio.current_time() + DEFAULT_WAIT_S + count * 0.02
    while len(acks) < count:
        frame = await peer.next(max(0.0, deadline - trio.current_time()))
        if frame is None:
            why = f" (closed {peer.closed.code})" if peer.closed else ""
            raise CaseFailure(
                f"{peer.name}: {count - len(acks)} of {count} messages got no ack{why}",
                expected="an ack per message",
            )
        if frame.get("type") == "error":
            raise CaseFailure(f"{peer.name}: a message was refused: {frame}", expected="an ack")
        if frame.get("type") == "ack" and frame.get("id") in ids:
            seq = frame.get("seq")
            if type(seq) is not int:
                raise CaseFailure(f"ack {frame}", expected="an ack with an integer seq")
            acks[frame["id"]] = seq
    return [acks[i] for i in ids]


async def fill(h: Harness, room: str, count: int, *, per_peer: int = 25) -> list[int]:
    """`count` messages in `room`, from as many connections as the rate limit needs; their
    seqs, ascending."""
    seqs: list[int] = []
    for n in range(math.ceil(count / per_peer)):
        poster = await h.connect(h.user("poster"), [room])
        seqs += await post(h, poster, room, min(per_peer, count - n * per_peer), h.name("m"))
    return sorted(seqs)


async def reader(h: Harness, rooms: Sequence[str]) -> Peer:
    """A connection granted `rooms` that joins none of them."""
    return await h.connect(h.user("reader"), rooms, query="rooms=")


async def page(peer: Peer, room: str, **query: Any) -> tuple[list[int], bool, list[Frame]]:
    """Ask for a history page; returns (seqs, hasMore, messages), checking the frame's shape:
    its room, a list of message objects in strictly ascending seq, a boolean hasMore."""
    await peer.send({"type": "history", "room": room, **query})
    return check_page(await peer.expect("history", what=f"a history page for {query}"), room)


def check_page(frame: Frame, room: str) -> tuple[list[int], bool, list[Frame]]:
    messages, more = frame.get("messages"), frame.get("hasMore")
    if frame.get("room") != room or not isinstance(messages, list) or type(more) is not bool:
        raise CaseFailure(
            f"history frame {_short(frame)}",
            expected=f"room {room!r}, messages an array, hasMore a boolean",
        )
    raw = [m.get("seq") if isinstance(m, dict) else None for m in messages]
    seqs = [s for s in raw if type(s) is int]
    if len(seqs) != len(raw) or seqs != sorted(set(seqs)):
        raise CaseFailure(f"page seqs {raw}", expected="integer seqs, strictly ascending")
    return seqs, more, messages


def expect_page(got: tuple[list[int], bool, list[Frame]], seqs: list[int], more: bool,
                request: str) -> None:  # fmt: skip
    if (got[0], got[1]) != (seqs, more):
        raise CaseFailure(
            f"{request}: seqs {_span(got[0])}, hasMore {got[1]}",
            expected=f"seqs {_span(seqs)}, hasMore {more}",
        )


def _span(seqs: list[int]) -> str:
    if len(seqs) > 6 and seqs == list(range(seqs[0], seqs[-1] + 1)):
        return f"[{seqs[0]}..{seqs[-1]}] ({len(seqs)})"
    return str(seqs)


def _short(frame: Frame) -> str:
    text = orjson.dumps(frame).decode()
    return text if len(text) <= 200 else text[:197] + "..."


# --- cases ------------------------------------------------------------------------------------


@case("6.1", "history without before/after returns the newest page", "§5.1",
      Feature.HISTORY, Feature.ACKS)  # fmt: skip
async def newest_page(h: Harness) -> None:
    """After 5 messages in a fresh room: `history {room}` returns all 5 (ascending,
    hasMore false), each with the members of a `message` frame as sent; `history {room,
    limit: 3}` returns the newest 3 with hasMore true (older ones exist)."""
    room = h.room()
    alice = await h.connect(h.user("alice"), [room])
    tag = h.name("m")
    seqs = await post(h, alice, room, 5, tag)
    peer = await reader(h, [room])
    got = await page(peer, room)
    expect_page(got, seqs, False, "history {room}")
    for i, message in enumerate(got[2]):
        want = {"id": f"{tag}-{i}", "room": room, "senderId": alice.name, "text": f"{tag} #{i}"}
        if {k: message.get(k) for k in want} != want or not isinstance(message.get("sentAt"), str):
            raise CaseFailure(
                f"page element {_short(message)}", expected=f"{want} with a sentAt string"
            )
    expect_page(await page(peer, room, limit=3), seqs[2:], True, "history {room, limit: 3}")


@case("6.2", "history before N returns the newest page below N", "§5.1",
      Feature.HISTORY, Feature.ACKS)  # fmt: skip
async def before_page(h: Harness) -> None:
    """Seqs s1..s5 in a fresh room. `before: s4, limit: 2` -> s2, s3 (hasMore true);
    `before: s2, limit: 5` -> s1 (hasMore false); `before: s1` -> empty (hasMore false);
    `before` above the head, `limit: 2` -> s4, s5 (hasMore true)."""
    room = h.room()
    s = await fill(h, room, 5)
    peer = await reader(h, [room])
    for query, want, more in (
        ({"before": s[3], "limit": 2}, s[1:3], True),
        ({"before": s[1], "limit": 5}, s[:1], False),
        ({"before": s[0]}, [], False),
        ({"before": s[4] + 100, "limit": 2}, s[3:], True),
    ):
        expect_page(await page(peer, room, **query), want, more, f"history {query}")


@case("6.3", "history after N returns the oldest page above N", "§5.1",
      Feature.HISTORY, Feature.ACKS)  # fmt: skip
async def after_page(h: Harness) -> None:
    """Seqs s1..s5 in a fresh room. `after: s1, limit: 2` -> s2, s3 (hasMore true);
    `after: s3, limit: 5` -> s4, s5 (hasMore false); `after: s5` -> empty (hasMore false);
    `after: 0, limit: 5` -> all five (hasMore false)."""
    room = h.room()
    s = await fill(h, room, 5)
    peer = await reader(h, [room])
    for query, want, more in (
        ({"after": s[0], "limit": 2}, s[1:3], True),
        ({"after": s[2], "limit": 5}, s[3:], False),
        ({"after": s[4]}, [], False),
        ({"after": 0, "limit": 5}, s, False),
    ):
        expect_page(await page(peer, room, **query), want, more, f"history {query}")


@case("6.4", "history limit is capped at historyPageMax", "§7.7",
      Feature.HISTORY, Feature.ACKS, Feature.LIMITS, timeout_s=20.0)  # fmt: skip
async def page_cap(h: Harness) -> None:
    """With `historyPageMax` + 1 messages in a room: `history {limit: 1000}` and
    `history {}` both return the newest `historyPageMax` (hasMore true), and
    `history {after: 0, limit: 1000}` the oldest `historyPageMax` (hasMore true)."""
    room = h.room()
    peer, hello = await connect_welcome(h, h.user("reader"), [room], query="rooms=")
    cap = int(advertised(hello, "historyPageMax"))
    burst = int(advertised(hello, "rateBurst"))
    if cap > MAX_PROBE_PAGE:
        not_checked(f"historyPageMax is {cap}, over the {MAX_PROBE_PAGE} messages probed")
    s = await fill(h, room, cap + 1, per_peer=max(1, min(30, burst - 5)))
    for query, want in (
        ({"limit": 1000}, s[1:]),
        ({}, s[1:]),
        ({"after": 0, "limit": 1000}, s[:-1]),
    ):
        expect_page(await page(peer, room, **query), want, True, f"history {query}")


@case("6.5", "hasMore: paging both ways covers the room exactly once", "§5.1",
      Feature.HISTORY, Feature.ACKS)  # fmt: skip
async def paging(h: Harness) -> None:
    """Seven messages, pages of 3. Backward (newest page, then `before` = the first seq of
    the previous page while hasMore) and forward (`after: 0`, then `after` = the last seq
    while hasMore) must each yield every seq exactly once and stop with hasMore false. A
    room that never had a message answers an empty page with hasMore false."""
    room, empty = h.room(), h.room("empty")
    s = await fill(h, room, 7)
    peer = await reader(h, [room, empty])
    expect_page(await page(peer, empty), [], False, "history of an empty room")
    for direction in ("before", "after"):
        seen: list[int] = []
        query: dict[str, int] = {"limit": 3} if direction == "before" else {"limit": 3, "after": 0}
        for _ in range(len(s) + 1):
            seqs, more, _ = await page(peer, room, **query)
            if not seqs and more:
                raise CaseFailure(f"an empty page with hasMore true for {query}",
                                  expected="hasMore false on an empty page")  # fmt: skip
            seen = seqs + seen if direction == "before" else seen + seqs
            if not more:
                break
            query = {"limit": 3, direction: seqs[0] if direction == "before" else seqs[-1]}
        if seen != s:
            raise CaseFailure(
                f"paging with {direction!r} while hasMore gave {seen}",
                expected=f"every seq once: {s}",
            )


@case("6.6", "join with since: joined, then a page of the messages after since", "§4.4",
      Feature.HISTORY, Feature.ACKS, Feature.ROOMS)  # fmt: skip
async def join_since(h: Harness) -> None:
    """Seqs s1..s5; a connection not in the room sends `join {room, since: s2}`: it gets
    `joined` with seq s5 (the head), then one `history` with s3..s5 and hasMore false.
    Joining again with `since` = the head gives `joined` and an empty page."""
    room = h.room()
    s = await fill(h, room, 5)
    bob = await reader(h, [room])
    for since, want in ((s[1], s[2:]), (s[4], [])):
        await bob.send({"type": "join", "room": room, "since": since})
        joined = await bob.expect("joined", what=f"joined (since {since})")
        if joined.get("room") != room or joined.get("seq") != s[4]:
            raise CaseFailure(f"joined {joined}", expected=f"joined {room!r} with seq {s[4]}")
        got = check_page(await bob.expect("history", what="a history page after joined"), room)
        expect_page(got, want, False, f"join since {since}")


@case("6.7", "a repeated join re-syncs without side effects", "§4.4",
      Feature.HISTORY, Feature.ACKS, Feature.ROOMS, Feature.PRESENCE)  # fmt: skip
async def rejoin(h: Harness) -> None:
    """Alice (joined at connect) posts 3 messages, then sends `join {room, since: 0}` for
    the room she is in: `joined` (the head) and a page with the 3. Bob, also a member,
    gets no presence for it, and Alice's next message reaches Alice and Bob once each."""
    room = h.room()
    bob = await h.connect(h.user("bob"), [room])
    alice = await h.connect(h.user("alice"), [room])
    s = await post(h, alice, room, 3, h.name("m"))
    await alice.send({"type": "join", "room": room, "since": 0})
    joined = await alice.expect(
        lambda f: f.get("type") == "joined", skip=("presence", "typing", "pong", "message")
    )
    if joined.get("seq") != s[-1]:
        raise CaseFailure(f"joined {joined}", expected=f"seq {s[-1]} (the head)")
    got = check_page(await alice.expect("history", skip=("message",)), room)
    expect_page(got, s, False, "join since 0 of a room already joined")
    seen = await bob.sync()
    about_alice = [f for f in seen if f.get("type") == "presence" and f.get("userId") == alice.name]
    if len(about_alice) != 1 or about_alice[0].get("status") != "joined":
        raise CaseFailure(
            f"Bob saw presence {about_alice}",
            expected="one presence joined (Alice's connect), none for the repeated join",
        )
    last = h.name("last")
    await post(h, alice, room, 1, last)
    for peer in (alice, bob):
        frames = [f for f in await peer.sync() if f.get("id") == f"{last}-0"]
        copies = [f for f in frames if f.get("type") == "message"]
        if len(copies) != 1:
            raise CaseFailure(
                f"{peer.name} received the next message {len(copies)} times",
                expected="once: the repeated join must not add a second membership",
            )


@case("6.8", "re-sync after a reconnect leaves no gap", "§5.2",
      Feature.HISTORY, Feature.ACKS, Feature.ROOMS)  # fmt: skip
async def resync(h: Harness) -> None:
    """Bob receives s1..s3 live, then his connection drops (no close handshake); Alice
    posts s4..s6. Bob reconnects (the room joined at connect again), sends `join {room,
    since: s3}` and gets s4..s6 in the page; Alice's s7 then reaches him live. Bob has
    s1..s7, each once, in order (§5.2)."""
    room = h.room()
    bob_id = h.user("bob")
    bob = await h.connect(bob_id, [room])
    alice = await h.connect(h.user("alice"), [room])
    s = await post(h, alice, room, 3, h.name("a"))
    have = [await _live(bob, room) for _ in s]
    await bob.conn.abort()
    h.log(bob.name, "!!", "dropped (no close handshake)")
    s += await post(h, alice, room, 3, h.name("b"))
    bob = await h.connect(bob_id, [room])
    await bob.send({"type": "join", "room": room, "since": have[-1]})
    await bob.expect("joined", what="joined for the re-sync")
    have += check_page(await bob.expect("history", what="the re-sync page"), room)[0]
    s += await post(h, alice, room, 1, h.name("c"))
    have.append(await _live(bob, room))
    if have != s:
        raise CaseFailure(f"Bob holds seqs {have}", expected=f"{s}: no gap, no duplicate")


async def _live(peer: Peer, room: str) -> int:
    frame = await peer.expect(
        lambda f: f.get("type") == "message" and f.get("room") == room, what="a live message"
    )
    seq = frame.get("seq")
    if type(seq) is not int:
        raise CaseFailure(f"message {frame}", expected="an integer seq")
    return seq


@case("6.9", "history needs the room granted, not joined", "§5.1",
      Feature.HISTORY, Feature.ACKS, Feature.ERRORS)  # fmt: skip
async def history_grant(h: Harness) -> None:
    """A connection granted room A (not joined) reads A's 2 messages; `history` of a room
    its token does not grant gets error `forbidden` with that room, and the connection
    stays usable."""
    h.require_room_grants()
    room, other = h.room(), h.room("other")
    s = await fill(h, room, 2)
    peer = await reader(h, [room])
    expect_page(await page(peer, room), s, False, "history of a granted, unjoined room")
    await peer.send({"type": "history", "room": other})
    error = await peer.expect(lambda f: f.get("type") in ("error", "history"), what="an error")
    if error.get("type") != "error" or error.get("code") != "forbidden":
        raise CaseFailure(f"history of an ungranted room got {_short(error)}",
                          expected="error forbidden")  # fmt: skip
    if error.get("room") != other:
        raise CaseFailure(f"forbidden names room {error.get('room')!r}", expected=repr(other))
    await peer.sync()


CASES = (
    newest_page,
    before_page,
    after_page,
    page_cap,
    paging,
    join_since,
    rejoin,
    resync,
    history_grant,
)
