"""Shared fixtures: a real reference server on 127.0.0.1, port 0, in the test's nursery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio
from trio_websocket import WebSocketConnection, connect_websocket_url

from loadtool import protocol as p
from loadtool.server.app import RunningServer, serve
from loadtool.server.config import Limits, ServerConfig

SECRET = "test-secret-0123456789abcdef0123"


@attrs.define
class Client:
    """A test-side chat client over trio-websocket (the plain, stock path)."""

    ws: WebSocketConnection
    user: str

    async def send(self, frame: p.ClientFrame | dict[str, Any] | str) -> None:
        if isinstance(frame, str):
            await self.ws.send_message(frame)
        elif isinstance(frame, dict):
            import orjson

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


def server_config(**overrides: Any) -> ServerConfig:
    limits = overrides.pop("limits", Limits())
    return ServerConfig(secret=SECRET, port=0, limits=limits, **overrides)


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[RunningServer]:
    running: RunningServer = await nursery.start(serve, server_config())
    yield running
    running.shutdown()


def token(user: str, rooms: list[str] | None = None, **kw: Any) -> str:
    return p.mint_token(SECRET, user, rooms if rooms is not None else ["general"], **kw)


async def connect(
    nursery: trio.Nursery,
    server: RunningServer,
    user: str,
    rooms: list[str] | None = None,
    *,
    query: str = "",
    welcome: bool = True,
) -> Client:
    """Connect `user` (token granting `rooms`), and by default read welcome + joined frames."""
    granted = rooms if rooms is not None else ["general"]
    url = f"{server.url}?token={token(user, granted)}{query}"
    ws = await connect_websocket_url(nursery, url)
    client = Client(ws=ws, user=user)
    if welcome:
        hello = await client.recv()
        assert isinstance(hello, p.Welcome), hello
        for _ in hello.rooms:
            assert isinstance(await client.recv_type(p.Joined), p.Joined)
    return client


@pytest.fixture
def connect_to(nursery: trio.Nursery, server: RunningServer) -> ConnectFn:
    async def _connect(user: str, rooms: list[str] | None = None, **kw: Any) -> Client:
        return await connect(nursery, server, user, rooms, **kw)

    return _connect
