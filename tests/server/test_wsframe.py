"""Server text frames (RFC 6455 §5.2, protocol §2 transport) parsed back by wsproto.

Every payload length class: 7-bit, 16-bit and 64-bit extended lengths and their edges.
"""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from loadtool.server.wsframe import text_frame


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
