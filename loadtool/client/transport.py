"""One client WebSocket connection over trio + wsproto, kept thin for the swarm's hot path.

Why not trio-websocket here: its reader task and channel hand-off per message cost more
than the accounting they feed (docs/performance.md). This module reads in batches: one
`receive_some` yields every complete text message it carried.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

_RECEIVE_BYTES: Final = 64 * 1024
_MAX_REJECT_BODY: Final = 4096  # bytes of a refusal body kept for the error message


class Rejected(Exception):
    """The server refused the upgrade with an HTTP status (401, 403, 429...)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body.strip()[:200]}")
        self.status = status
        self.body = body


class Closed(Exception):
    """The connection ended: `code` is the close code, 1006 when it just dropped."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where and how to dial: parsed once from a ws:// or wss:// URL."""

    url: str
    host: str
    port: int
    target: str  # path and query
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, eq=False)

    @classmethod
    def from_url(cls, url: str, *, insecure: bool = False, ca_file: Path | None = None) -> Endpoint:
        """Raises ValueError naming what is wrong with `url`."""
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"{url!r}: the URL must start with ws:// or wss://")
        if not parts.hostname:
            raise ValueError(f"{url!r}: the URL has no host")
        context: ssl.SSLContext | None = None
        if parts.scheme == "wss":
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            if insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(
            url=url,
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "wss" else 80),
            target=target,
            ssl_context=context,
        )

    def with_query(self, **params: str) -> str:
        """The target with extra query parameters (already URL-safe values)."""
        extra = "&".join(f"{k}={v}" for k, v in params.items())
        if not extra:
            return self.target
        return f"{self.target}{'&' if '?' in self.target else '?'}{extra}"


class WsClient:
    """A connected client WebSocket. Sends are serialised; one task reads."""

    def __init__(self, stream: trio.abc.Stream, ws: WSConnection) -> None:
        self._stream = stream
        self._ws = ws
        self._send_lock = trio.Lock()
        self._parts: list[str] = []

    @classmethod
    async def connect(
        cls,
        endpoint: Endpoint,
        *,
        target: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> WsClient:
        """Dial and upgrade. A cancel point; bound it with a cancel scope.

        Raises:
            Rejected: the server answered the upgrade with an HTTP error status.
            Closed: the connection dropped during the handshake.
            OSError: the TCP (or TLS) connection could not be made.
        """
        stream: trio.abc.Stream
        if endpoint.ssl_context is not None:
            stream = await trio.open_ssl_over_tcp_stream(
                endpoint.host, endpoint.port, ssl_context=endpoint.ssl_context
            )
        else:
            stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
        try:
            ws = WSConnection(ConnectionType.CLIENT)
            request = Request(
                host=f"{endpoint.host}:{endpoint.port}",
                target=target or endpoint.target,
                extra_headers=[(k.encode(), v.encode()) for k, v in headers],
            )
            await stream.send_all(ws.send(request))
            client = cls(stream, ws)
            await client._await_accept()
            return client
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise

    async def _await_accept(self) -> None:
        status = 0
        body = bytearray()
        while True:
            try:
                data = await self._stream.receive_some(_RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise Closed(1006, f"during handshake: {exc}") from None
            if not data:
                if status:
                    raise Rejected(status, body.decode("utf-8", "replace"))
                raise Closed(1006, "connection closed during the handshake")
            self._ws.receive_data(bytes(data))
            for event in self._ws.events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, "")
                elif isinstance(event, RejectData):
                    body += event.data[:_MAX_REJECT_BODY]
                    if event.body_finished:
                        raise Rejected(status, body.decode("utf-8", "replace"))

    async def send_text(self, text: str) -> None:
        """Send one text message. Raises Closed if the connection is gone."""
        await self._send(self._ws.send(TextMessage(data=text)))

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise Closed(1006, str(exc)) from None

    async def receive_batch(self) -> list[str]:
        """The complete text messages in the next chunk from the network (maybe none).

        Answers pings itself. Binary messages are ignored (protocol v1 has none).

        Raises:
            Closed: the server closed (with its code) or the connection dropped (1006).
        """
        try:
            data = await self._stream.receive_some(_RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise Closed(1006, str(exc)) from None
        if not data:
            raise Closed(1006, "connection dropped")
        self._ws.receive_data(bytes(data))
        out: list[str] = []
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                if event.message_finished and not self._parts:
                    out.append(event.data)
                else:
                    self._parts.append(event.data)
                    if event.message_finished:
                        out.append("".join(self._parts))
                        self._parts.clear()
            elif isinstance(event, Ping):
                await self._send(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    with contextlib.suppress(Closed):
                        await self._send(self._ws.send(event.response()))
                raise Closed(event.code, event.reason or "")
            elif isinstance(event, BytesMessage):
                continue
        return out

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (if still open) and drop the connection; never raises."""
        if self._ws.state is ConnectionState.OPEN:
            with contextlib.suppress(Closed):
                await self._send(self._ws.send(CloseConnection(code=code, reason=reason)))
        await self.abort()

    async def abort(self) -> None:
        """Drop the TCP connection without a close handshake (a fault, or clean-up)."""
        await trio.aclose_forcefully(self._stream)
