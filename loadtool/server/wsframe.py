"""Server-to-client WebSocket frames, built once and shared by every recipient.

Server frames are unmasked (RFC 6455 §5.1), so the bytes of one broadcast are the same
for every member: the hub frames each message once instead of once per recipient, which
is most of the cost of a fan-out. Parsing stays with wsproto, except for the run of
simple frames `split_simple` takes off the front of a chunk (complete masked text, ping
and pong frames): tested against wsproto frame for frame in tests/server/test_wsframe.py.
"""

from __future__ import annotations

import struct
from typing import Final

_FIN_TEXT: Final = 0x81  # FIN bit + opcode 0x1 (text), RFC 6455 §5.2


def text_frame(payload: bytes) -> bytes:
    """One complete, unmasked text frame carrying `payload` (UTF-8 JSON)."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, size) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, size) + payload


class LengthGuard:
    """Follows the frame headers of what a client sends, to refuse a message by its
    declared length before its body arrives (docs/protocol.md §7.1).

    wsproto waits for a frame's body however long the header says it is: a client
    declaring 2**62 bytes and sending nothing would hold the connection until the idle
    timeout. This reads only the headers (and skips payloads), sans-IO.
    """

    __slots__ = ("_buffer", "_limit", "_message", "_skip")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._skip = 0  # payload bytes of the current frame still to pass over
        self._buffer = b""  # the start of an incomplete header
        self._message = 0  # declared bytes of the data message so far

    def feed(self, data: bytes) -> int | None:
        """The declared size of a message over the limit, once `data` shows one; None."""
        pos = 0
        end = len(data)
        if self._buffer:
            data = self._buffer + data
            end = len(data)
            self._buffer = b""
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            if end - pos < 2:
                break
            b0, b1 = data[pos], data[pos + 1]
            size = b1 & 0x7F
            head = 2
            if size == 126:
                head = 4
            elif size == 127:
                head = 10
            if b1 & 0x80:
                head += 4
            if end - pos < head:
                break
            if size == 126:
                size = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif size == 127:
                size = int.from_bytes(data[pos + 2 : pos + 10], "big")
            pos += head
            self._skip = size
            opcode = b0 & 0x0F
            if opcode & 0x08:
                continue  # control frames: wsproto checks them (at most 125 bytes)
            self._message = size if opcode else self._message + size
            if self._message > self._limit:
                return self._message
            if b0 & 0x80:
                self._message = 0
        self._buffer = bytes(data[pos:end])
        return None


OP_TEXT: Final = 0x1
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
_FIN: Final = 0x80


def control_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked control frame (`payload` at most 125 bytes, RFC 6455 §5.5)."""
    return bytes((_FIN | opcode, len(payload))) + payload


def split_simple(data: bytes, max_payload: int) -> list[tuple[int, str | bytes, int]]:
    """Parse the leading run of *simple* client frames in `data`, the common case.

    Simple: complete, FIN, no reserved bits, masked (RFC 6455 §5.3), and either a text
    frame of at most `max_payload` bytes of valid UTF-8, or a ping or pong of at most 125
    bytes. Returns ([(opcode, text or ping/pong payload)], bytes consumed). Parsing stops
    at the first frame that is anything else (a fragment, a close, a binary or malformed
    frame, an incomplete one) and leaves it and all that follows to wsproto, which
    owns every error and edge case: the fast path never decides a failure itself.
    """
    frames: list[tuple[int, str | bytes, int]] = []
    end = len(data)
    pos = 0
    while end - pos >= 6:
        b0 = data[pos]
        b1 = data[pos + 1]
        opcode = b0 & 0x0F
        if b0 & 0xF0 != _FIN or not b1 & 0x80:
            break  # fragment, reserved bits, or unmasked: wsproto decides
        size = b1 & 0x7F
        head = pos + 2
        if size == 126:
            if end - pos < 8:
                break
            size = (data[head] << 8) | data[head + 1]
            head += 2
        elif size == 127:
            break  # 64-bit lengths are never simple here
        if opcode == OP_TEXT:
            if size > max_payload:
                break
        elif opcode not in (OP_PING, OP_PONG) or size > 125:
            break
        start = head + 4
        stop = start + size
        if stop > end:
            break
        payload = _unmask(data[start:stop], data[head:start])
        if opcode == OP_TEXT:
            try:
                frames.append((opcode, payload.decode("utf-8"), stop))
            except UnicodeDecodeError:
                break
        else:
            frames.append((opcode, payload, stop))
        pos = stop
    return frames


def _unmask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    if not size:
        return b""
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
