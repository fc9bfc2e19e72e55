"""Hypothesis strategies for protocol v1 (loadtool.protocol) and for `loadtool fuzz`.

Four families, all built with ``@st.composite`` and keyword-only parameters so that
callers (the protocol's property tests and the fuzzer) can pin any part of what they need:

* **Field values** that the frame validators accept: `room_names`, `user_ids`,
  `message_ids`, `seqs`, `utc_timestamps`, `message_texts`, `ping_tokens`, plus
  `odd_unicode_strings` (valid, but awkward, Unicode).
* **Valid frames**, one strategy per frame class (`send_message_frames` ...
  `error_frames`), and `client_frames()` / `server_frames()` drawing from all of them.
  `FRAME_STRATEGIES` maps each frame class to its strategy function.
* **Junk** for decoder robustness: `json_values` (any JSON value), `json_texts`,
  `malformed_frame_objects` (right `type`, wrong fields), `odd_unicode_json_texts`
  (RTL, zero-width, 4-byte emoji, lone surrogates escaped as ``\\ud800``),
  `deeply_nested_json_texts`, `non_json_inputs`, `huge_int_json_texts`,
  `seed_dialect_objects` (the seed's typeless ChatMessage) and `decode_inputs`, which mixes
  all of them with valid encoded frames.
* **Wire frames** for the fuzzer (`loadtool.fuzz`): `wire_frames` yields one WebSocket data
  message (`WireFrame`, text or binary) drawn from all of the above plus
  `seed_dialect_texts` (the seed's ChatMessage and near misses), `binary_payloads` and
  `boundary_size_texts` (frames at the size limits); `frame_sequences` yields the 1-5
  frames one example sends. Valid frames aim at the fuzzed client's own room.

Conventions: in every ``st.one_of`` the simplest alternative comes first, so that
Hypothesis shrinks failures towards readable examples. Strategies that yield JSON *objects*
return plain dicts (encode them with ``orjson.dumps``); strategies whose name ends in
``_texts`` or ``_inputs`` return what is handed to `loadtool.protocol.decode` (``str`` or
``bytes``). Nothing here draws a value that orjson cannot serialise unless the docstring
says so.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from hypothesis import strategies as st

from .. import protocol as p
from ..protocol import _fields
from .model import WireFrame

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_TEXT_CHARS",
    "EXAMPLE_TIMESTAMP",
    "FRAME_STRATEGIES",
    "ODD_CHARACTERS",
    "OTHER_ROOMS",
    "ROOM_ALPHABET",
    "USER_ALPHABET",
    "ack_frames",
    "binary_payloads",
    "boundary_size_texts",
    "client_frames",
    "decode_inputs",
    "deeply_nested_json_texts",
    "error_frames",
    "frame_sequences",
    "fuzz_rooms",
    "history_page_frames",
    "history_request_frames",
    "huge_int_json_texts",
    "invalid_timestamps",
    "join_frames",
    "joined_frames",
    "json_texts",
    "json_values",
    "leave_frames",
    "left_frames",
    "malformed_frame_objects",
    "message_frames",
    "message_ids",
    "message_texts",
    "non_json_inputs",
    "odd_unicode_json_texts",
    "odd_unicode_strings",
    "ping_frames",
    "ping_tokens",
    "pong_frames",
    "presence_frames",
    "room_names",
    "seed_dialect_objects",
    "seed_dialect_texts",
    "send_message_frames",
    "seqs",
    "server_frames",
    "typing_frames",
    "typing_notice_frames",
    "user_ids",
    "utc_timestamps",
    "valid_client_texts",
    "welcome_frames",
    "wire_frames",
]

ROOM_ALPHABET: Final = string.ascii_letters + string.digits + "_.:@#-"
USER_ALPHABET: Final = string.ascii_letters + string.digits + "_.:@+-"
MAX_ROOM_CHARS: Final = 64
MAX_USER_CHARS: Final = 128
EXAMPLE_TIMESTAMP: Final = "2026-11-29T10:00:00.000Z"  # the seed's toIso8601String() format
_EPOCH: Final = datetime(1970, 1, 1)
_LAST_SECOND: Final = datetime(9999, 12, 31, 23, 59, 59)

# JSON integers every peer handles: orjson reads and writes 64-bit values exactly.
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1

# Characters that are valid Unicode (and valid UTF-8) but tend to break naive code.
ODD_CHARACTERS: Final = (
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u202d",  # LEFT-TO-RIGHT OVERRIDE
    "\u200f",  # RIGHT-TO-LEFT MARK
    "\u061c",  # ARABIC LETTER MARK
    "\u2067",  # RIGHT-TO-LEFT ISOLATE
    "\u200b",  # ZERO WIDTH SPACE
    "\u200c",  # ZERO WIDTH NON-JOINER
    "\u200d",  # ZERO WIDTH JOINER
    "\u2060",  # WORD JOINER
    "\ufeff",  # ZERO WIDTH NO-BREAK SPACE (BOM)
    "\u00ad",  # SOFT HYPHEN
    "\u0301",  # COMBINING ACUTE ACCENT (dangling)
    "\u2028",  # LINE SEPARATOR (breaks JavaScript string literals)
    "\u2029",  # PARAGRAPH SEPARATOR
    "\u0000",  # NUL
    "\u001b",  # ESC
    "\u007f",  # DEL
    "\ufffd",  # REPLACEMENT CHARACTER
    "\uffff",  # noncharacter
    "\U0001f600",  # GRINNING FACE (4 bytes in UTF-8, a surrogate pair in UTF-16)
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",  # family: emoji ZWJ sequence
    "\U0001f1fa\U0001f1f8",  # regional indicator pair (flag)
    "\U0010ffff",  # last code point
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew (RTL script)
    "\u0645\u0631\u062d\u0628\u0627",  # Arabic (RTL script)
    "\ufdfd",  # ARABIC LIGATURE BISMILLAH (one very wide glyph)
)

# Lone and reversed surrogates, written as JSON escapes (a Python str cannot be UTF-8
# encoded with them, so they only exist inside JSON text).
_SURROGATE_ESCAPES: Final = (
    "\\ud800",  # lone high surrogate
    "\\udfff",  # lone low surrogate
    "\\udc00\\ud800",  # pair in the wrong order
    "\\ud83d",  # first half of an emoji
    "\\ud83d\\ude00",  # a correct pair (decodes to U+1F600): the control case
)

_NON_JSON_EXAMPLES: Final[tuple[str | bytes, ...]] = (
    "",
    " ",
    "{",
    "}",
    "[1,",
    '{"type":"ping"',
    '{"type":"ping",}',
    "{'type': 'ping'}",
    '{type: "ping"}',
    "NaN",
    "Infinity",
    "-Infinity",
    "undefined",
    "tru",
    "nul",
    "01",
    "1.",
    ".5",
    "+1",
    "0x10",
    "'x'",
    '"unterminated',
    '{"type":"ping"} {"type":"ping"}',
    '// comment\n{"type":"ping"}',
    '\ufeff{"type":"ping"}',
    '{"type":"ping"}\x00',
    "\ud800",  # a str with a lone surrogate: not encodable as UTF-8
    b"\xff\xfe{}",
    b"\xc3\x28",  # invalid UTF-8 sequence
    b'{"type":"ping","ts":"\xed\xa0\x80"}',  # CESU/UTF-8-encoded surrogate
    b"\x00",
)


def _printable_characters() -> st.SearchStrategy[str]:
    """Characters for which ``str.isprintable()`` is true (letters, marks, symbols, ' ')."""
    return st.characters(
        codec="utf-8",
        exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
        include_characters=" ",
    )


# --- field values -----------------------------------------------------------------------


@st.composite
def room_names(draw: st.DrawFn, *, max_size: int = MAX_ROOM_CHARS) -> str:
    """A valid room name: 1-64 characters from ``[A-Za-z0-9_.:@#-]``."""
    return draw(
        st.one_of(
            st.sampled_from(("general", "r", "lobby")).filter(lambda r: len(r) <= max_size),
            st.text(alphabet=ROOM_ALPHABET, min_size=1, max_size=max_size),
        )
    )


@st.composite
def user_ids(draw: st.DrawFn, *, max_size: int = MAX_USER_CHARS) -> str:
    """A valid user id (a token's ``sub``): 1-128 characters from ``[A-Za-z0-9_.:@+-]``."""
    return draw(
        st.one_of(
            st.sampled_from(("alice", "bob", "u")).filter(lambda u: len(u) <= max_size),
            st.text(alphabet=USER_ALPHABET, min_size=1, max_size=max_size),
        )
    )


@st.composite
def message_ids(draw: st.DrawFn, *, max_size: int = p.MAX_ID_CHARS) -> str:
    """A valid message ``id``: a printable string of 1-128 characters (any script)."""
    return draw(
        st.one_of(
            st.sampled_from(("m1", "m2", "x")).filter(lambda i: len(i) <= max_size),
            st.uuids().map(str).filter(lambda i: len(i) <= max_size),
            st.text(alphabet=_printable_characters(), min_size=1, max_size=max_size).filter(
                str.isprintable
            ),
        )
    )


@st.composite
def seqs(draw: st.DrawFn, *, min_value: int = 0, max_value: int = _fields.MAX_SEQ) -> int:
    """A sequence number (also used for ``since``/``before``/``after``): 0 .. 2**53-1."""
    small_top = min(max_value, min_value + 10)
    return draw(
        st.one_of(
            st.integers(min_value=min_value, max_value=small_top),
            st.integers(min_value=min_value, max_value=max_value),
        )
    )


@st.composite
def utc_timestamps(
    draw: st.DrawFn,
    *,
    min_value: datetime = _EPOCH,
    max_value: datetime = _LAST_SECOND,
) -> str:
    """An ISO-8601 UTC timestamp string, ``Z`` or ``+00:00``, as peers write them.

    ``min_value``/``max_value`` are naive datetimes read as UTC.
    """
    moment = draw(st.datetimes(min_value=min_value, max_value=max_value, timezones=st.just(UTC)))
    style = draw(st.sampled_from(("millis_z", "seconds_z", "micros_z", "offset", "millis_offset")))
    if style == "millis_z":
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if style == "seconds_z":
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    if style == "micros_z":
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if style == "offset":
        return moment.isoformat()
    return moment.isoformat(timespec="milliseconds")


@st.composite
def invalid_timestamps(draw: st.DrawFn) -> Any:
    """A ``sentAt`` value the validators must refuse: naive, non-UTC, not a time, not a str."""
    moment = draw(st.datetimes(min_value=_EPOCH, max_value=datetime(9999, 1, 1)))
    hours = draw(st.integers(min_value=1, max_value=14))
    sign = draw(st.sampled_from("+-"))
    return draw(
        st.one_of(
            st.just(moment.isoformat()),  # naive
            st.just(f"{moment.isoformat()}{sign}{hours:02d}:00"),  # non-UTC offset
            st.sampled_from(("", "now", "2026-11-29", "10:00:00Z", "2026-13-01T00:00:00Z")),
            st.just(EXAMPLE_TIMESTAMP + " " * 60),  # over the 64-character cap
            st.integers(),
            st.just(1.5),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
        )
    )


@st.composite
def message_texts(draw: st.DrawFn, *, max_size: int = 200) -> str:
    """Chat text: any UTF-8 encodable string (empty included), odd Unicode likely."""
    return draw(
        st.one_of(
            st.just("hello"),
            st.text(alphabet=string.printable, max_size=max_size),
            st.text(max_size=max_size),
            odd_unicode_strings(max_size=max_size),
        )
    )


@st.composite
def odd_unicode_strings(draw: st.DrawFn, *, min_size: int = 0, max_size: int = 32) -> str:
    """A UTF-8 encodable string mixing ASCII with RTL, zero-width, control and 4-byte chars.

    Sizes count list elements, some of which are multi-code-point clusters, so the
    result may be a few code points longer than ``max_size``.
    """
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from("ab1 "), st.sampled_from(ODD_CHARACTERS)),
            min_size=min_size,
            max_size=max_size,
        )
    )
    return "".join(parts)


@st.composite
def ping_tokens(draw: st.DrawFn) -> str | int | float | None:
    """A ``ts`` a ping may carry and a pong echoes: null, a JSON-safe integer (|n| <= 2**53-1),
    a finite float, a short string."""
    return draw(
        st.one_of(
            st.none(),
            st.integers(min_value=-_fields.MAX_SEQ, max_value=_fields.MAX_SEQ),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=_fields.MAX_TS_CHARS),
        )
    )


# --- client frames ----------------------------------------------------------------------


@st.composite
def send_message_frames(
    draw: st.DrawFn, *, room: str | None = None, with_sender: bool | None = None
) -> p.SendMessage:
    """A client `message`; ``with_sender`` forces (True) or forbids (False) ``senderId``."""
    sent_at = draw(st.one_of(st.none(), utc_timestamps()))
    if with_sender is None:
        with_sender = draw(st.booleans())
    return p.SendMessage(
        id=draw(message_ids()),
        room=room if room is not None else draw(room_names()),
        text=draw(message_texts()),
        sent_at=sent_at,
        sender_id=draw(st.one_of(user_ids(), st.text(max_size=40))) if with_sender else None,
    )


@st.composite
def join_frames(draw: st.DrawFn, *, room: str | None = None) -> p.Join:
    return p.Join(
        room=room if room is not None else draw(room_names()),
        since=draw(st.one_of(st.none(), seqs())),
    )


@st.composite
def leave_frames(draw: st.DrawFn, *, room: str | None = None) -> p.Leave:
    return p.Leave(room=room if room is not None else draw(room_names()))


@st.composite
def history_request_frames(draw: st.DrawFn, *, room: str | None = None) -> p.HistoryRequest:
    """A history request with at most one of ``before``/``after`` (both is invalid)."""
    anchor = draw(st.sampled_from(("newest", "before", "after")))
    value = draw(seqs())
    return p.HistoryRequest(
        room=room if room is not None else draw(room_names()),
        before=value if anchor == "before" else None,
        after=value if anchor == "after" else None,
        limit=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=p.MAX_HISTORY_LIMIT))),
    )


@st.composite
def ping_frames(draw: st.DrawFn) -> p.Ping:
    return p.Ping(ts=draw(ping_tokens()))


@st.composite
def typing_frames(draw: st.DrawFn, *, room: str | None = None) -> p.Typing:
    return p.Typing(
        room=room if room is not None else draw(room_names()), typing=draw(st.booleans())
    )


@st.composite
def client_frames(draw: st.DrawFn) -> p.ClientFrame:
    """Any valid client -> server frame."""
    frame: p.ClientFrame = draw(
        st.one_of(
            ping_frames(),
            leave_frames(),
            join_frames(),
            typing_frames(),
            history_request_frames(),
            send_message_frames(),
        )
    )
    return frame


# --- server frames ----------------------------------------------------------------------

_LIMIT_NAMES: Final = (
    "maxMessageBytes",
    "maxTextChars",
    "ratePerSecond",
    "rateBurst",
    "maxRoomsPerConnection",
    "historyPageMax",
    "resyncMax",
    "dedupeWindowSeconds",
)


@st.composite
def welcome_frames(draw: st.DrawFn) -> p.Welcome:
    """A `welcome` with realistic (non-negative 32-bit) numbers and limit names."""
    return p.Welcome(
        user_id=draw(user_ids()),
        rooms=draw(st.lists(room_names(), unique=True, max_size=5)),
        protocol=draw(st.one_of(st.just(p.PROTOCOL_VERSION), st.integers(0, 2**31 - 1))),
        heartbeat_ms=draw(st.integers(min_value=0, max_value=2**31 - 1)),
        idle_timeout_ms=draw(st.integers(min_value=0, max_value=2**31 - 1)),
        limits=draw(
            st.one_of(
                st.just({}),
                st.dictionaries(
                    st.one_of(st.sampled_from(_LIMIT_NAMES), st.text(max_size=20)),
                    st.integers(min_value=0, max_value=2**31 - 1),
                    max_size=10,
                ),
            )
        ),
    )


@st.composite
def joined_frames(draw: st.DrawFn, *, room: str | None = None) -> p.Joined:
    return p.Joined(room=room if room is not None else draw(room_names()), seq=draw(seqs()))


@st.composite
def left_frames(draw: st.DrawFn, *, room: str | None = None) -> p.Left:
    return p.Left(room=room if room is not None else draw(room_names()))


@st.composite
def message_frames(
    draw: st.DrawFn, *, room: str | None = None, seq: int | None = None
) -> p.Message:
    """A stored message as the server delivers it (``senderId``, ``sentAt``, ``seq`` set)."""
    return p.Message(
        id=draw(message_ids()),
        room=room if room is not None else draw(room_names()),
        sender_id=draw(user_ids()),
        text=draw(message_texts()),
        sent_at=draw(utc_timestamps()),
        seq=seq if seq is not None else draw(seqs(min_value=1)),
    )


@st.composite
def ack_frames(draw: st.DrawFn, *, room: str | None = None) -> p.Ack:
    return p.Ack(
        id=draw(message_ids()),
        room=room if room is not None else draw(room_names()),
        seq=draw(seqs(min_value=1)),
        duplicate=draw(st.booleans()),
    )


@st.composite
def history_page_frames(
    draw: st.DrawFn, *, room: str | None = None, max_messages: int = 5
) -> p.HistoryPage:
    """A history page as the server sends it: messages of ``room``, ascending unique seqs."""
    room = room if room is not None else draw(room_names())
    numbers = sorted(draw(st.sets(seqs(min_value=1), max_size=max_messages)))
    return p.HistoryPage(
        room=room,
        messages=[draw(message_frames(room=room, seq=n)) for n in numbers],
        has_more=draw(st.booleans()),
    )


@st.composite
def pong_frames(draw: st.DrawFn) -> p.Pong:
    return p.Pong(ts=draw(ping_tokens()))


@st.composite
def typing_notice_frames(draw: st.DrawFn, *, room: str | None = None) -> p.TypingNotice:
    return p.TypingNotice(
        room=room if room is not None else draw(room_names()),
        user_id=draw(user_ids()),
        typing=draw(st.booleans()),
    )


@st.composite
def presence_frames(draw: st.DrawFn, *, room: str | None = None) -> p.Presence:
    return p.Presence(
        room=room if room is not None else draw(room_names()),
        user_id=draw(user_ids()),
        status=draw(st.sampled_from(("joined", "left"))),
    )


@st.composite
def error_frames(draw: st.DrawFn, *, code: p.ErrorCode | None = None) -> p.Error:
    """An `error` frame; ``retryAfterMs`` only on `rate_limited`, as the server sends it."""
    code = code if code is not None else draw(st.sampled_from(list(p.ErrorCode)))
    retry = None
    if code is p.ErrorCode.RATE_LIMITED:
        retry = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=60_000)))
    return p.Error(
        code=code,
        message=draw(st.one_of(st.just("bad frame"), st.text(max_size=100))),
        id=draw(st.one_of(st.none(), message_ids())),
        room=draw(st.one_of(st.none(), room_names())),
        retry_after_ms=retry,
    )


@st.composite
def server_frames(draw: st.DrawFn) -> p.ServerFrame:
    """Any valid server -> client frame."""
    frame: p.ServerFrame = draw(
        st.one_of(
            pong_frames(),
            left_frames(),
            joined_frames(),
            ack_frames(),
            presence_frames(),
            typing_notice_frames(),
            error_frames(),
            message_frames(),
            history_page_frames(),
            welcome_frames(),
        )
    )
    return frame


FRAME_STRATEGIES: Final[dict[type[Any], Callable[[], st.SearchStrategy[Any]]]] = {
    p.SendMessage: send_message_frames,
    p.Join: join_frames,
    p.Leave: leave_frames,
    p.HistoryRequest: history_request_frames,
    p.Ping: ping_frames,
    p.Typing: typing_frames,
    p.Welcome: welcome_frames,
    p.Joined: joined_frames,
    p.Left: left_frames,
    p.Message: message_frames,
    p.Ack: ack_frames,
    p.HistoryPage: history_page_frames,
    p.Pong: pong_frames,
    p.TypingNotice: typing_notice_frames,
    p.Presence: presence_frames,
    p.Error: error_frames,
}
"""Frame class -> strategy function (call it with no arguments for any valid frame)."""


def _frames_from(source: p.Source) -> st.SearchStrategy[Any]:
    return client_frames() if source is p.Source.CLIENT else server_frames()


# --- junk -------------------------------------------------------------------------------


@st.composite
def json_values(draw: st.DrawFn, *, max_leaves: int = 20) -> Any:
    """Any JSON value orjson can write: null, bool, 64-bit int, finite float, str, list, dict."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=_I64_MIN, max_value=_I64_MAX),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    )
    return draw(
        st.recursive(
            scalars,
            lambda children: st.one_of(
                st.lists(children, max_size=4),
                st.dictionaries(st.text(max_size=10), children, max_size=4),
            ),
            max_leaves=max_leaves,
        )
    )


@st.composite
def json_texts(draw: st.DrawFn, *, as_bytes: bool | None = None) -> str | bytes:
    """A syntactically valid JSON text of any shape (objects are usually not frames)."""
    raw = orjson.dumps(draw(json_values()))
    if as_bytes is None:
        as_bytes = draw(st.booleans())
    return raw if as_bytes else raw.decode()


def _wrong_type_values(current: Any) -> st.SearchStrategy[Any]:
    """A JSON value of a different JSON type than ``current`` (bool vs int kept distinct)."""
    candidates: list[Any] = [None, True, False, 0, 1, -1, 1.5, 2**53, "", "x", "1", [], {}, [1]]

    def kind(value: Any) -> str:
        return "bool" if type(value) is bool else type(value).__name__

    return st.sampled_from([c for c in candidates if kind(c) != kind(current)])


@st.composite
def malformed_frame_objects(
    draw: st.DrawFn, *, source: p.Source = p.Source.CLIENT
) -> dict[str, Any]:
    """An object with a known ``type`` whose fields are missing, extra or mistyped.

    Built by mutating the wire form of a valid frame from ``source``. The result is
    usually invalid; it can still be valid (e.g. only an optional field dropped, or only
    unknown fields added), which is fine for robustness tests.
    """
    obj = p.to_wire(draw(_frames_from(source)))
    fields = [key for key in obj if key != "type"]
    mutation = draw(st.sampled_from(("missing", "wrong_type", "extra", "type_only", "mixed")))
    if mutation == "type_only":
        return {"type": obj["type"]}
    if mutation in ("missing", "mixed") and fields:
        for key in draw(st.lists(st.sampled_from(fields), min_size=1, unique=True)):
            del obj[key]
    remaining = [key for key in obj if key != "type"]
    if mutation in ("wrong_type", "mixed") and remaining:
        for key in draw(st.lists(st.sampled_from(remaining), min_size=1, unique=True)):
            obj[key] = draw(_wrong_type_values(obj[key]))
    if mutation in ("extra", "mixed") or not fields:
        extra = draw(
            st.dictionaries(
                st.text(max_size=12).filter(lambda k: k != "type"), json_values(), min_size=1
            )
        )
        obj.update(extra)
    return obj


@st.composite
def odd_unicode_json_texts(draw: st.DrawFn, *, source: p.Source = p.Source.CLIENT) -> str:
    """JSON text of a frame with one string field replaced by odd Unicode.

    Half of the time the new value contains an escaped surrogate (``"\\ud800"`` and
    friends, written as JSON escapes), which no Python str can carry through UTF-8.
    """
    obj = p.to_wire(draw(_frames_from(source)))
    string_fields = [k for k, v in obj.items() if isinstance(v, str)]  # "type" at least
    key = draw(st.sampled_from(string_fields))
    if draw(st.booleans()):
        obj[key] = draw(odd_unicode_strings(min_size=1))
        return orjson.dumps(obj).decode()
    marker = "\x01SURROGATE\x01"
    prefix = draw(st.sampled_from(("", "a", "\U0001f600")))
    obj[key] = prefix + marker
    escape = draw(st.sampled_from(_SURROGATE_ESCAPES))
    # orjson writes \x01 as the escape \u0001, so the marker appears escaped in the text.
    escaped_marker = orjson.dumps(marker).decode()[1:-1]
    return orjson.dumps(obj).decode().replace(escaped_marker, escape)


@st.composite
def deeply_nested_json_texts(
    draw: st.DrawFn,
    *,
    min_depth: int = 1,
    max_depth: int = 1100,
    in_field: bool | None = None,
    source: p.Source = p.Source.CLIENT,
) -> str:
    """Arrays/objects nested ``min_depth``..``max_depth`` deep (orjson stops at 1024).

    With ``in_field`` the nesting is the value of a field of an otherwise valid frame
    from ``source`` (so validators, not just the parser, see it); by default either.
    """
    depth = draw(st.integers(min_value=min_depth, max_value=max_depth))
    shape = draw(st.sampled_from(("array", "object", "mixed")))
    if shape == "array":
        nested = "[" * depth + "]" * depth
    elif shape == "object":
        nested = '{"a":' * depth + "1" + "}" * depth
    else:
        half = depth // 2
        nested = "[" * half + '{"a":' * (depth - half) + "0" + "}" * (depth - half) + "]" * half
    if in_field is None:
        in_field = draw(st.booleans())
    if not in_field:
        return nested
    obj = p.to_wire(draw(_frames_from(source)))
    key = draw(st.sampled_from([k for k in obj if k != "type"] or ["ts"]))
    marker = "\x02NESTED\x02"
    obj[key] = marker
    return orjson.dumps(obj).decode().replace(orjson.dumps(marker).decode(), nested)


@st.composite
def non_json_inputs(draw: st.DrawFn) -> str | bytes:
    """Input that is not one valid JSON text: curated near-misses, random bytes, random text."""

    def is_json(value: str | bytes) -> bool:
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError:
            return False
        return True

    return draw(
        st.one_of(
            st.sampled_from(_NON_JSON_EXAMPLES),
            st.binary().filter(lambda b: not is_json(b)),
            st.text().filter(lambda t: not is_json(t)),
        )
    )


@st.composite
def huge_int_json_texts(draw: st.DrawFn, *, source: p.Source = p.Source.CLIENT) -> str:
    """A frame whose integer field holds a number past 2**53 / 64 bits, or 1e400-style.

    Written as JSON text directly, since orjson refuses to serialise such ints.
    """
    number = draw(
        st.one_of(
            st.just(str(2**53)),
            st.integers(min_value=2**53, max_value=2**64 + 1).map(str),
            st.integers(min_value=2**64, max_value=10**400).map(str),
            st.integers(min_value=-(10**400), max_value=-1).map(str),
            st.sampled_from(("1e400", "-1e400", "1e308", "1E+2", "-0", "0.0", "1.0e0")),
        )
    )
    client = (
        {"type": "join", "room": "r", "since": 0},
        {"type": "history", "room": "r", "after": 0},
        {"type": "history", "room": "r", "limit": 1},
        {"type": "ping", "ts": 0},
    )
    server = (
        {"type": "joined", "room": "r", "seq": 0},
        {"type": "ack", "id": "m", "room": "r", "seq": 0},
        {"type": "error", "code": "rate_limited", "message": "m", "retryAfterMs": 0},
        {"type": "pong", "ts": 0},
        {"type": "welcome", "userId": "u", "rooms": [], "heartbeatMs": 0, "idleTimeoutMs": 0},
    )
    template = dict(draw(st.sampled_from(client if source is p.Source.CLIENT else server)))
    key = draw(st.sampled_from([k for k, v in template.items() if v == 0 or v == 1]))
    marker = "\x03HUGE\x03"
    template[key] = marker
    return orjson.dumps(template).decode().replace(orjson.dumps(marker).decode(), number)


@st.composite
def seed_dialect_objects(draw: st.DrawFn, *, room: str | None = None) -> dict[str, Any]:
    """The seed client's ChatMessage: no ``type``, exactly id, room, senderId, text, sentAt.

    ``sentAt`` uses the seed's format (milliseconds, ``Z``) most of the time.
    """
    return {
        "id": draw(message_ids()),
        "room": room if room is not None else draw(room_names()),
        "senderId": draw(user_ids()),
        "text": draw(message_texts()),
        "sentAt": draw(st.one_of(st.just(EXAMPLE_TIMESTAMP), utc_timestamps())),
    }


@st.composite
def decode_inputs(
    draw: st.DrawFn, *, source: p.Source = p.Source.CLIENT, max_field_depth: int = 1023
) -> str | bytes:
    """Anything a peer could put in a text message: valid frames and every kind of junk.

    ``max_field_depth`` bounds nesting placed *inside a field* of a frame (top-level
    nesting always goes past orjson's limit).
    """

    def as_text(obj: Any) -> str:
        return orjson.dumps(obj).decode()

    data: str | bytes = draw(
        st.one_of(
            _frames_from(source).map(p.encode),
            seed_dialect_objects().map(as_text),
            json_texts(),
            malformed_frame_objects(source=source).map(as_text),
            non_json_inputs(),
            odd_unicode_json_texts(source=source),
            huge_int_json_texts(source=source),
            deeply_nested_json_texts(in_field=False),
            deeply_nested_json_texts(in_field=True, max_depth=max_field_depth, source=source),
        )
    )
    return data


# --- what the fuzzer sends (`loadtool fuzz`) --------------------------------------------

OTHER_ROOMS: Final = ("general", "lobby")  # rooms a fuzzed client joins besides its own
DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024  # bytes: docs/protocol.md §7.1's default
DEFAULT_MAX_TEXT_CHARS: Final = 4096  # code points: §7.2's default


def fuzz_rooms(*, home_room: str) -> st.SearchStrategy[str]:
    """Mostly the fuzzed client's own room, sometimes another known or random one."""
    return st.one_of(st.just(home_room), st.sampled_from(OTHER_ROOMS), room_names())


@st.composite
def valid_client_texts(draw: st.DrawFn, *, home_room: str) -> str:
    """A valid typed client frame as JSON text, its room from `fuzz_rooms`."""
    room = draw(fuzz_rooms(home_room=home_room))
    frame = draw(
        st.one_of(
            ping_frames(),
            send_message_frames(room=room),
            join_frames(room=room),
            leave_frames(room=room),
            typing_frames(room=room),
            history_request_frames(room=room),
        )
    )
    return p.encode(frame).decode()


@st.composite
def seed_dialect_texts(draw: st.DrawFn, *, home_room: str) -> str:
    """The seed's typeless ChatMessage (§3.2) as JSON text, or a near miss of it: a
    field missing, `"type": null`, a mistyped field, or an extra member."""
    obj: dict[str, Any] = draw(seed_dialect_objects(room=draw(fuzz_rooms(home_room=home_room))))
    change = draw(st.sampled_from(("none", "missing", "null_type", "wrong_type", "extra")))
    if change == "missing":
        del obj[draw(st.sampled_from(p.SEED_FIELDS))]
    elif change == "null_type":
        obj = {"type": None, **obj}
    elif change == "wrong_type":
        key = draw(st.sampled_from(p.SEED_FIELDS))
        obj[key] = draw(_wrong_type_values(obj[key]))
    elif change == "extra":
        obj[draw(st.text(max_size=12).filter(lambda k: k not in obj and k != "type"))] = draw(
            json_values(max_leaves=4)
        )
    return orjson.dumps(obj).decode()


@st.composite
def binary_payloads(draw: st.DrawFn) -> bytes:
    """A binary message's payload (§3.1: always error `unsupported_data`): empty, a
    valid frame's JSON, or random bytes."""
    return draw(
        st.one_of(
            st.just(b""),
            client_frames().map(p.encode),
            st.binary(max_size=64),
        )
    )


@st.composite
def boundary_size_texts(
    draw: st.DrawFn,
    *,
    home_room: str,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> str:
    """A chat message at a size limit: `text` of exactly `max_text_chars` code points or
    one more (§7.2: error `too_long`), or the whole frame padded with an unknown member
    (which servers ignore, §3.1) to `max_message_bytes` plus -1, 0, 1 or 1000 bytes
    (§7.1: over the limit closes with 1009). Built from a few small draws, so Hypothesis
    stores a handful of choices, not 64 KiB."""
    room = draw(st.one_of(st.just(home_room), fuzz_rooms(home_room=home_room)))
    char = draw(st.sampled_from(("x", "\u00e9", "\U0001f600")))
    mid = draw(st.sampled_from(("big", "m1")))
    if draw(st.booleans()):
        chars = max_text_chars + draw(st.sampled_from((0, 1)))
        big = {"type": "message", "id": mid, "room": room, "text": char * chars}
        return orjson.dumps(big).decode()
    obj = {"type": "message", "id": mid, "room": room, "text": char * 10, "pad": ""}
    target = max_message_bytes + draw(st.sampled_from((-1, 0, 1, 1000)))
    pad = max(0, target - len(orjson.dumps(obj)))
    obj["pad"] = "p" * pad
    return orjson.dumps(obj).decode()


@st.composite
def wire_frames(draw: st.DrawFn, *, home_room: str) -> WireFrame:
    """One WebSocket data message for `loadtool fuzz`: a valid frame (typed or seed
    dialect), or junk of every kind from this module, or a binary message. Valid frames
    aim mostly at `home_room`, the room the fuzzed client joins on connect."""
    text = draw(
        st.one_of(
            valid_client_texts(home_room=home_room),
            seed_dialect_texts(home_room=home_room),
            st.none(),  # a binary message
            malformed_frame_objects().map(lambda o: orjson.dumps(o).decode()),
            json_texts(),
            non_json_inputs(),
            odd_unicode_json_texts(),
            huge_int_json_texts(),
            deeply_nested_json_texts(max_depth=1100),
            boundary_size_texts(home_room=home_room),
        )
    )
    if text is None:
        return WireFrame.binary(draw(binary_payloads()))
    return WireFrame.text(text)


def frame_sequences(
    *, home_room: str, min_size: int = 1, max_size: int = 5
) -> st.SearchStrategy[list[WireFrame]]:
    """What one fuzz example sends on one connection: 1-5 frames, valid and invalid
    mixed, so that a bad frame can be followed by a good one that must still work."""
    return st.lists(wire_frames(home_room=home_room), min_size=min_size, max_size=max_size)
