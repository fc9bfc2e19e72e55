"""The client's sans-IO frame codec (loadtool.client.wsframes) checked against wsproto.

Server -> client: byte streams written by wsproto's server-side `FrameProtocol` (plus a few
hand-built frames for byte-level fragment splits and broken frames) are fed to `FrameParser`
in arbitrary chunkings; it must produce exactly the text messages and control frames that
wsproto's client-side parser reads from the same bytes. Client -> server: `client_frame`,
`text_frame` and `close_frame` must parse with wsproto's server-side parser (masked, same
payload). Protocol violations fail with the close code of RFC 6455 §7.4.1 (1002, 1007,
1009). docs/protocol.md §2 (transport) and §8.2 (close codes).
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Sequence
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed

from loadtool.client.wsframes import (
    NO_STATUS,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Control,
    FrameError,
    FrameParser,
    client_frame,
    close_frame,
    text_frame,
)

# Payload sizes at the length-encoding edges (7-bit, 16-bit, 64-bit) and around them.
EDGE_SIZES: Final = (0, 1, 125, 126, 127, 65535, 65536, 70000)
CLOSE_CODES: Final = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1013, 3000, 4000, 4999)

# --- helpers -----------------------------------------------------------------------------------


def server_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask_key: bytes | None = None,
) -> bytes:
    """One frame as a server would send it (unmasked unless `mask_key` is given): a
    hand-made builder for what wsproto cannot write (byte-level splits, broken frames)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask_key is not None else 0
    size = len(payload)
    if size < 126:
        header = bytes([first, mask_bit | size])
    elif size < 65536:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", size)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", size)
    if mask_key is None:
        return header + payload
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return header + mask_key + masked


def text_of_bytes(seed: str, size: int) -> str:
    """A text whose UTF-8 encoding is exactly `size` bytes: `seed` repeated, cut at a
    character boundary, padded with ASCII."""
    unit = seed.encode()
    raw = (unit * (size // len(unit) + 1))[:size]
    text = raw.decode("utf-8", "ignore")  # drops a character cut in half at the end
    # A character cut at the end leaves a lone lead byte that "ignore" drops with it.
    text = text + "a" * (size - len(text.encode()))
    assert len(text.encode()) == size
    return text


def close_payload(code: int | None, reason: str) -> bytes:
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode()


def wsproto_reads(data: bytes) -> tuple[list[str], list[Control]]:
    """What wsproto's client-side parser reads from server bytes: whole text messages
    (binary ones dropped, as FrameParser does) and control frames, each in order."""
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(data)
    texts: list[str] = []
    controls: list[Control] = []
    parts: list[str] = []
    for frame in proto.received_frames():
        if frame.opcode is Opcode.TEXT:
            assert isinstance(frame.payload, str)
            parts.append(frame.payload)
            if frame.message_finished:
                texts.append("".join(parts))
                parts.clear()
        elif frame.opcode is Opcode.BINARY:
            pass
        elif frame.opcode is Opcode.CLOSE:
            assert isinstance(frame.payload, tuple)
            code, reason = frame.payload
            if code == CloseReason.NO_STATUS_RCVD:
                controls.append(Control(OP_CLOSE, b"", NO_STATUS, ""))
            else:
                controls.append(Control(OP_CLOSE, close_payload(int(code), reason), code, reason))
        else:
            assert isinstance(frame.payload, bytes | bytearray)
            controls.append(Control(int(frame.opcode), bytes(frame.payload)))
    return texts, controls


def feed_in_chunks(
    parser: FrameParser, data: bytes, cuts: Sequence[int]
) -> tuple[list[str], list[Control]]:
    """Feed `data` split at `cuts` (positions); collect everything the parser returns."""
    texts: list[str] = []
    controls: list[Control] = []
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        got_texts, got_controls = parser.feed(data[start:end])
        texts.extend(got_texts)
        controls.extend(got_controls)
    return texts, controls


def wsproto_failure(data: bytes) -> int:
    """The close code wsproto's client-side parser fails `data` with."""
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(data)
    with pytest.raises(ParseFailed) as failed:
        list(proto.received_frames())
    return int(failed.value.code)


def feed_all(parser: FrameParser, data: bytes, *, bytewise: bool) -> None:
    if bytewise:
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
    else:
        parser.feed(data)


def parser_failure(data: bytes, *, max_message_bytes: int | None = None) -> int:
    """The close code FrameParser fails `data` with, fed whole; fed byte by byte it must
    fail with the same code (bytes of a frame never change its verdict)."""
    codes = []
    for bytewise in (False, True):
        parser = FrameParser() if max_message_bytes is None else FrameParser(max_message_bytes)
        with pytest.raises(FrameError) as failed:
            feed_all(parser, data, bytewise=bytewise)
        codes.append(failed.value.code)
    assert codes[0] == codes[1], codes
    return codes[0]


# --- server -> client: generated streams -------------------------------------------------------


def _cuts(draw: st.DrawFn, length: int, max_cuts: int) -> list[int]:
    return sorted(draw(st.lists(st.integers(0, length), max_size=max_cuts)))


@st.composite
def sizes(draw: st.DrawFn, *, control: bool = False) -> int:
    if control:
        return draw(st.one_of(st.sampled_from((0, 1, 124, 125)), st.integers(0, 125)))
    return draw(st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 300)))


@st.composite
def server_streams(draw: st.DrawFn) -> tuple[bytes, list[str], list[int]]:
    """(bytes a server sends, the text messages it meant, chunk cut points)."""
    proto = FrameProtocol(client=False, extensions=[])
    out = bytearray()
    meant: list[str] = []

    def maybe_control_between() -> None:
        if draw(st.booleans()):
            out.extend(proto.ping(draw(st.binary(max_size=125))))

    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(("text", "text-bytes", "binary", "ping", "pong")))
        if kind in ("ping", "pong"):
            payload = random.Random(draw(st.integers(0, 2**32))).randbytes(
                draw(sizes(control=True))
            )
            out.extend(proto.ping(payload) if kind == "ping" else proto.pong(payload))
        elif kind == "text":  # wsproto fragments at character boundaries
            text = text_of_bytes(draw(st.text(min_size=1, max_size=6)), draw(sizes()))
            meant.append(text)
            cuts = _cuts(draw, len(text), 3)
            pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
            for i, piece in enumerate(pieces):
                if i:
                    maybe_control_between()
                out.extend(proto.send_data(piece, fin=i == len(pieces) - 1))
        elif kind == "text-bytes":  # fragments split anywhere, even inside a character
            text = text_of_bytes(draw(st.text(min_size=1, max_size=6)), draw(sizes()))
            meant.append(text)
            raw = text.encode()
            cuts = _cuts(draw, len(raw), 3)
            bounds = list(zip([0, *cuts], [*cuts, len(raw)], strict=True))
            for i, (a, b) in enumerate(bounds):
                if i:
                    maybe_control_between()
                opcode = OP_TEXT if i == 0 else OP_CONTINUATION
                out.extend(server_frame(opcode, raw[a:b], fin=i == len(bounds) - 1))
        else:
            data = random.Random(draw(st.integers(0, 2**32))).randbytes(draw(sizes()))
            cuts = _cuts(draw, len(data), 2)
            chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
            for i, chunk in enumerate(chunks):
                if i:
                    maybe_control_between()
                out.extend(proto.send_data(chunk, fin=i == len(chunks) - 1))
    ending = draw(st.sampled_from(("none", "close", "close-code", "close-reason")))
    if ending == "close":
        out.extend(proto.close())
    elif ending == "close-code":
        out.extend(proto.close(draw(st.sampled_from(CLOSE_CODES))))
    elif ending == "close-reason":
        out.extend(proto.close(draw(st.sampled_from(CLOSE_CODES)), draw(st.text(max_size=60))))
    data = bytes(out)
    return data, meant, _cuts(draw, len(data), 12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server_streams())
def test_server_streams_parse_like_wsproto_in_any_chunking(
    stream: tuple[bytes, list[str], list[int]],
) -> None:
    data, meant, cuts = stream
    want_texts, want_controls = wsproto_reads(data)
    assert want_texts == meant  # the reference itself reads what was sent
    texts, controls = feed_in_chunks(FrameParser(), data, cuts)
    assert texts == want_texts
    assert controls == want_controls


def test_a_mixed_stream_fed_one_byte_at_a_time() -> None:
    proto = FrameProtocol(client=False, extensions=[])
    data = b"".join(
        [
            proto.send_data("héllo"),
            proto.ping(b"hb"),
            proto.send_data("frag", fin=False),
            proto.pong(b"p"),
            proto.send_data("-mented ✓", fin=False),
            proto.send_data("", fin=True),
            proto.send_data(b"\x00\xff binary"),
            server_frame(OP_TEXT, "€".encode()[:2], fin=False),
            server_frame(OP_CONTINUATION, "€".encode()[2:] + b"!"),
            proto.send_data(""),
            proto.close(1001, "going away"),
        ]
    )
    texts, controls = feed_in_chunks(FrameParser(), data, range(1, len(data)))
    assert texts == ["héllo", "frag-mented ✓", "€!", ""]
    assert controls == [
        Control(OP_PING, b"hb"),
        Control(OP_PONG, b"p"),
        Control(OP_CLOSE, b"\x03\xe9going away", 1001, "going away"),
    ]
    assert (texts, controls) == wsproto_reads(data)


def test_a_mixed_stream_fed_one_frame_per_feed() -> None:
    """Each feed one whole frame, as a read at light load brings it: the parser's fast
    path for a lone text frame, with fragments and controls in between."""
    proto = FrameProtocol(client=False, extensions=[])
    frames = [
        proto.send_data("héllo"),
        proto.send_data("y" * 125),
        proto.send_data("z" * 126),
        proto.send_data("w" * 70000),
        proto.ping(b"hb"),
        proto.send_data("frag", fin=False),
        proto.send_data(" ✓", fin=True),
        server_frame(OP_TEXT, "€".encode()[:2], fin=False),
        server_frame(OP_CONTINUATION, "€".encode()[2:] + b"!"),
        proto.send_data(""),
        proto.close(1000),
    ]
    data = b"".join(frames)
    bounds = list(itertools.accumulate(len(frame) for frame in frames))[:-1]
    got = feed_in_chunks(FrameParser(), data, bounds)
    assert got == wsproto_reads(data)
    assert got[0] == ["héllo", "y" * 125, "z" * 126, "w" * 70000, "frag ✓", "€!", ""]


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        (server_frame(OP_TEXT, b"part", fin=False), server_frame(OP_TEXT, b"new"), 1002),
        (b"", server_frame(OP_TEXT, b"ok \xff ok"), 1007),
        (b"", bytes([0x81, 126, 0, 2]) + b"ok", 1002),  # length not in its shortest form
        (b"", server_frame(OP_TEXT, b"x" * 200 + b"\xc0\xaf"), 1007),
    ],
)
def test_a_lone_text_frame_gets_every_check(first: bytes, second: bytes, code: int) -> None:
    parser = FrameParser()
    parser.feed(first)
    with pytest.raises(FrameError) as failed:
        parser.feed(second)
    assert failed.value.code == code == wsproto_failure(first + second)


def test_a_lone_text_frame_over_a_small_limit_fails_1009() -> None:
    with pytest.raises(FrameError) as failed:
        FrameParser(max_message_bytes=10).feed(server_frame(OP_TEXT, b"x" * 11))
    assert failed.value.code == 1009


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_each_length_encoding_in_one_frame(size: int) -> None:
    text = text_of_bytes("ab€", size)
    data = FrameProtocol(client=False, extensions=[]).send_data(text)
    assert FrameParser().feed(bytes(data)) == ([text], [])


def test_partial_frames_return_nothing_until_complete() -> None:
    data = bytes(FrameProtocol(client=False, extensions=[]).send_data("x" * 70000))
    parser = FrameParser()
    # Inside the 2-byte header, inside the 8-byte length, inside the payload.
    for start, end in ((0, 1), (1, 2), (2, 9), (9, 10), (10, 5000), (5000, 70009)):
        assert parser.feed(data[start:end]) == ([], []), (start, end)
    assert parser.feed(data[70009:]) == (["x" * 70000], [])


@pytest.mark.parametrize(
    ("code", "reason"),
    [(None, ""), (1000, ""), (1001, "server shutting down"), (4000, "idle ✓"), (3000, "x" * 123)],
)
def test_close_frames(code: int | None, reason: str) -> None:
    data = bytes(FrameProtocol(client=False, extensions=[]).close(code, reason or None))
    want = Control(OP_CLOSE, close_payload(code, reason), code or NO_STATUS, reason)
    assert FrameParser().feed(data) == ([], [want])
    assert wsproto_reads(data) == ([], [want])


# --- server -> client: protocol violations -------------------------------------------------------

FRAG: Final = server_frame(OP_TEXT, b"part", fin=False)

VIOLATIONS: Final = {
    "masked server frame": (server_frame(OP_TEXT, b"hello", mask_key=b"\x01\x02\x03\x04"), 1002),
    "masked empty frame": (server_frame(OP_PING, b"", mask_key=b"abcd"), 1002),
    "rsv1": (server_frame(OP_TEXT, b"hi", rsv=4), 1002),
    "rsv2": (server_frame(OP_TEXT, b"hi", rsv=2), 1002),
    "rsv3": (server_frame(OP_TEXT, b"hi", rsv=1), 1002),
    "rsv on a ping": (server_frame(OP_PING, b"", rsv=4), 1002),
    **{f"reserved opcode {op:#x}": (server_frame(op, b"data"), 1002) for op in range(3, 8)},
    **{
        f"reserved control opcode {op:#x}": (server_frame(op, b"data"), 1002)
        for op in range(0xB, 0x10)
    },
    "reserved opcode inside a message": (FRAG + server_frame(0x3, b"x"), 1002),
    "continuation without a start": (server_frame(OP_CONTINUATION, b"orphan"), 1002),
    "continuation after a finished message": (
        server_frame(OP_TEXT, b"done") + server_frame(OP_CONTINUATION, b"more"),
        1002,
    ),
    "text inside a fragmented message": (FRAG + server_frame(OP_TEXT, b"new"), 1002),
    "binary inside a fragmented message": (FRAG + server_frame(OP_BINARY, b"new"), 1002),
    "unfinished text inside a fragmented message": (
        FRAG + server_frame(OP_TEXT, b"new", fin=False),
        1002,
    ),
    "ping of 126 bytes": (server_frame(OP_PING, b"p" * 126), 1002),
    "close of 126 bytes": (server_frame(OP_CLOSE, b"\x03\xe8" + b"r" * 124), 1002),
    "fragmented ping": (server_frame(OP_PING, b"p", fin=False), 1002),
    "fragmented close": (server_frame(OP_CLOSE, b"\x03\xe8", fin=False), 1002),
    "close with a one-byte payload": (server_frame(OP_CLOSE, b"\x03"), 1002),
    "invalid UTF-8 text": (server_frame(OP_TEXT, b"ok \xff ok"), 1007),
    "overlong UTF-8 encoding": (server_frame(OP_TEXT, b"\xc0\xaf"), 1007),
    "UTF-16 surrogate in UTF-8": (server_frame(OP_TEXT, b"\xed\xa0\x80"), 1007),
    "text ending inside a character": (server_frame(OP_TEXT, b"ok\xe2\x82"), 1007),
    "invalid UTF-8 in the first fragment": (
        server_frame(OP_TEXT, b"\xff", fin=False) + server_frame(OP_CONTINUATION, b"ok"),
        1007,
    ),
    "a character broken across fragments": (
        server_frame(OP_TEXT, b"ok\xe2\x82", fin=False) + server_frame(OP_CONTINUATION, b"("),
        1007,
    ),
    "invalid UTF-8 in the last fragment": (
        server_frame(OP_TEXT, b"fine", fin=False)
        + server_frame(OP_CONTINUATION, b" also", fin=False)
        + server_frame(OP_CONTINUATION, b"\x80"),
        1007,
    ),
    "invalid UTF-8 in a close reason": (server_frame(OP_CLOSE, b"\x03\xe8\xff"), 1007),
    "16-bit length for a short payload": (bytes([0x81, 126, 0, 125]) + b"x" * 125, 1002),
    "64-bit length for a 16-bit payload": (
        bytes([0x81, 127]) + struct.pack("!Q", 65535) + b"x" * 65535,
        1002,
    ),
}


@pytest.mark.parametrize(("data", "code"), list(VIOLATIONS.values()), ids=list(VIOLATIONS))
def test_protocol_violations_fail_with_the_close_code_wsproto_uses(data: bytes, code: int) -> None:
    assert wsproto_failure(data) == code
    assert parser_failure(data) == code


def test_a_ping_between_fragments_is_not_a_violation() -> None:
    data = FRAG + server_frame(OP_PING, b"x") + server_frame(OP_CONTINUATION, b"-end")
    assert FrameParser().feed(data) == (["part-end"], [Control(OP_PING, b"x")])
    assert wsproto_reads(data) == (["part-end"], [Control(OP_PING, b"x")])


def test_a_character_split_across_fragments_is_valid() -> None:
    data = server_frame(OP_TEXT, b"ok\xe2\x82", fin=False) + server_frame(OP_CONTINUATION, b"\xac")
    assert FrameParser().feed(data) == (["ok€"], [])
    assert wsproto_reads(data) == (["ok€"], [])


def test_frames_before_a_violation_in_the_same_feed_are_not_returned_but_state_is_sane() -> None:
    # What is returned before a failure does not matter (the connection is failed); what
    # matters is that the failure is raised. A fresh parser then reads normally.
    data = server_frame(OP_TEXT, b"fine") + server_frame(OP_TEXT, b"\xff")
    with pytest.raises(FrameError) as failed:
        FrameParser().feed(data)
    assert failed.value.code == 1007
    assert FrameParser().feed(server_frame(OP_TEXT, b"fine")) == (["fine"], [])


# --- size limit --------------------------------------------------------------------------------


def test_a_frame_at_the_limit_is_read() -> None:
    assert FrameParser(100).feed(server_frame(OP_TEXT, b"x" * 100)) == (["x" * 100], [])


def test_a_frame_over_the_limit_fails_1009_from_its_header() -> None:
    frame = server_frame(OP_TEXT, b"x" * 101)
    assert parser_failure(frame, max_message_bytes=100) == 1009
    # The header alone is enough: the payload is never buffered.
    big = server_frame(OP_TEXT, b"x" * 70000)
    with pytest.raises(FrameError) as failed:
        FrameParser(65536).feed(big[:10])
    assert failed.value.code == 1009


def test_a_fragmented_message_over_the_limit_fails_1009() -> None:
    at_limit = server_frame(OP_TEXT, b"x" * 60, fin=False) + server_frame(
        OP_CONTINUATION, b"y" * 40
    )
    assert FrameParser(100).feed(at_limit) == (["x" * 60 + "y" * 40], [])
    over = server_frame(OP_TEXT, b"x" * 60, fin=False) + server_frame(OP_CONTINUATION, b"y" * 41)
    assert parser_failure(over, max_message_bytes=100) == 1009


def test_the_limit_counts_per_message_not_per_connection() -> None:
    parser = FrameParser(100)
    for n in range(5):
        part = server_frame(OP_TEXT, b"a" * 50, fin=False) + server_frame(
            OP_CONTINUATION, b"b" * 50
        )
        assert parser.feed(part) == (["a" * 50 + "b" * 50], []), n


def test_binary_messages_count_against_the_limit_and_are_dropped() -> None:
    parser = FrameParser(100)
    ok = server_frame(OP_BINARY, b"\x00" * 100) + server_frame(OP_TEXT, b"after")
    assert parser.feed(ok) == (["after"], [])
    assert parser_failure(server_frame(OP_BINARY, b"\x00" * 101), max_message_bytes=100) == 1009


# --- client -> server ----------------------------------------------------------------------------


def wsproto_server_reads(data: bytes) -> list[tuple[Opcode, object, bool, bool]]:
    """Frames wsproto's server-side parser reads: (opcode, payload, frame_finished,
    message_finished); text payloads are str, close payloads (code, reason)."""
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(data)
    return [
        (f.opcode, f.payload, f.frame_finished, f.message_finished) for f in proto.received_frames()
    ]


def header_of(frame: bytes) -> bytes:
    """The frame's header up to (excluding) the masking key."""
    size = frame[1] & 0x7F
    return frame[: 2 + {126: 2, 127: 8}.get(size, 0)]


@settings(max_examples=200, deadline=None)
@given(
    opcode=st.sampled_from((OP_TEXT, OP_BINARY, OP_PING, OP_PONG)),
    size_seed=st.data(),
)
def test_client_frames_parse_with_wsproto_masked(opcode: int, size_seed: st.DataObject) -> None:
    control = opcode in (OP_PING, OP_PONG)
    size = size_seed.draw(sizes(control=control))
    if opcode == OP_TEXT:
        text = text_of_bytes(size_seed.draw(st.text(min_size=1, max_size=6)), size)
        payload = text.encode()
        want: object = text
    else:
        payload = random.Random(size_seed.draw(st.integers(0, 2**32))).randbytes(size)
        want = payload
    frame = client_frame(opcode, payload)
    assert frame[1] & 0x80  # masked (RFC 6455 §5.3)
    assert len(frame) == len(header_of(frame)) + 4 + size
    # The header is byte for byte what wsproto's own client writes.
    reference = FrameProtocol(client=True, extensions=[])
    if opcode == OP_PING:
        theirs = reference.ping(payload)
    elif opcode == OP_PONG:
        theirs = reference.pong(payload)
    else:
        theirs = reference.send_data(want if opcode == OP_TEXT else payload)  # type: ignore[arg-type]
    assert header_of(frame) == header_of(bytes(theirs))
    assert wsproto_server_reads(frame) == [(Opcode(opcode), want, True, True)]


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_masking_with_a_given_key(size: int) -> None:
    payload = bytes(n % 251 for n in range(size))
    key = b"\x12\x34\x56\x78"
    frame = client_frame(OP_BINARY, payload, mask_key=key)
    header = header_of(frame)
    assert frame[len(header) : len(header) + 4] == key
    body = frame[len(header) + 4 :]
    assert body == bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    clear = client_frame(OP_BINARY, payload, mask_key=b"\x00\x00\x00\x00")
    assert clear[len(header) + 4 :] == payload


def test_each_frame_gets_a_fresh_masking_key() -> None:
    keys = {text_frame("same")[2:6] for _ in range(20)}
    assert len(keys) > 1


@pytest.mark.parametrize("text", ["", "hello", "ünïcödé ✓ 🙂", "x" * 125, "y" * 126, "z" * 70000])
def test_text_frame(text: str) -> None:
    frame = text_frame(text)
    assert frame[0] == 0x81
    assert wsproto_server_reads(frame) == [(Opcode.TEXT, text, True, True)]


def test_fragmented_client_message_with_a_character_split_across_frames() -> None:
    raw = "hello €uro".encode()
    cut = raw.index(b"\xe2") + 1
    data = (
        client_frame(OP_TEXT, raw[:cut], fin=False)
        + client_frame(OP_PING, b"mid")
        + client_frame(OP_CONTINUATION, raw[cut:])
    )
    frames = wsproto_server_reads(data)
    assert frames == [
        (Opcode.TEXT, "hello ", True, False),
        (Opcode.PING, b"mid", True, True),
        (Opcode.TEXT, "€uro", True, True),
    ]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, ""), (1001, "bye"), (1002, "protocol ✓"), (4000, "idle"), (4999, "r" * 123)],
)
def test_close_frame(code: int, reason: str) -> None:
    frame = close_frame(code, reason)
    assert frame[0] == 0x88
    assert wsproto_server_reads(frame) == [(Opcode.CLOSE, (code, reason), True, True)]


def test_close_frame_cuts_a_long_ascii_reason_to_fit_125_bytes() -> None:
    frame = close_frame(1011, "e" * 300)
    assert wsproto_server_reads(frame) == [(Opcode.CLOSE, (1011, "e" * 123), True, True)]


def test_close_frame_cuts_a_long_unicode_reason_at_a_character_boundary() -> None:
    frame = close_frame(1000, "é" * 100)  # 200 bytes; 123 is inside the 62nd "é"
    assert wsproto_server_reads(frame) == [(Opcode.CLOSE, (1000, "é" * 61), True, True)]


@pytest.mark.parametrize(("rsv", "bit"), [(4, 0x40), (2, 0x20), (1, 0x10)])
def test_rsv_bits_land_where_rfc_6455_puts_them(rsv: int, bit: int) -> None:
    frame = client_frame(OP_TEXT, b"x", rsv=rsv)
    assert frame[0] == 0x80 | bit | OP_TEXT
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(frame)
    with pytest.raises(ParseFailed) as failed:
        list(proto.received_frames())
    assert failed.value.code == 1002
