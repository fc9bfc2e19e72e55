"""The codec: frames <-> JSON text (loadtool.protocol._codec)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtool import protocol as p
from loadtool.fuzz import strategies as s
from loadtool.protocol import ErrorCode, ProtocolError, Source, decode, encode, to_wire

CLIENT_CLASSES = list(p.CLIENT_FRAMES.values())
SERVER_CLASSES = list(p.SERVER_FRAMES.values())
ALL_CLASSES = (*CLIENT_CLASSES, *SERVER_CLASSES)
TS = s.EXAMPLE_TIMESTAMP

# Junk and nested frames build large inputs; the work is in the strategies, not in decode.
junk_settings = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _decode_or_protocol_error(data: str | bytes, source: Source) -> p.Frame | ProtocolError:
    """Decode, allowing only ProtocolError out; check the error is well formed."""
    try:
        frame = decode(data, source=source)
    except ProtocolError as exc:
        err = exc
    else:
        assert isinstance(frame, ALL_CLASSES)
        return frame
    assert isinstance(err.code, ErrorCode)
    assert err.code in {
        ErrorCode.BAD_JSON,
        ErrorCode.BAD_FRAME,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.INVALID_FIELD,
    }
    assert isinstance(err.message, str)
    assert err.message
    assert str(err) == err.message
    assert err.close_code is None
    assert err.frame_id is None or isinstance(err.frame_id, str)
    assert err.room is None or isinstance(err.room, str)
    return err


def _error(data: str | bytes, source: Source = Source.CLIENT) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data, source=source)
    return info.value


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj)


# --- round trip -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLIENT_CLASSES, ids=lambda c: c.__name__)
@junk_settings
@given(data=st.data())
def test_client_frame_round_trip(cls: type[Any], data: st.DataObject) -> None:
    frame = data.draw(s.FRAME_STRATEGIES[cls](), label="frame")
    wire = encode(frame)
    assert isinstance(wire, bytes)
    decoded = decode(wire, source=Source.CLIENT)
    assert type(decoded) is cls
    assert decoded == frame
    assert decode(wire.decode("utf-8"), source=Source.CLIENT) == frame


@pytest.mark.parametrize("cls", SERVER_CLASSES, ids=lambda c: c.__name__)
@junk_settings
@given(data=st.data())
def test_server_frame_round_trip(cls: type[Any], data: st.DataObject) -> None:
    frame = data.draw(s.FRAME_STRATEGIES[cls](), label="frame")
    wire = encode(frame)
    decoded = decode(wire, source=Source.SERVER)
    assert type(decoded) is cls
    assert decoded == frame
    assert decode(wire.decode("utf-8"), source=Source.SERVER) == frame


@junk_settings
@given(frame=st.one_of(s.client_frames(), s.server_frames()))
def test_encoding_is_stable(frame: p.Frame) -> None:
    source = Source.CLIENT if isinstance(frame, tuple(CLIENT_CLASSES)) else Source.SERVER
    wire = encode(frame)
    assert encode(decode(wire, source=source)) == wire


def test_frame_tables_cover_every_type() -> None:
    assert set(p.CLIENT_FRAMES) == {"message", "join", "leave", "history", "ping", "typing"}
    assert set(p.SERVER_FRAMES) == {
        "welcome",
        "joined",
        "left",
        "message",
        "ack",
        "history",
        "pong",
        "typing",
        "presence",
        "error",
    }
    assert set(s.FRAME_STRATEGIES) == set(ALL_CLASSES)


@pytest.mark.parametrize(
    ("kind", "client_cls", "server_cls"),
    [
        ("message", p.SendMessage, p.Message),
        ("history", p.HistoryRequest, p.HistoryPage),
        ("typing", p.Typing, p.TypingNotice),
    ],
)
def test_same_type_means_different_frames_per_source(
    kind: str, client_cls: type[Any], server_cls: type[Any]
) -> None:
    assert p.CLIENT_FRAMES[kind] is client_cls
    assert p.SERVER_FRAMES[kind] is server_cls


def test_typing_decodes_per_source() -> None:
    assert decode(b'{"type":"typing","room":"r"}') == p.Typing(room="r", typing=True)
    notice = decode(
        b'{"type":"typing","room":"r","userId":"u","typing":false}', source=Source.SERVER
    )
    assert notice == p.TypingNotice(room="r", user_id="u", typing=False)


# --- robustness: decode raises nothing but ProtocolError -------------------------------


@pytest.mark.parametrize("source", list(Source))
@given(data=st.binary())
def test_decode_arbitrary_bytes(source: Source, data: bytes) -> None:
    _decode_or_protocol_error(data, source)


@pytest.mark.parametrize("source", list(Source))
@given(data=st.text())
def test_decode_arbitrary_text(source: Source, data: str) -> None:
    _decode_or_protocol_error(data, source)


@pytest.mark.parametrize("source", list(Source))
@given(value=s.json_values())
def test_decode_arbitrary_json(source: Source, value: Any) -> None:
    result = _decode_or_protocol_error(orjson.dumps(value), source)
    if not isinstance(value, dict):
        assert isinstance(result, ProtocolError)
        assert result.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize("source", list(Source))
@junk_settings
@given(data=st.data())
def test_decode_junk_inputs(source: Source, data: st.DataObject) -> None:
    # Nesting inside a field goes up to orjson's limit.
    depth = 1023
    raw = data.draw(s.decode_inputs(source=source, max_field_depth=depth), label="input")
    _decode_or_protocol_error(raw, source)


@pytest.mark.parametrize("source", list(Source))
@junk_settings
@given(data=st.data())
def test_decode_malformed_objects(source: Source, data: st.DataObject) -> None:
    obj = data.draw(s.malformed_frame_objects(source=source), label="obj")
    result = _decode_or_protocol_error(orjson.dumps(obj), source)
    if isinstance(result, ProtocolError):
        # The type is always a known one: only the fields can be wrong.
        assert result.code is ErrorCode.INVALID_FIELD


@junk_settings
@given(raw=s.non_json_inputs())
def test_non_json_is_bad_json(raw: str | bytes) -> None:
    err = _error(raw)
    assert err.code is ErrorCode.BAD_JSON
    assert err.message.startswith("not valid JSON")


@pytest.mark.parametrize("source", list(Source))
@junk_settings
@given(data=st.data())
def test_decode_odd_unicode(source: Source, data: st.DataObject) -> None:
    raw = data.draw(s.odd_unicode_json_texts(source=source), label="raw")
    result = _decode_or_protocol_error(raw, source)
    if not isinstance(result, ProtocolError):
        # Whatever decodes must encode again: no lone surrogate got through.
        assert decode(encode(result), source=source) == result


@junk_settings
@given(raw=s.huge_int_json_texts(source=Source.CLIENT))
def test_decode_huge_ints_client(raw: str) -> None:
    _decode_or_protocol_error(raw, Source.CLIENT)


@junk_settings
@given(raw=s.huge_int_json_texts(source=Source.SERVER))
def test_decode_huge_ints_server(raw: str) -> None:
    _decode_or_protocol_error(raw, Source.SERVER)


@junk_settings
@given(raw=s.deeply_nested_json_texts(in_field=False))
def test_deep_nesting_at_top_level(raw: str) -> None:
    err = _error(raw)
    # Past orjson's depth limit the text is refused; below it, it is a list or an object.
    assert err.code in {ErrorCode.BAD_JSON, ErrorCode.BAD_FRAME}


@pytest.mark.parametrize("depth", [1025, 5000])
def test_deep_nesting_past_parser_limit_is_bad_json(depth: int) -> None:
    err = _error(b'{"type":"join","room":' + b"[" * depth + b"]" * depth + b"}")
    assert err.code is ErrorCode.BAD_JSON


@pytest.mark.parametrize(
    ("source", "template", "field"),
    [
        (Source.CLIENT, '{"type":"join","room":%s}', "room"),
        (Source.CLIENT, '{"type":"ping","ts":%s}', "ts"),
        (Source.CLIENT, '{"type":"message","id":"m1","room":"r1","text":%s}', "text"),
        (Source.SERVER, '{"type":"error","code":"bad_json","message":%s}', "message"),
        (Source.SERVER, '{"type":"error","code":%s,"message":"m"}', "code"),
        (Source.SERVER, '{"type":"presence","room":"r1","userId":"u","status":%s}', "status"),
    ],
)
@pytest.mark.parametrize(
    ("kind", "opener", "leaf", "closer"), [("array", "[", "", "]"), ("object", '{"a":', "1", "}")]
)
def test_deep_nesting_inside_a_field_is_a_protocol_error(
    source: Source, template: str, field: str, kind: str, opener: str, leaf: str, closer: str
) -> None:
    depth = 1020
    raw = template % (opener * depth + leaf + closer * depth)
    assert len(raw) < 64 * 1024  # fits easily in one allowed WebSocket message
    err = _error(raw, source)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message.startswith(f"field {field!r} must be ")
    assert err.message.endswith(f", got a JSON {kind}")


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"message","id":"m","room":"r","text":"\\ud800"}',
        '{"type":"message","id":"m","room":"r","text":"\\udfff"}',
        '{"type":"message","id":"m","room":"r","text":"\\udc00\\ud800"}',
        '{"type":"message","id":"\\ud800","room":"r","text":"x"}',
    ],
)
def test_escaped_lone_surrogates_are_bad_json(raw: str) -> None:
    assert _error(raw).code is ErrorCode.BAD_JSON


def test_escaped_surrogate_pair_is_decoded() -> None:
    frame = decode('{"type":"message","id":"m","room":"r","text":"\\ud83d\\ude00"}')
    assert frame == p.SendMessage(id="m", room="r", text="\U0001f600")


def test_str_with_raw_lone_surrogate_is_bad_json() -> None:
    assert _error('{"type":"ping","ts":"\ud800"}').code is ErrorCode.BAD_JSON


def test_odd_unicode_in_text_survives() -> None:
    text = "".join(s.ODD_CHARACTERS)
    frame = p.SendMessage(id="m\u05e9\U0001f600", room="r", text=text)
    assert decode(encode(frame)) == frame
    wire = encode(frame)
    for char in ("\u202e", "\u200b", "\ufeff", "\U0001f600", "\U0010ffff", "\ufdfd"):
        assert char.encode() in wire  # raw UTF-8, not \u escapes
    assert b"\\u0000" in wire  # control characters must be escaped in JSON


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type":"ping","ts":9007199254740991}', 2**53 - 1),
        ('{"type":"ping","ts":-9007199254740991}', -(2**53 - 1)),
        ('{"type":"ping","ts":1e308}', 1e308),
        ('{"type":"ping","ts":9007199254740993.0}', 9007199254740992.0),  # floats: any finite
    ],
)
def test_big_numbers_in_ping_ts(raw: str, expected: float) -> None:
    frame = decode(raw)
    assert frame == p.Ping(ts=expected)
    assert type(frame.ts) is type(expected)


@pytest.mark.parametrize(
    "number",
    ["9007199254740992", "-9007199254740992", "18446744073709551615", "-9223372036854775808"],
)
@pytest.mark.parametrize(("source", "kind"), [(Source.CLIENT, "ping"), (Source.SERVER, "pong")])
def test_ping_ts_integers_past_2_53_are_refused(source: Source, kind: str, number: str) -> None:
    err = _error(f'{{"type":"{kind}","id":"p1","ts":{number}}}', source)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message == (
        f"field 'ts' must be a finite number, null or a string of at most 64, got {number}"
    )
    assert err.frame_id == "p1"


@pytest.mark.parametrize(
    "number", [str(2**53), str(2**64), "1" + "0" * 30, "1e20", "-1", "1.0", "1e400"]
)
@pytest.mark.parametrize("field", ["since", "before", "after"])
def test_seq_out_of_range_is_refused(field: str, number: str) -> None:
    kind = "join" if field == "since" else "history"
    err = _error(f'{{"type":"{kind}","room":"r","{field}":{number}}}')
    if number == "1e400":
        assert err.code is ErrorCode.BAD_JSON  # infinity cannot be read
    else:
        assert err.code is ErrorCode.INVALID_FIELD
        assert f"field {field!r}" in err.message
        assert err.room == "r"


def test_largest_seq_is_accepted() -> None:
    assert decode('{"type":"join","room":"r","since":9007199254740991}') == p.Join(
        room="r", since=2**53 - 1
    )


# --- specific errors --------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", "{'type':'ping'}", "NaN"])
def test_bad_json(raw: str | bytes) -> None:
    err = _error(raw)
    assert err.code is ErrorCode.BAD_JSON
    assert err.message.startswith("not valid JSON: ")
    assert err.frame_id is None
    assert err.room is None


@pytest.mark.parametrize(
    ("raw", "type_name"),
    [("[]", "list"), ("1", "int"), ("1.5", "float"), ('"ping"', "str"), ("true", "bool"),
     ("null", "NoneType"), ('[{"type":"ping"}]', "list")],
)  # fmt: skip
@pytest.mark.parametrize("source", list(Source))
def test_bad_frame_not_an_object(source: Source, raw: str, type_name: str) -> None:
    err = _error(raw, source)
    assert err.code is ErrorCode.BAD_FRAME
    assert err.message == f"a frame must be a JSON object, got {type_name}"


def test_bad_frame_missing_type() -> None:
    err = _error(b'{"id":"m1","room":"r1","text":"hi"}')
    assert err.code is ErrorCode.BAD_FRAME
    assert "missing 'type'" in err.message
    assert err.message.endswith("missing senderId, sentAt)")
    assert (err.frame_id, err.room) == ("m1", "r1")


def test_bad_frame_empty_object() -> None:
    err = _error(b"{}")
    assert err.code is ErrorCode.BAD_FRAME
    assert err.message.endswith("missing id, room, senderId, text, sentAt)")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1, "1"), (1.5, "1.5"), (["ping"], "a JSON array"), ({"ping": 1}, "a JSON object"),
     (True, "true"), (False, "false")],
)  # fmt: skip
@pytest.mark.parametrize("source", list(Source))
def test_bad_frame_type_not_a_string(source: Source, value: Any, shown: str) -> None:
    err = _error(_json({"type": value}), source)
    assert err.code is ErrorCode.BAD_FRAME
    assert err.message == f"'type' must be a string, got {shown}"


@pytest.mark.parametrize("value", [5, None, ["message"]])
@pytest.mark.parametrize("source", list(Source))
def test_bad_frame_type_not_a_string_echoes_id_and_room(source: Source, value: Any) -> None:
    err = _error(_json({"type": value, "id": "m1", "room": "r1"}), source)
    assert err.code is ErrorCode.BAD_FRAME
    assert (err.frame_id, err.room) == ("m1", "r1")


@pytest.mark.parametrize(
    ("source", "kind", "known"),
    [
        (Source.CLIENT, "welcome", "history, join, leave, message, ping, typing"),
        (Source.CLIENT, "pong", "history, join, leave, message, ping, typing"),
        (Source.CLIENT, "", "history, join, leave, message, ping, typing"),
        (Source.CLIENT, "Message", "history, join, leave, message, ping, typing"),
        (
            Source.SERVER,
            "join",
            "ack, error, history, joined, left, message, pong, presence, typing, welcome",
        ),
    ],
)
def test_unknown_type(source: Source, kind: str, known: str) -> None:
    err = _error(_json({"type": kind, "id": "m1", "room": "r1"}), source)
    assert err.code is ErrorCode.UNKNOWN_TYPE
    assert err.message == f"unknown frame type {kind!r}; a {source.value} may send: {known}"
    assert (err.frame_id, err.room) == ("m1", "r1")


def test_unknown_type_name_is_shortened() -> None:
    err = _error(_json({"type": "x" * 500}))
    assert err.code is ErrorCode.UNKNOWN_TYPE
    assert repr("x" * 37 + "...") in err.message
    assert "x" * 41 not in err.message


@pytest.mark.parametrize(
    ("source", "obj", "missing"),
    [
        (Source.CLIENT, {"type": "join"}, "room"),
        (Source.CLIENT, {"type": "leave"}, "room"),
        (Source.CLIENT, {"type": "history"}, "room"),
        (Source.CLIENT, {"type": "typing"}, "room"),
        (Source.CLIENT, {"type": "message", "room": "r1", "text": "t"}, "id"),
        (Source.CLIENT, {"type": "message", "id": "m1", "room": "r1"}, "text"),
        (Source.SERVER, {"type": "message", "id": "m1", "room": "r1", "text": "t"}, "senderId"),
        (
            Source.SERVER,
            {"type": "message", "id": "m1", "room": "r1", "text": "t", "senderId": "u"},
            "sentAt",
        ),
        (Source.SERVER, {"type": "joined", "room": "r1"}, "seq"),
        (Source.SERVER, {"type": "ack", "id": "m1", "room": "r1"}, "seq"),
        (Source.SERVER, {"type": "history", "room": "r1", "messages": []}, "hasMore"),
        (Source.SERVER, {"type": "welcome", "rooms": []}, "userId"),
        (Source.SERVER, {"type": "welcome", "userId": "u", "rooms": []}, "heartbeatMs"),
        (Source.SERVER, {"type": "typing", "room": "r1", "typing": True}, "userId"),
        (Source.SERVER, {"type": "presence", "room": "r1", "userId": "u"}, "status"),
        (Source.SERVER, {"type": "error", "message": "m"}, "code"),
        (Source.SERVER, {"type": "error", "code": "bad_json"}, "message"),
    ],
)
def test_invalid_field_missing(source: Source, obj: dict[str, Any], missing: str) -> None:
    err = _error(_json(obj), source)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message == f"{obj['type']!r} frame is missing field {missing!r}"
    assert err.frame_id == obj.get("id")
    assert err.room == obj.get("room")


@pytest.mark.parametrize(
    ("source", "obj", "field", "shown"),
    [
        (Source.CLIENT, {"type": "join", "room": 5}, "room", "5"),
        (Source.CLIENT, {"type": "join", "room": "no spaces"}, "room", "'no spaces'"),
        (Source.CLIENT, {"type": "join", "room": "r1", "since": "3"}, "since", "'3'"),
        (Source.CLIENT, {"type": "join", "room": "r1", "since": -1}, "since", "-1"),
        (Source.CLIENT, {"type": "join", "room": "r1", "since": 1.0}, "since", "1.0"),
        (Source.CLIENT, {"type": "history", "room": "r1", "limit": 0}, "limit", "0"),
        (Source.CLIENT, {"type": "history", "room": "r1", "limit": 1001}, "limit", "1001"),
        (Source.CLIENT, {"type": "history", "room": "r1", "before": None, "after": "x"},
         "after", "'x'"),
        (Source.CLIENT, {"type": "message", "id": "", "room": "r1", "text": "t"}, "id", "''"),
        (Source.CLIENT, {"type": "message", "id": "m1", "room": "r1", "text": 7}, "text", "7"),
        (Source.CLIENT, {"type": "message", "id": "m1", "room": "r1", "text": "t",
                         "sentAt": "2026-11-29T10:00:00"}, "sentAt", "'2026-11-29T10:00:00'"),
        (Source.CLIENT, {"type": "message", "id": "m1", "room": "r1", "text": "t",
                         "senderId": 9}, "senderId", "9"),
        (Source.CLIENT, {"type": "typing", "room": "r1", "typing": "yes"}, "typing", "'yes'"),
        (Source.CLIENT, {"type": "typing", "room": "r1", "typing": 1}, "typing", "1"),
        (Source.CLIENT, {"type": "ping", "ts": [1]}, "ts", "a JSON array"),
        (Source.CLIENT, {"type": "ping", "ts": {"a": 1}}, "ts", "a JSON object"),
        (Source.CLIENT, {"type": "ping", "ts": "x" * 65}, "ts", repr("x" * 60 + "...")),
        (Source.CLIENT, {"type": "ping", "ts": True}, "ts", "true"),
        (Source.CLIENT, {"type": "join", "room": None}, "room", "null"),
        (Source.CLIENT, {"type": "join", "room": False}, "room", "false"),
        (Source.SERVER, {"type": "joined", "room": "r1", "seq": "1"}, "seq", "'1'"),
        (Source.SERVER, {"type": "ack", "id": "m1", "room": "r1", "seq": 1, "duplicate": 1},
         "duplicate", "1"),
        (Source.SERVER, {"type": "history", "room": "r1", "messages": [], "hasMore": "no"},
         "hasMore", "'no'"),
        (Source.SERVER, {"type": "presence", "room": "r1", "userId": "a b", "status": "left"},
         "userId", "'a b'"),
        (Source.SERVER, {"type": "error", "code": "rate_limited", "message": "m",
                         "retryAfterMs": -5}, "retryAfterMs", "-5"),
    ],
)  # fmt: skip
def test_invalid_field_wrong_type_or_range(
    source: Source, obj: dict[str, Any], field: str, shown: str
) -> None:
    err = _error(_json(obj), source)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message.startswith(f"field {field!r} must be ")
    assert err.message.endswith(f", got {shown}")
    assert err.frame_id == (obj.get("id") if isinstance(obj.get("id"), str) else None)
    assert err.room == (obj["room"] if isinstance(obj.get("room"), str) else None)


@pytest.mark.parametrize(
    ("source", "obj", "field"),
    [
        (Source.CLIENT, {"type": "join", "room": "r1", "since": True}, "since"),
        (Source.CLIENT, {"type": "join", "room": "r1", "since": False}, "since"),
        (Source.CLIENT, {"type": "history", "room": "r1", "before": True}, "before"),
        (Source.CLIENT, {"type": "history", "room": "r1", "after": False}, "after"),
        (Source.CLIENT, {"type": "history", "room": "r1", "limit": True}, "limit"),
        (Source.SERVER, {"type": "joined", "room": "r1", "seq": True}, "seq"),
        (Source.SERVER, {"type": "ack", "id": "m1", "room": "r1", "seq": False}, "seq"),
        (
            Source.SERVER,
            {"type": "error", "code": "rate_limited", "message": "m", "retryAfterMs": True},
            "retryAfterMs",
        ),
    ],
)
def test_invalid_field_bool_where_int_expected(
    source: Source, obj: dict[str, Any], field: str
) -> None:
    err = _error(_json(obj), source)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message.startswith(f"field {field!r} must be an integer")
    assert err.message.endswith(", got true" if obj[field] else ", got false")


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "history", "room": "r1", "before": 5, "after": 1},
        {"type": "history", "room": "r1", "before": 0, "after": 0, "limit": 10},
    ],
)
def test_invalid_field_both_before_and_after(obj: dict[str, Any]) -> None:
    err = _error(_json(obj))
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message == "give at most one of 'before' and 'after'"
    assert err.room == "r1"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"type": "history", "room": "r1", "messages": {}, "hasMore": False},
         "field 'messages' must be a list"),
        ({"type": "history", "room": "r1", "messages": [1], "hasMore": False},
         "'messages' items must be objects"),
        ({"type": "history", "room": "r1", "hasMore": False,
          "messages": [{"id": "m1", "room": "r1", "senderId": "u", "text": "t", "sentAt": TS}]},
         "'message' frame is missing field 'seq'"),
        ({"type": "welcome", "userId": "u", "rooms": "r1", "heartbeatMs": 1, "idleTimeoutMs": 1},
         "field 'rooms' must be a list of strings"),
        ({"type": "welcome", "userId": "u", "rooms": [1], "heartbeatMs": 1, "idleTimeoutMs": 1},
         "field 'rooms' must be a list of strings"),
        ({"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1,
          "limits": {"a": True}}, "field 'limits' must map names to non-negative numbers ('a')"),
        ({"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1,
          "limits": {"ok": 1, "b": -1}},
         "field 'limits' must map names to non-negative numbers ('b')"),
        ({"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1,
          "limits": {"a": None}}, "field 'limits' must map names to non-negative numbers ('a')"),
        ({"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1,
          "limits": [1]}, "field 'limits' must be a JSON object"),
        ({"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1,
          "limits": [["a", 1]]}, "field 'limits' must be a JSON object"),
        ({"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1,
          "limits": None}, "field 'limits' must be a JSON object"),
        ({"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1,
          "limits": "maxTextChars"}, "field 'limits' must be a JSON object"),
    ],
)  # fmt: skip
def test_invalid_field_server_containers(obj: dict[str, Any], message: str) -> None:
    err = _error(_json(obj), Source.SERVER)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message == message


def test_nested_message_error_echoes_its_id_and_room() -> None:
    bad = {"id": "m7", "room": "r1", "senderId": "u", "text": "t", "sentAt": TS, "seq": -1}
    err = _error(_json({"type": "history", "room": "r1", "messages": [bad], "hasMore": False}),
                 Source.SERVER)  # fmt: skip
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message.startswith("field 'seq' must be")
    assert (err.frame_id, err.room) == ("m7", "r1")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"type": "presence", "room": "r1", "userId": "u", "status": "online"},
         "field 'status' must be one of 'joined', 'left', got 'online'"),
        ({"type": "presence", "room": "r1", "userId": "u", "status": None},
         "field 'status' must be one of 'joined', 'left', got null"),
        ({"type": "error", "code": "bad_json", "message": 5},
         "field 'message' must be a string of at most 1000 characters, got 5"),
        ({"type": "error", "code": "bad_json", "message": "x" * 1001},
         "field 'message' must be a string of at most 1000 characters, got "
         + repr("x" * 60 + "...")),
    ],
)  # fmt: skip
def test_invalid_field_from_frame_validators(obj: dict[str, Any], message: str) -> None:
    err = _error(_json(obj), Source.SERVER)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message == message
    assert err.room == obj.get("room")


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "presence", "room": "r1", "userId": "u", "status": "online"},
        {"type": "presence", "room": "r1", "userId": "u", "status": "x" * 100_000},
        {"type": "error", "code": "bad_json", "message": list(range(5000))},
        {"type": "error", "code": "x" * 100_000, "message": "m"},
        {"type": "error", "code": {str(i): i for i in range(5000)}, "message": "m"},
        {"type": "pong", "ts": [{"a": list(range(100))}] * 50},
    ],
)
def test_validator_errors_are_clean_and_bounded(obj: dict[str, Any]) -> None:
    err = _error(_json(obj), Source.SERVER)
    assert err.code is ErrorCode.INVALID_FIELD
    assert "Attribute(" not in err.message
    assert len(err.message) <= 300


@pytest.mark.parametrize(
    ("raw_code", "shown"),
    [('"nope"', "'nope'"), ('"BAD_JSON"', "'BAD_JSON'"), ('""', "''"), ("null", "null"),
     ("1", "1"), ("true", "true"), ("[]", "a JSON array"), ('{"a":1}', "a JSON object")],
)  # fmt: skip
def test_invalid_error_code(raw_code: str, shown: str) -> None:
    raw = f'{{"type":"error","code":{raw_code},"message":"m","id":"m1","room":"r1"}}'
    err = _error(raw, Source.SERVER)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message == f"field 'code' must be a known error code, got {shown}"
    assert (err.frame_id, err.room) == ("m1", "r1")


WELCOME_OBJ: dict[str, Any] = {
    "type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 1, "idleTimeoutMs": 1
}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "shown"),
    [("soon", "'soon'"), (-1, "-1"), (1.0, "1.0"), (True, "true"), (None, "null"),
     (2**53, str(2**53)), ([1], "a JSON array")],
)  # fmt: skip
@pytest.mark.parametrize("field", ["heartbeatMs", "idleTimeoutMs", "protocol"])
def test_welcome_integer_fields_refused(field: str, value: Any, shown: str) -> None:
    err = _error(_json({**WELCOME_OBJ, field: value}), Source.SERVER)
    assert err.code is ErrorCode.INVALID_FIELD
    # Named by the wire field, not the Python attribute (heartbeat_ms, idle_timeout_ms).
    assert err.message == f"field {field!r} must be a non-negative integer, got {shown}"


@pytest.mark.parametrize("field", ["heartbeatMs", "idleTimeoutMs", "protocol"])
def test_welcome_integer_fields_accept_zero_and_max(field: str) -> None:
    for value in (0, 2**53 - 1):
        frame = decode(_json({**WELCOME_OBJ, field: value}), source=Source.SERVER)
        assert to_wire(frame)[field] == value


def test_welcome_limits_decode_to_sorted_pairs_and_encode_as_an_object() -> None:
    limits = {"rateBurst": 40, "maxTextChars": 4096, "historyPageMax": 100}
    frame = decode(_json({**WELCOME_OBJ, "limits": limits}), source=Source.SERVER)
    assert isinstance(frame, p.Welcome)
    assert frame.limits == (("historyPageMax", 100), ("maxTextChars", 4096), ("rateBurst", 40))
    assert to_wire(frame)["limits"] == limits
    assert orjson.loads(encode(frame))["limits"] == limits
    assert hash(frame) == hash(decode(encode(frame), source=Source.SERVER))


def test_welcome_defaults() -> None:
    frame = decode(
        b'{"type":"welcome","userId":"u","rooms":["a","b"],"heartbeatMs":20000,'
        b'"idleTimeoutMs":60000}',
        source=Source.SERVER,
    )
    assert frame == p.Welcome(
        user_id="u", rooms=("a", "b"), heartbeat_ms=20000, idle_timeout_ms=60000
    )
    assert isinstance(frame, p.Welcome)
    assert frame.protocol == p.PROTOCOL_VERSION == 1
    assert frame.limits == ()
    assert to_wire(frame)["limits"] == {}


@pytest.mark.parametrize(
    ("obj", "frame_id", "room"),
    [
        ({"type": "message", "id": "m1", "room": "r1", "text": 5}, "m1", "r1"),
        ({"type": "message", "id": "m1", "room": 7, "text": "t"}, "m1", None),
        ({"type": "message", "id": 3, "room": "r1", "text": "t"}, None, "r1"),
        ({"type": "message", "id": "m" * 200, "room": "bad room", "text": "t"}, "m" * 200,
         "bad room"),
        ({"type": "nope", "id": "m1", "room": "r1"}, "m1", "r1"),
        ({"id": "m1", "room": "r1"}, "m1", "r1"),
        ({"type": "join", "room": "r1", "since": -1}, None, "r1"),
        ({"type": "ping", "id": "p1", "ts": {}}, "p1", None),
    ],
)  # fmt: skip
def test_error_echoes_readable_id_and_room(
    obj: dict[str, Any], frame_id: str | None, room: str | None
) -> None:
    err = _error(_json(obj))
    assert err.frame_id == frame_id
    assert err.room == room


def test_server_frames_are_unknown_to_client_and_vice_versa() -> None:
    ack = encode(p.Ack(id="m1", room="r1", seq=1))
    assert _error(ack, Source.CLIENT).code is ErrorCode.UNKNOWN_TYPE
    leave = encode(p.Leave(room="r1"))
    assert _error(leave, Source.SERVER).code is ErrorCode.UNKNOWN_TYPE
    # Same type name, other direction: a client message lacks senderId/sentAt/seq.
    err = _error(encode(p.SendMessage(id="m1", room="r1", text="t")), Source.SERVER)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message == "'message' frame is missing field 'senderId'"


def test_decode_default_source_is_client() -> None:
    assert decode(b'{"type":"message","id":"m1","room":"r1","text":"t"}') == p.SendMessage(
        id="m1", room="r1", text="t"
    )


def test_decode_object_matches_decode() -> None:
    obj = {"type": "join", "room": "r1", "since": 3}
    assert p.decode_object(obj) == decode(_json(obj)) == p.Join(room="r1", since=3)


# --- seed dialect -----------------------------------------------------------------------


def test_seed_dialect_example() -> None:
    raw = (
        b'{"id":"m1","room":"general","senderId":"alice","text":"hi",'
        b'"sentAt":"2026-11-29T10:00:00.000Z"}'
    )
    assert decode(raw) == p.SendMessage(
        id="m1", room="general", text="hi", sent_at="2026-11-29T10:00:00.000Z", sender_id="alice"
    )
    assert p.SEED_FIELDS == ("id", "room", "senderId", "text", "sentAt")


@given(obj=s.seed_dialect_objects())
def test_seed_dialect_decodes_to_send_message(obj: dict[str, Any]) -> None:
    frame = decode(orjson.dumps(obj))
    assert frame == p.SendMessage(
        id=obj["id"],
        room=obj["room"],
        text=obj["text"],
        sent_at=obj["sentAt"],
        sender_id=obj["senderId"],
    )


@junk_settings
@given(obj=s.seed_dialect_objects(), extra=st.dictionaries(st.text(max_size=8), s.json_values()))
def test_seed_dialect_ignores_unknown_fields(obj: dict[str, Any], extra: dict[str, Any]) -> None:
    extra = {k: v for k, v in extra.items() if k not in obj and k != "type"}
    assert decode(orjson.dumps({**extra, **obj})) == decode(orjson.dumps(obj))


def test_null_type_is_an_absent_type() -> None:
    # `"type": null` reads as no type (§3.1): the seed dialect from a client...
    obj = {"type": None, "id": "m1", "room": "r1", "senderId": "u", "text": "t", "sentAt": TS}
    assert decode(_json(obj)) == decode(_json({k: v for k, v in obj.items() if k != "type"}))
    # ...and a frame with no type from a server.
    err = _error(_json(obj), Source.SERVER)
    assert err.code is ErrorCode.BAD_FRAME
    assert err.message == "missing 'type'"
    assert (err.frame_id, err.room) == ("m1", "r1")


@pytest.mark.parametrize("dropped", p.SEED_FIELDS)
def test_seed_dialect_missing_field_is_bad_frame(dropped: str) -> None:
    obj = {"id": "m1", "room": "r1", "senderId": "u", "text": "t", "sentAt": TS}
    del obj[dropped]
    err = _error(_json(obj))
    assert err.code is ErrorCode.BAD_FRAME
    assert err.message.endswith(f"missing {dropped})")


@pytest.mark.parametrize(
    ("field", "value", "wire"),
    [("sentAt", "yesterday", "sentAt"), ("room", "#not ok", "room"), ("id", "", "id"),
     ("text", None, "text"), ("sentAt", "2026-11-29T10:00:00+01:00", "sentAt")],
)  # fmt: skip
def test_seed_dialect_invalid_field(field: str, value: Any, wire: str) -> None:
    obj = {"id": "m1", "room": "r1", "senderId": "u", "text": "t", "sentAt": TS, field: value}
    err = _error(_json(obj))
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message.startswith(f"field {wire!r} must be")


def test_seed_dialect_null_sent_at_is_absent() -> None:
    obj = {"id": "m1", "room": "r1", "senderId": "u", "text": "t", "sentAt": None}
    frame = decode(_json(obj))
    assert frame == p.SendMessage(id="m1", room="r1", text="t", sender_id="u")


@pytest.mark.parametrize(
    "obj",
    [
        {"id": "m1", "room": "r1", "senderId": "u", "text": "t", "sentAt": TS},
        {"id": "m1", "room": "r1", "senderId": "u", "text": "t", "sentAt": TS, "seq": 1},
        {"id": "m1", "room": "r1"},
    ],
)
def test_seed_dialect_only_from_clients(obj: dict[str, Any]) -> None:
    err = _error(_json(obj), Source.SERVER)
    assert err.code is ErrorCode.BAD_FRAME
    assert err.message == "missing 'type'"
    assert (err.frame_id, err.room) == ("m1", "r1")


def test_typeless_empty_object_from_server() -> None:
    err = _error(b"{}", Source.SERVER)
    assert err.code is ErrorCode.BAD_FRAME
    assert err.message == "missing 'type'"
    assert (err.frame_id, err.room) == (None, None)


# --- unknown fields ---------------------------------------------------------------------


@junk_settings
@given(
    frame=st.one_of(s.client_frames(), s.server_frames()),
    extra=st.dictionaries(st.text(max_size=12), s.json_values(), min_size=1, max_size=5),
)
def test_unknown_fields_are_ignored(frame: p.Frame, extra: dict[str, Any]) -> None:
    source = Source.CLIENT if isinstance(frame, tuple(CLIENT_CLASSES)) else Source.SERVER
    obj = to_wire(frame)
    known = {a.metadata.get("wire", a.name) for a in type(frame).__attrs_attrs__} | {"type"}
    obj.update({k: v for k, v in extra.items() if k not in known})
    assert decode(orjson.dumps(obj), source=source) == frame


def test_unknown_fields_example() -> None:
    raw = b'{"type":"join","room":"r1","since":2,"priority":"high","v":[1,{"x":null}]}'
    assert decode(raw) == p.Join(room="r1", since=2)


def test_snake_case_names_are_not_wire_names() -> None:
    # `sent_at` is unknown on the wire (ignored), `sentAt` is the field.
    frame = decode(b'{"type":"message","id":"m1","room":"r1","text":"t","sent_at":"x"}')
    assert frame == p.SendMessage(id="m1", room="r1", text="t")
    err = _error(b'{"type":"joined","room":"r1","Seq":1}', Source.SERVER)
    assert err.message == "'joined' frame is missing field 'seq'"


# --- to_wire / encode -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "wire"),
    [
        (p.SendMessage(id="m1", room="r1", text="t"),
         {"type": "message", "id": "m1", "room": "r1", "text": "t"}),
        (p.SendMessage(id="m1", room="r1", text="t", sent_at=TS, sender_id="u"),
         {"type": "message", "id": "m1", "room": "r1", "text": "t", "sentAt": TS,
          "senderId": "u"}),
        (p.Join(room="r1"), {"type": "join", "room": "r1"}),
        (p.Join(room="r1", since=0), {"type": "join", "room": "r1", "since": 0}),
        (p.Leave(room="r1"), {"type": "leave", "room": "r1"}),
        (p.HistoryRequest(room="r1"), {"type": "history", "room": "r1"}),
        (p.HistoryRequest(room="r1", after=4, limit=10),
         {"type": "history", "room": "r1", "after": 4, "limit": 10}),
        (p.Ping(), {"type": "ping"}),
        (p.Ping(ts="t1"), {"type": "ping", "ts": "t1"}),
        (p.Typing(room="r1"), {"type": "typing", "room": "r1", "typing": True}),
        (p.Welcome(user_id="u", rooms=["a"], heartbeat_ms=20000, idle_timeout_ms=60000,
                   limits={"maxTextChars": 4096}),
         {"type": "welcome", "userId": "u", "rooms": ("a",), "protocol": 1,
          "heartbeatMs": 20000, "idleTimeoutMs": 60000, "limits": {"maxTextChars": 4096}}),
        (p.Joined(room="r1", seq=0), {"type": "joined", "room": "r1", "seq": 0}),
        (p.Left(room="r1"), {"type": "left", "room": "r1"}),
        (p.Message(id="m1", room="r1", sender_id="u", text="t", sent_at=TS, seq=3),
         {"type": "message", "id": "m1", "room": "r1", "senderId": "u", "text": "t",
          "sentAt": TS, "seq": 3}),
        (p.Ack(id="m1", room="r1", seq=3),
         {"type": "ack", "id": "m1", "room": "r1", "seq": 3, "duplicate": False}),
        (p.HistoryPage(room="r1", messages=[], has_more=False),
         {"type": "history", "room": "r1", "messages": [], "hasMore": False}),
        (p.Pong(), {"type": "pong"}),
        (p.Pong(ts=0), {"type": "pong", "ts": 0}),
        (p.TypingNotice(room="r1", user_id="u", typing=False),
         {"type": "typing", "room": "r1", "userId": "u", "typing": False}),
        (p.Presence(room="r1", user_id="u", status="joined"),
         {"type": "presence", "room": "r1", "userId": "u", "status": "joined"}),
        (p.Error(code="bad_json", message="m"),
         {"type": "error", "code": "bad_json", "message": "m"}),
        (p.Error(code=ErrorCode.RATE_LIMITED, message="slow", id="m1", room="r1",
                 retry_after_ms=250),
         {"type": "error", "code": "rate_limited", "message": "slow", "id": "m1", "room": "r1",
          "retryAfterMs": 250}),
    ],
)  # fmt: skip
def test_to_wire_examples(frame: p.Frame, wire: dict[str, Any]) -> None:
    out = to_wire(frame)
    assert out == wire
    assert next(iter(out)) == "type"
    assert orjson.loads(encode(frame)) == orjson.loads(orjson.dumps(wire))


def test_to_wire_history_page_nests_messages() -> None:
    message = p.Message(id="m1", room="r1", sender_id="u", text="t", sent_at=TS, seq=1)
    out = to_wire(p.HistoryPage(room="r1", messages=[message], has_more=True))
    assert out == {
        "type": "history",
        "room": "r1",
        "messages": [
            {"type": "message", "id": "m1", "room": "r1", "senderId": "u", "text": "t",
             "sentAt": TS, "seq": 1},
        ],
        "hasMore": True,
    }  # fmt: skip


@junk_settings
@given(frame=st.one_of(s.client_frames(), s.server_frames()))
def test_to_wire_omits_none_and_uses_camel_case(frame: p.Frame) -> None:
    out = to_wire(frame)
    assert out["type"] == frame.TYPE
    assert None not in out.values()
    for key in out:
        assert "_" not in key
    python_names = {a.name for a in type(frame).__attrs_attrs__}
    for snake, camel in [
        ("sent_at", "sentAt"),
        ("sender_id", "senderId"),
        ("has_more", "hasMore"),
        ("user_id", "userId"),
        ("retry_after_ms", "retryAfterMs"),
        ("heartbeat_ms", "heartbeatMs"),
        ("idle_timeout_ms", "idleTimeoutMs"),
    ]:
        if snake in python_names:
            assert (camel in out) == (getattr(frame, snake) is not None)


def test_encode_is_compact_utf8() -> None:
    wire = encode(p.SendMessage(id="m1", room="r1", text="h\u00e9 \U0001f600"))
    assert wire == '{"type":"message","id":"m1","room":"r1","text":"h\u00e9 \U0001f600"}'.encode()
