"""Connection tokens: HS256 JWTs (loadtool.protocol._tokens)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtool.fuzz import strategies as s
from loadtool.protocol import ANY_ROOM, Grant, TokenError, _tokens, mint_token, verify_token

# >= 32 bytes, so tokens crafted with PyJWT directly raise no InsecureKeyLengthWarning.
SECRET = "test-secret-0123456789-abcdefghijklmnop"
OTHER_SECRET = "another-secret-0123456789-abcdefghijk"
SHORT_SECRET = "8bytes!!"  # the minimum accepted; PyJWT would warn about it
NOW = 1_700_000_000  # a fixed past instant, passed as `now`
LEEWAY = _tokens.LEEWAY_S


def _craft(claims: dict[str, Any], *, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _rejected(token: str, *, secret: str = SECRET, now: float | None = NOW) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(secret, token, now=now)
    return str(info.value)


# --- mint / verify ----------------------------------------------------------------------


def test_round_trip_with_real_clock() -> None:
    before = time.time()
    grant = verify_token(SECRET, mint_token(SECRET, "alice", ["general", "random"]))
    assert grant == Grant(
        user_id="alice", rooms=frozenset({"general", "random"}), expires_at=grant.expires_at
    )
    assert int(before) + 24 * 3600 <= grant.expires_at <= time.time() + 24 * 3600


def test_minted_claims() -> None:
    token = mint_token(SECRET, "alice", ["b", "a", "b"], ttl_s=60, now=NOW + 0.9)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "alice", "rooms": ["a", "b"], "iat": NOW, "exp": NOW + 60}


@given(user=s.user_ids(), rooms=st.lists(s.room_names(), max_size=6))
def test_round_trip_property(user: str, rooms: list[str]) -> None:
    grant = verify_token(SECRET, mint_token(SECRET, user, rooms, ttl_s=3600, now=NOW), now=NOW)
    assert grant.user_id == user
    assert grant.rooms == frozenset(rooms)
    assert grant.expires_at == float(NOW + 3600)
    assert grant.default_rooms() == tuple(sorted(set(rooms)))
    for room in rooms:
        assert grant.allows(room)


def test_wildcard_grants_any_room() -> None:
    grant = verify_token(SECRET, mint_token(SECRET, "u", [ANY_ROOM], now=NOW), now=NOW)
    assert ANY_ROOM == "*"
    assert grant.any_room is True
    assert grant.allows("general") is True
    assert grant.allows("anything-else") is True
    assert grant.default_rooms() == ()


def test_wildcard_with_named_rooms() -> None:
    grant = verify_token(SECRET, mint_token(SECRET, "u", ["zeta", "*", "alpha"], now=NOW), now=NOW)
    assert grant.any_room is True
    assert grant.allows("other") is True
    assert grant.default_rooms() == ("alpha", "zeta")


def test_named_rooms_only() -> None:
    grant = verify_token(SECRET, mint_token(SECRET, "u", ["b", "a"], now=NOW), now=NOW)
    assert grant.any_room is False
    assert grant.allows("a") is True
    assert grant.allows("b") is True
    assert grant.allows("c") is False
    assert grant.allows("*") is False
    assert grant.allows("A") is False
    assert grant.default_rooms() == ("a", "b")


def test_no_rooms() -> None:
    grant = verify_token(SECRET, mint_token(SECRET, "u", [], now=NOW), now=NOW)
    assert grant.rooms == frozenset()
    assert grant.allows("general") is False
    assert grant.default_rooms() == ()


def test_missing_rooms_claim_means_no_rooms() -> None:
    grant = verify_token(SECRET, _craft({"sub": "u", "exp": NOW + 60}), now=NOW)
    assert grant == Grant(user_id="u", rooms=frozenset(), expires_at=float(NOW + 60))


def test_grant_validates_user_id() -> None:
    with pytest.raises(ValueError, match="a user id of 1-128 characters"):
        Grant(user_id="not valid", rooms=[], expires_at=0.0)


# --- expiry -----------------------------------------------------------------------------


def test_expired_token() -> None:
    token = mint_token(SECRET, "u", ["r"], ttl_s=60, now=NOW)
    assert _rejected(token, now=NOW + 60 + LEEWAY + 1) == "token expired"
    assert _rejected(token, now=NOW + 10_000) == "token expired"


def test_expiry_leeway_is_ten_seconds() -> None:
    token = mint_token(SECRET, "u", ["r"], ttl_s=60, now=NOW)
    assert LEEWAY == 10
    assert verify_token(SECRET, token, now=NOW + 60).user_id == "u"
    assert verify_token(SECRET, token, now=NOW + 60 + LEEWAY - 1).user_id == "u"


def test_negative_ttl_is_expired_at_once() -> None:
    token = mint_token(SECRET, "u", ["r"], ttl_s=-3600, now=NOW)
    assert _rejected(token, now=NOW) == "token expired"


def test_expired_with_real_clock() -> None:
    token = mint_token(SECRET, "u", ["r"], ttl_s=-3600)
    assert _rejected(token, now=None) == "token expired"


def test_now_in_the_future() -> None:
    future = time.time() + 365 * 24 * 3600
    token = mint_token(SECRET, "u", ["r"], ttl_s=3600, now=future)
    grant = verify_token(SECRET, token, now=future + 1)
    assert grant.user_id == "u"
    assert _rejected(token, now=future + 3600 + LEEWAY + 1) == "token expired"


def test_expiry_is_checked_against_now_not_the_real_clock() -> None:
    # Expired by the real clock, valid at `now` (and the other way round).
    past = mint_token(SECRET, "u", ["r"], ttl_s=60, now=NOW)
    assert verify_token(SECRET, past, now=NOW + 30).user_id == "u"
    assert _rejected(past, now=None) == "token expired"
    live = mint_token(SECRET, "u", ["r"], ttl_s=3600)
    assert verify_token(SECRET, live).user_id == "u"
    assert _rejected(live, now=time.time() + 3600 + LEEWAY + 60) == "token expired"


def test_iat_is_not_checked() -> None:
    # iat is informational (docs/protocol.md §2.2): a future or malformed iat is ignored.
    for iat in (NOW + 10**6, "yesterday", None):
        token = _craft({"sub": "u", "iat": iat, "exp": NOW + 60})
        assert verify_token(SECRET, token, now=NOW).user_id == "u"


def test_nbf_is_honoured_with_leeway() -> None:
    token = _craft({"sub": "u", "nbf": NOW + 100, "exp": NOW + 1000})
    assert _rejected(token, now=NOW) == "token not valid yet (nbf)"
    assert _rejected(token, now=NOW + 100 - LEEWAY - 1) == "token not valid yet (nbf)"
    assert verify_token(SECRET, token, now=NOW + 100 - LEEWAY).user_id == "u"
    assert verify_token(SECRET, token, now=NOW + 100).user_id == "u"


@pytest.mark.parametrize("nbf", ["tomorrow", [NOW], {"t": NOW}])
def test_malformed_nbf_is_refused(nbf: Any) -> None:
    assert _rejected(_craft({"sub": "u", "nbf": nbf, "exp": NOW + 60})).startswith(
        "invalid token: "
    )


@pytest.mark.parametrize("exp", [float("nan"), float("inf")])
def test_non_finite_exp_is_refused(exp: float) -> None:
    assert _rejected(_craft({"sub": "u", "exp": exp})).startswith("invalid token: ")


def test_huge_exp_is_a_token_error() -> None:
    with pytest.raises(TokenError):
        verify_token(SECRET, _craft({"sub": "u", "exp": 10**400}), now=NOW)


# --- bad tokens -------------------------------------------------------------------------


def test_bad_signature() -> None:
    token = mint_token(OTHER_SECRET, "u", ["r"], now=NOW)
    message = _rejected(token)
    assert message == "invalid token: Signature verification failed"


def test_tampered_payload() -> None:
    token = mint_token(SECRET, "u", ["r"], now=NOW)
    head, _payload, sig = token.split(".")
    other = mint_token(SECRET, "admin", ["*"], now=NOW).split(".")[1]
    assert _rejected(f"{head}.{other}x.{sig}").startswith("invalid token: ")
    assert _rejected(f"{head}.{other}.{sig}") == "invalid token: Signature verification failed"


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "a.b", "x" * 1000, "\u00e9.\u00e9.\u00e9", "..", "Bearer x"]
)
def test_garbage_token(token: str) -> None:
    assert _rejected(token).startswith("invalid token: ")


def test_unsigned_token_refused() -> None:
    token = jwt.encode({"sub": "u", "rooms": ["*"], "exp": NOW + 60}, None, algorithm="none")
    assert _rejected(token).startswith("invalid token: ")


def test_other_hmac_algorithm_refused() -> None:
    long_secret = SECRET * 2  # HS512 wants >= 64 bytes to stay warning-free
    token = _craft({"sub": "u", "rooms": ["r"], "exp": NOW + 60}, secret=long_secret,
                   algorithm="HS512")  # fmt: skip
    assert _rejected(token, secret=long_secret) == (
        "invalid token: The specified alg value is not allowed"
    )
    assert _rejected(token) == "invalid token: The specified alg value is not allowed"


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_missing_required_claim(missing: str) -> None:
    claims: dict[str, Any] = {"sub": "u", "rooms": ["r"], "exp": NOW + 60}
    del claims[missing]
    message = _rejected(_craft(claims))
    assert message.startswith("invalid token: ")
    assert f'"{missing}"' in message


@pytest.mark.parametrize("exp", ["tomorrow", [1], {"t": 1}, True, False, str(NOW + 60)])
def test_bad_exp_claim(exp: Any) -> None:
    assert (
        _rejected(_craft({"sub": "u", "exp": exp}))
        == "invalid token: 'exp' must be a time in seconds"
    )


def test_null_exp_counts_as_missing() -> None:
    message = _rejected(_craft({"sub": "u", "exp": None}))
    assert message == 'invalid token: Token is missing the "exp" claim'


@pytest.mark.parametrize("exp", [NOW + 60, NOW + 60.5, NOW - LEEWAY])
def test_numeric_exp_accepted(exp: float) -> None:
    assert verify_token(SECRET, _craft({"sub": "u", "exp": exp}), now=NOW).expires_at == exp


@pytest.mark.parametrize("sub", ["", "a b", "x" * 129, "r#1", "caf\u00e9", "u/1"])
def test_bad_sub_format(sub: str) -> None:
    message = _rejected(_craft({"sub": sub, "rooms": [], "exp": NOW + 60}))
    assert message == "invalid token: 'sub' must be a user id of [A-Za-z0-9_.:@+-]{1,128}"


@pytest.mark.parametrize("sub", [5, None, ["u"], {"u": 1}])
def test_sub_not_a_string(sub: Any) -> None:
    message = _rejected(_craft({"sub": sub, "rooms": [], "exp": NOW + 60}))
    assert message.startswith("invalid token: ")


@pytest.mark.parametrize(
    "rooms",
    ["general", {"general": True}, [1], ["a", None], None, 5,
     ["a b"], [""], ["x" * 65], ["**"], ["*", "caf\u00e9"], ["general", "room/1"]],
)  # fmt: skip
def test_rooms_claim_not_a_list_of_room_names(rooms: Any) -> None:
    message = _rejected(_craft({"sub": "u", "rooms": rooms, "exp": NOW + 60}))
    assert message == "invalid token: 'rooms' must be a list of room names"


@pytest.mark.parametrize("rooms", [["*"], ["x" * 64], ["#general", "user@host:1", "*"]])
def test_rooms_claim_room_names_and_wildcard_accepted(rooms: list[str]) -> None:
    grant = verify_token(SECRET, _craft({"sub": "u", "rooms": rooms, "exp": NOW + 60}), now=NOW)
    assert grant.rooms == frozenset(rooms)


# --- secrets and minting input ----------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "short", "7bytes!", "\u00e9\u00e9\u00e9"])  # éé... = 6 B
def test_short_secret_rejected(secret: str) -> None:
    with pytest.raises(ValueError, match="token secret must be at least 8 bytes long") as info:
        mint_token(secret, "u", ["r"])
    assert not isinstance(info.value, TokenError)
    with pytest.raises(ValueError, match="token secret must be at least 8 bytes long") as info:
        verify_token(secret, mint_token(SECRET, "u", ["r"]))
    assert not isinstance(info.value, TokenError)


@pytest.mark.parametrize("secret", [SHORT_SECRET, "\u00e9\u00e9\u00e9\u00e9"])  # 8 bytes
def test_eight_byte_secret_accepted(secret: str) -> None:
    grant = verify_token(secret, mint_token(secret, "u", ["r"], now=NOW), now=NOW)
    assert grant.user_id == "u"


def test_no_warnings_escape_with_short_secret() -> None:
    # PyJWT warns (InsecureKeyLengthWarning) for HMAC keys under 32 bytes; the module
    # silences it. pytest's filterwarnings=error would also turn a leak into a failure.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        token = mint_token(SHORT_SECRET, "u", ["r"], now=NOW)
        verify_token(SHORT_SECRET, token, now=NOW)
        with pytest.raises(TokenError):
            verify_token(SHORT_SECRET, token + "x", now=NOW)
        with pytest.raises(TokenError):
            verify_token(SHORT_SECRET, mint_token(OTHER_SECRET, "u", [], now=NOW), now=NOW)
    assert [str(w.message) for w in caught] == []


def test_warning_filter_is_restored() -> None:
    # The module's catch_warnings blocks must not leave the warning silenced globally.
    mint_token(SHORT_SECRET, "u", ["r"], now=NOW)
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):
        jwt.encode({"sub": "u"}, SHORT_SECRET, algorithm="HS256")


@pytest.mark.parametrize("room", ["", "a b", "x" * 65, "caf\u00e9", "**"])
def test_mint_rejects_bad_room(room: str) -> None:
    with pytest.raises(ValueError, match="invalid room name"):
        mint_token(SECRET, "u", ["ok", room])


@pytest.mark.parametrize("rooms", ["general", "*", ""])
def test_mint_rejects_a_bare_string_of_rooms(rooms: str) -> None:
    # A str is an Iterable[str] of one-character rooms; refuse it rather than grant "g", "e"...
    with pytest.raises(TypeError, match="rooms must be a collection of room names, not one"):
        mint_token(SECRET, "u", rooms)


@pytest.mark.parametrize("rooms", [("a", "b"), {"a", "b"}, frozenset({"a", "b"}), iter("ab")])
def test_mint_accepts_any_collection_of_rooms(rooms: Any) -> None:
    grant = verify_token(SECRET, mint_token(SECRET, "u", rooms, now=NOW), now=NOW)
    assert grant.rooms == frozenset({"a", "b"})


@pytest.mark.parametrize("user", ["", "a b", "x" * 129])
def test_mint_rejects_bad_user(user: str) -> None:
    with pytest.raises(ValueError, match="a user id of 1-128 characters"):
        mint_token(SECRET, user, ["r"])
