"""Shared fixtures: real reference servers on 127.0.0.1 (port 0) and the clients that talk
to them, all closed at teardown.

Fixtures (function scope, pytest-trio):

- `clients` -> `Clients`: the one place a test opens servers and clients.
  `await clients.start(**overrides)` starts a server with `server_config(**overrides)`;
  `await clients.connect(srv, "alice", ["general"], query="&rooms=general", welcome=True)`
  opens a trio-websocket `Client` (and by default reads the welcome and the joined frames);
  `await clients.open(url, "alice", headers=..., ssl_context=...)` opens one on any URL and
  reads nothing; `await clients.raw(srv, "alice", ...)` opens a `RawClient` (wsproto by
  hand, see tests/server/rawws.py).
- `server` -> `RunningServer` with the default config, started through `clients`.
- `connect_to("alice", rooms=None, *, query="", welcome=True)` -> `Client` of `server`.

Module helpers: `SECRET`, `server_config(**overrides)`, `token(user, rooms=None)`, `Client`.

Why the pool. trio-websocket 0.12 leaves a client's TCP stream open (a ResourceWarning:
an error under this suite's filterwarnings=error) when its reader's nursery is cancelled,
when the server refuses the upgrade and when the server closes first. So `Clients` opens
the TCP (or TLS) stream itself and gives it to trio-websocket, runs every reader in the
fixture's own nursery (which outlives the test), and at teardown closes each client, then
force-closes its stream, then stops its servers and waits until they have stopped.
"""

from __future__ import annotations

import functools
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import attrs
import orjson
import pytest
import trio
from trio_websocket import ConnectionRejected, WebSocketConnection, wrap_client_stream

from loadtool import protocol as p
from loadtool.server.app import RunningServer, serve
from loadtool.server.config import Limits, ServerConfig
from tests.server.rawws import RawClient

SECRET = "test-secret-0123456789abcdef0123"
CLOSE_S: Final = 2  # teardown: a client's closing handshake, then its socket is dropped
STOP_S: Final = 15  # teardown: for the servers to stop once their clients are gone


@attrs.define
class Client:
    """A test-side chat client over trio-websocket (the plain, stock path)."""

    ws: WebSocketConnection
    user: str

    async def send(self, frame: p.ClientFrame | dict[str, Any] | str) -> None:
        if isinstance(frame, str):
            await self.ws.send_message(frame)
        elif isinstance(frame, dict):
            await self.ws.send_message(orjson.dumps(frame).decode())
        else:
            await self.ws.send_message(p.encode(frame).decode())

    async def recv(self) -> p.ServerFrame:
        return p.decode(await self.ws.get_message(), source=p.Source.SERVER)

    async def recv_type(self, kind: type[Any]) -> Any:
        """The next frame of type `kind`, skipping others (presence, typing...)."""
        while True:
            frame = await self.recv()
            if isinstance(frame, kind):
                return frame

    async def close(self) -> None:
        await self.ws.aclose()


ConnectFn = Callable[..., Awaitable[Client]]
WsStream = trio.SocketStream | trio.SSLStream[trio.SocketStream]


def server_config(**overrides: Any) -> ServerConfig:
    """The test server's config: SECRET, port 0, default `Limits()` unless overridden."""
    limits = overrides.pop("limits", Limits())
    return ServerConfig(secret=SECRET, port=0, limits=limits, **overrides)


def token(user: str, rooms: list[str] | None = None, **kw: Any) -> str:
    """A token for `user` granting `rooms` (default: general), signed with SECRET."""
    return p.mint_token(SECRET, user, rooms if rooms is not None else ["general"], **kw)


class Clients:
    """The servers and clients of one test; `aclose` closes clients, then stops servers.

    Everything runs in the nursery given (the `clients` fixture's own), so readers and
    servers outlive the test body and are closed in order at teardown.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._servers: list[RunningServer] = []
        self._open: list[tuple[Client | RawClient, trio.abc.Stream]] = []

    async def start(self, **overrides: Any) -> RunningServer:
        """A server with `server_config(**overrides)`, stopped at teardown."""
        running: RunningServer = await self._nursery.start(serve, server_config(**overrides))
        self._servers.append(running)
        return running

    async def open(
        self,
        url: str,
        user: str,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Client:
        """A trio-websocket client of `url` (ws:// or wss://, token and query included) sending
        `headers` with the upgrade; nothing is read.

        A refused upgrade raises `ConnectionRejected` (with `.status_code`) here, its
        socket closed.
        """
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
        assert host is not None, url
        assert port is not None, url
        resource = (parts.path or "/") + (f"?{parts.query}" if "?" in url else "")
        stream: WsStream
        if parts.scheme == "wss":
            context = ssl_context or ssl.create_default_context()
            stream = await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=context, https_compatible=True
            )
        else:
            stream = await trio.open_tcp_stream(host, port)
        try:
            ws: WebSocketConnection = await self._nursery.start(
                _run_websocket, stream, f"{host}:{port}", resource, headers
            )
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        client = Client(ws=ws, user=user)
        self._open.append((client, stream))
        return client

    async def connect(
        self,
        srv: RunningServer,
        user: str,
        rooms: list[str] | None = None,
        *,
        query: str = "",
        welcome: bool = True,
    ) -> Client:
        """A client of `srv` with a token granting `rooms` (default: general) and `query`
        appended to the URL (e.g. "&rooms=a"); with `welcome` reads the welcome frame and
        one joined frame per room it names."""
        client = await self.open(f"{srv.url}?token={token(user, rooms)}{query}", user)
        if welcome:
            hello = await client.recv()
            assert isinstance(hello, p.Welcome), hello
            for _ in hello.rooms:
                assert isinstance(await client.recv_type(p.Joined), p.Joined)
        return client

    async def raw(
        self, srv: RunningServer, user: str, rooms: list[str] | None = None, **kw: Any
    ) -> RawClient:
        """A `RawClient` of `srv` for `user` granted `rooms` (default: general); `kw` as
        `RawClient.connect` (query, answer_pings, receive_buffer)."""
        client = await RawClient.connect(srv.port, token(user, rooms), **kw)
        self._open.append((client, client.stream))
        return client

    async def aclose(self) -> None:
        """Close every client (newest first), drop its socket, then stop the servers."""
        for client, stream in reversed(self._open):
            with trio.move_on_after(CLOSE_S):  # cancelled, a close still releases the socket
                await client.close()
            # trio-websocket does not close the stream when the server closed first.
            await trio.aclose_forcefully(stream)
        with trio.fail_after(STOP_S):
            for running in self._servers:
                running.shutdown()
                await running.stopped.wait()


async def _run_websocket(
    stream: WsStream,
    host: str,
    resource: str,
    headers: list[tuple[bytes, bytes]] | None,
    *,
    task_status: trio.TaskStatus[WebSocketConnection] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a trio-websocket client's reader on `stream`; started with the connection once
    the upgrade is accepted. A refusal is raised by the reader task: it is unwrapped from
    the nursery's exception group so that `Clients.open` raises `ConnectionRejected`."""
    try:
        async with trio.open_nursery() as reader:
            ws = await wrap_client_stream(reader, stream, host, resource, extra_headers=headers)
            task_status.started(ws)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], ConnectionRejected):
            raise group.exceptions[0] from None
        raise


@pytest.fixture
async def clients(nursery: trio.Nursery) -> AsyncIterator[Clients]:
    """The test's servers and clients (see `Clients`), in this fixture's own nursery."""
    opened = Clients(nursery)
    yield opened
    await opened.aclose()


@pytest.fixture
async def server(clients: Clients) -> RunningServer:
    """A server with the default config, stopped after the test's clients are closed."""
    return await clients.start()


@pytest.fixture
def connect_to(clients: Clients, server: RunningServer) -> ConnectFn:
    """`clients.connect` bound to `server`: `await connect_to("alice", ["general", "a"])`."""
    return functools.partial(clients.connect, server)


# A private redis-server for the cluster tests (tests/redisproc.py) and the seed article's
# Node server, a real foreign target (tests/seednode.py).
from tests.redisproc import redis_server  # noqa: E402, F401
from tests.seednode import seed_node_dir, seed_node_modules, seed_server  # noqa: E402, F401
