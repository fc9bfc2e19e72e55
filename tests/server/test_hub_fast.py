"""The hub's per-message fast paths give exactly what the plain paths give.

`message_wire`/`ack_wire` build frames without frame objects, `utc_now_iso` formats the
date once per second, and `Hub.handle_simple` applies the common `message` frame without
the codec: each is compared with the plain path (frame classes, `p.utc_now_iso`'s format,
`p.decode_object` + `Hub.handle`) on Hypothesis-generated input (docs/performance.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs
from hypothesis import given
from hypothesis import strategies as st

from loadtool import protocol as p
from loadtool.server import hub as hub_module
from loadtool.server.hub import ack_wire, frame_bytes, message_wire
from loadtool.server.storage import StoredMessage

from .test_hub import FakePeer, joined, make

_PLACEHOLDER: Final = "2000-01-01T00:00:00.000Z"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ROOMS: Final = st.from_regex(p.ROOM_PATTERN, fullmatch=True)
_USERS: Final = st.from_regex(p.USER_PATTERN, fullmatch=True)
_IDS: Final = st.text(min_size=1, max_size=p.MAX_ID_CHARS).filter(str.isprintable)
_SEQS: Final = st.integers(min_value=0, max_value=2**53 - 1)
# JSON text the codec can carry: no lone surrogates (neither orjson encoder takes them).
_TEXTS: Final = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
_TIMES: Final = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


@given(room=_ROOMS, seq=_SEQS, msg_id=_IDS, user=_USERS, text=_TEXTS, sent_at=_TIMES)
def test_message_wire_is_the_frame_classes_bytes(
    room: str, seq: int, msg_id: str, user: str, text: str, sent_at: str
) -> None:
    stored = StoredMessage(
        room=room, seq=seq, id=msg_id, sender_id=user, text=text, sent_at=sent_at, received_at=0.0
    )
    assert message_wire(stored) == frame_bytes(stored.to_frame())


@given(msg_id=_IDS, room=_ROOMS, seq=_SEQS, duplicate=st.booleans())
def test_ack_wire_is_the_frame_classes_bytes(
    msg_id: str, room: str, seq: int, duplicate: bool
) -> None:
    expected = frame_bytes(p.Ack(id=msg_id, room=room, seq=seq, duplicate=duplicate))
    assert ack_wire(msg_id, room, seq, duplicate=duplicate) == expected


@given(
    st.lists(
        st.integers(min_value=0, max_value=7_000_000_000 * 10**9), min_size=1, max_size=20
    ).map(lambda xs: [x for pair in zip(xs, [x + 999_999 for x in xs], strict=True) for x in pair])
)
def test_utc_now_iso_is_the_codecs_format_at_any_instant(instants: list[int]) -> None:
    """One formatter over many instants (the same second twice, then jumps): every
    string is what `p.utc_now_iso` writes for that instant, so its cache never lags."""
    now = hub_module._IsoNow()
    real = time.time_ns
    try:
        for ns in instants:
            hub_module.time.time_ns = lambda ns=ns: ns
            shown = now()
            expected = (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat(
                timespec="milliseconds"
            )
            assert shown == expected.replace("+00:00", "Z")
            p.Message(id="m", room="a", sender_id="u", text="", sent_at=shown, seq=1)
    finally:
        hub_module.time.time_ns = real


_KEYS: Final = ("type", "id", "room", "text", "sentAt", "senderId", "extra")
_VALUES: Final = st.one_of(
    st.sampled_from(["message", "a", "b", "zz", "m1", "ping", "2026-11-29T10:00:00.000Z"]),
    _IDS,
    st.text(max_size=5),
    st.text(min_size=127, max_size=130),  # ids at and over the length limit
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
_OBJECTS: Final = st.one_of(
    st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=6),
    st.fixed_dictionaries(
        {"type": st.just("message"), "id": _VALUES, "room": _VALUES, "text": _VALUES}
    ),
    st.fixed_dictionaries(
        {"type": st.just("message"), "id": _IDS, "room": st.sampled_from(["a", "b", "zz"])},
        optional={"text": _TEXTS, "sentAt": _VALUES, "extra": _VALUES},
    ),
)


def _plain(hub: hub_module.Hub, conn: FakePeer, obj: dict[str, Any]) -> None:
    try:
        frame = p.decode_object(obj)
    except p.ProtocolError as exc:
        hub.error(conn, exc)
        return
    hub.handle(conn, frame)


def _settled(frames: list[p.ServerFrame], server_time: bool) -> list[p.ServerFrame]:
    """Frames with the server-filled `sentAt` (a receive time) set aside."""
    return [
        attrs.evolve(f, sent_at=_PLACEHOLDER) if server_time and isinstance(f, p.Message) else f
        for f in frames
    ]


@given(st.lists(_OBJECTS, min_size=1, max_size=6))
def test_handle_simple_then_plain_path_equals_plain_path(objects: list[dict[str, Any]]) -> None:
    """The same objects (a repeated id included, so dedupe is exercised) through the
    fast path with the plain path behind it, and through the plain path alone: the same
    frames to both members, the same metrics."""
    fast, plain = make(max_text_chars=200), make(max_text_chars=200)
    sides = []
    for setup in (fast, plain):
        alice = joined(setup.hub, "alice", rooms=("a",), grant=("a", "b"))
        bob = joined(setup.hub, "bob", rooms=("a",))
        alice.take()
        sides.append((setup, alice, bob))
    (_, fast_alice, fast_bob), (_, plain_alice, plain_bob) = sides
    for obj in objects:
        if not fast.hub.handle_simple(fast_alice, dict(obj)):
            _plain(fast.hub, fast_alice, dict(obj))
        _plain(plain.hub, plain_alice, dict(obj))
        server_time = obj.get("sentAt") is None
        for mine, theirs in ((fast_alice, plain_alice), (fast_bob, plain_bob)):
            assert _settled(mine.take(), server_time) == _settled(theirs.take(), server_time)
    assert fast.metrics.frames_in == plain.metrics.frames_in
    assert fast.metrics.errors == plain.metrics.errors
    assert fast.metrics.messages_in == plain.metrics.messages_in
    assert fast.metrics.deliveries == plain.metrics.deliveries


def test_handle_simple_takes_the_v1_message_a_client_sends() -> None:
    """The fast path is not vacuous: the generator's own frame goes through it."""
    setup = make()
    alice = joined(setup.hub, "alice")
    obj = {"type": "message", "id": "m1", "room": "a", "text": "hi"}
    assert setup.hub.handle_simple(alice, obj)
    ack, message = alice.take()
    assert ack == p.Ack(id="m1", room="a", seq=1)
    assert isinstance(message, p.Message)
    assert (message.seq, message.sender_id) == (1, "alice")
    assert not setup.hub.handle_simple(alice, {**obj, "room": "b"})  # not joined: codec's
    assert not setup.hub.handle_simple(alice, {**obj, "sentAt": None})  # five keys
    assert alice.take() == []
