"""Hypothesis strategies for the WebSocket layer, pure: sequences of raw frames (RFC 6455),
valid and mutated, for `loadtool fuzz --layer websocket`.

A sequence is 1-4 "units"; a unit is one frame or one fragmented message (pings between
its fragments). Valid units come first in every `one_of`, so failures shrink towards the
simplest frames; a mutated unit takes a valid one and breaks one thing: a flag or RSV
bit, the opcode (reserved ones included), the mask, the declared length (lying, huge,
top bit set, or a non-minimal encoding), the UTF-8 of a text payload or close reason,
the size of a control frame, the close code, or the order of fragments.

`sequence_problems` says what a sequence breaks (empty: a correct client could send it),
so the runner knows when the server must go on serving the connection.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Final

import attrs
from hypothesis import strategies as st

from ..client.rawframes import DEFAULT_MASK, RESERVED_OPCODES, RawFrame, fragments, frame_problems
from ..client.wsframes import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT

VALID_CLOSE_CODES: Final = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999)
INVALID_CLOSE_CODES: Final = (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)
HUGE_LENGTHS: Final = (2**62, 2**63, 2**64 - 1, 70_000, 2**31)
MAX_UNITS: Final = 4
_TEXTS: Final = (b'{"type":"ping","ts":"fuzz"}', b'{"type":"ping"}', b"{}", b"hello")

__all__ = [
    "frame_sequences",
    "mutated_units",
    "sequence_problems",
    "valid_units",
]


def _masks() -> st.SearchStrategy[bytes]:
    return st.one_of(st.just(DEFAULT_MASK), st.binary(min_size=4, max_size=4))


def _text_payloads() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(_TEXTS),
        st.text(max_size=200).map(lambda t: t.encode()),
    )


@st.composite
def _single(draw: st.DrawFn) -> list[RawFrame]:
    """One valid frame: text, binary, ping, pong or close."""
    mask = draw(_masks())
    kind = draw(st.sampled_from(["text", "binary", "ping", "pong", "close"]))
    if kind == "text":
        return [RawFrame.text(draw(_text_payloads()), mask=mask)]
    if kind == "binary":
        return [RawFrame.binary(draw(st.binary(max_size=300)), mask=mask)]
    if kind in ("ping", "pong"):
        opcode = OP_PING if kind == "ping" else OP_PONG
        return [RawFrame(opcode=opcode, payload=draw(st.binary(max_size=125)), mask=mask)]
    code = draw(st.one_of(st.none(), st.sampled_from(VALID_CLOSE_CODES)))
    reason = draw(st.text(max_size=20)).encode()[:120] if code is not None else b""
    return [RawFrame.close(code, reason, mask=mask)]


@st.composite
def _fragmented(draw: st.DrawFn) -> list[RawFrame]:
    """One valid message in 2-5 fragments, maybe with pings (or pongs) between them."""
    opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
    payload = draw(_text_payloads()) if opcode == OP_TEXT else draw(st.binary(max_size=300))
    cuts = draw(st.lists(st.integers(0, 80), min_size=1, max_size=4))
    parts = fragments(opcode, payload, cuts)
    out: list[RawFrame] = [parts[0]]
    for part in parts[1:]:
        if draw(st.booleans()):
            control = draw(st.sampled_from([OP_PING, OP_PONG]))
            out.append(RawFrame(opcode=control, payload=draw(st.binary(max_size=20))))
        out.append(part)
    return out


def valid_units() -> st.SearchStrategy[list[RawFrame]]:
    return st.one_of(_single(), _fragmented())


def _bad_utf8() -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80"]
    )


@st.composite
def mutated_units(draw: st.DrawFn) -> list[RawFrame]:
    """A valid unit with one thing broken (see the module docstring)."""
    unit = draw(valid_units())
    i = draw(st.integers(0, len(unit) - 1))
    frame = unit[i]
    how = draw(
        st.sampled_from(
            [
                "rsv",
                "opcode",
                "unmasked",
                "fin",
                "length",
                "non-minimal",
                "utf8",
                "control-size",
                "close-code",
                "close-1-byte",
                "close-reason",
                "orphan",
                "interleave",
            ]
        )
    )
    if how == "rsv":
        frame = attrs.evolve(frame, rsv=draw(st.integers(1, 7)))
    elif how == "opcode":
        frame = attrs.evolve(frame, opcode=draw(st.sampled_from(RESERVED_OPCODES)))
    elif how == "unmasked":
        frame = attrs.evolve(frame, mask=None)
    elif how == "fin":
        frame = attrs.evolve(frame, fin=not frame.fin)
    elif how == "length":
        size = len(frame.payload)
        lie = draw(
            st.one_of(
                st.integers(0, max(0, size - 1)) if size else st.just(1),
                st.integers(size + 1, size + 200),
                st.sampled_from(HUGE_LENGTHS),
            )
        )
        frame = attrs.evolve(frame, length=lie)
    elif how == "non-minimal":
        bits = 64 if len(frame.payload) > 125 else draw(st.sampled_from([16, 64]))
        frame = attrs.evolve(frame, length_bits=bits)
    elif how == "utf8":
        cut = draw(st.integers(0, len(frame.payload)))
        bad = frame.payload[:cut] + draw(_bad_utf8()) + frame.payload[cut:]
        frame = attrs.evolve(frame, opcode=frame.opcode or OP_TEXT, payload=bad)
    elif how == "control-size":
        frame = attrs.evolve(frame, opcode=draw(st.sampled_from([OP_PING, OP_PONG, OP_CLOSE])),
                             payload=b"\x03\xe8" + bytes(draw(st.integers(124, 300))))  # fmt: skip
    elif how == "close-code":
        frame = RawFrame.close(draw(st.sampled_from(INVALID_CLOSE_CODES)), b"x")
    elif how == "close-1-byte":
        frame = RawFrame(opcode=OP_CLOSE, payload=draw(st.binary(min_size=1, max_size=1)))
    elif how == "close-reason":
        frame = RawFrame.close(1000, b"bye" + draw(_bad_utf8()))
    elif how == "orphan":
        frame = attrs.evolve(frame, opcode=OP_CONTINUATION)
    else:  # a new data frame where a continuation belongs, or an unfinished message
        frame = attrs.evolve(frame, opcode=OP_TEXT, fin=False)
    return [*unit[:i], frame, *unit[i + 1 :]]


@st.composite
def frame_sequences(draw: st.DrawFn) -> list[RawFrame]:
    """1-`MAX_UNITS` units, each valid or mutated (valid first, so failures shrink)."""
    units = draw(st.lists(st.one_of(valid_units(), mutated_units()), min_size=1,
                          max_size=MAX_UNITS))  # fmt: skip
    return [frame for unit in units for frame in unit]


def sequence_problems(frames: Sequence[RawFrame]) -> list[str]:
    """What RFC 6455 forbids a client in this sequence (frame by frame, then fragment
    order and UTF-8 across fragments); empty for a sequence a correct client may send.
    Frames after a Close are not judged: they are to be ignored."""
    problems: list[str] = []
    opcode = 0
    utf8 = codecs.getincrementaldecoder("utf-8")()
    for n, frame in enumerate(frames, 1):
        where = f"frame {n}"
        problems += [
            f"{where}: {p}"
            for p in frame_problems(frame.fin, frame.rsv, frame.opcode, frame.payload, masked=True)
        ]
        if frame.mask is None:
            problems.append(f"{where}: unmasked (§5.1)")
        if frame.length is not None and frame.length != len(frame.payload):
            problems.append(f"{where}: declares {frame.length} bytes, carries {len(frame.payload)}")
        if frame.length_bits is not None and frame.length_bits != frame.encoding_minimal:
            problems.append(f"{where}: a non-minimal length encoding (§5.2)")
        if frame.opcode == OP_CLOSE:
            break
        if frame.opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
            if frame.opcode == OP_CONTINUATION and not opcode:
                problems.append(f"{where}: a continuation with no message (§5.4)")
                continue
            if frame.opcode != OP_CONTINUATION and opcode:
                problems.append(f"{where}: a new message inside a fragmented one (§5.4)")
            if frame.opcode != OP_CONTINUATION:
                opcode = frame.opcode
                utf8.reset()
            if opcode == OP_TEXT:
                # Judged as it arrives, as receivers may (§8.1: a prefix no UTF-8 text
                # starts with is invalid already).
                try:
                    utf8.decode(frame.payload, final=frame.fin)
                except UnicodeDecodeError:
                    problems.append(f"{where}: a text message that is not UTF-8 (§8.1)")
                    utf8.reset()
            if frame.fin:
                opcode = 0
    return problems
