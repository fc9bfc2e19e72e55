"""Frame classes validate themselves on construction (loadtool.protocol._frames)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtool import protocol as p
from loadtool.fuzz import strategies as s
from loadtool.protocol import ErrorCode, ProtocolError, _fields

TS = s.EXAMPLE_TIMESTAMP
MAX_SEQ = 2**53 - 1

# One constructor per frame class with a `room`, taking just the room.
ROOM_FRAMES = [
    lambda room: p.SendMessage(id="m1", room=room, text="t"),
    lambda room: p.Join(room=room),
    lambda room: p.Leave(room=room),
    lambda room: p.HistoryRequest(room=room),
    lambda room: p.Typing(room=room),
    lambda room: p.Joined(room=room, seq=0),
    lambda room: p.Left(room=room),
    lambda room: p.Message(id="m1", room=room, sender_id="u", text="t", sent_at=TS, seq=1),
    lambda room: p.Ack(id="m1", room=room, seq=1),
    lambda room: p.HistoryPage(room=room, messages=[], has_more=False),
    lambda room: p.TypingNotice(room=room, user_id="u", typing=True),
    lambda room: p.Presence(room=room, user_id="u", status="joined"),
]
ROOM_IDS = [
    "SendMessage",
    "Join",
    "Leave",
    "HistoryRequest",
    "Typing",
    "Joined",
    "Left",
    "Message",
    "Ack",
    "HistoryPage",
    "TypingNotice",
    "Presence",
]


def _invalid(make: Any, field: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        make()
    err = info.value
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message.startswith(f"field {field!r} must be ")
    return err


# --- rooms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "room",
    ["", "a b", "x" * 65, "caf\u00e9", "room/1", "room\n", " r", "r!", "r$", "r+1", None, 5,
     ["r"], "\u0661"],
)  # fmt: skip
@pytest.mark.parametrize("make", ROOM_FRAMES, ids=ROOM_IDS)
def test_bad_room_names_rejected(make: Any, room: Any) -> None:
    err = _invalid(lambda: make(room), "room")
    assert "a room name of 1-64 characters from [A-Za-z0-9_.:@#-]" in err.message


@pytest.mark.parametrize("room", ["a", "x" * 64, "A-z_0.9:@#", "#general", "user@host:1"])
@pytest.mark.parametrize("make", ROOM_FRAMES, ids=ROOM_IDS)
def test_good_room_names_accepted(make: Any, room: str) -> None:
    assert make(room).room == room


@given(room=s.room_names())
def test_generated_room_names_are_valid(room: str) -> None:
    assert p.ROOM_PATTERN.fullmatch(room)
    assert p.Join(room=room).room == room


def test_long_value_is_shortened_in_message() -> None:
    err = _invalid(lambda: p.Join(room="y" * 500), "room")
    assert err.message.endswith(", got " + repr("y" * 60 + "..."))
    assert "y" * 61 not in err.message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (5, "5"),
        (-1.5, "-1.5"),
        ("a b", "'a b'"),
        ("!" * 60, repr("!" * 60)),
        ("!" * 61, repr("!" * 60 + "...")),
        ([], "a JSON array"),
        (["r"], "a JSON array"),
        ({}, "a JSON object"),
        ({"room": "r"}, "a JSON object"),
    ],
)
def test_bad_value_is_shown_in_json_terms(value: Any, shown: str) -> None:
    err = _invalid(lambda: p.Join(room=value), "room")
    assert err.message == (
        f"field 'room' must be a room name of 1-64 characters from [A-Za-z0-9_.:@#-], got {shown}"
    )


def test_long_numbers_are_not_silently_cut() -> None:
    assert _fields.show(10**50) in (str(10**50), str(10**50)[:40] + "...")


def test_show_never_recurses_into_containers() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    err = _invalid(lambda: p.Join(room=deep), "room")
    assert err.message.endswith(", got a JSON array")
    assert _fields.show({"k": deep}) == "a JSON object"


# --- message ids ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["", "x" * 129, "a\x00", "\n", "a\tb", "a\u200bb", "\u202e", "a\u2028", "\x7f", None, 1, b"m1"],
)
@pytest.mark.parametrize(
    "make",
    [
        lambda i: p.SendMessage(id=i, room="r", text="t"),
        lambda i: p.Message(id=i, room="r", sender_id="u", text="t", sent_at=TS, seq=1),
        lambda i: p.Ack(id=i, room="r", seq=1),
    ],
    ids=["SendMessage", "Message", "Ack"],
)
def test_bad_message_ids_rejected(make: Any, value: Any) -> None:
    err = _invalid(lambda: make(value), "id")
    assert "a printable string of 1-128 characters" in err.message


@pytest.mark.parametrize(
    "value", ["x", "x" * 128, "a b", "caf\u00e9", "\U0001f600" * 128, "\u05e9\u05dc", " "]
)
def test_good_message_ids_accepted(value: str) -> None:
    assert p.SendMessage(id=value, room="r", text="t").id == value
    assert p.Ack(id=value, room="r", seq=1).id == value


@given(value=s.message_ids())
def test_generated_message_ids_are_valid(value: str) -> None:
    assert 1 <= len(value) <= p.MAX_ID_CHARS
    assert value.isprintable()


# --- user ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "a b", "x" * 129, "r#1", "caf\u00e9", "u/1", None, 7])
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda u: p.Message(id="m", room="r", sender_id=u, text="t", sent_at=TS, seq=1),
         "senderId"),
        (lambda u: p.Presence(room="r", user_id=u, status="left"), "userId"),
        (lambda u: p.TypingNotice(room="r", user_id=u, typing=True), "userId"),
        (lambda u: p.Welcome(user_id=u, rooms=[], heartbeat_ms=1, idle_timeout_ms=1), "userId"),
    ],
    ids=["Message", "Presence", "TypingNotice", "Welcome"],
)  # fmt: skip
def test_bad_user_ids_rejected(make: Any, field: str, value: Any) -> None:
    err = _invalid(lambda: make(value), field)
    assert "a user id of 1-128 characters" in err.message


@pytest.mark.parametrize("value", ["u", "x" * 128, "alice+tag@example.com", "a-b_c.d:e"])
def test_good_user_ids_accepted(value: str) -> None:
    assert p.Presence(room="r", user_id=value, status="joined").user_id == value


@given(value=s.user_ids())
def test_generated_user_ids_are_valid(value: str) -> None:
    assert p.USER_PATTERN.fullmatch(value)


def test_send_message_sender_id_is_free_text() -> None:
    # Seed-dialect senderId is read but never trusted, so any string is kept.
    frame = p.SendMessage(id="m", room="r", text="t", sender_id="not a user id!")
    assert frame.sender_id == "not a user id!"
    _invalid(lambda: p.SendMessage(id="m", room="r", text="t", sender_id=5), "senderId")


# --- seqs -------------------------------------------------------------------------------


SEQ_FIELDS = [
    (lambda v: p.Join(room="r", since=v), "since"),
    (lambda v: p.HistoryRequest(room="r", before=v), "before"),
    (lambda v: p.HistoryRequest(room="r", after=v), "after"),
    (lambda v: p.Joined(room="r", seq=v), "seq"),
    (lambda v: p.Message(id="m", room="r", sender_id="u", text="t", sent_at=TS, seq=v), "seq"),
    (lambda v: p.Ack(id="m", room="r", seq=v), "seq"),
    (lambda v: p.Error(code="rate_limited", message="m", retry_after_ms=v), "retryAfterMs"),
]
SEQ_IDS = ["Join.since", "History.before", "History.after", "Joined", "Message", "Ack", "Error"]


@pytest.mark.parametrize("value", [-1, -(2**63), MAX_SEQ + 1, 2**64, True, False, 1.0, "1"])
@pytest.mark.parametrize(("make", "field"), SEQ_FIELDS, ids=SEQ_IDS)
def test_bad_seqs_rejected(make: Any, field: str, value: Any) -> None:
    err = _invalid(lambda: make(value), field)
    assert err.message.startswith(f"field {field!r} must be an integer from 0 to {MAX_SEQ}")


@pytest.mark.parametrize("value", [0, 1, MAX_SEQ])
@pytest.mark.parametrize(("make", "field"), SEQ_FIELDS, ids=SEQ_IDS)
def test_good_seqs_accepted(make: Any, field: str, value: int) -> None:
    frame = make(value)
    python_name = {"retryAfterMs": "retry_after_ms"}.get(field, field)
    assert getattr(frame, python_name) == value


@given(value=s.seqs())
def test_generated_seqs_are_valid(value: int) -> None:
    assert p.Joined(room="r", seq=value).seq == value


@pytest.mark.parametrize("value", [0, -1, 1001, True, 2.0, "10"])
def test_history_limit_range(value: Any) -> None:
    err = _invalid(lambda: p.HistoryRequest(room="r", limit=value), "limit")
    assert "an integer from 1 to 1000" in err.message


@pytest.mark.parametrize("value", [1, 100, p.MAX_HISTORY_LIMIT])
def test_history_limit_accepted(value: int) -> None:
    assert p.HistoryRequest(room="r", limit=value).limit == value
    assert p.MAX_HISTORY_LIMIT == 1000


def test_history_before_and_after_together_rejected() -> None:
    with pytest.raises(ProtocolError) as info:
        p.HistoryRequest(room="r1", before=5, after=1)
    assert info.value.code is ErrorCode.INVALID_FIELD
    assert info.value.message == "give at most one of 'before' and 'after'"
    assert info.value.room == "r1"


# --- timestamps -------------------------------------------------------------------------


def _message(sent_at: Any) -> p.Message:
    return p.Message(id="m", room="r", sender_id="u", text="t", sent_at=sent_at, seq=1)


def _send(sent_at: Any) -> p.SendMessage:
    return p.SendMessage(id="m", room="r", text="t", sent_at=sent_at)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29T10:00:00.000Z",
        "2026-11-29T10:00:00Z",
        "2026-11-29T10:00:00+00:00",
        "2026-11-29T10:00:00.123456+00:00",
        "2026-11-29T10:00:00.123+00:00",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999Z",
    ],
)
@pytest.mark.parametrize("make", [_message, _send], ids=["Message", "SendMessage"])
def test_utc_timestamps_accepted(make: Any, value: str) -> None:
    assert make(value).sent_at == value


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29T10:00:00",  # naive
        "2026-11-29T10:00:00.000",  # naive
        "2026-11-29T10:00:00+01:00",
        "2026-11-29T10:00:00-05:00",
        "2026-11-29T10:00:00+00:01",
        "2026-11-29T10:00:00+14:00",
        "2026-11-29",  # date only
        "10:00:00Z",  # time only
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "yesterday",
        "",
        "2026-11-29T10:00:00.000000000000000000000000000000000000000000000000000Z",  # > 64 chars
        1764410400,
        1764410400.0,
        None,  # Message.sent_at is required (SendMessage's None means absent, see below)
        True,
    ],
)
def test_non_utc_timestamps_rejected(value: Any) -> None:
    err = _invalid(lambda: _message(value), "sentAt")
    assert "an ISO-8601 UTC time such as '2026-11-29T10:00:00.000Z'" in err.message


def test_send_message_sent_at_is_optional() -> None:
    assert _send(None).sent_at is None
    _invalid(lambda: _send("2026-11-29T10:00:00"), "sentAt")
    _invalid(lambda: _send("2026-11-29T10:00:00+02:00"), "sentAt")


@given(value=s.utc_timestamps())
def test_generated_timestamps_are_valid(value: str) -> None:
    assert _message(value).sent_at == value
    assert value.endswith(("Z", "+00:00"))


@given(value=s.invalid_timestamps())
def test_generated_invalid_timestamps_are_rejected(value: Any) -> None:
    _invalid(lambda: _message(value), "sentAt")


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29x10:00:00Z",
        "2026-11-29\u202e10:00:00Z",
        "2026-11-29\u00e910:00:00Z",
        "2026-11-29 10:00:00Z",
        "2026-11-29_10:00:00Z",
    ],
)
def test_timestamp_separator_must_be_t(value: str) -> None:
    _invalid(lambda: _message(value), "sentAt")


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29t10:00:00z",  # RFC 3339 allows lower-case t and z
        "2026-11-29T10:00Z",  # seconds are optional
        "2026-11-29T10:00:00.1Z",
        "2026-11-29T10:00:00.123456789Z",  # nanoseconds, as Go writes them
        "2026-11-29T10:00:00.123456789+00:00",
    ],
)
def test_rfc3339_variants_accepted(value: str) -> None:
    assert _message(value).sent_at == value
    assert _send(value).sent_at == value


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29T10:00:00-00:00",  # RFC 3339: UTC time, local offset unknown
        "2026-11-29T10:00:00+0000",
        "2026-11-29T10:00:00+00",
        "2026-11-29T10:00:00UTC",
        "2026-11-29T10:00:00.Z",  # empty fraction
        "2026-11-29T10:00:00,000Z",  # comma fraction
        "2026-11-29T10:00:00.1234567890Z",  # 10 fraction digits
        "2026-11-29T10Z",
        "20261129T100000Z",  # ISO 8601 basic format
        "2026-11-29T24:00:00Z",
        "2026-11-29T10:60:00Z",
        "2026-11-29T10:00:60Z",  # leap second
        "0000-01-01T00:00:00Z",
        "2026-11-29T10:00:00Z\n",
        " 2026-11-29T10:00:00Z",
        "\u0662\u0660\u0662\u0666-11-29T10:00:00Z",  # Arabic-Indic digits
        "2026-11-29T1\uff10:00:00Z",  # fullwidth digit
    ],
)
def test_non_rfc3339_timestamps_rejected(value: str) -> None:
    err = _invalid(lambda: _message(value), "sentAt")
    assert err.message.endswith(f", got {value!r}")
    _invalid(lambda: _send(value), "sentAt")


def test_utc_now_iso_is_a_valid_timestamp() -> None:
    now = p.utc_now_iso()
    assert now.endswith("Z")
    assert len(now) == len("2026-11-29T10:00:00.000Z")
    assert _message(now).sent_at == now


# --- text, ts, booleans -----------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 1, b"t", ["t"], "x" * 1_000_001])
def test_text_must_be_a_string_within_hard_cap(value: Any) -> None:
    _invalid(lambda: p.SendMessage(id="m", room="r", text=value), "text")


@pytest.mark.parametrize("value", ["", "x" * 1_000_000, "\x00", "\U0001f600"])
def test_text_accepts_any_string(value: str) -> None:
    assert p.SendMessage(id="m", room="r", text=value).text == value


PING_TS_RULE = "a finite number, null or a string of at most 64"


def _source_of(cls: Any) -> p.Source:
    return p.Source.CLIENT if cls in p.CLIENT_FRAMES.values() else p.Source.SERVER


@pytest.mark.parametrize(
    "value", [None, 0, -1, 1.5, -0.0, 1e308, 5e-324, "", "x" * 64, MAX_SEQ, -MAX_SEQ]
)
@pytest.mark.parametrize("cls", [p.Ping, p.Pong])
def test_ping_ts_accepted(cls: Any, value: Any) -> None:
    frame = cls(ts=value)
    assert frame.ts == value
    assert p.decode(p.encode(frame), source=_source_of(cls)) == frame


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("x" * 65, repr("x" * 60 + "...")),
        (True, "true"),
        (False, "false"),
        ([1], "a JSON array"),
        ({"a": 1}, "a JSON object"),
        (b"1", "b'1'"),
    ],
)
@pytest.mark.parametrize("cls", [p.Ping, p.Pong])
def test_ping_ts_rejected(cls: Any, value: Any, shown: str) -> None:
    err = _invalid(lambda: cls(ts=value), "ts")
    assert err.message == f"field 'ts' must be {PING_TS_RULE}, got {shown}"


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),
        float("-inf"),
        float("nan"),
        MAX_SEQ + 1,
        -MAX_SEQ - 1,
        2**63 - 1,
        2**64,
        -(2**63) - 1,
    ],
)
@pytest.mark.parametrize("cls", [p.Ping, p.Pong])
def test_ping_ts_must_be_json_representable(cls: Any, value: Any) -> None:
    err = _invalid(lambda: cls(ts=value), "ts")
    assert err.message == f"field 'ts' must be {PING_TS_RULE}, got {value!r}"


@pytest.mark.parametrize("value", [1, 0, None, "true"])
def test_booleans_are_strict(value: Any) -> None:
    _invalid(lambda: p.Typing(room="r", typing=value), "typing")
    _invalid(lambda: p.TypingNotice(room="r", user_id="u", typing=value), "typing")
    _invalid(lambda: p.Ack(id="m", room="r", seq=1, duplicate=value), "duplicate")
    _invalid(lambda: p.HistoryPage(room="r", messages=[], has_more=value), "hasMore")


def test_defaults() -> None:
    assert p.Typing(room="r").typing is True
    assert p.Ack(id="m", room="r", seq=1).duplicate is False
    assert p.Ping().ts is None
    assert p.Pong().ts is None
    assert p.Join(room="r").since is None
    req = p.HistoryRequest(room="r")
    assert (req.before, req.after, req.limit) == (None, None, None)
    msg = p.SendMessage(id="m", room="r", text="t")
    assert (msg.sent_at, msg.sender_id) == (None, None)
    err = p.Error(code="bad_json", message="m")
    assert (err.id, err.room, err.retry_after_ms) == (None, None, None)


# --- presence, error --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["joined", "left"])
def test_presence_status_accepted(status: str) -> None:
    assert p.Presence(room="r", user_id="u", status=status).status == status


@pytest.mark.parametrize(
    ("status", "shown"),
    [("online", "'online'"), ("", "''"), ("JOINED", "'JOINED'"), ("join", "'join'"),
     (None, "null"), (1, "1"), (True, "true"), (["joined"], "a JSON array")],
)  # fmt: skip
def test_presence_status_rejected(status: Any, shown: str) -> None:
    err = _invalid(lambda: p.Presence(room="r", user_id="u", status=status), "status")
    assert err.message == f"field 'status' must be one of 'joined', 'left', got {shown}"


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_code_converter_accepts_strings(code: ErrorCode) -> None:
    frame = p.Error(code=code.value, message="m")
    assert frame.code is code
    assert p.Error(code=code, message="m").code is code


def test_error_codes_are_the_documented_set() -> None:
    assert {c.value for c in ErrorCode} == {
        "bad_json", "bad_frame", "unknown_type", "invalid_field", "too_long",
        "unsupported_data", "forbidden", "not_member", "too_many_rooms", "rate_limited",
        "unavailable",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("code", "shown"),
    [("nope", "'nope'"), ("BAD_JSON", "'BAD_JSON'"), ("", "''"), (None, "null"), (1, "1"),
     (True, "true"), ([], "a JSON array"), ({"a": 1}, "a JSON object")],
)  # fmt: skip
def test_error_code_converter_rejects_unknown(code: Any, shown: str) -> None:
    err = _invalid(lambda: p.Error(code=code, message="m"), "code")
    assert err.message == f"field 'code' must be a known error code, got {shown}"


@pytest.mark.parametrize(
    ("value", "shown"), [(5, "5"), (None, "null"), (["m"], "a JSON array"), ("x" * 1001, None)]
)
def test_error_message_must_be_a_bounded_string(value: Any, shown: str | None) -> None:
    err = _invalid(lambda: p.Error(code="bad_json", message=value), "message")
    assert err.message.startswith("field 'message' must be a string of at most 1000 characters")
    assert err.message.endswith(f", got {shown or repr('x' * 60 + '...')}")


@pytest.mark.parametrize("value", ["", "m", "x" * 1000])
def test_error_message_up_to_1000_characters(value: str) -> None:
    assert p.Error(code="bad_json", message=value).message == value


def test_error_echo_fields_take_any_string() -> None:
    # An error echoes whatever id/room could be read, valid or not.
    frame = p.Error(code="invalid_field", message="m", id="", room="not a room!")
    assert (frame.id, frame.room) == ("", "not a room!")
    _invalid(lambda: p.Error(code="bad_json", message="m", id=5), "id")
    _invalid(lambda: p.Error(code="bad_json", message="m", room=["r"]), "room")


def test_close_codes() -> None:
    assert {c.name: c.value for c in p.CloseCode} == {
        "NORMAL": 1000, "GOING_AWAY": 1001, "PROTOCOL_ERROR": 1002, "UNSUPPORTED_DATA": 1003,
        "INVALID_PAYLOAD": 1007, "POLICY_VIOLATION": 1008, "MESSAGE_TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011, "TRY_AGAIN_LATER": 1013, "IDLE_TIMEOUT": 4000,
    }  # fmt: skip


def test_protocol_error_fields() -> None:
    err = ProtocolError(
        ErrorCode.TOO_LONG, "too long", frame_id="m1", room="r1", close_code=p.CloseCode(1009)
    )
    assert isinstance(err, ValueError)
    assert (err.code, err.message, err.frame_id, err.room) == (
        ErrorCode.TOO_LONG, "too long", "m1", "r1"
    )  # fmt: skip
    assert err.close_code is p.CloseCode.MESSAGE_TOO_BIG
    assert str(err) == "too long"
    assert repr(err) == "ProtocolError('too_long', 'too long')"


# --- containers -------------------------------------------------------------------------


def test_history_page_converts_messages_to_tuple() -> None:
    message = p.Message(id="m", room="r", sender_id="u", text="t", sent_at=TS, seq=1)
    page = p.HistoryPage(room="r", messages=[message], has_more=True)
    assert page.messages == (message,)
    assert isinstance(page.messages, tuple)


WELCOME: dict[str, Any] = {"user_id": "u", "rooms": [], "heartbeat_ms": 1, "idle_timeout_ms": 2}


def test_welcome_converts_rooms_and_limits() -> None:
    limits = {"maxTextChars": 4096, "historyPageMax": 100}
    frame = p.Welcome(**{**WELCOME, "rooms": ["a", "b"], "limits": limits})
    assert frame.rooms == ("a", "b")
    assert frame.protocol == 1
    limits["maxTextChars"] = 1
    # Sorted (name, value) pairs: copied, not aliased, and hashable.
    assert frame.limits == (("historyPageMax", 100), ("maxTextChars", 4096))
    assert p.Welcome(**WELCOME).limits == ()


def test_welcome_limits_accept_pairs_and_mappings_alike() -> None:
    from_pairs = p.Welcome(**WELCOME, limits=[("b", 2), ("a", 1)])
    from_dict = p.Welcome(**WELCOME, limits={"a": 1, "b": 2})
    assert from_pairs == from_dict
    assert from_pairs.limits == (("a", 1), ("b", 2))
    assert p.to_wire(from_pairs)["limits"] == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("limits", "name"),
    [({"a": True}, "a"), ({"ok": 1, "b": -1.0}, "b"), ({"a": "1"}, "a"), ({"a": None}, "a"),
     ({"a": [1]}, "a"), ([("z", 1), ("y", False)], "y"), ({"a": float("inf")}, "a")],
)  # fmt: skip
def test_welcome_limits_must_be_non_negative_numbers(limits: Any, name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        p.Welcome(**WELCOME, limits=limits)
    assert info.value.code is ErrorCode.INVALID_FIELD
    assert info.value.message == (
        f"field 'limits' must map names to non-negative numbers ({name!r})"
    )


def test_welcome_limits_may_be_fractional() -> None:
    frame = p.Welcome(**WELCOME, limits={"ratePerSecond": 0.5})
    assert p.to_wire(frame)["limits"] == {"ratePerSecond": 0.5}


def test_welcome_is_hashable_like_every_frozen_frame() -> None:
    frame = p.Welcome(**WELCOME, limits={"maxTextChars": 4096})
    same = p.Welcome(**WELCOME, limits={"maxTextChars": 4096})
    assert hash(frame) == hash(same)
    assert {frame, same} == {frame}


@given(frame=st.one_of(s.client_frames(), s.server_frames()))
def test_every_frame_is_hashable(frame: p.Frame) -> None:
    assert hash(frame) == hash(attrs.evolve(frame))


@pytest.mark.parametrize(
    ("kwargs", "field", "shown"),
    [
        ({"heartbeat_ms": "soon"}, "heartbeatMs", "'soon'"),
        ({"heartbeat_ms": -1}, "heartbeatMs", "-1"),
        ({"heartbeat_ms": 1.0}, "heartbeatMs", "1.0"),
        ({"idle_timeout_ms": None}, "idleTimeoutMs", "null"),
        ({"idle_timeout_ms": MAX_SEQ + 1}, "idleTimeoutMs", str(MAX_SEQ + 1)),
        ({"protocol": True}, "protocol", "true"),
        ({"protocol": "1"}, "protocol", "'1'"),
    ],
)
def test_welcome_validates_its_integers(kwargs: dict[str, Any], field: str, shown: str) -> None:
    err = _invalid(lambda: p.Welcome(**{**WELCOME, **kwargs}), field)
    assert err.message == f"field {field!r} must be a non-negative integer, got {shown}"


@pytest.mark.parametrize(
    "kwargs", [{"heartbeat_ms": 0}, {"idle_timeout_ms": MAX_SEQ}, {"protocol": 0}, {"protocol": 2}]
)
def test_welcome_integers_accepted(kwargs: dict[str, Any]) -> None:
    frame = p.Welcome(**{**WELCOME, **kwargs})
    ((name, value),) = kwargs.items()
    assert getattr(frame, name) == value


@pytest.mark.parametrize("rooms", [[1], [None], "general"])
def test_welcome_validates_its_rooms(rooms: Any) -> None:
    with pytest.raises((ProtocolError, TypeError)):
        p.Welcome(**{**WELCOME, "rooms": rooms})


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_welcome_limit_values_are_json_safe(value: int) -> None:
    with pytest.raises(ProtocolError):
        p.Welcome(**WELCOME, limits={"a": value})


@given(frame=st.one_of(s.client_frames(), s.server_frames()))
def test_frames_are_frozen(frame: p.Frame) -> None:
    name = attrs.fields(type(frame))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(frame, name, None)


@pytest.mark.parametrize("cls", [p.Join, p.Leave, p.Ping, p.Joined, p.Left])
def test_frames_are_keyword_only(cls: Any) -> None:
    with pytest.raises(TypeError):
        cls("r")


@given(frame=st.one_of(s.client_frames(), s.server_frames()))
def test_frames_compare_by_value(frame: p.Frame) -> None:
    copy = attrs.evolve(frame)
    assert copy == frame
    assert copy is not frame
