"""Connection tokens: HS256 JWTs carrying the user id and the rooms it may join.

Pure code (PyJWT does no I/O). The reference server verifies; `loadtool token`, the
swarm and the conformance gate mint (docs/protocol.md §2.2).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import Final

import attrs
import jwt

from . import _fields as f

ALGORITHM: Final = "HS256"
ANY_ROOM: Final = "*"  # a `rooms` entry granting every room
LEEWAY_S: Final = 10  # seconds of clock skew tolerated on `exp` and `nbf`
MIN_SECRET_BYTES: Final = 8  # shorter secrets are refused outright
MAX_TIME_S: Final = 2**40  # seconds; larger "times" in claims are refused


class TokenError(ValueError):
    """The token is missing, malformed, badly signed or expired (HTTP 401)."""


def _room_set(rooms: Iterable[str]) -> frozenset[str]:
    return frozenset(rooms)


@attrs.frozen(kw_only=True)
class Grant:
    """What a verified token allows: who the user is and which rooms it may join."""

    user_id: str = attrs.field(validator=f.user_name)
    rooms: frozenset[str] = attrs.field(converter=_room_set)
    expires_at: float

    @property
    def any_room(self) -> bool:
        return ANY_ROOM in self.rooms

    def allows(self, room: str) -> bool:
        return room in self.rooms or ANY_ROOM in self.rooms

    def default_rooms(self) -> tuple[str, ...]:
        """Rooms joined on connect when the URL names none: every named grant, sorted."""
        return tuple(sorted(r for r in self.rooms if r != ANY_ROOM))


def _finite_time(value: object) -> bool:
    """A plausible Unix time: a finite number within a few centuries (JSON allows 1e400)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and abs(value) < MAX_TIME_S  # also false for NaN and infinities
    )


def _check_secret(secret: str) -> bytes:
    raw = secret.encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"token secret must be at least {MIN_SECRET_BYTES} bytes long")
    return raw


def mint_token(
    secret: str,
    user_id: str,
    rooms: Iterable[str],
    *,
    ttl_s: float = 24 * 3600,
    now: float | None = None,
) -> str:
    """A signed token for `user_id` granting `rooms` ("*" for any), valid for `ttl_s`."""
    if isinstance(rooms, str):
        raise TypeError("rooms must be a collection of room names, not one string")
    grant = Grant(user_id=user_id, rooms=rooms, expires_at=0.0)
    for room in grant.rooms:
        if room != ANY_ROOM and f.ROOM_PATTERN.fullmatch(room) is None:
            raise ValueError(f"invalid room name {room!r}: use 1-64 of [A-Za-z0-9_.:@#-]")
    issued = time.time() if now is None else now
    claims = {
        "sub": grant.user_id,
        "rooms": sorted(grant.rooms),
        "iat": int(issued),
        "exp": int(issued + ttl_s),
    }
    with warnings.catch_warnings():
        # Short keys are the operator's choice (`loadtool serve` warns once at start-up).
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, _check_secret(secret), algorithm=ALGORITHM)


def verify_token(secret: str, token: str, *, now: float | None = None) -> Grant:
    """Check signature, expiry and claims.

    Raises:
        TokenError: with a message safe to show the client (no secret material).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                _check_secret(secret),
                algorithms=[ALGORITHM],
                # Time claims are checked below against `now`, so tests can pass a clock.
                options={
                    "require": ["sub", "exp"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    sub, rooms, exp = claims.get("sub"), claims.get("rooms", []), claims["exp"]
    current = time.time() if now is None else now
    if not _finite_time(exp):
        raise TokenError("invalid token: 'exp' must be a time in seconds")
    if current > exp + LEEWAY_S:
        raise TokenError("token expired")
    nbf = claims.get("nbf")
    if nbf is not None and not _finite_time(nbf):
        raise TokenError("invalid token: 'nbf' must be a time in seconds")
    if nbf is not None and current < nbf - LEEWAY_S:
        raise TokenError("token not valid yet (nbf)")
    if not isinstance(sub, str) or f.USER_PATTERN.fullmatch(sub) is None:
        raise TokenError("invalid token: 'sub' must be a user id of [A-Za-z0-9_.:@+-]{1,128}")
    if not isinstance(rooms, list) or not all(
        isinstance(r, str) and (r == ANY_ROOM or f.ROOM_PATTERN.fullmatch(r)) for r in rooms
    ):
        raise TokenError("invalid token: 'rooms' must be a list of room names")
    return Grant(user_id=sub, rooms=rooms, expires_at=float(exp))
