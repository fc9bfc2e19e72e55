"""1.x Connecting: the upgrade, tokens, origins, rooms on connect (docs/protocol.md §2)."""

from __future__ import annotations

from ... import protocol as p
from ..harness import Harness
from ..model import CaseFailure, Feature
from ._case import case


@case("1.1", "upgrade with a valid token is accepted", "§2.1", Feature.AUTH)
async def valid_token(h: Harness) -> None:
    """A client with a valid token for one room upgrades (101) and, on a v1 server, gets
    `welcome` naming its user id and rooms, then `joined` for the room."""
    user, room = h.user(), h.room()
    peer = await h.connect(user, [room], welcome=False)
    if Feature.ROOMS not in h.features:
        return
    hello = await peer.expect("welcome", skip=())
    if hello.get("userId") != user or hello.get("rooms") != [room]:
        raise CaseFailure(
            f"welcome names {hello.get('userId')!r} in {hello.get('rooms')!r}",
            expected=f"userId {user!r}, rooms [{room!r}]",
        )
    joined = await peer.expect("joined")
    if joined.get("room") != room or type(joined.get("seq")) is not int:
        raise CaseFailure(f"joined frame {joined}", expected=f"joined for {room!r} with a seq")


@case("1.2", "missing token is refused with 401", "§2.2", Feature.AUTH)
async def missing_token(h: Harness) -> None:
    """An upgrade without `token` and without `Authorization` must get HTTP 401."""
    status = await h.refusal(target=h.endpoint.target)
    if status != 401:
        raise CaseFailure(f"HTTP {status}", expected="HTTP 401")


@case("1.3", "garbage token is refused with 401", "§2.2", Feature.AUTH)
async def garbage_token(h: Harness) -> None:
    """`?token=not-a-jwt` must get HTTP 401."""
    status = await h.refusal(target=_with(h, "token=not-a-jwt"))
    if status != 401:
        raise CaseFailure(f"HTTP {status}", expected="HTTP 401")


@case("1.4", "token signed with another secret is refused with 401", "§2.2", Feature.AUTH)
async def wrong_secret(h: Harness) -> None:
    """A well-formed token signed with a different secret must get HTTP 401."""
    token = p.mint_token("not-the-servers-secret-0123456789", h.user(), [h.room()])
    status = await h.refusal(target=_with(h, f"token={token}"))
    if status != 401:
        raise CaseFailure(f"HTTP {status}", expected="HTTP 401")


@case("1.5", "expired token is refused with 401", "§2.2", Feature.AUTH)
async def expired_token(h: Harness) -> None:
    """A token whose `exp` passed an hour ago must get HTTP 401 (10 s leeway at most)."""
    valid = await h.token(h.user(), [h.room()])
    if valid is None:
        raise CaseFailure("the target's token source gave no token", expected="a token")
    secret = getattr(h.tokens, "secret", None)
    if secret is None:
        return  # tokens from a command: cannot mint an expired one; nothing to check
    import time

    token = p.mint_token(secret, h.user(), [h.room()], ttl_s=60, now=time.time() - 3600)
    status = await h.refusal(target=_with(h, f"token={token}"))
    if status != 401:
        raise CaseFailure(f"HTTP {status}", expected="HTTP 401")


@case("1.6", "Authorization: Bearer is accepted", "§2.2", Feature.AUTH)
async def bearer_header(h: Harness) -> None:
    """The token may come in an `Authorization: Bearer` header instead of the query."""
    user, room = h.user(), h.room()
    token = await h.token(user, [room])
    await h.connect(user, [room], token=None, headers=[("Authorization", f"Bearer {token}")])


@case("1.7", "a room the token does not grant is refused with 403", "§2.4", Feature.AUTH)
async def room_not_granted(h: Harness) -> None:
    """`?rooms=` naming a room the token does not grant must get HTTP 403."""
    h.require_room_grants()
    user = h.user()
    token = await h.token(user, [h.room()])
    status = await h.refusal(target=_with(h, f"token={token}&rooms={h.room('other')}"))
    if status != 403:
        raise CaseFailure(f"HTTP {status}", expected="HTTP 403")


CASES = (
    valid_token,
    missing_token,
    garbage_token,
    wrong_secret,
    expired_token,
    bearer_header,
    room_not_granted,
)


def _with(h: Harness, query: str) -> str:
    target = h.endpoint.target
    return f"{target}{'&' if '?' in target else '?'}{query}"
