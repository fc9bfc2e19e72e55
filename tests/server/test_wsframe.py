"""Server text frames (RFC 6455 §5.2, protocol §2 transport) parsed back by wsproto.

Every payload length class: 7-bit, 16-bit and 64-bit extended lengths and their edges.
"""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from loadtool.client.rawframes import RawFrame, fragments, join
from loadtool.server.wsframe import LengthGuard, text_frame


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
