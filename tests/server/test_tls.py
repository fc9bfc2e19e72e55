"""wss:// (docs/protocol.md §2): the reference server with a certificate and key serves
WebSocket clients and plain HTTP (/healthz) over TLS on the same port; clients that do not
trust its CA, or that speak plaintext, get no service.

The CA and the server certificate for 127.0.0.1 are made by trustme in the test's tmp_path.
trio-websocket hangs instead of failing when a TLS handshake fails, so the refusals are
checked with raw trio streams.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import attrs
import orjson
import pytest
import trio
import trustme

from loadtool import protocol as p
from loadtool.server.app import RunningServer
from tests.conftest import Client, Clients, token

CEILING_S: Final = 15  # seconds any test here may take


@attrs.frozen
class TlsSetup:
    server: RunningServer
    ca_file: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts (only) the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


WssConnectFn = Callable[[str], Awaitable[Client]]


@pytest.fixture
async def tls(clients: Clients, tmp_path: Path) -> TlsSetup:
    """A server with a certificate for 127.0.0.1 from a fresh test CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    certfile = tmp_path / "server.pem"
    keyfile = tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    running = await clients.start(certfile=certfile, keyfile=keyfile)
    return TlsSetup(server=running, ca_file=ca_file)


@pytest.fixture
def connect_wss(clients: Clients, tls: TlsSetup) -> WssConnectFn:
    """`await connect_wss(user)`: a wss:// client of the `tls` server trusting the test
    CA; welcome and the joined frame of `general` read and checked."""

    async def connect(user: str) -> Client:
        url = f"{tls.server.url}?token={token(user)}"
        client = await clients.open(url, user, ssl_context=tls.client_context())
        welcome = await client.recv()
        assert isinstance(welcome, p.Welcome), welcome
        assert welcome.user_id == user
        assert await client.recv() == p.Joined(room="general", seq=0)
        return client

    return connect


async def test_server_url_scheme_is_wss(tls: TlsSetup) -> None:
    assert tls.server.url == f"wss://127.0.0.1:{tls.server.port}/"
    assert tls.server.scheme == "wss"


async def test_message_round_trip_over_wss(connect_wss: WssConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_wss("alice")
        bob = await connect_wss("bob")
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


async def test_healthz_over_https(tls: TlsSetup, connect_wss: WssConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        await connect_wss("alice")
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


async def test_client_without_the_ca_fails_the_handshake(
    tls: TlsSetup, connect_wss: WssConnectFn
) -> None:
    with trio.fail_after(CEILING_S):
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", tls.server.port, ssl_context=ssl.create_default_context()
        )
        with pytest.raises(trio.BrokenResourceError) as failed:
            await stream.do_handshake()
        await trio.aclose_forcefully(stream)
        assert isinstance(failed.value.__cause__, ssl.SSLCertVerificationError)
        # A trusting client is still served afterwards.
        alice = await connect_wss("alice")
        await alice.send(p.Ping(ts=1))
        assert await alice.recv() == p.Pong(ts=1)


async def test_plaintext_request_on_the_tls_port_gets_no_http_answer(
    tls: TlsSetup, connect_wss: WssConnectFn
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
        alice = await connect_wss("alice")
        await alice.send(p.Ping(ts=2))
        assert await alice.recv() == p.Pong(ts=2)
