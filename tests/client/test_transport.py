"""The swarm's client connection (loadtool.client.transport) over real sockets.

Against the reference server on 127.0.0.1: the upgrade and the first frames (welcome,
joined: docs/protocol.md §2.6), a send/receive round trip, refusals with their HTTP status
and body (§2.2, §2.3, §2.5), the 1001 close on shutdown (§9), WebSocket pings answered so
that the idle timeout never fires (§6), and wss:// with a trustme CA (§2). A tiny scripted
server (wsproto by hand) covers what the reference server cannot be made to do on
purpose: frames in the same TCP segment as the 101, a text message and a close frame in
one segment, and the request's Host header. `Endpoint.from_url` is checked for bad URLs.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import pytest
import trio
import trustme
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from loadtool import protocol as p
from loadtool.client.transport import Closed, Endpoint, Rejected, WsClient
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits
from tests.conftest import Client, Clients, token

CEILING_S: Final = 15  # seconds any test here may take
HEARTBEAT_S: Final = 0.1
IDLE_S: Final = 0.4

# --- helpers -----------------------------------------------------------------------------------


@asynccontextmanager
async def dial(
    url: str, *, headers: tuple[tuple[str, str], ...] = (), **endpoint: Any
) -> AsyncIterator[WsClient]:
    """A connected WsClient of `url`, dropped on exit whatever happened."""
    conn = await WsClient.connect(Endpoint.from_url(url, **endpoint), headers=headers)
    try:
        yield conn
    finally:
        await conn.abort()


def url_for(srv: RunningServer, user: str, rooms: list[str] | None = None) -> str:
    return f"{srv.url}?token={token(user, rooms)}"


async def read_frames(conn: WsClient, n: int) -> list[p.ServerFrame]:
    """The next `n` server frames (however the batches split them)."""
    frames: list[p.ServerFrame] = []
    while len(frames) < n:
        frames.extend(p.decode(t, source=p.Source.SERVER) for t in await conn.receive_batch())
    assert len(frames) == n, frames
    return frames


async def read_until_closed(conn: WsClient) -> tuple[list[str], Closed]:
    """Every text message until the connection ends, and how it ended."""
    texts: list[str] = []
    while True:
        try:
            texts.extend(await conn.receive_batch())
        except Closed as exc:
            return texts, exc


def welcome_and_joined(frames: list[p.ServerFrame], user: str, room: str = "general") -> None:
    welcome, joined = frames
    assert isinstance(welcome, p.Welcome), welcome
    assert (welcome.user_id, welcome.rooms) == (user, (room,))
    assert joined == p.Joined(room=room, seq=0)


# --- a scripted server -----------------------------------------------------------------------


@attrs.define
class Scripted:
    """One connection of the scripted server: its upgrade request and what the client
    sent after it (wsproto events, through `events`)."""

    stream: trio.SocketStream
    ws: WSConnection
    request: Request
    events: trio.MemoryReceiveChannel[Event]

    async def send(self, *events: Event) -> None:
        """Send `events` in one `send_all` (one TCP segment on loopback)."""
        await self.stream.send_all(b"".join(self.ws.send(e) for e in events))

    async def next_event(self) -> Event:
        return await self.events.receive()


Script = Callable[[Scripted], Awaitable[None]]


async def scripted_server(nursery: trio.Nursery, script: Script, host: str = "127.0.0.1") -> int:
    """Serve `script` for each connection on `host`, port 0; returns the port. The script
    runs after the upgrade request has been read; it sends the 101 itself."""

    async def handle(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        send, receive = trio.open_memory_channel[Event](100)
        try:
            async with stream, send:
                request: Request | None = None
                while request is None:
                    data = await stream.receive_some()
                    if not data:
                        return
                    ws.receive_data(data)
                    request = next((e for e in ws.events() if isinstance(e, Request)), None)
                conn = Scripted(stream=stream, ws=ws, request=request, events=receive)
                async with trio.open_nursery() as inner:
                    inner.start_soon(_pump, stream, ws, send)
                    await script(conn)
                    inner.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host=host))
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def _pump(
    stream: trio.SocketStream, ws: WSConnection, out: trio.MemorySendChannel[Event]
) -> None:
    """Parse what the client sends after the upgrade into events for the script."""
    try:
        while data := await stream.receive_some():
            ws.receive_data(data)
            for event in ws.events():
                await out.send(event)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def frame_text(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


WELCOME: Final = frame_text({"type": "welcome", "userId": "alice", "rooms": ["general"]})
JOINED: Final = frame_text({"type": "joined", "room": "general", "seq": 0})

# --- against the reference server ------------------------------------------------------------


async def test_connect_reads_welcome_then_joined(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        async with dial(url_for(server, "alice")) as conn:
            welcome_and_joined(await read_frames(conn, 2), "alice")


async def test_send_text_round_trip(server: RunningServer, clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        async with dial(url_for(server, "alice")) as conn:
            await read_frames(conn, 2)
            await conn.send_text(frame_text({"type": "ping", "ts": "t-1"}))
            assert await read_frames(conn, 1) == [p.Pong(ts="t-1")]
            bob = await clients.connect(server, "bob")
            assert await read_frames(conn, 1) == [
                p.Presence(room="general", user_id="bob", status="joined")
            ]
            text = "héllo ✓ " + "x" * 3000  # a 16-bit extended length both ways
            await conn.send_text(
                frame_text({"type": "message", "id": "m-1", "room": "general", "text": text})
            )
            ack, echo = await read_frames(conn, 2)
            assert ack == p.Ack(id="m-1", room="general", seq=1)
            assert isinstance(echo, p.Message)
            assert (echo.id, echo.sender_id, echo.text, echo.seq) == ("m-1", "alice", text, 1)
            assert await bob.recv() == echo


async def test_a_big_message_comes_back_whole(clients: Clients) -> None:
    srv = await clients.start(limits=Limits(max_message_bytes=256 * 1024, max_text_chars=70000))
    with trio.fail_after(CEILING_S):
        async with dial(url_for(srv, "alice")) as conn:
            await read_frames(conn, 2)
            text = "ü" * 35000  # 70000 bytes of UTF-8: 64-bit lengths both ways
            await conn.send_text(
                frame_text({"type": "message", "id": "big", "room": "general", "text": text})
            )
            ack, echo = await read_frames(conn, 2)
            assert ack == p.Ack(id="big", room="general", seq=1)
            assert isinstance(echo, p.Message)
            assert echo.text == text


async def test_a_bad_token_is_rejected_401_with_the_body(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        with pytest.raises(Rejected) as rejected:
            await WsClient.connect(Endpoint.from_url(f"{server.url}?token=not-a-jwt"))
    assert rejected.value.status == 401
    assert rejected.value.body.startswith("401 Unauthorized: ")
    assert rejected.value.body.endswith("\n")
    assert str(rejected.value).startswith("HTTP 401: 401 Unauthorized: ")
    assert server.metrics.refused == {401: 1}


async def test_a_missing_token_is_rejected_401_saying_so(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        with pytest.raises(Rejected) as rejected:
            await WsClient.connect(Endpoint.from_url(server.url))
    assert rejected.value.status == 401
    assert rejected.value.body == (
        "401 Unauthorized: missing token: pass ?token=... or an Authorization: Bearer header\n"
    )


async def test_a_bad_origin_is_rejected_403(clients: Clients) -> None:
    srv = await clients.start(allowed_origins=("https://chat.example",))
    with trio.fail_after(CEILING_S):
        with pytest.raises(Rejected) as rejected:
            await WsClient.connect(
                Endpoint.from_url(url_for(srv, "alice")),
                headers=[("Origin", "https://evil.example")],
            )
        assert rejected.value.status == 403
        assert rejected.value.body == (
            "403 Forbidden: origin 'https://evil.example' is not allowed\n"
        )
        # The allowed origin (a header given to connect) gets in.
        async with dial(url_for(srv, "alice"), headers=(("Origin", "https://chat.example"),)) as c:
            welcome_and_joined(await read_frames(c, 2), "alice")
    assert srv.metrics.refused == {403: 1}


async def test_the_token_can_come_as_an_explicit_target(server: RunningServer) -> None:
    endpoint = Endpoint.from_url(server.url)
    with trio.fail_after(CEILING_S):
        conn = await WsClient.connect(endpoint, target=endpoint.with_query(token=token("carol")))
        try:
            welcome_and_joined(await read_frames(conn, 2), "carol")
        finally:
            await conn.abort()


async def test_server_shutdown_closes_1001_and_the_client_answers(clients: Clients) -> None:
    srv = await clients.start(close_timeout_s=30)
    with trio.fail_after(CEILING_S):
        async with dial(url_for(srv, "alice")) as conn:
            await read_frames(conn, 2)
            srv.shutdown()
            texts, closed = await read_until_closed(conn)
            assert texts == []
            assert (closed.code, closed.reason) == (1001, "server shutting down")
            # The server waits up to close_timeout (30 s) for the client's close frame;
            # it stops long before, so the client answered the close.
            with trio.fail_after(10):
                await srv.stopped.wait()
    assert srv.metrics.closes == {1001: 1}


async def test_answering_server_pings_keeps_the_connection_past_idle_timeout(
    clients: Clients,
) -> None:
    srv = await clients.start(heartbeat_interval_s=HEARTBEAT_S, idle_timeout_s=IDLE_S)
    with trio.fail_after(CEILING_S):
        async with dial(url_for(srv, "alice")) as conn:
            await read_frames(conn, 2)
            started = trio.current_time()
            batches = 0
            # Only pings arrive (answered inside receive_batch); nothing else is sent.
            while trio.current_time() - started < 3 * IDLE_S:
                assert await conn.receive_batch() == []
                batches += 1
            assert batches >= 3  # ~12 pings in 1.2 s, batched as they arrive
            await conn.send_text(frame_text({"type": "ping", "ts": "still here"}))
            assert await read_frames(conn, 1) == [p.Pong(ts="still here")]
    assert 4000 not in srv.metrics.closes


async def _silent_until_dropped(watcher: Client) -> None:
    """Read nothing on the "silent" connection until the server has dropped it: the
    watcher, in the same room, sees its presence go from joined to left."""
    assert await watcher.recv() == p.Presence(room="general", user_id="silent", status="joined")
    assert await watcher.recv() == p.Presence(room="general", user_id="silent", status="left")


async def test_a_client_that_does_not_read_is_closed_4000(clients: Clients) -> None:
    """The control for the test above: the same server closes a client that does not
    answer its pings."""
    srv = await clients.start(
        heartbeat_interval_s=HEARTBEAT_S, idle_timeout_s=IDLE_S, close_timeout_s=0.3
    )
    watcher = await clients.connect(srv, "watcher")  # trio-websocket answers pings itself
    with trio.fail_after(CEILING_S):
        async with dial(url_for(srv, "silent")) as conn:
            await _silent_until_dropped(watcher)
            _, closed = await read_until_closed(conn)  # its code: see the test below
    assert closed.code in (4000, 1006)
    assert srv.metrics.closes[4000] == 1


async def test_the_close_code_survives_failed_pong_answers(clients: Clients) -> None:
    srv = await clients.start(
        heartbeat_interval_s=HEARTBEAT_S, idle_timeout_s=IDLE_S, close_timeout_s=0.3
    )
    watcher = await clients.connect(srv, "watcher")  # trio-websocket answers pings itself
    with trio.fail_after(CEILING_S):
        async with dial(url_for(srv, "silent")) as conn:
            await _silent_until_dropped(watcher)
            # Buffered now: welcome, joined, ~3 pings, the close 4000, then the FIN.
            _, closed = await read_until_closed(conn)
    assert closed.code == 4000


# --- TLS -----------------------------------------------------------------------------------------


@attrs.frozen
class Tls:
    server: RunningServer
    ca_file: Path
    other_ca_file: Path  # a CA that did not sign the server's certificate


@pytest.fixture
async def tls(clients: Clients, tmp_path: Path) -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    srv = await clients.start(certfile=tmp_path / "server.pem", keyfile=tmp_path / "server.key")
    return Tls(server=srv, ca_file=tmp_path / "ca.pem", other_ca_file=tmp_path / "other.pem")


async def test_wss_with_the_test_ca(tls: Tls) -> None:
    assert tls.server.url.startswith("wss://127.0.0.1:")
    with trio.fail_after(CEILING_S):
        async with dial(url_for(tls.server, "alice"), ca_file=tls.ca_file) as conn:
            welcome_and_joined(await read_frames(conn, 2), "alice")
            await conn.send_text(frame_text({"type": "ping", "ts": "tls"}))
            assert await read_frames(conn, 1) == [p.Pong(ts="tls")]


async def test_wss_insecure_accepts_an_untrusted_certificate(tls: Tls) -> None:
    with trio.fail_after(CEILING_S):
        async with dial(url_for(tls.server, "alice"), insecure=True) as conn:
            welcome_and_joined(await read_frames(conn, 2), "alice")


@pytest.mark.parametrize("trust", ["system CAs", "another CA"])
async def test_wss_with_an_untrusted_certificate_fails_as_documented(tls: Tls, trust: str) -> None:
    ca_file = tls.other_ca_file if trust == "another CA" else None
    with trio.fail_after(CEILING_S):
        with pytest.raises((Closed, OSError)):
            await WsClient.connect(Endpoint.from_url(url_for(tls.server, "alice"), ca_file=ca_file))


# --- a scripted server -------------------------------------------------------------------------


async def test_frames_in_the_same_segment_as_the_101_are_returned_first(
    nursery: trio.Nursery,
) -> None:
    got: list[Event] = []
    done = trio.Event()

    async def script(conn: Scripted) -> None:
        # 101, two text frames and a ping: one send_all, one segment.
        await conn.send(
            AcceptConnection(), TextMessage(WELCOME), TextMessage(JOINED), Ping(b"early")
        )
        got.append(await conn.next_event())
        got.append(await conn.next_event())
        done.set()

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        async with dial(f"ws://127.0.0.1:{port}/?token=t") as conn:
            assert await conn.receive_batch() == [WELCOME, JOINED]
            await conn.send_text("after")
            await done.wait()
    # The ping that came with the 101 was answered before anything the client sent.
    assert got[0] == Pong(b"early")
    assert isinstance(got[1], TextMessage)
    assert got[1].data == "after"


async def test_a_message_and_a_close_in_one_segment_are_both_seen(nursery: trio.Nursery) -> None:
    async def script(conn: Scripted) -> None:
        await conn.send(AcceptConnection(), TextMessage(WELCOME))
        event = await conn.next_event()
        assert isinstance(event, TextMessage)
        assert event.data == "go"
        await conn.send(TextMessage("last words"), CloseConnection(1001, "bye"))
        await conn.next_event()  # the client's close

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        async with dial(f"ws://127.0.0.1:{port}/?token=t") as conn:
            assert await conn.receive_batch() == [WELCOME]
            await conn.send_text("go")
            texts, closed = await read_until_closed(conn)
    assert (closed.code, closed.reason) == (1001, "bye")
    assert texts == ["last words"]


async def test_the_host_header_of_an_ipv6_endpoint(nursery: trio.Nursery) -> None:
    hosts: list[str] = []

    async def script(conn: Scripted) -> None:
        hosts.append(conn.request.host)
        await conn.send(AcceptConnection(), TextMessage(WELCOME))
        await conn.next_event()

    port = await scripted_server(nursery, script, host="::1")
    with trio.fail_after(CEILING_S):
        async with dial(f"ws://[::1]:{port}/chat?token=t") as conn:
            assert await conn.receive_batch() == [WELCOME]
    assert hosts == [f"[::1]:{port}"]


async def test_the_request_line_and_host_header(nursery: trio.Nursery) -> None:
    seen: list[Request] = []

    async def script(conn: Scripted) -> None:
        seen.append(conn.request)
        await conn.send(AcceptConnection(), TextMessage(WELCOME))
        await conn.next_event()

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        async with dial(f"ws://127.0.0.1:{port}/chat?token=abc&rooms=a") as conn:
            assert await conn.receive_batch() == [WELCOME]
    (request,) = seen
    assert (request.host, request.target) == (f"127.0.0.1:{port}", "/chat?token=abc&rooms=a")
    assert request.extensions == []
    assert request.subprotocols == []


async def test_a_wrong_accept_token_fails_the_handshake(nursery: trio.Nursery) -> None:
    async def script(conn: Scripted) -> None:
        await conn.stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"
        )
        await conn.next_event()

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        with pytest.raises(Closed) as closed:
            await WsClient.connect(Endpoint.from_url(f"ws://127.0.0.1:{port}/"))
    assert closed.value.code == 1006
    assert "Sec-WebSocket-Accept" in closed.value.reason


async def test_a_server_that_hangs_up_during_the_handshake(nursery: trio.Nursery) -> None:
    async def script(conn: Scripted) -> None:
        await conn.stream.aclose()

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        with pytest.raises(Closed) as closed:
            await WsClient.connect(Endpoint.from_url(f"ws://127.0.0.1:{port}/"))
    assert closed.value.code == 1006


async def test_a_protocol_violation_closes_with_its_code(nursery: trio.Nursery) -> None:
    got: list[Event] = []
    done = trio.Event()

    async def script(conn: Scripted) -> None:
        await conn.send(AcceptConnection(), TextMessage(WELCOME))
        assert await conn.next_event() == TextMessage("go")
        await conn.stream.send_all(b"\x81\x02\xff\xfe")  # text frame, invalid UTF-8
        got.append(await conn.next_event())
        done.set()

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        async with dial(f"ws://127.0.0.1:{port}/") as conn:
            assert await conn.receive_batch() == [WELCOME]
            await conn.send_text("go")
            texts, closed = await read_until_closed(conn)
        assert texts == []
        assert closed.code == 1007
        await done.wait()
    (event,) = got
    assert isinstance(event, CloseConnection)
    assert event.code == 1007


async def test_a_protocol_violation_with_the_101_fails_connect_with_closed(
    nursery: trio.Nursery,
) -> None:
    async def script(conn: Scripted) -> None:
        await conn.stream.send_all(
            conn.ws.send(AcceptConnection()) + b"\x81\x02\xff\xfe"  # one segment
        )
        await conn.next_event()

    port = await scripted_server(nursery, script)
    with trio.fail_after(CEILING_S):
        with pytest.raises(Closed) as closed:
            await WsClient.connect(Endpoint.from_url(f"ws://127.0.0.1:{port}/"))
    assert closed.value.code == 1007


async def test_a_refused_connection_is_an_oserror() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens on `port` now
    with trio.fail_after(CEILING_S):
        with pytest.raises(OSError, match="connect"):
            await WsClient.connect(Endpoint.from_url(f"ws://127.0.0.1:{port}/"))


# --- Endpoint.from_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/", "must start with ws:// or wss://"),
        ("https://127.0.0.1/", "must start with ws:// or wss://"),
        ("127.0.0.1:8080", "must start with ws:// or wss://"),
        ("", "must start with ws:// or wss://"),
        ("ws://", "has no host"),
        ("ws:///chat", "has no host"),
        ("wss://:443/", "has no host"),
    ],
)
def test_from_url_rejects_bad_urls_naming_the_url(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as failed:
        Endpoint.from_url(url)
    assert repr(url) in str(failed.value)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:99999/", "ws://127.0.0.1:port/"])
def test_from_url_rejects_a_bad_port(url: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)port"):
        Endpoint.from_url(url)


@pytest.mark.parametrize(
    ("url", "host", "port", "target", "tls"),
    [
        ("ws://127.0.0.1:8080/", "127.0.0.1", 8080, "/", False),
        ("ws://example.com", "example.com", 80, "/", False),
        ("wss://example.com", "example.com", 443, "/", True),
        ("ws://example.com/chat?x=1", "example.com", 80, "/chat?x=1", False),
        ("WS://Example.COM:81/a", "example.com", 81, "/a", False),
        ("ws://[::1]:9000/chat", "::1", 9000, "/chat", False),
    ],
)
def test_from_url_parses(url: str, host: str, port: int, target: str, tls: bool) -> None:
    endpoint = Endpoint.from_url(url)
    assert (endpoint.url, endpoint.host, endpoint.port, endpoint.target) == (
        url,
        host,
        port,
        target,
    )
    assert (endpoint.ssl_context is not None) is tls


def test_from_url_tls_options() -> None:
    strict = Endpoint.from_url("wss://example.com/")
    assert strict.ssl_context is not None
    assert strict.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert strict.ssl_context.check_hostname
    loose = Endpoint.from_url("wss://example.com/", insecure=True)
    assert loose.ssl_context is not None
    assert loose.ssl_context.verify_mode is ssl.CERT_NONE
    assert not loose.ssl_context.check_hostname


def test_with_query() -> None:
    assert Endpoint.from_url("ws://h/").with_query(token="t") == "/?token=t"
    assert Endpoint.from_url("ws://h/chat?a=1").with_query(token="t") == "/chat?a=1&token=t"
    assert Endpoint.from_url("ws://h/chat").with_query() == "/chat"
