"""A tiny raw WebSocket test client: trio TCP + wsproto, and nothing done behind your back.

trio-websocket answers pings itself, reads all the time and cannot send fragments or
broken bytes. `RawClient` only reads when a test calls `next_event()` (so a test can
simply stop reading, e.g. to be a slow consumer), answers pings only if asked to, and can
write arbitrary bytes with `send_bytes_raw`.

    raw = await RawClient.connect(server.port, token("alice"), answer_pings=False)
    await raw.send_text('{"type": "ping"}')
    event = await raw.next_event()  # a wsproto event, or None once the server closed TCP

In a test, open it through the `clients` fixture (tests/conftest.py), which closes it at
teardown: `raw = await clients.raw(server, "alice", answer_pings=False)`.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from typing import Any

import orjson
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from loadtool import protocol as p

_RECEIVE_BYTES = 65536


class RawClient:
    """One client WebSocket connection driven by hand (see the module docstring)."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection, *, answer_pings: bool) -> None:
        self.stream = stream
        self.ws = ws
        self.answer_pings = answer_pings
        self.bytes_received = 0  # raw TCP bytes read after the 101, frame headers included
        self.eof = False  # the server closed (or reset) the TCP connection
        self._events: deque[Event] = deque()

    @classmethod
    async def connect(
        cls,
        port: int,
        token: str,
        *,
        query: str = "",
        answer_pings: bool = True,
        receive_buffer: int | None = None,
    ) -> RawClient:
        """Open TCP to 127.0.0.1:`port` and upgrade with `?token=...{query}`.

        `receive_buffer` sets SO_RCVBUF before connecting (a small kernel buffer makes a
        client that stops reading fill the server's outbound queue quickly).
        Raises AssertionError if the server refuses the upgrade.
        """
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if receive_buffer is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            await sock.connect(("127.0.0.1", port))
            ws = WSConnection(ConnectionType.CLIENT)
            client = cls(trio.SocketStream(sock), ws, answer_pings=answer_pings)
            target = f"/?token={token}{query}"
            await client._write(ws.send(Request(host=f"127.0.0.1:{port}", target=target)))
            while not isinstance(event := await client._next_raw(), AcceptConnection):
                assert not isinstance(event, RejectConnection), f"upgrade refused: {event}"
                assert event is not None, "server closed the connection during the handshake"
        except BaseException:
            sock.close()
            raise
        return client

    # --- sending -----------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """One complete text message."""
        await self._write(self.ws.send(TextMessage(data=text)))

    async def send_json(self, obj: dict[str, Any]) -> None:
        await self.send_text(orjson.dumps(obj).decode())

    async def send_fragments(self, parts: list[str]) -> None:
        """One text message split into len(parts) frames (a first frame + continuations)."""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            await self._write(self.ws.send(TextMessage(data=part, message_finished=last)))

    async def send_binary(self, data: bytes) -> None:
        """One complete binary message."""
        await self._write(self.ws.send(BytesMessage(data=data)))

    async def send_bytes_raw(self, data: bytes) -> None:
        """Write `data` to the socket as is (no framing, no masking)."""
        await self.stream.send_all(data)

    # --- receiving ---------------------------------------------------------------------------

    async def next_event(self) -> Event | None:
        """The next wsproto event (Ping, TextMessage, CloseConnection...); None at EOF.

        A long message may come as several TextMessage events (`message_finished` on
        the last); `next_frame` puts them together.
        Pings are answered when `answer_pings` is set; a close frame from the server is
        always answered (the RFC 6455 closing handshake).
        """
        event = await self._next_raw()
        if isinstance(event, Ping):
            if self.answer_pings:
                await self._answer(event)
        elif isinstance(event, CloseConnection) and self.ws.state is ConnectionState.REMOTE_CLOSING:
            await self._answer(event)
        return event

    async def next_frame(self) -> p.ServerFrame:
        """The next protocol frame, skipping control frames; fails on a close or EOF."""
        parts: list[str] = []
        while True:
            event = await self.next_event()
            if isinstance(event, TextMessage):  # wsproto hands out partial messages too
                parts.append(event.data)
                if event.message_finished:
                    return p.decode("".join(parts), source=p.Source.SERVER)
            assert not isinstance(event, CloseConnection | None), f"closed: {event}"

    async def until_eof(self) -> CloseConnection | None:
        """Read (and discard) until the server closes TCP; the close frame seen, if any."""
        close = None
        while (event := await self.next_event()) is not None:
            if isinstance(event, CloseConnection):
                close = event
        return close

    async def close(self) -> None:
        """Drop the TCP connection (no closing handshake)."""
        await self.stream.aclose()

    # --- internals ---------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _answer(self, event: Ping | CloseConnection) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._write(self.ws.send(event.response()))

    async def _next_raw(self) -> Event | None:
        while not self._events:
            if self.eof:
                return None
            try:
                data = await self.stream.receive_some(_RECEIVE_BYTES)
            except trio.BrokenResourceError:  # reset by the server
                data = b""
            if not data:
                self.eof = True
                return None
            if self.ws.state is not ConnectionState.CLOSED:
                if self.ws.state is ConnectionState.OPEN:
                    self.bytes_received += len(data)
                self.ws.receive_data(data)
                self._events.extend(self.ws.events())
        return self._events.popleft()
