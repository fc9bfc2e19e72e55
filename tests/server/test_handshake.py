"""Upgrade decisions of `authorise()` and `is_upgrade()` on hand-built requests (protocol §2).

Token (§2.2: query wins over Bearer, 401s), WebSocket version and key, method, origin
allow-list, the `rooms` query parameter and the hub's 429/503 refusals (§2.5). Pure: no
sockets, no HTTP parsing.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Final

import pytest

from loadtool import protocol as p
from loadtool.server.config import Limits, ServerConfig
from loadtool.server.handshake import Refusal, Request, Upgrade, authorise, is_upgrade
from tests.conftest import SECRET

KEY: Final = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample nonce: 16 bytes


def tok(user: str = "alice", rooms: tuple[str, ...] = ("a", "b"), **kw: Any) -> str:
    return p.mint_token(SECRET, user, rooms, **kw)


def request(
    *,
    method: str = "GET",
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    token: str | None = None,
    omit: tuple[str, ...] = (),
) -> Request:
    """A valid upgrade request (token in the query unless `token` is None), adjustable."""
    base = {
        "host": "example.test",
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": KEY,
    }
    base.update(headers or {})
    for name in omit:
        base.pop(name)
    q = dict(query or {})
    if token is not None:
        q.setdefault("token", [token])
    return Request(method=method, path="/chat", query=q, headers=base)


def config(**kw: Any) -> ServerConfig:
    return ServerConfig(secret=SECRET, port=0, **kw)


def admit(_user: str) -> HTTPStatus | None:
    return None


def decide(
    req: Request,
    cfg: ServerConfig | None = None,
    refuse: Callable[[str], HTTPStatus | None] = admit,
) -> Upgrade | Refusal:
    return authorise(req, cfg or config(), refuse)


def refused(result: Upgrade | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


def upgraded(result: Upgrade | Refusal) -> Upgrade:
    assert isinstance(result, Upgrade), result
    return result


# --- accepted --------------------------------------------------------------------------


def test_valid_request_is_upgraded_with_token_rooms() -> None:
    up = upgraded(decide(request(token=tok())))
    assert up.grant.user_id == "alice"
    assert up.grant.rooms == frozenset({"a", "b"})
    assert up.rooms == ("a", "b")
    assert up.key == KEY.encode()


def test_default_rooms_are_sorted_and_skip_wildcard() -> None:
    up = upgraded(decide(request(token=tok(rooms=("zeta", "*", "alpha")))))
    assert up.rooms == ("alpha", "zeta")
    assert up.grant.any_room


def test_bearer_header_accepted() -> None:
    req = request(headers={"authorization": f"Bearer {tok(user='bob')}"})
    assert upgraded(decide(req)).grant.user_id == "bob"


def test_bearer_scheme_is_case_insensitive() -> None:
    req = request(headers={"authorization": f"bearer {tok(user='bob')}"})
    assert upgraded(decide(req)).grant.user_id == "bob"


def test_query_token_wins_over_bearer_header() -> None:
    req = request(token=tok(user="alice"), headers={"authorization": f"Bearer {tok(user='bob')}"})
    assert upgraded(decide(req)).grant.user_id == "alice"
    req = request(token=tok(user="alice"), headers={"authorization": "Bearer garbage"})
    assert upgraded(decide(req)).grant.user_id == "alice"


def test_empty_query_token_falls_back_to_bearer() -> None:
    req = request(query={"token": [""]}, headers={"authorization": f"Bearer {tok(user='bob')}"})
    assert upgraded(decide(req)).grant.user_id == "bob"


# --- token refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "req",
    [
        request(),
        request(query={"token": [""]}),
        request(headers={"authorization": "Bearer "}),
        request(headers={"authorization": "Basic dXNlcjpwYXNz"}),
    ],
    ids=["none", "empty-query", "empty-bearer", "basic-auth"],
)
def test_missing_token_is_401(req: Request) -> None:
    ref = refused(decide(req))
    assert ref.status is HTTPStatus.UNAUTHORIZED
    assert "missing token" in ref.reason
    assert ("WWW-Authenticate", 'Bearer realm="loadtool"') in ref.headers


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-jwt",
        p.mint_token("another-secret-123", "alice", ["a"]),
        tok() + "x",
    ],
    ids=["malformed", "wrong-secret", "tampered"],
)
def test_bad_token_is_401(bad: str) -> None:
    ref = refused(decide(request(token=bad)))
    assert ref.status is HTTPStatus.UNAUTHORIZED
    assert ref.reason.startswith("invalid token")
    assert (
        "WWW-Authenticate",
        'Bearer realm="loadtool", error="invalid_token"',
    ) in ref.headers


def test_expired_token_is_401() -> None:
    expired = tok(now=time.time() - 3600, ttl_s=60)
    ref = refused(decide(request(token=expired)))
    assert ref.status is HTTPStatus.UNAUTHORIZED
    assert ref.reason == "token expired"


def test_token_inside_leeway_is_accepted() -> None:
    recently_expired = tok(now=time.time() - 65, ttl_s=60)  # expired ~5 s ago, 10 s leeway
    assert upgraded(decide(request(token=recently_expired))).grant.user_id == "alice"


# --- request shape -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD", "DELETE"])
def test_non_get_is_405(method: str) -> None:
    ref = refused(decide(request(method=method, token=tok())))
    assert ref.status is HTTPStatus.METHOD_NOT_ALLOWED


@pytest.mark.parametrize("version", ["8", "12", "14", ""])
def test_wrong_websocket_version_is_426(version: str) -> None:
    req = request(token=tok(), headers={"sec-websocket-version": version})
    ref = refused(decide(req))
    assert ref.status is HTTPStatus.UPGRADE_REQUIRED
    assert ref.headers == (("Sec-WebSocket-Version", "13"),)


def test_missing_websocket_version_is_426() -> None:
    ref = refused(decide(request(token=tok(), omit=("sec-websocket-version",))))
    assert ref.status is HTTPStatus.UPGRADE_REQUIRED
    assert ref.headers == (("Sec-WebSocket-Version", "13"),)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!!",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        KEY.rstrip("="),
    ],
    ids=["empty", "not-base64", "15-bytes", "17-bytes", "unpadded"],
)
def test_bad_key_is_400(key: str) -> None:
    ref = refused(decide(request(token=tok(), headers={"sec-websocket-key": key})))
    assert ref.status is HTTPStatus.BAD_REQUEST


def test_missing_key_is_400() -> None:
    ref = refused(decide(request(token=tok(), omit=("sec-websocket-key",))))
    assert ref.status is HTTPStatus.BAD_REQUEST


# --- origin ------------------------------------------------------------------------------

ALLOW: Final = ("https://chat.example", "http://localhost:3000")


def test_origin_not_in_allow_list_is_403() -> None:
    req = request(token=tok(), headers={"origin": "https://evil.example"})
    ref = refused(decide(req, config(allowed_origins=ALLOW)))
    assert ref.status is HTTPStatus.FORBIDDEN
    assert "https://evil.example" in ref.reason


@pytest.mark.parametrize("origin", ALLOW)
def test_origin_in_allow_list_is_allowed(origin: str) -> None:
    req = request(token=tok(), headers={"origin": origin})
    upgraded(decide(req, config(allowed_origins=ALLOW)))


def test_no_origin_is_allowed_with_allow_list() -> None:
    upgraded(decide(request(token=tok()), config(allowed_origins=ALLOW)))


def test_no_origin_refused_when_required() -> None:
    ref = refused(decide(request(token=tok()), config(allowed_origins=ALLOW, require_origin=True)))
    assert ref.status is HTTPStatus.FORBIDDEN
    req = request(token=tok(), headers={"origin": ALLOW[0]})
    upgraded(decide(req, config(allowed_origins=ALLOW, require_origin=True)))


def test_any_origin_without_allow_list() -> None:
    req = request(token=tok(), headers={"origin": "https://anything.example"})
    upgraded(decide(req))


# --- rooms -------------------------------------------------------------------------------


def test_rooms_query_picks_a_subset_in_given_order() -> None:
    token = tok(rooms=("a", "b", "c"))
    up = upgraded(decide(request(token=token, query={"rooms": ["c,a"]})))
    assert up.rooms == ("c", "a")


def test_rooms_query_repeated_and_duplicates_collapse() -> None:
    token = tok(rooms=("a", "b", "c"))
    up = upgraded(decide(request(token=token, query={"rooms": ["b,a,,b", "c,a"]})))
    assert up.rooms == ("b", "a", "c")


def test_empty_rooms_query_joins_nothing() -> None:
    up = upgraded(decide(request(token=tok(), query={"rooms": [""]})))
    assert up.rooms == ()


def test_rooms_query_with_wildcard_grant() -> None:
    up = upgraded(decide(request(token=tok(rooms=("*",)), query={"rooms": ["x,y"]})))
    assert up.rooms == ("x", "y")


def test_room_not_granted_is_403() -> None:
    ref = refused(decide(request(token=tok(rooms=("a",)), query={"rooms": ["a,b"]})))
    assert ref.status is HTTPStatus.FORBIDDEN
    assert "'b'" in ref.reason


@pytest.mark.parametrize("name", ["bad room", "x" * 65, "*", "a/b"])
def test_bad_room_name_is_400(name: str) -> None:
    ref = refused(decide(request(token=tok(rooms=("*",)), query={"rooms": [f"a,{name}"]})))
    assert ref.status is HTTPStatus.BAD_REQUEST


def test_too_many_rooms_in_query_is_403() -> None:
    cfg = config(limits=Limits(max_rooms_per_connection=2))
    token = tok(rooms=("*",))
    assert upgraded(decide(request(token=token, query={"rooms": ["a,b"]}), cfg)).rooms == (
        "a",
        "b",
    )
    ref = refused(decide(request(token=token, query={"rooms": ["a,b,c"]}), cfg))
    assert ref.status is HTTPStatus.FORBIDDEN


def test_too_many_default_rooms_is_403() -> None:
    cfg = config(limits=Limits(max_rooms_per_connection=2))
    ref = refused(decide(request(token=tok(rooms=("a", "b", "c"))), cfg))
    assert ref.status is HTTPStatus.FORBIDDEN
    up = upgraded(decide(request(token=tok(rooms=("a", "b", "c")), query={"rooms": ["c"]}), cfg))
    assert up.rooms == ("c",)


# --- hub refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE])
def test_refuse_reason_is_mapped(status: HTTPStatus) -> None:
    asked: list[str] = []

    def refuse(user: str) -> HTTPStatus | None:
        asked.append(user)
        return status

    ref = refused(decide(request(token=tok(user="carol")), refuse=refuse))
    assert ref.status is status
    assert asked == ["carol"]


def test_429_reason_names_user_and_limit() -> None:
    cfg = config(limits=Limits(max_connections_per_user=3))
    ref = refused(
        decide(request(token=tok(user="carol")), cfg, lambda _u: HTTPStatus.TOO_MANY_REQUESTS)
    )
    assert "'carol'" in ref.reason
    assert "3 connections" in ref.reason


def test_refuse_reason_not_asked_for_unauthenticated() -> None:
    asked: list[str] = []

    def refuse(user: str) -> HTTPStatus | None:
        asked.append(user)
        return None

    refused(decide(request(), refuse=refuse))
    assert asked == []


# --- is_upgrade --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"connection": "Upgrade", "upgrade": "websocket"}, True),
        ({"connection": "keep-alive, Upgrade", "upgrade": "WebSocket"}, True),
        ({"connection": "upgrade", "upgrade": "websocket"}, True),
        ({"connection": "keep-alive", "upgrade": "websocket"}, False),
        ({"connection": "Upgrade", "upgrade": "h2c"}, False),
        ({"connection": "Upgrade"}, False),
        ({"upgrade": "websocket"}, False),
        ({}, False),
    ],
)
def test_is_upgrade(headers: dict[str, str], expected: bool) -> None:
    req = Request(method="GET", path="/", query={}, headers=headers)
    assert is_upgrade(req) is expected
