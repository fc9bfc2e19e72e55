"""The HTTP side of a connection: read one request, then route, refuse or upgrade it.

h11 parses the request (wsproto uses it too) so that one port serves the WebSocket
upgrade, `/healthz` and `/metrics`. Authentication, origin and room checks happen here,
before the 101, so that a refused client gets a real HTTP status (docs/protocol.md §2.5)
instead of a WebSocket that closes at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable
from http import HTTPStatus
from typing import Final
from urllib.parse import parse_qs, urlsplit

import attrs
import h11
import trio
from wsproto.utilities import generate_accept_token

from .. import protocol as p
from .config import ServerConfig

MAX_REQUEST_BYTES: Final = 16 * 1024  # request line + headers
_RECEIVE_BYTES: Final = 8192
_WS_VERSION: Final = b"13"  # RFC 6455 §4.1


@attrs.frozen(kw_only=True)
class Request:
    """The parts of an HTTP request the server acts on."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@attrs.frozen(kw_only=True)
class Upgrade:
    """An authorised WebSocket upgrade, ready for the 101."""

    grant: p.Grant
    rooms: tuple[str, ...]
    key: bytes


@attrs.frozen(kw_only=True)
class Refusal:
    status: HTTPStatus
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


class HttpSession:
    """One HTTP/1.1 exchange over a stream, up to the 101 or a final response."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)

    async def read_request(self) -> Request | None:
        """Read the request head. None when the peer left or sent something unparseable
        (answered with 400 where possible). A cancel point."""
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                await self._try_respond(
                    Refusal(status=HTTPStatus.BAD_REQUEST, reason=f"bad HTTP request: {exc}")
                )
                return None
            if event is h11.NEED_DATA:
                try:
                    data = await self._stream.receive_some(_RECEIVE_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
                self._h11.receive_data(bytes(data))
                continue
            if isinstance(event, h11.Request):
                return _to_request(event)
            return None

    async def respond(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Send a complete response and end the exchange (`Connection: close`)."""
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *extra,
        ]
        response = h11.Response(status_code=int(status), headers=headers, reason=status.phrase)
        out = self._h11.send(response)
        out = (out or b"") + (self._h11.send(h11.Data(data=body)) or b"")
        out += self._h11.send(h11.EndOfMessage()) or b""
        await self._stream.send_all(out)

    async def refuse(self, refusal: Refusal) -> None:
        body = f"{refusal.status.value} {refusal.status.phrase}: {refusal.reason}\n".encode()
        await self.respond(refusal.status, body, extra=refusal.headers)

    async def accept(self, key: bytes) -> bytes:
        """Send the 101 and return bytes the client sent after its request (frames)."""
        headers: list[tuple[bytes, bytes]] = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", generate_accept_token(key)),
        ]
        response = h11.InformationalResponse(status_code=101, headers=headers)
        await self._stream.send_all(self._h11.send(response) or b"")
        trailing, _closed = self._h11.trailing_data
        return bytes(trailing)

    async def _try_respond(self, refusal: Refusal) -> None:
        with contextlib.suppress(
            h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            await self.refuse(refusal)


def _to_request(event: h11.Request) -> Request:
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    split = urlsplit(event.target.decode("latin-1"))
    return Request(
        method=event.method.decode("latin-1"),
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
    )


def is_upgrade(request: Request) -> bool:
    tokens = {t.strip().lower() for t in (request.header("connection") or "").split(",")}
    return "upgrade" in tokens and (request.header("upgrade") or "").lower() == "websocket"


def authorise(
    request: Request,
    config: ServerConfig,
    refuse_reason: Callable[[str], HTTPStatus | None],
) -> Upgrade | Refusal:
    """Decide a WebSocket upgrade: 101 material or the refusal (§2.1-§2.5). Pure."""
    if request.method != "GET":
        return Refusal(status=HTTPStatus.METHOD_NOT_ALLOWED, reason="use GET to upgrade")
    if request.header("sec-websocket-version") != _WS_VERSION.decode():
        return Refusal(
            status=HTTPStatus.UPGRADE_REQUIRED,
            reason="only WebSocket version 13 is supported",
            headers=(("Sec-WebSocket-Version", "13"),),
        )
    key = (request.header("sec-websocket-key") or "").strip()
    if not _valid_key(key):
        return Refusal(
            status=HTTPStatus.BAD_REQUEST, reason="Sec-WebSocket-Key must be 16 bytes, base64"
        )
    origin = request.header("origin")
    if origin is None:
        if config.require_origin:
            return Refusal(status=HTTPStatus.FORBIDDEN, reason="an Origin header is required")
    elif config.allowed_origins and origin not in config.allowed_origins:
        return Refusal(status=HTTPStatus.FORBIDDEN, reason=f"origin {origin!r} is not allowed")
    token = _token(request)
    if token is None:
        return Refusal(
            status=HTTPStatus.UNAUTHORIZED,
            reason="missing token: pass ?token=... or an Authorization: Bearer header",
            headers=(("WWW-Authenticate", 'Bearer realm="loadtool"'),),
        )
    try:
        grant = p.verify_token(config.secret, token)
    except p.TokenError as exc:
        return Refusal(
            status=HTTPStatus.UNAUTHORIZED,
            reason=str(exc),
            headers=(("WWW-Authenticate", 'Bearer realm="loadtool", error="invalid_token"'),),
        )
    rooms = _rooms(request, grant, config.limits.max_rooms_per_connection)
    if isinstance(rooms, Refusal):
        return rooms
    status = refuse_reason(grant.user_id)
    if status is HTTPStatus.TOO_MANY_REQUESTS:
        return Refusal(
            status=status,
            reason=f"user {grant.user_id!r} already has "
            f"{config.limits.max_connections_per_user} connections",
        )
    if status is not None:
        return Refusal(status=status, reason="server is at its connection limit")
    return Upgrade(grant=grant, rooms=rooms, key=key.encode())


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def _token(request: Request) -> str | None:
    values = request.query.get("token")
    if values and values[0]:
        return values[0]
    auth = request.header("authorization") or ""
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _rooms(request: Request, grant: p.Grant, limit: int) -> tuple[str, ...] | Refusal:
    values = request.query.get("rooms")
    if values is None:
        rooms = grant.default_rooms()
    else:
        rooms = tuple(dict.fromkeys(r for v in values for r in v.split(",") if r))
        for room in rooms:
            if p.ROOM_PATTERN.fullmatch(room) is None:
                return Refusal(
                    status=HTTPStatus.BAD_REQUEST,
                    reason=f"invalid room name {room!r} in 'rooms': use 1-64 of [A-Za-z0-9_.:@#-]",
                )
            if not grant.allows(room):
                return Refusal(
                    status=HTTPStatus.FORBIDDEN, reason=f"the token does not grant room {room!r}"
                )
    if len(rooms) > limit:
        return Refusal(
            status=HTTPStatus.FORBIDDEN,
            reason=f"{len(rooms)} rooms requested; at most {limit} per connection "
            "(name fewer with ?rooms=a,b)",
        )
    return rooms
