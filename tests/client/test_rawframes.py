"""The raw-frame writer and lenient reader (loadtool.client.rawframes) against wsproto.

Every VALID frame `RawFrame` builds must be read by wsproto's server-side parser as the
same opcode, payload and FIN; fragment splits must reassemble to the same message. The
invalid frames (reserved bits and opcodes, lying and non-minimal lengths, unmasked) must
be refused by wsproto with the close code RFC 6455 gives, which proves the bytes say
what the value says. The reader must split a server's byte stream however it is chunked.
"""

from __future__ import annotations

import struct
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode, ParseFailed

from loadtool.client.rawframes import (
    RESERVED_OPCODES,
    FrameReader,
    RawFrame,
    ReceivedFrame,
    fragments,
    join,
    server_frame_problems,
)
from loadtool.client.wsframes import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT

# Payload sizes across the 7/16/64-bit length encodings' edges.
EDGE_SIZES: Final = (0, 1, 125, 126, 127, 65535, 65536, 65537)


def _frames(data: bytes) -> list[tuple[int, bytes, bool]]:
    """Frame by frame as wsproto's server side reads them: (opcode, payload, fin)."""
    decoder = FrameDecoder(client=False)
    decoder.receive_bytes(data)
    out = []
    while (frame := decoder.process_buffer()) is not None:
        assert frame.frame_finished
        assert isinstance(frame.payload, bytes)
        out.append((int(frame.opcode), frame.payload, frame.message_finished))
    return out


def _messages(data: bytes) -> list[tuple[int, bytes | str]]:
    """Whole messages as wsproto's server side reassembles them (control frames too)."""
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(data)
    out: list[tuple[int, bytes | str]] = []
    current: list[bytes | str] = []
    opcode = 0
    for frame in proto.received_frames():
        if frame.opcode.iscontrol():
            payload = frame.payload
            out.append((int(frame.opcode), payload if isinstance(payload, bytes) else b""))
            continue
        opcode = opcode or int(frame.opcode)
        assert isinstance(frame.payload, str | bytes)
        current.append(frame.payload)
        if frame.message_finished:
            whole: bytes | str = (
                "".join(c for c in current if isinstance(c, str))
                if opcode == OP_TEXT
                else b"".join(c for c in current if isinstance(c, bytes))
            )
            out.append((opcode, whole))
            current, opcode = [], 0
    return out


def _refused(data: bytes) -> int:
    """The close code wsproto's server side fails the connection with."""
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(data)
    with pytest.raises(ParseFailed) as raised:
        list(proto.received_frames())
    return int(raised.value.code)


sizes = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 70_000))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=sizes,
    opcode=st.sampled_from([OP_TEXT, OP_BINARY]),
    fin=st.booleans(),
    key=st.binary(min_size=4, max_size=4),
)
def test_valid_data_frames_parse_the_same(size: int, opcode: int, fin: bool, key: bytes) -> None:
    payload = bytes(i % 251 for i in range(size))
    frame = RawFrame(opcode=opcode, payload=payload, fin=fin, mask=key)
    assert frame.valid
    assert _frames(frame.to_bytes()) == [(opcode, payload, fin)]
    assert frame.encoding == (7 if size <= 125 else 16 if size <= 65535 else 64)


@settings(max_examples=60)
@given(
    opcode=st.sampled_from([OP_PING, OP_PONG]),
    payload=st.binary(max_size=125),
)
def test_valid_control_frames_parse_the_same(opcode: int, payload: bytes) -> None:
    frame = RawFrame(opcode=opcode, payload=payload)
    assert frame.valid
    assert _frames(frame.to_bytes()) == [(opcode, payload, True)]


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(min_size=0, max_size=300),
    cuts=st.lists(st.integers(0, 200), min_size=1, max_size=6),
    pings=st.lists(st.binary(max_size=125), max_size=2),
)
def test_fragment_splits_reassemble(text: str, cuts: list[int], pings: list[bytes]) -> None:
    """Any byte split (even mid-character, even empty fragments), with pings between
    fragments, is one text message to wsproto, the pings answered in between."""
    parts = fragments(OP_TEXT, text.encode(), cuts)
    assert all(p.valid for p in parts)
    wire = parts[:1] + [RawFrame.ping(p) for p in pings] + parts[1:]
    got = _messages(join(wire))
    assert got == [*((OP_PING, p) for p in pings), (OP_TEXT, text)]


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_binary_fragments_at_the_edges(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    parts = fragments(OP_BINARY, payload, [size // 2])
    assert _messages(join(parts)) == [(OP_BINARY, payload)]


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 3000, 4999])
def test_valid_close_frames(code: int) -> None:
    frame = RawFrame.close(code, "bye")
    assert frame.valid
    assert _frames(frame.to_bytes()) == [(OP_CLOSE, struct.pack("!H", code) + b"bye", True)]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (RawFrame.text("x", rsv=4), 1002),
        (RawFrame.text("x", rsv=1), 1002),
        *((RawFrame(opcode=op), 1002) for op in RESERVED_OPCODES),
        (RawFrame.text("x", mask=None), 1002),
        (RawFrame.ping(b"x" * 126), 1002),
        (RawFrame.ping(b"x", fin=False), 1002),
        (RawFrame.text("hello", length_bits=16), 1002),  # non-minimal length
        (RawFrame.text("x" * 200, length_bits=64), 1002),
        (RawFrame.text(b"", length=2**63), 1002),  # top bit of the 64-bit length set
        (RawFrame.text(b"\xff\xfe"), 1007),
        (RawFrame.close(1004), 1002),
        (RawFrame.close(999), 1002),
        (RawFrame.close(5000), 1002),
        (RawFrame(opcode=OP_CLOSE, payload=b"\x03"), 1002),
        (RawFrame.close(1000, b"\xff"), 1007),
        (RawFrame.continuation("x"), 1002),
    ],
    ids=lambda v: v.describe() if isinstance(v, RawFrame) else str(v),
)
def test_invalid_frames_are_refused_as_the_rfc_says(frame: RawFrame, code: int) -> None:
    assert not frame.valid or frame.opcode in (0, OP_TEXT)  # message-level faults look valid
    assert _refused(frame.to_bytes()) == code


def test_lying_length_holds_back_the_frame() -> None:
    """A declared length with no body: wsproto waits for the body, yields nothing."""
    frame = RawFrame.text(b"", length=2**40)
    data = frame.to_bytes()
    assert data[1] == 0x80 | 127
    assert int.from_bytes(data[2:10], "big") == 2**40
    assert _frames(data) == []


def test_lengths_that_cannot_be_written_are_refused() -> None:
    with pytest.raises(ValueError, match="7-bit"):
        RawFrame.text("x" * 126, length_bits=7)
    with pytest.raises(ValueError, match="16-bit"):
        RawFrame.text(b"", length=70_000, length_bits=16)
    with pytest.raises(ValueError, match="opcode"):
        RawFrame(opcode=16)
    with pytest.raises(ValueError, match="mask"):
        RawFrame.text("x", mask=b"abc")


def test_json_round_trip() -> None:
    frame = RawFrame.text(b"\xff", rsv=2, mask=None, length=9, length_bits=64, fin=False)
    assert RawFrame.from_json(frame.to_json()) == frame
    assert "UNMASKED" in frame.describe()
    assert "declared=9 sent=1" in frame.describe()


# --- the reader --------------------------------------------------------------------------


def _server_bytes() -> bytes:
    server = FrameProtocol(client=False, extensions=[])  # unmasked, as a server sends
    return bytes(
        server.send_data("héllo" * 40, fin=False)
        + server.ping(b"p")
        + server.send_data("!", fin=True)
        + server.send_data(b"\x00" * 70_000)
        + server.close(1002, "bye")
    )


@settings(max_examples=40)
@given(cuts=st.lists(st.integers(1, 5000), max_size=12))
def test_reader_splits_any_chunking(cuts: list[int]) -> None:
    data = _server_bytes()
    reader = FrameReader()
    frames: list[ReceivedFrame] = []
    pos = 0
    for cut in [*cuts, len(data)]:
        frames += reader.feed(data[pos : pos + cut])
        pos += cut
    assert reader.pending == 0
    assert [f.opcode for f in frames] == [OP_TEXT, OP_PING, 0, OP_BINARY, OP_CLOSE]
    assert reader.messages == [(OP_TEXT, ("héllo" * 40 + "!").encode()), (OP_BINARY, bytes(70_000))]
    assert frames[-1].close_code == 1002
    assert frames[-1].close_reason == "bye"
    assert reader.problems == []


def test_reader_reports_what_a_server_must_not_send() -> None:
    reader = FrameReader()
    bad = [
        RawFrame.text(b"\xff", mask=None),
        RawFrame.close(1005, mask=None),
        RawFrame(opcode=3, mask=None),
        RawFrame.ping(b"x"),  # masked
    ]
    reader.feed(join(bad))
    text = "\n".join(reader.problems)
    for needle in ("not UTF-8", "close code 1005", "reserved opcode 0x3", "masked frame"):
        assert needle in text
    assert server_frame_problems(ReceivedFrame(fin=True, rsv=0, opcode=Opcode.PONG, masked=False,
                                           payload=b"")) == []  # fmt: skip
