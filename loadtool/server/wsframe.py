"""Server-to-client WebSocket frames, built once and shared by every recipient.

Server frames are unmasked (RFC 6455 §5.1), so the bytes of one broadcast are the same
for every member: the hub frames each message once instead of once per recipient, which
is most of the cost of a fan-out. Parsing stays with wsproto.
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
