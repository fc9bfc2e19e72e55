"""Raw WebSocket frames, byte for byte, sans-IO (RFC 6455 §5.2): any frame, broken ones too.

Why: wsproto and trio-websocket refuse to send an invalid frame, which is exactly what a
robustness gate must send. `RawFrame` is a value (FIN, the three RSV bits, any opcode
including the reserved ones, a mask key or none, the declared payload length in any of
the three encodings, minimal or not, true or lying, and the payload actually sent);
`to_bytes()` writes it. `FrameReader` is the other direction and never raises: it splits
whatever a server sends into frames, lenient about everything, and says what RFC 6455
forbids in them (`server_frame_problems`), so a gate can judge a server's answer instead
of giving up on it. Valid frames built here are checked against wsproto's server-side
parser in tests/client/test_rawframes.py.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from .wsframes import (
    MAX_CONTROL_PAYLOAD,
    NO_STATUS,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    mask_payload,
    valid_close_code,
)

# A fixed default mask key (the one of RFC 6455 §5.7's examples): a reproducer must be the
# same bytes every time it is printed and replayed.
DEFAULT_MASK: Final = b"\x37\xfa\x21\x3d"
MAX_7BIT: Final = 125  # payload lengths a 7-bit length field carries
MAX_16BIT: Final = 0xFFFF
MAX_64BIT: Final = 2**64 - 1  # the field's range; RFC 6455 §5.2 forbids the top bit
OPCODE_NAMES: Final = {
    OP_CONTINUATION: "CONT",
    OP_TEXT: "TEXT",
    OP_BINARY: "BINARY",
    OP_CLOSE: "CLOSE",
    OP_PING: "PING",
    OP_PONG: "PONG",
}
KNOWN_OPCODES: Final = frozenset(OPCODE_NAMES)
RESERVED_OPCODES: Final = tuple(op for op in range(16) if op not in KNOWN_OPCODES)
LENGTH_ENCODINGS: Final = (7, 16, 64)  # bits of the length field (7: in the second byte)
_SHOWN_PAYLOAD: Final = 40  # payload bytes shown by `describe`


def _opcode(_inst: Any, _attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= 0xF:
        raise ValueError(f"opcode must be 0-15, got {value}")


def _rsv(_inst: Any, _attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= 7:
        raise ValueError(f"rsv must be 0-7 (RSV1=4, RSV2=2, RSV3=1), got {value}")


def _mask(_inst: Any, _attribute: attrs.Attribute[Any], value: bytes | None) -> None:
    if value is not None and len(value) != 4:
        raise ValueError(f"a mask key is 4 bytes, got {len(value)}")


def _length_bits(_inst: Any, _attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value not in LENGTH_ENCODINGS:
        raise ValueError(f"length_bits must be 7, 16 or 64, got {value}")


@attrs.frozen(kw_only=True)
class RawFrame:
    """One frame exactly as it goes on the wire.

    `length` is the declared payload length (None: the payload's true length) and
    `length_bits` its encoding (None: the minimal one for `length`); both may lie, which
    is the point: `length=2**62, payload=b""` is a huge frame with no body. `mask` is the
    key (None: unmasked, which a client must never send). Raises ValueError for what
    cannot be written at all (a length the chosen field cannot hold).
    """

    opcode: int = attrs.field(validator=_opcode)
    payload: bytes = b""
    fin: bool = True
    rsv: int = attrs.field(default=0, validator=_rsv)
    mask: bytes | None = attrs.field(default=DEFAULT_MASK, validator=_mask)
    length: int | None = None
    length_bits: int | None = attrs.field(default=None, validator=_length_bits)

    def __attrs_post_init__(self) -> None:
        declared = self.declared_length
        if not 0 <= declared <= MAX_64BIT:
            raise ValueError(f"a payload length is 0-2**64-1, got {declared}")
        if self.length_bits == 7 and declared > MAX_7BIT:
            raise ValueError(f"a 7-bit length holds at most {MAX_7BIT}, got {declared}")
        if self.length_bits == 16 and declared > MAX_16BIT:
            raise ValueError(f"a 16-bit length holds at most {MAX_16BIT}, got {declared}")

    # --- named constructors ------------------------------------------------------------

    @classmethod
    def text(cls, text: str | bytes, **kw: Any) -> RawFrame:
        """A text frame; bytes are sent as they are (invalid UTF-8 on purpose)."""
        return cls(opcode=OP_TEXT, payload=text.encode() if isinstance(text, str) else text, **kw)

    @classmethod
    def binary(cls, data: bytes, **kw: Any) -> RawFrame:
        return cls(opcode=OP_BINARY, payload=data, **kw)

    @classmethod
    def continuation(cls, data: str | bytes, **kw: Any) -> RawFrame:
        return cls(
            opcode=OP_CONTINUATION, payload=data.encode() if isinstance(data, str) else data, **kw
        )

    @classmethod
    def ping(cls, payload: bytes = b"", **kw: Any) -> RawFrame:
        return cls(opcode=OP_PING, payload=payload, **kw)

    @classmethod
    def pong(cls, payload: bytes = b"", **kw: Any) -> RawFrame:
        return cls(opcode=OP_PONG, payload=payload, **kw)

    @classmethod
    def close(cls, code: int | None = None, reason: str | bytes = b"", **kw: Any) -> RawFrame:
        """A Close frame: no payload for `code=None`, else the 2-byte code (any 0-65535,
        valid or not) and the reason (bytes as they are)."""
        if code is None:
            return cls(opcode=OP_CLOSE, payload=b"", **kw)
        raw = reason.encode() if isinstance(reason, str) else reason
        return cls(opcode=OP_CLOSE, payload=struct.pack("!H", code) + raw, **kw)

    # --- the wire ------------------------------------------------------------------------

    @property
    def declared_length(self) -> int:
        return len(self.payload) if self.length is None else self.length

    @property
    def encoding(self) -> int:
        """Bits of the length field actually written (7, 16 or 64)."""
        if self.length_bits is not None:
            return self.length_bits
        declared = self.declared_length
        return 7 if declared <= MAX_7BIT else 16 if declared <= MAX_16BIT else 64

    def to_bytes(self) -> bytes:
        first = (0x80 if self.fin else 0) | self.rsv << 4 | self.opcode
        mask_bit = 0x80 if self.mask is not None else 0
        declared = self.declared_length
        bits = self.encoding
        if bits == 7:
            header = struct.pack("!BB", first, mask_bit | declared)
        elif bits == 16:
            header = struct.pack("!BBH", first, mask_bit | 126, declared)
        else:
            header = struct.pack("!BBQ", first, mask_bit | 127, declared)
        if self.mask is None:
            return header + self.payload
        return header + self.mask + mask_payload(self.payload, self.mask)

    @property
    def valid(self) -> bool:
        """Could a correct client send this frame on its own (RFC 6455 §5.2-§5.5, §7.4)?
        Message-level rules (fragment order, UTF-8 across fragments) are not judged here."""
        return not frame_problems(self.fin, self.rsv, self.opcode, self.payload, masked=True) and (
            self.mask is not None
            and self.length is None
            and (self.length_bits is None or self.length_bits == self.encoding_minimal)
        )

    @property
    def encoding_minimal(self) -> int:
        declared = self.declared_length
        return 7 if declared <= MAX_7BIT else 16 if declared <= MAX_16BIT else 64

    def describe(self) -> str:
        """One line a person can read and a reproducer can show: flags, opcode, mask,
        length (declared/actual, encoding) and the payload's first bytes."""
        name = OPCODE_NAMES.get(self.opcode, f"RESERVED-{self.opcode:#x}")
        flags = ("FIN" if self.fin else "fin=0") + (f" rsv={self.rsv:03b}" if self.rsv else "")
        mask = f"mask={self.mask.hex()}" if self.mask is not None else "UNMASKED"
        length = f"len={len(self.payload)}"
        if self.length is not None and self.length != len(self.payload):
            length = f"declared={self.length} sent={len(self.payload)}"
        if self.length_bits is not None and self.length_bits != self.encoding_minimal:
            length += f" ({self.length_bits}-bit length field)"
        shown = self.payload[:_SHOWN_PAYLOAD]
        more = "..." if len(self.payload) > _SHOWN_PAYLOAD else ""
        return f"{name} {flags} {mask} {length} payload={shown!r}{more}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (`from_json` reads it back): a reproducer's line."""
        out: dict[str, Any] = {"opcode": self.opcode, "fin": self.fin}
        if self.rsv:
            out["rsv"] = self.rsv
        out["mask"] = self.mask.hex() if self.mask is not None else None
        if self.length is not None:
            out["length"] = self.length
        if self.length_bits is not None:
            out["length_bits"] = self.length_bits
        out["payload_hex"] = self.payload.hex()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RawFrame:
        """Raises ValueError/KeyError for a dict `to_json` did not write."""
        mask = data.get("mask")
        return cls(
            opcode=int(data["opcode"]),
            fin=bool(data.get("fin", True)),
            rsv=int(data.get("rsv", 0)),
            mask=bytes.fromhex(mask) if mask is not None else None,
            length=data.get("length"),
            length_bits=data.get("length_bits"),
            payload=bytes.fromhex(data.get("payload_hex", "")),
        )


def fragments(opcode: int, payload: bytes, sizes: Sequence[int], **kw: Any) -> list[RawFrame]:
    """One message split into frames of `sizes` bytes (the rest goes in the last frame):
    the first frame has `opcode`, the others are continuations, FIN only on the last."""
    cuts: list[bytes] = []
    pos = 0
    for size in sizes:
        cuts.append(payload[pos : pos + size])
        pos += size
    cuts.append(payload[pos:])
    last = len(cuts) - 1
    return [
        RawFrame(opcode=opcode if i == 0 else OP_CONTINUATION, payload=cut, fin=i == last, **kw)
        for i, cut in enumerate(cuts)
    ]


def join(frames: Iterable[RawFrame]) -> bytes:
    return b"".join(f.to_bytes() for f in frames)


# --- reading what a server sends ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReceivedFrame:
    """One frame as read: every field as it was, nothing validated."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """A Close frame's code: None without one (1005 on the receiving side)."""
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int.from_bytes(self.payload[:2], "big")

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode("utf-8", "replace")

    def describe(self) -> str:
        name = OPCODE_NAMES.get(self.opcode, f"RESERVED-{self.opcode:#x}")
        if self.opcode == OP_CLOSE:
            code = self.close_code
            return f"CLOSE {code if code is not None else '(no code)'} {self.close_reason!r}"
        shown = self.payload[:200]
        text = (
            shown.decode("utf-8", "replace") if self.opcode in (OP_TEXT, OP_CONTINUATION) else None
        )
        body = text if text is not None else repr(shown)
        flags = "" if self.fin else " fin=0"
        return f"{name}{flags} {body}{'...' if len(self.payload) > 200 else ''}"


def frame_problems(fin: bool, rsv: int, opcode: int, payload: bytes, *, masked: bool) -> list[str]:
    """What RFC 6455 forbids in this one frame, ignoring masking direction (`masked` is
    only reported by `server_frame_problems`)."""
    problems = []
    if rsv:
        problems.append(f"reserved bits {rsv:03b} set without an extension (§5.2)")
    if opcode not in KNOWN_OPCODES:
        problems.append(f"reserved opcode {opcode:#x} (§5.2)")
    elif opcode >= OP_CLOSE:
        if not fin:
            problems.append("a fragmented control frame (§5.5)")
        if len(payload) > MAX_CONTROL_PAYLOAD:
            problems.append(f"a control frame of {len(payload)} bytes, over 125 (§5.5)")
        if opcode == OP_CLOSE and payload:
            if len(payload) == 1:
                problems.append("a Close payload of 1 byte (§5.5.1)")
            else:
                code = int.from_bytes(payload[:2], "big")
                if not valid_close_code(code):
                    problems.append(f"close code {code}, not valid on the wire (§7.4)")
                try:
                    payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    problems.append("a close reason that is not UTF-8 (§5.5.1)")
    return problems


def server_frame_problems(frame: ReceivedFrame) -> list[str]:
    """What RFC 6455 forbids a server to send in this frame (a server never masks, §5.1)."""
    problems = frame_problems(frame.fin, frame.rsv, frame.opcode, frame.payload, masked=False)
    if frame.masked:
        problems.insert(0, "a masked frame from the server (§5.1)")
    return problems


class FrameReader:
    """Splits a byte stream into `ReceivedFrame`s; never raises. Message-level problems
    (continuations without a start, a new message inside a fragmented one, text that is
    not UTF-8 once reassembled) are collected in `problems` with every frame's own."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._message: list[bytes] = []
        self._message_opcode = 0
        self.problems: list[str] = []
        self.messages: list[tuple[int, bytes]] = []  # (opcode, payload) of whole messages

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[ReceivedFrame]:
        self._buffer += data
        out: list[ReceivedFrame] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            size = b1 & 0x7F
            head = 2
            if size == 126:
                if len(buf) - pos < 4:
                    break
                size = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif size == 127:
                if len(buf) - pos < 10:
                    break
                size = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            masked = bool(b1 & 0x80)
            key = b""
            if masked:
                if len(buf) - pos < head + 4:
                    break
                key = bytes(buf[pos + head : pos + head + 4])
                head += 4
            if len(buf) - pos - head < size:
                break
            payload = bytes(buf[pos + head : pos + head + size])
            if masked:
                payload = mask_payload(payload, key)
            pos += head + size
            frame = ReceivedFrame(
                fin=bool(b0 & 0x80), rsv=(b0 >> 4) & 7, opcode=b0 & 0xF, masked=masked,
                payload=payload,
            )  # fmt: skip
            self.problems += server_frame_problems(frame)
            self._track(frame)
            out.append(frame)
        del buf[:pos]
        return out

    def _track(self, frame: ReceivedFrame) -> None:
        if frame.opcode >= OP_CLOSE or frame.opcode not in KNOWN_OPCODES:
            return
        if frame.opcode == OP_CONTINUATION:
            if not self._message_opcode:
                self.problems.append("a continuation frame with no message to continue (§5.4)")
                return
        else:
            if self._message_opcode:
                self.problems.append("a new data frame inside a fragmented message (§5.4)")
            self._message, self._message_opcode = [], frame.opcode
        self._message.append(frame.payload)
        if not frame.fin:
            return
        whole = b"".join(self._message)
        if self._message_opcode == OP_TEXT:
            try:
                whole.decode("utf-8")
            except UnicodeDecodeError:
                self.problems.append("a text message that is not UTF-8 (§8.1)")
        self.messages.append((self._message_opcode, whole))
        self._message, self._message_opcode = [], 0


__all__ = [
    "DEFAULT_MASK",
    "NO_STATUS",
    "RESERVED_OPCODES",
    "FrameReader",
    "RawFrame",
    "ReceivedFrame",
    "fragments",
    "frame_problems",
    "join",
    "server_frame_problems",
]
