"""A WebSocket connection that writes raw bytes and reads leniently (the gate's 10.x cases
and `loadtool fuzz --layer websocket`).

The upgrade is the normal one (`transport.upgrade`); after it nothing is done behind the
caller's back: no pong, no close reply, no validation that would end the read. What the
server sends is split into frames by `rawframes.FrameReader` and kept, problems noted,
until the server closes (its Close frame and then EOF), resets, or the deadline passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs
import trio

from .rawframes import FrameReader, RawFrame, ReceivedFrame
from .transport import Closed, Endpoint, open_stream, upgrade
from .wsframes import OP_CLOSE, OP_TEXT

_RECEIVE_BYTES: Final = 64 * 1024


@attrs.define(eq=False)
class RawConnection:
    """One connection driven byte by byte. Reads are bounded by the caller's deadline."""

    stream: trio.abc.Stream
    reader: FrameReader = attrs.field(factory=FrameReader)
    frames: list[ReceivedFrame] = attrs.field(factory=list)  # every frame received, in order
    eof: bool = False  # the server closed TCP (or reset it: `reset`)
    reset: str = ""  # how the stream broke, if it did

    @classmethod
    async def connect(
        cls,
        endpoint: Endpoint,
        *,
        target: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> RawConnection:
        """Dial and upgrade. A cancel point.

        Raises:
            OSError: no TCP (or TLS) connection.
            Rejected: the upgrade was refused with an HTTP status.
            Closed: the connection dropped or the answer was not a valid upgrade.
        """
        stream = await open_stream(endpoint)
        try:
            trailing = await upgrade(stream, endpoint, target or endpoint.target, headers)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            await trio.aclose_forcefully(stream)
            raise Closed(1006, f"connection failed: {exc.__cause__ or exc}") from None
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        conn = cls(stream=stream)
        if trailing:
            conn.frames += conn.reader.feed(trailing)
        return conn

    # --- sending ---------------------------------------------------------------------------

    async def send(self, items: RawFrame | bytes | Iterable[RawFrame | bytes]) -> bool:
        """Write frames (or bytes as they are) in one write. False if the server is gone
        (the stream broke): what it said before is in `frames`. A cancel point."""
        if isinstance(items, RawFrame | bytes):
            items = [items]
        data = b"".join(i.to_bytes() if isinstance(i, RawFrame) else i for i in items)
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.reset = self.reset or f"send failed: {exc.__cause__ or exc}"
            return False
        return True

    # --- receiving -------------------------------------------------------------------------

    async def read_some(self) -> list[ReceivedFrame]:
        """The frames completed by the next chunk (maybe none); [] and `eof` set at the
        end. A cancel point: bound it with a cancel scope."""
        if self.eof:
            return []
        try:
            data = await self.stream.receive_some(_RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.eof, self.reset = True, f"reset: {exc.__cause__ or exc}"
            return []
        if not data:
            self.eof = True
            return []
        new = self.reader.feed(bytes(data))
        self.frames += new
        return new

    async def read_until(self, done: Callable[[], bool], wait_s: float) -> bool:
        """Read until `done()` holds, EOF, or `wait_s` seconds; returns `done()`."""
        with trio.move_on_after(wait_s):
            while not done() and not self.eof:
                await self.read_some()
        return done()

    async def read_to_close(self, wait_s: float) -> ReceivedFrame | None:
        """Read until the server's Close frame and then EOF (or only EOF), within `wait_s`;
        the Close frame, if one came. Its close handshake is answered (§5.5.1)."""
        await self.read_until(lambda: self.close_frame is not None, wait_s)
        close = self.close_frame
        if close is not None and not self.eof:
            reply = RawFrame(opcode=OP_CLOSE, payload=close.payload[:2])
            await self.send(reply)
            with trio.move_on_after(min(wait_s, 1.0)):
                while not self.eof:
                    await self.read_some()
        return close

    @property
    def close_frame(self) -> ReceivedFrame | None:
        return next((f for f in self.frames if f.opcode == OP_CLOSE), None)

    @property
    def texts(self) -> list[str]:
        """Whole text messages received (invalid UTF-8 shown replaced: `reader.problems`
        says so)."""
        return [
            payload.decode("utf-8", "replace")
            for opcode, payload in self.reader.messages
            if opcode == OP_TEXT
        ]

    async def aclose(self) -> None:
        """Drop the TCP connection (no closing handshake)."""
        await trio.aclose_forcefully(self.stream)
