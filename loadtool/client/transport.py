"""One client WebSocket connection over trio, kept thin for the swarm's hot path.

Why not trio-websocket here: its reader task and channel hand-off per message, and
wsproto's general parser, cost more than the accounting they feed. The upgrade is plain
HTTP/1.1 through h11; frames go through `wsframes` (tested against wsproto). One
`receive_some` yields every complete text message it carried.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import attrs
import h11
import trio
from wsproto.utilities import generate_accept_token

from . import wsframes as wsf
from .wsframes import FrameParser

_RECEIVE_BYTES: Final = 64 * 1024
CLOSE_WAIT_S: Final = 1.0  # seconds to wait for the server's Close after ours
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
    # Local address to dial from (e.g. 127.0.0.2): many source addresses keep 100,000
    # loopback connections clear of ephemeral-port exhaustion. None: the kernel's choice.
    source: str | None = None

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
    """A connected client WebSocket. Sends are serialised; one task (or a demux) reads."""

    __slots__ = (
        "_backlog",
        "_close_seen",
        "_closed",
        "_closing",
        "_controls",
        "_early",
        "_fd",
        "_parser",
        "_send_lock",
        "_stream",
        "_trouble",
    )

    def __init__(self, stream: trio.abc.Stream, parser: FrameParser) -> None:
        self._stream = stream
        self._parser = parser
        self._send_lock = trio.Lock()
        self._early: list[str] = []  # messages that arrived with the 101
        self._closing = False  # we sent a close frame
        self._closed: Closed | None = None  # the server's close, raised after its messages
        # For a demultiplexed reader (`read_nowait`): what its task must still deal with.
        self._controls: list[wsf.Control] = []
        self._trouble: Closed | wsf.FrameError | None = None
        self._close_seen = False
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self._backlog = b""  # the part of a `send_text_nowait` the socket did not take

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
            Closed: the connection dropped (or the server misbehaved) during the handshake.
            OSError: the TCP (or TLS) connection could not be made.
        """
        stream = await open_stream(endpoint)
        try:
            client = cls(stream, FrameParser())
            await client._handshake(endpoint, target or endpoint.target, headers)
            return client
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            # TLS failures (an untrusted certificate...) surface here, on the first send.
            await trio.aclose_forcefully(stream)
            raise Closed(1006, f"connection failed: {exc.__cause__ or exc}") from None
        except wsf.FrameError as exc:
            await trio.aclose_forcefully(stream)
            raise Closed(exc.code, f"bad frame with the upgrade: {exc}") from None
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise

    async def _handshake(
        self, endpoint: Endpoint, target: str, headers: Sequence[tuple[str, str]]
    ) -> None:
        trailing = await upgrade(self._stream, endpoint, target, headers)
        if trailing:
            texts, controls = self._parser.feed(trailing)
            self._early.extend(texts)
            if controls:
                await self._answer(controls)

    async def send_text(self, text: str) -> None:
        """Send one text message. Raises Closed if the connection is gone."""
        await self._send(wsf.text_frame(text))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are: already framed (and masked) by the caller. For tests and
        the conformance gate, which must be able to send what no client should."""
        await self._send(data)

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:
            if self._backlog:  # the rest of a frame `send_text_nowait` began goes first
                data, self._backlog = self._backlog + data, b""
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise Closed(1006, str(exc)) from None

    # --- the non-blocking write path (client/pacer.py) -----------------------------------

    def send_text_nowait(self, text: str) -> bool:
        """Send one text message if that needs no waiting; False: nothing was sent.

        False when a send is in progress, bytes are still owed (`backlogged`), the
        socket buffer is full, or the connection is TLS (records go through the SSL
        object): the caller sends later from a task. When the socket takes only part of
        the frame, the rest is kept, True is returned and `backlogged` is True: the
        caller must then `await flush()` (any later send also writes it first).

        Raises:
            Closed: the connection is gone (1006).
        """
        if self._fd < 0 or self._backlog or self._send_lock.locked():
            return False
        stream = self._stream
        assert isinstance(stream, trio.SocketStream)  # _fd >= 0 only for those
        if stream.socket.fileno() < 0:  # closed: its number may belong to another socket
            raise Closed(1006, "the connection is closed")
        data = wsf.text_frame(text)
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise Closed(1006, str(exc)) from None
        if sent < len(data):
            self._backlog = data[sent:]
        return True

    @property
    def backlogged(self) -> bool:
        """Part of a frame is waiting for `flush()`."""
        return bool(self._backlog)

    async def flush(self) -> None:
        """Write what `send_text_nowait` left over. Raises Closed if the connection is gone."""
        if self._backlog:
            await self._send(b"")

    async def receive_batch(self) -> list[str]:
        """The complete text messages in the next chunk from the network (maybe none).

        Answers pings itself; binary messages are ignored (protocol v1 has none).

        Raises:
            Closed: the server closed (with its code), broke the protocol, or the
                connection dropped (1006).
        """
        if self._early:
            early, self._early = self._early, []
            return early
        if self._closed is not None:
            raise self._closed
        try:
            data = await self._stream.receive_some(_RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise Closed(1006, str(exc)) from None
        if not data:
            raise Closed(1006, "connection dropped")
        try:
            texts, controls = self._parser.feed(bytes(data))
        except wsf.FrameError as exc:
            await self.close(exc.code, str(exc)[:100])
            raise Closed(exc.code, str(exc)) from None
        if controls:
            await self._answer(controls)
        if not texts and self._closed is not None:
            raise self._closed
        return texts

    # --- the demultiplexed read path (netio/demux.py) ------------------------------------

    def fileno(self) -> int:
        """The socket to register with a `Demux`, or -1 (TLS: bytes go through SSL)."""
        return self._fd

    def take_early(self) -> list[str]:
        """Messages that arrived with the 101, before any read."""
        early, self._early = self._early, []
        return early

    def read_nowait(self) -> list[str]:
        """One read without waiting, for a demux: the complete text messages it carried.

        Same parsing as `receive_batch`. Control frames and the end of the connection are
        kept for `attend()`, which the connection's own task awaits when
        `needs_attention`; after the end (`done_reading`) nothing more is read.
        """
        if self._trouble is not None or self._close_seen or self._closed is not None:
            return []
        try:
            data = os.read(self._fd, _RECEIVE_BYTES)
        except BlockingIOError:
            return []
        except OSError as exc:
            self._trouble = Closed(1006, str(exc))
            return []
        if not data:
            self._trouble = Closed(1006, "connection dropped")
            return []
        try:
            texts, controls = self._parser.feed(data)
        except wsf.FrameError as exc:
            self._trouble = exc
            return []
        if controls:
            self._controls += controls
            self._close_seen = any(c.opcode == wsf.OP_CLOSE for c in controls)
        return texts

    @property
    def needs_attention(self) -> bool:
        return bool(self._controls) or self._trouble is not None

    @property
    def done_reading(self) -> bool:
        return self._trouble is not None or self._close_seen

    async def attend(self) -> None:
        """Answer what `read_nowait` kept (pongs, the close reply), in arrival order.

        Raises:
            Closed: the server closed, broke the protocol, or the connection dropped.
        """
        controls, self._controls = self._controls, []
        if controls:
            await self._answer(controls)
        trouble = self._trouble
        if self._closed is not None:
            raise self._closed
        if isinstance(trouble, wsf.FrameError):
            await self.close(trouble.code, str(trouble)[:100])
            raise Closed(trouble.code, str(trouble))
        if trouble is not None:
            raise trouble

    async def _answer(self, controls: list[wsf.Control]) -> None:
        """Answer pings; on a close, reply and remember it: the messages that came before
        it in the same chunk are returned first, the close is raised on the next read."""
        for control in controls:
            if control.opcode == wsf.OP_PING and self._closed is None:
                with contextlib.suppress(Closed):  # a gone peer shows up on the next read
                    await self._send(wsf.client_frame(wsf.OP_PONG, control.payload))
            elif control.opcode == wsf.OP_CLOSE and self._closed is None:
                if not self._closing:
                    self._closing = True
                    with contextlib.suppress(Closed):
                        reply = control.code if control.code != wsf.NO_STATUS else 1000
                        await self._send(wsf.close_frame(reply))
                self._closed = Closed(control.code, control.reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake: send Close (once), wait a bounded time for the server's
        Close (or EOF), then drop the connection. Never raises; a cancel point."""
        if not self._closing:
            self._closing = True
            with contextlib.suppress(Closed):
                await self._send(wsf.close_frame(code, reason))
            with trio.move_on_after(CLOSE_WAIT_S):
                while self._closed is None:
                    try:
                        data = await self._stream.receive_some(_RECEIVE_BYTES)
                        if not data:
                            break
                        _, controls = self._parser.feed(bytes(data))
                    except (trio.BrokenResourceError, trio.ClosedResourceError, wsf.FrameError):
                        break
                    if any(c.opcode == wsf.OP_CLOSE for c in controls):
                        break
        await self.abort()

    async def abort(self) -> None:
        """Drop the TCP connection without a close handshake (a fault, or clean-up)."""
        await trio.aclose_forcefully(self._stream)


async def open_stream(endpoint: Endpoint) -> trio.abc.Stream:
    """The TCP (or TLS) stream to `endpoint`. A cancel point. Raises OSError."""
    if endpoint.ssl_context is not None:
        return await trio.open_ssl_over_tcp_stream(
            endpoint.host, endpoint.port, ssl_context=endpoint.ssl_context
        )
    return await trio.open_tcp_stream(endpoint.host, endpoint.port, local_address=endpoint.source)


async def upgrade(
    stream: trio.abc.Stream,
    endpoint: Endpoint,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The client's opening handshake (RFC 6455 §4.1) over `stream`, through h11.
    Returns the bytes that came after the 101 (the server's first frames). A cancel point.

    Raises:
        Rejected: an HTTP status other than 101.
        Closed: the connection dropped, or the answer is not a valid upgrade.
        trio.BrokenResourceError: the stream broke while sending (TLS failures show here).
    """
    key = base64.b64encode(os.urandom(16))
    http = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="GET",
        target=target,
        headers=[
            ("Host", f"{_host(endpoint.host)}:{endpoint.port}"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key.decode()),
            ("Sec-WebSocket-Version", "13"),
            *headers,
        ],
    )
    await stream.send_all(http.send(request) + (http.send(h11.EndOfMessage()) or b""))
    status = 0
    body = bytearray()
    while True:
        try:
            event = http.next_event()
        except h11.RemoteProtocolError as exc:
            raise Closed(1006, f"bad HTTP answer to the upgrade: {exc}") from None
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive_some(_RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise Closed(1006, f"during the handshake: {exc}") from None
            if not data and status:
                raise Rejected(status, body.decode("utf-8", "replace"))
            http.receive_data(bytes(data))
            continue
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            accept = dict(event.headers).get(b"sec-websocket-accept", b"")
            if accept != generate_accept_token(key):
                raise Closed(1006, "the server's Sec-WebSocket-Accept does not match")
            trailing, _ = http.trailing_data
            return bytes(trailing)
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data[: max(0, _MAX_REJECT_BODY - len(body))]
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            raise Rejected(status or 1006, body.decode("utf-8", "replace"))
        elif event is h11.PAUSED:
            raise Closed(1006, "the upgrade did not complete")


def _host(host: str) -> str:
    """A host for the Host header: IPv6 literals in brackets (RFC 7230 §5.4)."""
    return f"[{host}]" if ":" in host else host
