"""WebSocket framing for the client side, sans-IO (RFC 6455 §5).

Why our own: the swarm parses every delivery of every simulated client, and wsproto's
general-purpose parser costs more per message than the whole accounting it feeds. This
parser handles what a server may send (unmasked frames, fragmentation, control frames)
and nothing else; the builder masks client frames as §5.3 requires. Both are checked
against wsproto frame for frame in tests/client/test_wsframes.py.
"""

from __future__ import annotations

import os
import struct
from typing import Final

import attrs

OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
NO_STATUS: Final = 1005  # RFC 6455 §7.4.1: a Close frame without a code
MAX_CONTROL_PAYLOAD: Final = 125  # RFC 6455 §5.5


class FrameError(Exception):
    """The server broke RFC 6455; `code` is the close code to fail the connection with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@attrs.frozen
class Control:
    """A control frame: ping, pong or close (`code`/`reason` only for close)."""

    opcode: int
    payload: bytes
    code: int = 0
    reason: str = ""


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte `key` repeated (RFC 6455 §5.3); its own inverse."""
    size = len(payload)
    if not size:
        return b""
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask_key: bytes | None = None,
    rsv: int = 0,
) -> bytes:
    """One masked client frame. `rsv` (bits 0-7, shifted into place) exists for tests that
    must send broken frames; a normal client leaves it 0."""
    key = os.urandom(4) if mask_key is None else mask_key
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    return header + key + mask_payload(payload, key)


def text_frame(text: str) -> bytes:
    return client_frame(OP_TEXT, text.encode())


def close_frame(code: int, reason: str = "") -> bytes:
    # At most 123 bytes of reason (§5.5), cut on a character boundary: it must stay UTF-8.
    text = reason.encode()[:123].decode("utf-8", "ignore").encode()
    return client_frame(OP_CLOSE, struct.pack("!H", code) + text)


def valid_close_code(code: int) -> bool:
    """May this code appear in a Close frame on the wire? (RFC 6455 §7.4)"""
    if code in (1004, 1005, 1006, 1015):
        return False  # reserved, or for reporting only, never sent
    return 1000 <= code <= 1014 or 3000 <= code <= 4999


class FrameParser:
    """Turns bytes from a server into complete text messages and control frames."""

    def __init__(self, max_message_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = bytearray()  # the start of an incomplete frame
        self._max = max_message_bytes
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_bytes = 0

    def feed(self, data: bytes) -> tuple[list[str], list[Control]]:
        """Parse what `data` completes. Returns (text messages, control frames), each in
        arrival order. Binary messages are dropped (no chat protocol here uses them).

        Raises:
            FrameError: a masked or malformed frame, bad UTF-8, or a message too big.
        """
        # The hot path: one whole, final, unmasked text frame under 64 KiB, nothing pending
        # (what one read brings at light load). The same checks as below, fewer steps.
        if len(data) > 2 and data[0] == 0x81 and not self._buffer and not self._fragment_opcode:
            size = data[1]  # < 128: the mask bit is clear
            head = 2
            if size == 126 and len(data) > 4:
                size = (data[2] << 8) | data[3]
                head = 4
            shortest = size < 126 if head == 2 else size >= 126  # §5.2: the shortest length form
            if shortest and len(data) - head == size and size <= self._max:
                return [_utf8(data[head:])], []
        if self._buffer:
            self._buffer += data  # amortised: a big frame in many chunks stays linear
            buf: bytes | bytearray = self._buffer
        else:
            buf = data
        end = len(buf)
        pos = 0
        texts: list[str] = []
        controls: list[Control] = []
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            size = b1 & 0x7F
            head = 2
            if size == 126:
                if end - pos < 4:
                    break
                size = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif size == 127:
                if end - pos < 10:
                    break
                size = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if head > 2 and size < (126 if head == 4 else 65536):
                raise FrameError(1002, "payload length not in its shortest form (RFC 6455 §5.2)")
            if b1 & 0x80:
                raise FrameError(1002, "the server sent a masked frame")
            if b0 & 0x70:
                raise FrameError(1002, "reserved bits set without an extension")
            if size > self._max:
                raise FrameError(1009, f"frame of {size} bytes is over the limit")
            start = pos + head
            if end - start < size:
                break
            payload = bytes(buf[start : start + size])
            pos = start + size
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == OP_TEXT and fin and not self._fragment_opcode:
                texts.append(_utf8(payload))
            elif opcode >= OP_CLOSE:
                controls.append(_control(opcode, payload, fin))
            else:
                message = self._fragment(opcode, payload, fin)
                if message is not None:
                    texts.append(message)
        if buf is self._buffer:
            del self._buffer[:pos]
        elif pos < end:
            self._buffer = bytearray(buf[pos:])
        return texts, controls

    def _fragment(self, opcode: int, payload: bytes, fin: int) -> str | None:
        if opcode == OP_CONTINUATION:
            if not self._fragment_opcode:
                raise FrameError(1002, "continuation frame without a message to continue")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragment_opcode:
                raise FrameError(1002, "new data frame inside a fragmented message")
            self._fragment_opcode = opcode
        else:
            raise FrameError(1002, f"reserved opcode {opcode:#x}")
        self._fragment_bytes += len(payload)
        if self._fragment_bytes > self._max:
            raise FrameError(1009, "fragmented message over the limit")
        self._fragments.append(payload)
        if not fin:
            return None
        whole = b"".join(self._fragments)
        kind = self._fragment_opcode
        self._fragments.clear()
        self._fragment_opcode = 0
        self._fragment_bytes = 0
        return _utf8(whole) if kind == OP_TEXT else None


def _utf8(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(1007, "text message is not valid UTF-8") from None


def _control(opcode: int, payload: bytes, fin: int) -> Control:
    if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
        raise FrameError(1002, f"reserved control opcode {opcode:#x}")
    if not fin or len(payload) > MAX_CONTROL_PAYLOAD:
        raise FrameError(1002, "control frames must be whole and at most 125 bytes")
    if opcode != OP_CLOSE:
        return Control(opcode, payload)
    if len(payload) == 1:
        raise FrameError(1002, "close frame with a one-byte payload")
    if not payload:
        return Control(opcode, payload, NO_STATUS)
    code = (payload[0] << 8) | payload[1]
    if not valid_close_code(code):
        raise FrameError(1002, f"close code {code} may not be sent")
    return Control(opcode, payload, code, _utf8(payload[2:]))
