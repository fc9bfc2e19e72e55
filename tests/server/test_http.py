"""Plain HTTP on the WebSocket port (docs/protocol.md §2 and §10): GET /healthz and
/metrics, 426 for a GET without upgrade, 405 for other methods, 400 for a request that is
not HTTP, and that none of these disturbs the WebSocket clients of the same server.

HTTP requests go over raw trio TCP streams to 127.0.0.1, so the exact bytes are under the
test's control; the server answers with `Connection: close` and hangs up.
"""

from __future__ import annotations

from typing import Final

import attrs
import orjson
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request

from loadtool import protocol as p
from loadtool.server.app import RunningServer
from tests.conftest import ConnectFn, token

CEILING_S: Final = 15  # seconds any test here may take
PROMETHEUS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
UPGRADE_HEADERS: Final = (
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
)


@attrs.frozen
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


async def http(srv: RunningServer, raw: bytes) -> Response:
    """Send `raw` as the whole request and read the response up to the server's EOF."""
    stream = await trio.open_tcp_stream("127.0.0.1", srv.port)
    async with stream:
        await stream.send_all(raw)
        data = b""
        while chunk := await stream.receive_some():
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, status, _reason = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert int(headers["content-length"]) == len(body), (headers, body)
    assert headers["connection"] == "close"
    return Response(status=int(status), headers=headers, body=body)


def get(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *extra, "", ""]
    return "\r\n".join(lines).encode()


def metric_lines(body: bytes) -> dict[str, str]:
    """Sample lines of a Prometheus text body: `name{labels}` -> value."""
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = value
    return samples


# --- /healthz and /metrics ---------------------------------------------------------------


async def test_healthz_reports_the_open_connections(
    server: RunningServer, connect_to: ConnectFn
) -> None:
    with trio.fail_after(CEILING_S):
        empty = await http(server, get("/healthz"))
        alice = await connect_to("alice")
        bob = await connect_to("bob")
        two = await http(server, get("/healthz"))
        await bob.close()
        # bob's connection is gone once alice sees him leave.
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="left")
        one = await http(server, get("/healthz"))
    assert empty.status == 200
    assert empty.headers["content-type"] == "application/json"
    assert orjson.loads(empty.body) == {"status": "ok", "connections": 0}
    assert orjson.loads(two.body) == {"status": "ok", "connections": 2}
    assert orjson.loads(one.body) == {"status": "ok", "connections": 1}


async def test_healthz_ignores_the_query_string(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        response = await http(server, get("/healthz?probe=1"))
    assert response.status == 200
    assert orjson.loads(response.body) == {"status": "ok", "connections": 0}


async def test_metrics_is_prometheus_text(server: RunningServer, connect_to: ConnectFn) -> None:
    with trio.fail_after(CEILING_S):
        before = await http(server, get("/metrics"))
        alice = await connect_to("alice")
        bob = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        await alice.send(p.SendMessage(id="m1", room="general", text="hello"))
        assert await alice.recv() == p.Ack(id="m1", room="general", seq=1)
        assert (await bob.recv()).TYPE == "message"
        refused = await http(server, get("/?token=garbage", *UPGRADE_HEADERS))
        assert refused.status == 401
        after = await http(server, get("/metrics"))
    assert before.status == 200
    assert before.headers["content-type"] == PROMETHEUS_TYPE
    text = before.body.decode()
    assert "# TYPE loadtool_connections gauge\n" in text
    assert "\nloadtool_connections 0\n" in text
    samples = metric_lines(after.body)
    assert samples["loadtool_connections"] == "2"
    assert samples["loadtool_connections_total"] == "2"
    assert samples["loadtool_rooms"] == "1"
    assert samples["loadtool_messages_in_total"] == "1"
    assert samples["loadtool_deliveries_total"] == "2"
    assert samples['loadtool_frames_in_total{type="message"}'] == "1"
    assert samples['loadtool_upgrades_refused_total{status="401"}'] == "1"


# --- other requests ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/chat", "/healthz/extra"])
async def test_get_without_upgrade_is_426(server: RunningServer, path: str) -> None:
    with trio.fail_after(CEILING_S):
        response = await http(server, get(f"{path}?token={token('alice')}"))
    assert response.status == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", id="post"),
        pytest.param(
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", id="post-hz"
        ),
        pytest.param(b"PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", id="put"),
        pytest.param(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", id="delete"),
    ],
)
async def test_non_get_is_405(server: RunningServer, raw: bytes) -> None:
    with trio.fail_after(CEILING_S):
        response = await http(server, raw)
    assert response.status == 405
    assert response.headers["content-type"].startswith("text/plain")


async def test_upgrade_with_post_is_405(server: RunningServer) -> None:
    raw = "\r\n".join(
        [f"POST /?token={token('alice')} HTTP/1.1", "Host: x", *UPGRADE_HEADERS, "", ""]
    )
    with trio.fail_after(CEILING_S):
        response = await http(server, raw.encode())
    assert response.status == 405


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"THIS IS NOT HTTP\r\n\r\n", id="garbage-line"),
        pytest.param(b"GET / HTTP/1.1\r\nno colon in this header\r\n\r\n", id="bad-header"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", id="bad-length"),
    ],
)
async def test_garbage_request_is_400_and_the_server_still_serves(
    server: RunningServer, connect_to: ConnectFn, raw: bytes
) -> None:
    with trio.fail_after(CEILING_S):
        alice = await connect_to("alice")
        response = await http(server, raw)
        assert response.status == 400
        assert response.headers["content-type"].startswith("text/plain")
        # The open connection is unaffected, and a new WebSocket client is served.
        bob = await connect_to("bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        await bob.send(p.SendMessage(id="after-garbage", room="general", text="still here"))
        assert await bob.recv() == p.Ack(id="after-garbage", room="general", seq=1)
        message = await alice.recv()
        assert isinstance(message, p.Message)
        assert (message.id, message.sender_id, message.seq) == ("after-garbage", "bob", 1)
        healthz = await http(server, get("/healthz"))
    assert orjson.loads(healthz.body) == {"status": "ok", "connections": 2}


async def test_client_that_hangs_up_mid_request_does_not_disturb_the_server(
    server: RunningServer, connect_to: ConnectFn
) -> None:
    with trio.fail_after(CEILING_S):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHo")
        await stream.aclose()
        alice = await connect_to("alice")
        await alice.send(p.Ping(ts="ok"))
        assert await alice.recv() == p.Pong(ts="ok")


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
async def test_upgrade_is_not_accepted_on_the_http_endpoints(
    server: RunningServer, path: str
) -> None:
    ws = WSConnection(ConnectionType.CLIENT)
    with trio.fail_after(CEILING_S):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            target = f"{path}?token={token('alice')}"
            await stream.send_all(ws.send(Request(host="127.0.0.1", target=target)))
            events: list[object] = []
            while not events:
                data = await stream.receive_some()
                ws.receive_data(bytes(data) if data else None)
                events = list(ws.events())
                if not data:
                    break
    assert not any(isinstance(event, AcceptConnection) for event in events), events
    assert any(isinstance(event, RejectConnection) for event in events), events
