"""4.x Heartbeats and idle timeout: application ping/pong, WebSocket pings both ways, the
idle close (docs/protocol.md §6).

The client transport answers the server's WebSocket pings and swallows control frames;
`watch` puts a recording parser under a peer so that a case can see them (and, for the
idle timeout, stop answering pings). Waits for the server's timers are bounded by the
intervals the `welcome` advertises; longer intervals are reported as INFO, not waited for.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Final

import trio

from ...client import wsframes as wsf
from ..harness import Frame, Harness, Peer
from ..model import CaseFailure, Feature
from ._case import case
from .limits import advertised, connect_welcome, not_checked

MAX_TIMER_MS: Final = 5000  # server timers longer than this are not waited for (INFO)


class ControlWatch(wsf.FrameParser):
    """A peer's frame parser that also records the control frames it parses, with the
    time each arrived (trio clock), and can hide the server's pings from the transport so
    that they go unanswered."""

    def __init__(self, inner: wsf.FrameParser, *, answer_pings: bool) -> None:
        self.__dict__.update(inner.__dict__)  # take over its state: a partial frame stays
        self.seen: list[tuple[float, wsf.Control]] = []
        self.answer_pings = answer_pings

    def feed(self, data: bytes) -> tuple[list[str], list[wsf.Control]]:
        texts, controls = super().feed(data)
        now = trio.current_time()
        self.seen += [(now, c) for c in controls]
        if not self.answer_pings:
            controls = [c for c in controls if c.opcode != wsf.OP_PING]
        return texts, controls

    def of(self, opcode: int) -> list[tuple[float, wsf.Control]]:
        return [(at, c) for at, c in self.seen if c.opcode == opcode]


def watch(peer: Peer, *, answer_pings: bool = True) -> ControlWatch:
    """Record `peer`'s incoming control frames from now on (see `ControlWatch`)."""
    watcher = ControlWatch(peer.conn._parser, answer_pings=answer_pings)
    peer.conn._parser = watcher
    return watcher


async def read_until(peer: Peer, done: Callable[[], bool], wait_s: float) -> bool:
    """Read (data frames stay in the inbox) until `done()` or `wait_s`; returns `done()`."""
    with trio.move_on_after(wait_s):
        while not done():
            if not await peer._fill():
                break
    return done()


def _about(frame: Frame, mark: str) -> bool:
    return mark in (frame.get("ts"), frame.get("text"))


@case("4.1", "an application ping gets a pong with its ts, to the sender", "§6", Feature.PING)
async def ping_pong(h: Harness) -> None:
    """`{"type":"ping","ts":"<string>"}` must be answered with `pong` echoing the same `ts`
    on the sending connection; two pings get two pongs, in order."""
    peer = await h.connect()
    first, second = f"{h.name('ts')}-2026-11-29T05:03:53.315631Z", h.name("ts")
    await peer.send({"type": "ping", "ts": first})
    await peer.send({"type": "ping", "ts": second})
    for ts in (first, second):
        pong = await peer.expect(
            lambda f: f.get("type") == "pong", skip=("presence", "typing"), what="a pong"
        )
        if pong.get("ts") != ts:
            raise CaseFailure(f"pong with ts {pong.get('ts')!r}", expected=f"ts {ts!r} echoed")


@case("4.2", "pong echoes number and absent ts verbatim", "§6", Feature.PING)
async def ping_ts_forms(h: Harness) -> None:
    """`ts` may be a number (echoed as the same number, 0 included) or absent / `null`
    (answered with a `pong` without `ts`): four pings, four pongs in order."""
    peer = await h.connect()
    sent: list[tuple[Frame, object]] = [
        ({"type": "ping", "ts": 1795928633315.25}, 1795928633315.25),
        ({"type": "ping", "ts": 0}, 0),
        ({"type": "ping"}, None),
        ({"type": "ping", "ts": None}, None),
    ]
    for frame, _ in sent:
        await peer.send(frame)
    for frame, want in sent:
        pong = await peer.expect(
            lambda f: f.get("type") == "pong", skip=("presence", "typing"), what="a pong"
        )
        got = pong.get("ts")
        if got != want or type(got) is not type(want):
            raise CaseFailure(
                f"ping {frame} got a pong with ts {got!r}",
                expected="no ts" if want is None else f"ts {want!r}, the same JSON number",
            )


@case("4.3", "an application ping is not relayed to other clients", "§6", Feature.SEED_DIALECT)
async def ping_not_relayed(h: Harness) -> None:
    """Alice and Bob share a room; Alice sends a `ping` with a unique `ts`. Bob must not
    receive it (nor a pong for it) before his marker round trip comes back. (The seed
    servers relay every frame to every client, pings included: they fail here, §12.)"""
    alice, bob = await h.connect(h.user("alice")), await h.connect(h.user("bob"))
    mark = h.name("ping")
    await alice.send({"type": "ping", "ts": mark})
    seen = await alice.sync()  # the server has handled the ping before Alice's marker
    if Feature.PING in h.features and not any(
        f.get("type") == "pong" and f.get("ts") == mark for f in seen
    ):
        raise CaseFailure("Alice got no pong for her ping", expected=f"pong with ts {mark!r}")
    relayed = [f for f in await bob.sync() if _about(f, mark)]
    if relayed:
        raise CaseFailure(
            f"Bob received Alice's ping: {relayed[0]}",
            expected="the ping answered to Alice only, never broadcast (§6)",
        )


@case("4.4", "a WebSocket Ping from the client is answered with a Pong", "§6",
      Feature.SEED_DIALECT)  # fmt: skip
async def ws_ping(h: Harness) -> None:
    """A WebSocket Ping control frame (12 random hex characters as payload) must be answered with a
    Pong carrying the same payload (RFC 6455 §5.5.2), and the connection stays usable
    (a marker round trip after it)."""
    peer = await h.connect()
    watcher = watch(peer)
    payload = os.urandom(6).hex().encode()
    await peer.send_raw(wsf.client_frame(wsf.OP_PING, payload), f"WebSocket Ping {payload!r}")
    await peer.sync()

    def pongs() -> list[bytes]:
        return [c.payload for _, c in watcher.of(wsf.OP_PONG)]

    if not await read_until(peer, lambda: payload in pongs(), 2.0):
        raise CaseFailure(
            f"Pongs received: {pongs()}", expected=f"a Pong with the payload {payload!r}"
        )


@case("4.5", "the server sends WebSocket pings every heartbeatMs", "§6", Feature.HEARTBEAT,
      timeout_s=20.0, info=True)  # fmt: skip
async def server_pings(h: Harness) -> str:
    """Reports the intervals between the server's WebSocket Pings on an idle connection
    (which answers them) next to the advertised `heartbeatMs`. Not waited for when
    `heartbeatMs` is over 5 s."""
    started = trio.current_time()
    peer, hello = await connect_welcome(h)
    watcher = watch(peer)
    beat = advertised(hello, "heartbeatMs")
    if beat > MAX_TIMER_MS:
        not_checked(f"heartbeatMs is {beat:.0f}, over the {MAX_TIMER_MS} ms the suite waits")
    await read_until(peer, lambda: len(watcher.of(wsf.OP_PING)) >= 3, 3 * beat / 1000 + 1)
    times = [started] + [at for at, _ in watcher.of(wsf.OP_PING)]
    if len(times) == 1:
        return f"no WebSocket Ping within {3 * beat / 1000 + 1:.1f}s (heartbeatMs {beat:.0f})"
    gaps = ", ".join(f"{(b - a) * 1000:.0f}" for a, b in itertools.pairwise(times))
    return f"heartbeatMs {beat:.0f}; Pings after (ms, from the connect): {gaps}"


@case("4.6", "a silent connection is closed with 4000, not before idleTimeoutMs", "§6",
      Feature.HEARTBEAT, timeout_s=20.0)  # fmt: skip
async def idle_close(h: Harness) -> None:
    """A client that sends nothing after the upgrade and does not answer the server's
    Pings must be closed with 4000, and not sooner than `idleTimeoutMs` after the upgrade
    request (its last byte). INFO when `idleTimeoutMs` is over 5 s."""
    started = trio.current_time()
    peer = await h.connect(welcome=False)
    watch(peer, answer_pings=False)
    hello = await peer.expect("welcome", skip=(), what="a welcome frame first")
    idle = advertised(hello, "idleTimeoutMs")
    if idle > MAX_TIMER_MS:
        not_checked(f"idleTimeoutMs is {idle:.0f}, over the {MAX_TIMER_MS} ms the suite waits")
    closed = await peer.expect_close(wait_s=2 * idle / 1000 + 1)
    after_ms = (trio.current_time() - started) * 1000
    if closed.code != 4000:
        raise CaseFailure(
            f"closed with {closed.code} {closed.reason} after {after_ms:.0f} ms",
            expected="close 4000 idle timeout",
        )
    if after_ms < idle:
        raise CaseFailure(
            f"closed after {after_ms:.0f} ms, under idleTimeoutMs {idle:.0f}",
            expected="no idle close sooner than idleTimeoutMs after the last received byte",
        )


@case("4.7", "a connection that answers pings is not closed as idle", "§6", Feature.HEARTBEAT,
      timeout_s=20.0)  # fmt: skip
async def pongs_keep_alive(h: Harness) -> None:
    """A client that only answers the server's WebSocket Pings (sending no data frame)
    must still be open 1.5 x `idleTimeoutMs` after connecting, and usable (a marker round
    trip). INFO when `idleTimeoutMs` is over 5 s."""
    peer, hello = await connect_welcome(h)
    watcher = watch(peer)
    idle = advertised(hello, "idleTimeoutMs")
    if idle > MAX_TIMER_MS:
        not_checked(f"idleTimeoutMs is {idle:.0f}, over the {MAX_TIMER_MS} ms the suite waits")
    frame = await peer.next(1.5 * idle / 1000)
    if peer.closed is not None:
        raise CaseFailure(
            f"closed {peer.closed.code} {peer.closed.reason} although it answered "
            f"{len(watcher.of(wsf.OP_PING))} Pings",
            expected="no idle close: Pongs reset the idle timer (§6)",
        )
    if frame is not None:
        raise CaseFailure(f"unexpected {frame} on an idle connection", expected="no frame")
    await peer.sync()


CASES = (
    ping_pong,
    ping_ts_forms,
    ping_not_relayed,
    ws_ping,
    server_pings,
    idle_close,
    pongs_keep_alive,
)
