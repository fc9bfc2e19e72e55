"""wss:// (docs/protocol.md §2): the reference server with a certificate and key serves
WebSocket clients and plain HTTP (/healthz) over TLS on the same port; clients that do not
trust its CA, or that speak plaintext, get no service.

The CA and the server certificate for 127.0.0.1 are made by trustme in the test's tmp_path.
trio-websocket hangs instead of failing when a TLS handshake fails, so the refusals are
checked with raw trio streams.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import attrs
import orjson
import pytest
import trio
import trustme
from trio_websocket import connect_websocket_url

from loadtool import protocol as p
from loadtool.server.app import RunningServer, serve
from tests.conftest import Client, server_config, token

CEILING_S: Final = 15  # seconds any test here may take


@attrs.frozen
class TlsSetup:
    server: RunningServer
    ca_file: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts (only) the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


class Clients:
    """wss:// clients of one test, closed at teardown before the server stops.

    trio-websocket leaves a client's socket open when its reader task is cancelled (a
    ResourceWarning, an error in this suite), so every client is closed explicitly.
    """

    def __init__(self, nursery: trio.Nursery, setup: TlsSetup) -> None:
        self._nursery = nursery
        self._setup = setup
        self._open: list[Client] = []

    async def connect(self, user: str) -> Client:
        """Connect over wss:// and read welcome and the joined frame of `general`."""
        url = f"{self._setup.server.url}?token={token(user)}"
        ws = await connect_websocket_url(
            self._nursery, url, ssl_context=self._setup.client_context()
        )
        client = Client(ws=ws, user=user)
        self._open.append(client)
        welcome = await client.recv()
        assert isinstance(welcome, p.Welcome), welcome
        assert welcome.user_id == user
        assert await client.recv() == p.Joined(room="general", seq=0)
        return client

    async def aclose(self) -> None:
        with trio.fail_after(CEILING_S):
            for client in reversed(self._open):
                await client.close()
                await trio.aclose_forcefully(client.ws._stream)  # if the server closed first


@pytest.fixture
async def tls(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[TlsSetup]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    certfile = tmp_path / "server.pem"
    keyfile = tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    running: RunningServer = await nursery.start(
        serve, server_config(certfile=certfile, keyfile=keyfile)
    )
    yield TlsSetup(server=running, ca_file=ca_file)
    running.shutdown()
    with trio.fail_after(CEILING_S):
        await running.stopped.wait()


@pytest.fixture
async def clients(nursery: trio.Nursery, tls: TlsSetup) -> AsyncIterator[Clients]:
    """Depends on `tls` so that it is torn down (clients closed) before the server stops."""
    opened = Clients(nursery, tls)
    yield opened
    await opened.aclose()


async def test_server_url_scheme_is_wss(tls: TlsSetup) -> None:
    assert tls.server.url == f"wss://127.0.0.1:{tls.server.port}/"
    assert tls.server.scheme == "wss"


async def test_message_round_trip_over_wss(clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        alice = await clients.connect("alice")
        bob = await clients.connect("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        await alice.send(p.SendMessage(id="tls-1", room="general", text="über TLS ✓"))
        assert await alice.recv() == p.Ack(id="tls-1", room="general", seq=1)
        mine = await alice.recv()
        theirs = await bob.recv()
        assert isinstance(theirs, p.Message)
        assert theirs == mine
        assert (theirs.id, theirs.sender_id, theirs.text, theirs.seq) == (
            "tls-1",
            "alice",
            "über TLS ✓",
            1,
        )
        await bob.send(p.Ping(ts="tls"))
        assert await bob.recv() == p.Pong(ts="tls")


async def test_healthz_over_https(tls: TlsSetup, clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        await clients.connect("alice")
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", tls.server.port, ssl_context=tls.client_context()
        )
        async with stream:
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while True:
                try:
                    chunk = await stream.receive_some()
                except trio.BrokenResourceError:
                    break  # the server hung up without a TLS close_notify (https_compatible)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert orjson.loads(body) == {"status": "ok", "connections": 1}


async def test_client_without_the_ca_fails_the_handshake(tls: TlsSetup, clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", tls.server.port, ssl_context=ssl.create_default_context()
        )
        with pytest.raises(trio.BrokenResourceError) as failed:
            await stream.do_handshake()
        await trio.aclose_forcefully(stream)
        assert isinstance(failed.value.__cause__, ssl.SSLCertVerificationError)
        # A trusting client is still served afterwards.
        alice = await clients.connect("alice")
        await alice.send(p.Ping(ts=1))
        assert await alice.recv() == p.Pong(ts=1)


async def test_plaintext_request_on_the_tls_port_gets_no_http_answer(
    tls: TlsSetup, clients: Clients
) -> None:
    with trio.fail_after(CEILING_S):
        stream = await trio.open_tcp_stream("127.0.0.1", tls.server.port)
        async with stream:
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            try:
                while chunk := await stream.receive_some():
                    data += chunk
            except trio.BrokenResourceError:
                pass  # reset by the server: also no answer
        assert b"HTTP/" not in data
        alice = await clients.connect("alice")
        await alice.send(p.Ping(ts=2))
        assert await alice.recv() == p.Pong(ts=2)
