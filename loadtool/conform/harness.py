"""What a conformance case holds in its hands: fresh users and rooms, connected peers,
and a transcript of everything sent and received (shown for every FAIL).

Black-box and bounded: every wait has a deadline and a timeout is a verdict, not a hang.
Absence ("bob must not receive it") is proven with a marker, never with a sleep: the
peer sends a ping (or, on servers without pongs, a marker message) and everything that
arrived before its answer is what the server delivered first.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import orjson
import trio

from .. import protocol as p
from ..client.rawconn import RawConnection
from ..client.rawframes import RawFrame, ReceivedFrame
from ..client.transport import Closed, Endpoint, Rejected, WsClient
from .model import CaseFailure, Exchange, Feature, TargetGone, Verdict
from .target import TokenSource

DEFAULT_WAIT_S: Final = 3.0  # seconds a case waits for an expected frame
_SHOWN_CHARS: Final = 300  # characters of a frame kept in the transcript

Frame = dict[str, Any]


@attrs.define(eq=False)
class Peer:
    """One connection of a case: send frames, expect frames, see the close."""

    name: str
    conn: WsClient
    harness: Harness
    inbox: deque[Frame] = attrs.field(factory=deque)
    closed: Closed | None = None
    _markers: itertools.count[int] = attrs.field(factory=itertools.count)

    async def send(self, frame: Frame | p.ClientFrame | str) -> None:
        """Send a frame (a dict, a protocol frame, or raw text as is)."""
        if isinstance(frame, str):
            text = frame
        elif isinstance(frame, dict):
            text = orjson.dumps(frame).decode()
        else:
            text = p.encode(frame).decode()
        self.harness.log(self.name, "->", text)
        try:
            await self.conn.send_text(text)
        except Closed as exc:
            self._closed(exc)
            raise CaseFailure(f"{self.name}: the connection closed ({exc.code}) on send") from None

    async def send_raw(self, data: bytes, note: str) -> None:
        """Send bytes as they are (a binary frame, a broken frame...)."""
        self.harness.log(self.name, "->", note)
        try:
            await self.conn.send_raw(data)
        except Closed as exc:
            self._closed(exc)

    def _closed(self, exc: Closed) -> None:
        if self.closed is None:
            self.closed = exc
            self.harness.log(self.name, "!!", f"closed {exc.code} {exc.reason}".rstrip())

    async def _fill(self) -> bool:
        """Read one batch into the inbox; False when the connection is closed."""
        if self.closed is not None:
            return False
        try:
            batch = await self.conn.receive_batch()
        except Closed as exc:
            self._closed(exc)
            return False
        for text in batch:
            self.harness.log(self.name, "<-", text)
            try:
                frame = orjson.loads(text)
            except orjson.JSONDecodeError:
                frame = {"type": "<not json>", "raw": text}
            self.inbox.append(frame if isinstance(frame, dict) else {"type": "<not object>"})
        return True

    async def next(self, wait_s: float = DEFAULT_WAIT_S) -> Frame | None:
        """The next frame, or None if none came within `wait_s` (or the connection closed)."""
        with trio.move_on_after(wait_s):
            while not self.inbox:
                if not await self._fill():
                    return None
            return self.inbox.popleft()
        return None

    async def expect(
        self,
        kind: str | Callable[[Frame], bool],
        *,
        wait_s: float = DEFAULT_WAIT_S,
        skip: Sequence[str] = ("presence", "typing", "pong"),
        what: str = "",
    ) -> Frame:
        """The next frame of type `kind` (or matching the predicate), skipping frame types
        in `skip`. Anything else first, a close, or a timeout fails the case."""
        match: Callable[[Frame], bool] = (
            (lambda f: f.get("type") == kind) if isinstance(kind, str) else kind
        )
        wanted = what or (f"a {kind!r} frame" if isinstance(kind, str) else "a matching frame")
        deadline = trio.current_time() + wait_s
        while True:
            frame = await self.next(max(0.0, deadline - trio.current_time()))
            if frame is None:
                why = f"closed {self.closed.code}" if self.closed else f"nothing within {wait_s}s"
                raise CaseFailure(f"{self.name} expected {wanted}; {why}", expected=wanted)
            if match(frame):
                return frame
            if frame.get("type") not in skip:
                raise CaseFailure(
                    f"{self.name} expected {wanted}, got {_short(frame)}", expected=wanted
                )

    async def sync(self, *, wait_s: float = DEFAULT_WAIT_S) -> list[Frame]:
        """Everything delivered to this peer before a marker round trip (ping/pong, or a
        marker message on servers without pongs). The marker answer is not included."""
        mark = f"sync-{self.name}-{next(self._markers)}"
        by_pong = Feature.PING in self.harness.features

        def is_mark(frame: Frame) -> bool:
            if by_pong:
                return frame.get("type") == "pong" and frame.get("ts") == mark
            return frame.get("text") == mark

        if by_pong:
            await self.send({"type": "ping", "ts": mark})
        else:
            room = self.harness.default_room
            await self.send(self.harness.chat_frame(mark, room, text=mark))
        seen: list[Frame] = []
        deadline = trio.current_time() + wait_s
        while True:
            frame = await self.next(max(0.0, deadline - trio.current_time()))
            if frame is None:
                raise CaseFailure(
                    f"{self.name}: the marker {mark!r} never came back"
                    + (f" (closed {self.closed.code})" if self.closed else ""),
                    expected="an answer to the marker",
                )
            if is_mark(frame):
                return seen
            seen.append(frame)

    async def expect_close(self, *, wait_s: float = DEFAULT_WAIT_S) -> Closed:
        """Wait for the server to close; returns the close (code 1006: it just dropped)."""
        with trio.move_on_after(wait_s):
            while await self._fill():
                self.inbox.clear()
        if self.closed is None:
            raise CaseFailure(
                f"{self.name}: the server did not close within {wait_s}s",
                expected="a close",
            )
        return self.closed

    async def close(self) -> None:
        await self.conn.close(1000)


@attrs.define(eq=False)
class RawPeer:
    """A connection of an RFC 6455 case: raw frames out, every frame in, all logged."""

    name: str
    conn: RawConnection
    harness: Harness
    _shown: int = 0  # frames already logged

    async def send(self, *frames: RawFrame | bytes, note: str = "") -> bool:
        """Write the frames in one write; False if the server is already gone."""
        if note:
            self.harness.log(self.name, "->", note)
        else:
            for frame in frames:
                what = frame.describe() if isinstance(frame, RawFrame) else f"{len(frame)} bytes"
                self.harness.log(self.name, "->", what)
        sent = await self.conn.send(list(frames))
        if not sent:
            self.harness.log(self.name, "!!", self.conn.reset)
        return sent

    def log_received(self) -> list[ReceivedFrame]:
        """Log the frames received since the last call; returns them."""
        new = self.conn.frames[self._shown :]
        self._shown = len(self.conn.frames)
        for frame in new:
            self.harness.log(self.name, "<-", frame.describe())
        return new

    async def read_until(self, done: Callable[[], bool], wait_s: float = DEFAULT_WAIT_S) -> bool:
        got = await self.conn.read_until(done, wait_s)
        self.log_received()
        if self.conn.eof:
            self.harness.log(self.name, "!!", self.conn.reset or "EOF")
        return got

    async def read_to_close(self, wait_s: float = DEFAULT_WAIT_S) -> ReceivedFrame | None:
        close = await self.conn.read_to_close(wait_s)
        self.log_received()
        if self.conn.eof:
            self.harness.log(self.name, "!!", self.conn.reset or "EOF")
        return close


def _short(frame: Frame) -> str:
    text = orjson.dumps(frame).decode()
    return text if len(text) <= 200 else text[:197] + "..."


@attrs.define(eq=False)
class Harness:
    """Per-case state: the target, fresh names, peers and the transcript."""

    endpoint: Endpoint
    tokens: TokenSource
    features: frozenset[Feature]
    case_id: str
    transcript: list[Exchange] = attrs.field(factory=list)
    peers: list[Peer] = attrs.field(factory=list)
    raws: list[RawPeer] = attrs.field(factory=list)
    _tag: str = attrs.field(factory=lambda: secrets.token_hex(3))
    _names: itertools.count[int] = attrs.field(factory=itertools.count)
    _t0: float = attrs.field(factory=time.perf_counter)

    def log(self, actor: str, direction: str, data: str) -> None:
        shown = data if len(data) <= _SHOWN_CHARS else data[: _SHOWN_CHARS - 3] + "..."
        at = (time.perf_counter() - self._t0) * 1000
        self.transcript.append(Exchange(at_ms=round(at, 3), actor=actor, direction=direction,
                                        data=shown))  # fmt: skip

    # --- names ----------------------------------------------------------------------------

    def name(self, label: str = "n") -> str:
        """A name (message id, marker) no other case uses."""
        return f"c{self.case_id.replace('.', '-')}-{self._tag}-{label}{next(self._names)}"

    def user(self, label: str = "u") -> str:
        """A user id no other case uses (cases run concurrently against one server); with
        a fixed token list, the next user of the list."""
        claim = getattr(self.tokens, "claim_user", None)
        if claim is None:
            return self.name(label)
        user = claim()
        if user is None:
            raise CaseFailure("the target's token list is used up: give it more tokens")
        return str(user)

    @property
    def fixed_grants(self) -> bool:
        """Tokens come from a fixed list that grants every room: grants cannot be tested."""
        return getattr(self.tokens, "claim_user", None) is not None

    def require_room_grants(self) -> None:
        """For cases that check what a token does *not* grant."""
        if self.fixed_grants:
            raise CaseFailure(
                "the target's tokens are a fixed list granting every room: grants cannot be "
                "checked",
                verdict=Verdict.UNSUPPORTED,
            )

    def room(self, label: str = "r") -> str:
        return f"c{self.case_id.replace('.', '-')}-{self._tag}-{label}{next(self._names)}"

    @property
    def default_room(self) -> str:
        return f"c{self.case_id.replace('.', '-')}-{self._tag}-main"

    def chat_frame(self, msg_id: str, room: str, *, text: str = "hi") -> Frame:
        """A chat message in the server's dialect (typeless seed frames when that is all
        the target speaks)."""
        frame: Frame = {"id": msg_id, "room": room, "text": text}
        if Feature.SEED_DIALECT in self.features and Feature.ACKS not in self.features:
            frame |= {"senderId": "conformance", "sentAt": p.utc_now_iso()}
            return frame
        return {"type": "message", **frame}

    # --- connecting -------------------------------------------------------------------------

    async def token(self, user: str, rooms: Sequence[str]) -> str | None:
        return await self.tokens.token(user, list(rooms))

    async def connect(
        self,
        user: str | None = None,
        rooms: Sequence[str] | None = None,
        *,
        token: str | bool | None = True,
        query: str = "",
        headers: Sequence[tuple[str, str]] = (),
        welcome: bool = True,
    ) -> Peer:
        """Connect `user` (fresh by default) granted `rooms` (the case's default room).

        `token=True` mints one from the target's token source, a string is used as is,
        None sends none. With `welcome`, the welcome and joined frames (v1 servers) are
        read and checked before returning.
        """
        user = user or self.user()
        target = await self._target(user, rooms, token, query)
        try:
            conn = await WsClient.connect(self.endpoint, target=target, headers=headers)
        except Rejected as exc:
            self.log(user, "!!", f"refused: HTTP {exc.status}")
            raise CaseFailure(
                f"{user}: the upgrade was refused with HTTP {exc.status}: {exc.body.strip()[:120]}"
            ) from None
        except OSError as exc:
            raise TargetGone(f"{user}: could not connect: {exc}") from None
        except Closed as exc:
            raise CaseFailure(f"{user}: the connection dropped during the upgrade: {exc}") from None
        peer = Peer(name=user, conn=conn, harness=self)
        self.peers.append(peer)
        if welcome and Feature.ROOMS in self.features:
            hello = await peer.expect("welcome", skip=())
            for _ in hello.get("rooms", ()):
                await peer.expect("joined")
        return peer

    async def _target(
        self, user: str, rooms: Sequence[str] | None, token: str | bool | None, query: str
    ) -> str:
        """The upgrade's path and query for `user` (see `connect`), logged."""
        rooms = list(rooms) if rooms is not None else [self.default_room]
        if token is True:
            token = await self.token(user, rooms)
        target = self.endpoint.target
        params = ([f"token={token}"] if isinstance(token, str) else []) + ([query] if query else [])
        if self.fixed_grants and "rooms=" not in query:
            params.append(f"rooms={','.join(rooms)}")  # the tokens name no rooms to join
        if params:
            target += ("&" if "?" in target else "?") + "&".join(params)
        self.log(user, "!!", f"connect {target if len(target) < 120 else target[:117] + '...'}")
        return target

    async def raw(self, user: str | None = None, rooms: Sequence[str] | None = None) -> RawPeer:
        """A connection that writes raw frames and reads leniently (RFC 6455 cases); the
        server's first frames (welcome...) are left unread."""
        user = user or self.user()
        target = await self._target(user, rooms, True, "")
        try:
            conn = await RawConnection.connect(self.endpoint, target=target)
        except Rejected as exc:
            self.log(user, "!!", f"refused: HTTP {exc.status}")
            raise CaseFailure(
                f"{user}: the upgrade was refused with HTTP {exc.status}: {exc.body.strip()[:120]}"
            ) from None
        except OSError as exc:
            raise TargetGone(f"{user}: could not connect: {exc}") from None
        except Closed as exc:
            raise CaseFailure(f"{user}: the connection dropped during the upgrade: {exc}") from None
        peer = RawPeer(name=user, conn=conn, harness=self)
        self.raws.append(peer)
        return peer

    async def refusal(self, *, target: str, headers: Sequence[tuple[str, str]] = ()) -> int:
        """The HTTP status an upgrade to `target` gets (101 when it is accepted)."""
        try:
            conn = await WsClient.connect(self.endpoint, target=target, headers=headers)
        except Rejected as exc:
            self.log("probe", "!!", f"upgrade {target[:80]} -> HTTP {exc.status}")
            return exc.status
        self.log("probe", "!!", f"upgrade {target[:80]} -> 101")
        await conn.close(1000)
        return 101

    async def close_all(self) -> None:
        with trio.move_on_after(2.0, shield=True):
            for peer in self.peers:
                await peer.conn.abort()
            for raw in self.raws:
                await raw.conn.aclose()
