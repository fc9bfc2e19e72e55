"""Server text frames (RFC 6455 §5.2, protocol §2 transport) parsed back by wsproto, and
the server's fast path for client frames (`split_simple`) against wsproto.

Every payload length class: 7-bit, 16-bit and 64-bit extended lengths and their edges.
For client streams (simple frames mixed with fragments, binary, close, reserved bits,
unmasked, oversized and bad UTF-8 frames, cut anywhere), `split_simple` followed by
wsproto must see exactly what wsproto alone sees.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionType
from wsproto.events import Ping, Pong, TextMessage
from wsproto.frame_protocol import FrameProtocol, Opcode

from loadtool.client import wsframes as wsf
from loadtool.client.rawframes import RawFrame, fragments, join
from loadtool.server.wsframe import LengthGuard, control_frame, split_simple, text_frame


def payload_of(size: int) -> bytes:
    """`size` bytes of ASCII JSON-ish text, not all the same byte."""
    return bytes(0x61 + n % 26 for n in range(size))


@pytest.mark.parametrize(
    ("size", "header"),
    [(0, 2), (1, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (70000, 10)],
)
def test_text_frame_round_trips_through_wsproto(size: int, header: int) -> None:
    payload = payload_of(size)
    wire = text_frame(payload)
    assert len(wire) == header + size
    assert wire[0] == 0x81  # FIN + text
    assert wire[1] & 0x80 == 0  # server frames are not masked
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(wire)
    frames = list(proto.received_frames())
    assert len(frames) == 1
    (frame,) = frames
    assert frame.opcode is Opcode.TEXT
    assert frame.frame_finished
    assert frame.message_finished
    assert frame.payload == payload.decode()


def test_multibyte_utf8_payload() -> None:
    payload = '{"text":"héllo ✓ 😀"}'.encode()
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(text_frame(payload) + text_frame(b"{}"))
    assert [f.payload for f in proto.received_frames()] == [payload.decode(), "{}"]


# --- LengthGuard: messages refused by their declared length ------------------------------


def _feed_in_chunks(guard: LengthGuard, data: bytes, chunk: int) -> int | None:
    for i in range(0, len(data), chunk):
        found = guard.feed(data[i : i + chunk])
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000, 100_000])
def test_length_guard_passes_messages_within_the_limit(chunk: int) -> None:
    """Whole messages, fragments and control frames in between, up to the limit exactly,
    however the bytes are chunked: nothing is refused."""
    limit = 300
    wire = join(
        [
            RawFrame.text(b"a" * 300),
            *fragments(0x1, b"b" * 300, [100, 0, 50])[:2],
            RawFrame.ping(b"p" * 125),
            *fragments(0x1, b"b" * 300, [100, 0, 50])[2:],
            RawFrame.binary(b"c" * 200, mask=None),
            RawFrame.close(1000),
        ]
    )
    assert _feed_in_chunks(LengthGuard(limit), wire, chunk) is None


@pytest.mark.parametrize("chunk", [1, 5, 100_000])
def test_length_guard_refuses_by_header(chunk: int) -> None:
    huge = RawFrame.text(b"", length=2**62).to_bytes()
    assert (
        _feed_in_chunks(LengthGuard(65536), RawFrame.text(b"ok").to_bytes() + huge, chunk) == 2**62
    )
    parts = join([RawFrame.text(b"x" * 200, fin=False), RawFrame.continuation(b"", length=101)])
    assert _feed_in_chunks(LengthGuard(300), parts, chunk) == 301


# --- split_simple: the fast path for client frames, against wsproto ---------------------------

_MAX = 1000  # bytes: the message limit the tests give split_simple


def _client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    return wsf.client_frame(opcode, payload, fin=fin, rsv=rsv, mask_key=b"\x01\x82\x43\xf4")


_KINDS = ("text", "text", "text", "ping", "pong", "fragment", "binary", "close", "rsv")
_KINDS += ("unmasked", "big", "bad-utf8", "big-ping")


@st.composite
def client_streams(draw: st.DrawFn) -> bytes:
    """Client byte streams: mostly simple frames, sometimes anything else (fragments,
    binary, close, reserved bits, unmasked, oversized, bad UTF-8), cut short at random."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(_KINDS))
        text = draw(st.text(max_size=300)).encode()
        if kind == "text":
            parts.append(_client_frame(wsf.OP_TEXT, text))
        elif kind in ("ping", "pong"):
            parts.append(_client_frame(wsf.OP_PING if kind == "ping" else wsf.OP_PONG, text[:125]))
        elif kind == "fragment":
            parts.append(_client_frame(wsf.OP_TEXT, text, fin=False))
            parts.append(_client_frame(wsf.OP_CONTINUATION, b"end"))
        elif kind == "binary":
            parts.append(_client_frame(wsf.OP_BINARY, text))
        elif kind == "close":
            parts.append(_client_frame(wsf.OP_CLOSE, b"\x03\xe8bye"))
        elif kind == "rsv":
            parts.append(_client_frame(wsf.OP_TEXT, text, rsv=4))
        elif kind == "unmasked":
            parts.append(text_frame(text))
        elif kind == "big":
            parts.append(_client_frame(wsf.OP_TEXT, b"x" * (_MAX + 1)))
        elif kind == "bad-utf8":
            parts.append(_client_frame(wsf.OP_TEXT, b"ok\xff"))
        else:
            parts.append(_client_frame(wsf.OP_PING, b"p" * 126))
    stream = b"".join(parts)
    return stream[: draw(st.integers(0, len(stream)))] if draw(st.booleans()) else stream


def _wsproto_events(data: bytes) -> list[tuple[str, object]]:
    """What wsproto makes of `data` as a server: (kind, payload) per event, up to its first
    close or error (the point where the connection stops being read)."""
    conn = WsConnection(ConnectionType.SERVER)
    out: list[tuple[str, object]] = []
    conn.receive_data(data)
    try:
        for event in conn.events():
            if isinstance(event, TextMessage):
                out.append(("text", event.data) if event.message_finished else ("part", event.data))
            elif isinstance(event, Ping | Pong):
                out.append((type(event).__name__.lower(), bytes(event.payload)))
            else:
                out.append((type(event).__name__, None))
                break
    except Exception as exc:  # wsproto reports some violations by raising
        out.append((type(exc).__name__, None))
    return out


def _hybrid_events(data: bytes) -> list[tuple[str, object]]:
    """The server's way: split_simple first, wsproto for everything from the first frame it
    declines."""
    frames = split_simple(data, _MAX)
    kinds = {wsf.OP_TEXT: "text", wsf.OP_PING: "ping", wsf.OP_PONG: "pong"}
    out: list[tuple[str, object]] = [(kinds[op], payload) for op, payload, _ in frames]
    used = frames[-1][2] if frames else 0
    if used < len(data):
        out += _wsproto_events(data[used:])
    return out


@settings(max_examples=400, deadline=None)
@given(client_streams())
def test_split_simple_then_wsproto_sees_what_wsproto_alone_sees(data: bytes) -> None:
    expected = _wsproto_events(data)
    got = _hybrid_events(data)
    # wsproto may split one big text frame into several partial events; join them.
    assert _joined(got) == _joined(expected)


def _joined(events: list[tuple[str, object]]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pending = ""
    for kind, payload in events:
        if kind == "part":
            assert isinstance(payload, str)
            pending += payload
        elif kind == "text":
            assert isinstance(payload, str)
            out.append(("text", pending + payload))
            pending = ""
        else:
            out.append((kind, payload))
    return out


def test_split_simple_stops_at_the_first_frame_it_declines() -> None:
    a = _client_frame(wsf.OP_TEXT, b"one")
    b = _client_frame(wsf.OP_PING, b"hb")
    c = _client_frame(wsf.OP_BINARY, b"\x00")
    d = _client_frame(wsf.OP_TEXT, b"after")
    frames = split_simple(a + b + c + d, _MAX)
    assert frames == [(wsf.OP_TEXT, "one", len(a)), (wsf.OP_PING, b"hb", len(a + b))]
    assert split_simple(a[:-1], _MAX) == []  # incomplete: nothing taken
    assert split_simple(text_frame(b"unmasked"), _MAX) == []


def test_control_frame_is_what_wsproto_sends() -> None:
    conn = WsConnection(ConnectionType.SERVER)
    assert control_frame(wsf.OP_PONG, b"hb") == conn.send(Pong(payload=b"hb"))
