"""The upgrade gate of the reference server (docs/protocol.md §2): tokens (query parameter or
`Authorization: Bearer`), the Origin allow-list, the `rooms` query parameter, per-user and
per-server connection limits, and the token's `sub` as every message's senderId.

Accepted upgrades run over trio-websocket on 127.0.0.1. Refused upgrades are read with a
wsproto handshake over a raw trio TCP stream (status, headers, text/plain body): a refused
trio-websocket client leaves its socket open, which the suite's warnings=error rejects.
"""

from __future__ import annotations

import time
from typing import Any, Final

import attrs
import jwt
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request

from loadtool import protocol as p
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits
from tests.conftest import SECRET, Client, Clients, token

CEILING_S: Final = 15  # seconds any test here may take
SENT_AT: Final = "2026-11-29T04:38:46.123Z"
ALLOWED: Final = "https://app.example"


@attrs.frozen
class Answer:
    """The server's answer to an upgrade request: 101, or a refusal with its body."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes


async def upgrade(
    srv: RunningServer, target: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Answer:
    """Send one WebSocket upgrade request and read the answer (then hang up)."""
    ws = WSConnection(ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", srv.port)
    async with stream:
        request = Request(host=f"127.0.0.1:{srv.port}", target=target, extra_headers=headers or [])
        await stream.send_all(ws.send(request))
        status, found, body = 0, {}, b""
        while True:
            data = await stream.receive_some()
            ws.receive_data(bytes(data) if data else None)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return Answer(status=101, headers={}, body=b"")
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    found = {bytes(k).lower(): bytes(v) for k, v in event.headers}
                    if not event.has_body:
                        return Answer(status=status, headers=found, body=body)
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        return Answer(status=status, headers=found, body=body)
            if not data:
                return Answer(status=status, headers=found, body=body)


async def welcomed(
    clients: Clients, url: str, user: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[Client, p.Welcome]:
    """Connect to `url` with extra headers; return the client and its welcome frame."""
    client = await clients.open(url, user, headers=headers)
    welcome = await client.recv()
    assert isinstance(welcome, p.Welcome), welcome
    return client, welcome


# --- tokens ------------------------------------------------------------------------------


async def test_no_token_is_refused_with_401(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        answer = await upgrade(server, "/")
    assert answer.status == 401
    assert b"missing token" in answer.body
    assert answer.headers[b"content-type"].startswith(b"text/plain")
    assert answer.headers[b"www-authenticate"].startswith(b"Bearer")
    assert server.metrics.refused[401] == 1


@pytest.mark.parametrize(
    ("make_token", "why"),
    [
        pytest.param(lambda: "garbage", b"invalid token", id="garbage"),
        pytest.param(lambda: "a.b.c", b"invalid token", id="three-garbage-parts"),
        pytest.param(
            lambda: p.mint_token(SECRET, "alice", ["general"], now=time.time() - 3600, ttl_s=60),
            b"token expired",
            id="expired",
        ),
        pytest.param(
            lambda: p.mint_token("another-secret-0123456789abcdef", "alice", ["general"]),
            b"invalid token",
            id="other-secret",
        ),
        pytest.param(
            lambda: jwt.encode({"sub": "alice", "rooms": ["general"]}, SECRET, algorithm="HS256"),
            b"invalid token",
            id="no-exp-claim",
        ),
    ],
)
async def test_bad_token_is_refused_with_401(
    server: RunningServer, make_token: Any, why: bytes
) -> None:
    with trio.fail_after(CEILING_S):
        by_query = await upgrade(server, f"/?token={make_token()}")
        bearer = f"Bearer {make_token()}".encode()
        by_header = await upgrade(server, "/", [(b"Authorization", bearer)])
    for answer in (by_query, by_header):
        assert answer.status == 401
        assert why in answer.body, answer.body
        assert answer.headers[b"content-type"].startswith(b"text/plain")
    assert server.metrics.refused[401] == 2


async def test_expired_within_leeway_is_accepted(server: RunningServer, clients: Clients) -> None:
    """An exp a few seconds in the past is inside the 10 s leeway (§2)."""
    tok = p.mint_token(SECRET, "alice", ["general"], now=time.time() - 63, ttl_s=60)
    with trio.fail_after(CEILING_S):
        _client, welcome = await welcomed(clients, f"{server.url}?token={tok}", "alice")
    assert welcome.user_id == "alice"


async def test_non_bearer_authorization_is_not_a_token(server: RunningServer) -> None:
    basic = f"Basic {token('alice')}".encode()
    with trio.fail_after(CEILING_S):
        answer = await upgrade(server, "/", [(b"Authorization", basic)])
    assert answer.status == 401
    assert b"missing token" in answer.body


async def test_bearer_header_is_accepted(server: RunningServer, clients: Clients) -> None:
    bearer = f"Bearer {token('alice', ['general', 'side'])}".encode()
    with trio.fail_after(CEILING_S):
        client, welcome = await welcomed(clients, server.url, "alice", [(b"Authorization", bearer)])
        assert welcome.user_id == "alice"
        assert welcome.rooms == ("general", "side")
        assert await client.recv() == p.Joined(room="general", seq=0)
        assert await client.recv() == p.Joined(room="side", seq=0)
        await client.send(p.Ping(ts="after-bearer"))
        assert await client.recv() == p.Pong(ts="after-bearer")


async def test_query_token_wins_over_bearer_header(server: RunningServer, clients: Clients) -> None:
    """The `token` query parameter is used first; the header only when it is absent."""
    bearer = f"Bearer {token('bob')}".encode()
    with trio.fail_after(CEILING_S):
        _client, welcome = await welcomed(
            clients, f"{server.url}?token={token('alice')}", "alice", [(b"Authorization", bearer)]
        )
    assert welcome.user_id == "alice"


async def test_upgrade_on_the_seed_path_is_accepted(
    server: RunningServer, clients: Clients
) -> None:
    """Any path but /healthz and /metrics upgrades; the seed client uses /chat."""
    with trio.fail_after(CEILING_S):
        _client, welcome = await welcomed(
            clients, f"{server.url}chat?token={token('alice')}", "alice"
        )
    assert welcome.user_id == "alice"


# --- Origin ------------------------------------------------------------------------------


async def test_disallowed_origin_is_refused_with_403(clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(allowed_origins=(ALLOWED,))
        answer = await upgrade(
            srv, f"/?token={token('alice')}", [(b"Origin", b"https://evil.example")]
        )
    assert answer.status == 403
    assert b"https://evil.example" in answer.body
    assert srv.metrics.refused[403] == 1


async def test_allowed_origin_is_accepted(clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(allowed_origins=(ALLOWED, "https://other.example"))
        for origin in (ALLOWED, "https://other.example"):
            _client, welcome = await welcomed(
                clients,
                f"{srv.url}?token={token('alice')}",
                "alice",
                [(b"Origin", origin.encode())],
            )
            assert welcome.user_id == "alice"


async def test_no_origin_is_accepted_with_an_allow_list(
    clients: Clients,
) -> None:
    """No Origin header means a native client: allowed unless require_origin."""
    with trio.fail_after(CEILING_S):
        srv = await clients.start(allowed_origins=(ALLOWED,))
        _client, welcome = await welcomed(clients, f"{srv.url}?token={token('alice')}", "alice")
    assert welcome.user_id == "alice"


async def test_any_origin_is_accepted_without_an_allow_list(
    server: RunningServer, clients: Clients
) -> None:
    with trio.fail_after(CEILING_S):
        _client, welcome = await welcomed(
            clients,
            f"{server.url}?token={token('alice')}",
            "alice",
            [(b"Origin", b"https://anything.example")],
        )
    assert welcome.user_id == "alice"


async def test_require_origin_refuses_a_missing_origin(
    clients: Clients,
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(allowed_origins=(ALLOWED,), require_origin=True)
        answer = await upgrade(srv, f"/?token={token('alice')}")
        assert answer.status == 403
        _client, welcome = await welcomed(
            clients, f"{srv.url}?token={token('alice')}", "alice", [(b"Origin", ALLOWED.encode())]
        )
    assert welcome.user_id == "alice"


# --- rooms on connect --------------------------------------------------------------------


async def test_rooms_parameter_joins_the_subset_in_order(
    server: RunningServer, clients: Clients
) -> None:
    with trio.fail_after(CEILING_S):
        alice = await clients.connect(
            server, "alice", ["a", "b", "c"], query="&rooms=c,a", welcome=False
        )
        welcome = await alice.recv()
        assert isinstance(welcome, p.Welcome)
        assert welcome.rooms == ("c", "a")
        assert await alice.recv() == p.Joined(room="c", seq=0)
        assert await alice.recv() == p.Joined(room="a", seq=0)
        # Granted but not joined: not a member.
        await alice.send(p.SendMessage(id="m-b", room="b", text="hi"))
        error = await alice.recv()
        assert isinstance(error, p.Error)
        assert (error.code, error.id, error.room) == (p.ErrorCode.NOT_MEMBER, "m-b", "b")
        await alice.send(p.SendMessage(id="m-a", room="a", text="hi"))
        assert await alice.recv() == p.Ack(id="m-a", room="a", seq=1)


async def test_without_rooms_parameter_every_named_grant_is_joined_sorted(
    server: RunningServer, clients: Clients
) -> None:
    with trio.fail_after(CEILING_S):
        alice = await clients.connect(server, "alice", ["zeta", "alpha", "mid"], welcome=False)
        welcome = await alice.recv()
        assert isinstance(welcome, p.Welcome)
        assert welcome.rooms == ("alpha", "mid", "zeta")
        assert [await alice.recv() for _ in range(3)] == [
            p.Joined(room="alpha", seq=0),
            p.Joined(room="mid", seq=0),
            p.Joined(room="zeta", seq=0),
        ]


async def test_wildcard_grant_joins_nothing_by_default_and_named_rooms_on_request(
    server: RunningServer, clients: Clients
) -> None:
    with trio.fail_after(CEILING_S):
        plain = await clients.connect(server, "alice", ["*"], welcome=False)
        welcome = await plain.recv()
        assert isinstance(welcome, p.Welcome)
        assert welcome.rooms == ()
        await plain.send(p.Ping(ts=1))
        assert await plain.recv() == p.Pong(ts=1)

        picked = await clients.connect(server, "bob", ["*"], query="&rooms=x,y", welcome=False)
        welcome = await picked.recv()
        assert isinstance(welcome, p.Welcome)
        assert welcome.rooms == ("x", "y")
        assert await picked.recv() == p.Joined(room="x", seq=0)
        assert await picked.recv() == p.Joined(room="y", seq=0)


async def test_joined_on_connect_carries_the_room_head(
    server: RunningServer, clients: Clients
) -> None:
    with trio.fail_after(CEILING_S):
        alice = await clients.connect(server, "alice")
        for n in (1, 2):
            await alice.send(p.SendMessage(id=f"m{n}", room="general", text="x"))
            assert await alice.recv() == p.Ack(id=f"m{n}", room="general", seq=n)
            assert (await alice.recv_type(p.Message)).seq == n
        bob = await clients.connect(server, "bob", welcome=False)
        assert isinstance(await bob.recv(), p.Welcome)
        assert await bob.recv() == p.Joined(room="general", seq=2)


async def test_welcome_describes_the_connection(clients: Clients) -> None:
    limits = Limits(max_text_chars=100, rate_burst=7, history_page_max=9)
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=limits, heartbeat_interval_s=2.5, idle_timeout_s=7)
        alice = await clients.connect(srv, "alice", ["b", "a"], welcome=False)
        assert await alice.recv() == p.Welcome(
            user_id="alice",
            rooms=("a", "b"),
            protocol=1,
            heartbeat_ms=2500,
            idle_timeout_ms=7000,
            limits={
                "maxMessageBytes": 65536,
                "maxTextChars": 100,
                "ratePerSecond": 20,
                "rateBurst": 7,
                "maxRoomsPerConnection": 100,
                "historyPageMax": 9,
                "resyncMax": 500,
                "dedupeWindowSeconds": 600,
            },
        )


async def test_room_not_granted_is_refused_with_403(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        answer = await upgrade(server, f"/?token={token('alice', ['a'])}&rooms=a,secret")
    assert answer.status == 403
    assert b"secret" in answer.body


async def test_invalid_room_name_is_refused_with_400(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        answer = await upgrade(server, f"/?token={token('alice', ['*'])}&rooms=ok,bad!name")
    assert answer.status == 400
    assert b"bad!name" in answer.body


async def test_more_rooms_than_the_per_connection_cap_is_refused_with_403(
    clients: Clients,
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=Limits(max_rooms_per_connection=2))
        by_param = await upgrade(srv, f"/?token={token('alice', ['*'])}&rooms=a,b,c")
        by_grant = await upgrade(srv, f"/?token={token('alice', ['a', 'b', 'c'])}")
        _client, welcome = await welcomed(
            clients, f"{srv.url}?token={token('alice', ['*'])}&rooms=a,b", "alice"
        )
    assert by_param.status == 403
    assert by_grant.status == 403
    assert welcome.rooms == ("a", "b")


# --- connection limits -------------------------------------------------------------------


async def test_connections_per_user_over_the_limit_get_429(
    clients: Clients,
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=Limits(max_connections_per_user=2))
        bob = await clients.connect(srv, "bob", ["x", "y"])
        alice_x = await clients.connect(srv, "alice", ["x"])
        await clients.connect(srv, "alice", ["y"])
        assert await bob.recv() == p.Presence(room="x", user_id="alice", status="joined")
        assert await bob.recv() == p.Presence(room="y", user_id="alice", status="joined")

        answer = await upgrade(srv, f"/?token={token('alice', ['x'])}")
        assert answer.status == 429
        assert srv.metrics.refused[429] == 1
        # Another user is not affected.
        await clients.connect(srv, "carol", ["z"])

        # Once one of alice's connections is gone (bob sees her leave x), she may connect.
        await alice_x.close()
        assert await bob.recv() == p.Presence(room="x", user_id="alice", status="left")
        again = await clients.connect(srv, "alice", ["x"])
        await again.send(p.Ping(ts="back"))
        assert await again.recv() == p.Pong(ts="back")


async def test_server_at_max_connections_answers_503(
    clients: Clients,
) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=Limits(max_connections=2))
        alice = await clients.connect(srv, "alice")
        bob = await clients.connect(srv, "bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")

        for user in ("carol", "alice"):
            answer = await upgrade(srv, f"/?token={token(user)}")
            assert answer.status == 503
        assert srv.metrics.refused[503] == 2

        await bob.close()
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="left")
        carol = await clients.connect(srv, "carol")
        await carol.send(p.Ping(ts="in"))
        assert await carol.recv() == p.Pong(ts="in")


# --- senderId ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            {
                "id": "spoof-1",
                "room": "general",
                "senderId": "mallory",
                "text": "I am mallory",
                "sentAt": SENT_AT,
            },
            id="seed-dialect",
        ),
        pytest.param(
            {
                "type": "message",
                "id": "spoof-1",
                "room": "general",
                "senderId": "mallory",
                "text": "I am mallory",
                "sentAt": SENT_AT,
            },
            id="typed",
        ),
    ],
)
async def test_client_sender_id_is_ignored(
    server: RunningServer, clients: Clients, frame: dict[str, Any]
) -> None:
    with trio.fail_after(CEILING_S):
        alice = await clients.connect(server, "alice")
        bob = await clients.connect(server, "bob")
        assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
        await alice.send(frame)
        expected = p.Message(
            id="spoof-1",
            room="general",
            sender_id="alice",
            text="I am mallory",
            sent_at=SENT_AT,
            seq=1,
        )
        assert await alice.recv() == p.Ack(id="spoof-1", room="general", seq=1)
        assert await alice.recv() == expected
        assert await bob.recv() == expected
        await bob.send(p.HistoryRequest(room="general"))
        assert await bob.recv() == p.HistoryPage(
            room="general", messages=[expected], has_more=False
        )


# --- concurrent upgrades -----------------------------------------------------------------

CONCURRENT: Final = 10  # simultaneous upgrade attempts


async def concurrent_upgrades(srv: RunningServer, users: list[str]) -> list[int]:
    """Start one upgrade per user at once; return the statuses, sorted.

    Accepted connections stay open until every attempt has its answer: a client that hung
    up at once would free its slot and let a later attempt in legitimately.
    """
    statuses: list[int] = []
    answered = trio.Event()

    async def one(user: str) -> None:
        ws = WSConnection(ConnectionType.CLIENT)
        stream = await trio.open_tcp_stream("127.0.0.1", srv.port)
        async with stream:
            request = Request(host=f"127.0.0.1:{srv.port}", target=f"/?token={token(user)}")
            await stream.send_all(ws.send(request))
            status = 0
            while not status:
                data = await stream.receive_some()
                ws.receive_data(bytes(data) if data else None)
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        status = 101
                    elif isinstance(event, RejectConnection):
                        status = event.status_code
                if not data and not status:
                    status = -1
            statuses.append(status)
            if len(statuses) == len(users):
                answered.set()
            await answered.wait()

    async with trio.open_nursery() as attempts:
        for user in users:
            attempts.start_soon(one, user)
    return sorted(statuses)


async def test_concurrent_upgrades_of_one_user_respect_the_limit(clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=Limits(max_connections_per_user=1))
        statuses = await concurrent_upgrades(srv, ["alice"] * CONCURRENT)
    assert statuses == [101] + [429] * (CONCURRENT - 1)


async def test_concurrent_upgrades_respect_max_connections(clients: Clients) -> None:
    with trio.fail_after(CEILING_S):
        srv = await clients.start(limits=Limits(max_connections=1))
        statuses = await concurrent_upgrades(srv, [f"user{n}" for n in range(CONCURRENT)])
    assert statuses == [101] + [503] * (CONCURRENT - 1)
