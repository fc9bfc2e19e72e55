"""10.x WebSocket framing (RFC 6455), in the spirit of Autobahn|Testsuite: raw frames below
the chat protocol, valid and broken, each case citing the RFC section it checks.

Verdicts follow RFC 6455 §7.1.7 ("Fail the WebSocket Connection"): a server that meets a
violation MUST close the connection and SHOULD send a Close frame with the code §7.4.1
gives (1002 protocol error, 1007 invalid payload, 1009 too big), so:

- a Close with the right code is PASS;
- the TCP connection dropped without a Close frame is NON-STRICT (the SHOULD is missed);
- a Close with another code, the connection left open, an answer as if nothing was
  wrong, or a frame RFC 6455 forbids a server to send, is FAIL.

A server that dies on the frame is caught by the runner's liveness probe after the case:
`CRASHED`, whatever the case saw (docs/conformance.md "Liveness and restarts").

Valid frames must be served: the cases that send them end with a marker round trip, an
application `ping` whose `pong` echoes the marker (servers with `ping`), or else a chat
message that the server relays back to its sender (the seed dialect). No case needs a
feature but 10.35 (an advertised size limit) and 10.36 (error frames): RFC 6455 binds
every WebSocket server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import attrs
import orjson

from ...client.rawframes import RawFrame, fragments
from ...client.wsframes import OP_BINARY, OP_PONG, OP_TEXT
from ..harness import DEFAULT_WAIT_S, Frame, Harness, RawPeer
from ..model import Case, CaseFailure, Feature, NonStrict, Verdict
from ._case import case
from .limits import advertised

PROTOCOL_ERROR: Final = 1002
INVALID_PAYLOAD: Final = 1007
TOO_BIG: Final = 1009
VALID_CODES: Final = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)
FLOOD_FRAGMENT: Final = 64  # bytes per fragment of the fragment flood (10.35)
HUGE: Final = 2**62  # a declared length no server accepts (its top bit clear, §5.2)


# --- helpers ---------------------------------------------------------------------------


def marker(h: Harness, *, size: int = 0) -> tuple[bytes, Callable[[Frame], bool]]:
    """A text message (JSON, padded with an unknown member to `size` bytes when given)
    whose answer proves the server read it, and a test for that answer."""
    mark = h.name("mark")
    if Feature.PING in h.features:
        frame: Frame = {"type": "ping", "ts": mark}

        def answered(f: Frame) -> bool:
            return f.get("type") == "pong" and f.get("ts") == mark
    else:
        frame = h.chat_frame(mark, h.default_room, text=mark)

        def answered(f: Frame) -> bool:
            return f.get("text") == mark and f.get("type") in (None, "message")

    data = orjson.dumps(frame)
    if size:
        pad = size - len(data) - len(',"pad":""')
        if pad < 0:
            raise ValueError(f"a marker cannot be as small as {size} bytes")
        data = orjson.dumps({**frame, "pad": "x" * pad})
    return data, answered


def _frames(peer: RawPeer) -> list[Frame]:
    out: list[Frame] = []
    for text in peer.conn.texts:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


async def answered(
    peer: RawPeer, match: Callable[[Frame], bool], what: str, *, wait_s: float = DEFAULT_WAIT_S
) -> None:
    """Wait for the text answer `match` accepts; FAIL on a close, a drop, or silence."""
    done = await peer.read_until(lambda: any(match(f) for f in _frames(peer)), wait_s)
    forbidden(peer)
    if done:
        return
    close = peer.conn.close_frame
    if close is not None:
        why = f"the server closed with {close.close_code} {close.close_reason!r}"
    elif peer.conn.eof:
        why = f"the server dropped the connection ({peer.conn.reset or 'EOF'})"
    else:
        why = f"nothing within {wait_s:g}s"
    raise CaseFailure(f"{peer.name} expected {what}; {why}", expected=what)


async def round_trip(h: Harness, peer: RawPeer, *, size: int = 0) -> None:
    """A marker message in one frame, answered: the connection still serves."""
    data, match = marker(h, size=size)
    await peer.send(RawFrame.text(data), note=_note(data))
    await answered(peer, match, "the answer to a marker message")


def forbidden(peer: RawPeer) -> None:
    """FAIL if the server sent anything RFC 6455 forbids a server to send."""
    if peer.conn.reader.problems:
        raise CaseFailure(
            f"the server sent frames RFC 6455 forbids: {'; '.join(peer.conn.reader.problems)}",
            expected="only valid frames from the server (§5.1, §5.2, §5.5, §7.4)",
        )


async def fails_with(
    peer: RawPeer, codes: Sequence[int], rfc: str, *, wait_s: float = DEFAULT_WAIT_S
) -> None:
    """The server must fail the connection: Close with one of `codes` (PASS), a bare
    TCP drop (NON-STRICT), anything else FAIL."""
    want = " or ".join(str(c) for c in codes)
    expected = f"Close {want}, then the TCP connection closed ({rfc}, §7.1.7)"
    close = await peer.read_to_close(wait_s)
    forbidden(peer)
    if close is None:
        if peer.conn.eof:
            raise NonStrict(
                f"the server dropped the connection without a Close frame "
                f"({peer.conn.reset or 'EOF'}); RFC 6455 §7.1.7 says it SHOULD send Close {want}",
                expected=expected,
            )
        got = _frames(peer)
        seen = f"; it answered {len(got)} text frame(s)" if got else ""
        raise CaseFailure(
            f"the connection stayed open {wait_s:g}s after the violation{seen}", expected=expected
        )
    code = close.close_code
    if code not in codes:
        shown = "no code (1005)" if code is None else str(code)
        raise CaseFailure(
            f"the server closed with {shown} {close.close_reason!r}", expected=expected
        )


async def echoed_close(peer: RawPeer, code: int | None, *, wait_s: float = DEFAULT_WAIT_S) -> None:
    """After the client's valid Close, the server's Close must come (§5.5.1): the same code
    is PASS, another valid one NON-STRICT, none FAIL."""
    close = await peer.read_to_close(wait_s)
    forbidden(peer)
    shown = "an empty Close" if code is None else f"Close {code}"
    if close is None:
        how = (
            f"dropped the connection ({peer.conn.reset or 'EOF'})"
            if peer.conn.eof
            else "sent nothing"
        )
        raise CaseFailure(
            f"after {shown} the server {how} within {wait_s:g}s",
            expected="a Close frame in answer (RFC 6455 §5.5.1)",
        )
    got = close.close_code
    if code is None and got not in (None, 1000):
        raise NonStrict(f"an empty Close was answered with {got}", expected="empty or 1000")
    if code is not None and got != code:
        raise NonStrict(
            f"Close {code} was answered with {got if got is not None else 'no code'}",
            expected=f"Close {code} echoed (§5.5.1: endpoints typically echo the code)",
        )


def _note(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return f"TEXT FIN {text if len(text) <= 120 else text[:100] + f'... ({len(data)} bytes)'}"


# --- 10.1-10.6: data framing and fragmentation -------------------------------------------


@case("10.1", "a text message in one frame is served", "RFC 6455 §5.6")
async def text_single(h: Harness) -> None:
    """One masked text frame with a 7-bit length carrying a marker message: the server
    must read it and answer (pong, or the relayed message)."""
    peer = await h.raw()
    await round_trip(h, peer)


@case("10.2", "a text message with a 16-bit length is served", "RFC 6455 §5.2")
async def text_16bit(h: Harness) -> None:
    """A 4000-byte text message: its length takes the 16-bit extended field (126 + 2
    bytes). It must be read and answered like any other."""
    peer = await h.raw()
    await round_trip(h, peer, size=4000)


@case("10.3", "a text message with a 64-bit length is served", "RFC 6455 §5.2")
async def text_64bit(h: Harness) -> None:
    """A text message of 65536 bytes, the smallest that needs the 64-bit length field
    (127 + 8 bytes), and exactly the reference's maxMessageBytes. A server advertising a
    smaller limit is not held to it (UNSUPPORTED)."""
    peer = await h.raw()
    if Feature.LIMITS in h.features:
        probe = await h.connect(welcome=False)
        hello = await probe.expect("welcome", skip=())
        if advertised(hello, "maxMessageBytes") < 65536:
            raise CaseFailure("maxMessageBytes is under 65536 bytes", verdict=Verdict.UNSUPPORTED)
    await round_trip(h, peer, size=65536)


@case("10.4", "a text message in fragments is reassembled", "RFC 6455 §5.4")
async def text_fragmented(h: Harness) -> None:
    """The marker message in four frames: TEXT (FIN=0), an empty CONTINUATION, one more
    CONTINUATION, then the last with FIN. The server must reassemble and answer it."""
    peer = await h.raw()
    data, match = marker(h)
    parts = fragments(OP_TEXT, data, [5, 0, 7])
    await peer.send(*parts)
    await answered(peer, match, "the answer to the fragmented message")


@case("10.5", "a UTF-8 character split across fragments is valid", "RFC 6455 §5.6")
async def utf8_split_valid(h: Harness) -> None:
    """The marker message with a 4-byte character (U+1F600) in a member the server
    ignores, cut between its second and third byte across two fragments. Each fragment
    alone is not valid UTF-8, the message is: it must be served, not closed with 1007."""
    peer = await h.raw()
    data, match = marker(h)
    data = data[:-1] + ',"x":"\U0001f600"}'.encode()
    cut = data.index("\U0001f600".encode()) + 2
    await peer.send(*fragments(OP_TEXT, data, [cut]))
    await answered(peer, match, "the answer to the message (valid once reassembled)")


@case("10.6", "a ping between fragments is answered; the message completes", "RFC 6455 §5.4")
async def ping_between_fragments(h: Harness) -> None:
    """TEXT (FIN=0), a Ping, then the last fragment: control frames MAY be injected in
    the middle of a fragmented message (§5.4). The Pong must come, and the message must
    be answered."""
    peer = await h.raw()
    data, match = marker(h)
    first, last = fragments(OP_TEXT, data, [len(data) // 2])
    await peer.send(first, RawFrame.ping(b"between"), last)

    def pong() -> bool:
        return any(f.opcode == OP_PONG and f.payload == b"between" for f in peer.conn.frames)

    await answered(peer, match, "the answer to the fragmented message")
    if not await peer.read_until(pong, 1.0):
        raise CaseFailure("no Pong 'between' for the Ping between fragments",
                          expected="a Pong echoing the Ping's payload (§5.5.3)")  # fmt: skip


# --- 10.7-10.10: ping and pong --------------------------------------------------------------


async def _pong(h: Harness, payload: bytes) -> None:
    peer = await h.raw()
    await peer.send(RawFrame.ping(payload))

    def ponged() -> bool:
        return any(f.opcode == OP_PONG for f in peer.conn.frames)

    await peer.read_until(ponged)
    forbidden(peer)
    pongs = [f for f in peer.conn.frames if f.opcode == OP_PONG]
    if not pongs:
        raise CaseFailure("no Pong came", expected="a Pong with the Ping's payload (§5.5.2)")
    if pongs[0].payload != payload:
        raise CaseFailure(
            f"the Pong carries {pongs[0].payload[:40]!r} ({len(pongs[0].payload)} bytes)",
            expected=f"the Ping's {len(payload)} bytes echoed (§5.5.3)",
        )
    await round_trip(h, peer)


@case("10.7", "a Ping is answered with a Pong echoing its payload", "RFC 6455 §5.5.2")
async def ping_echo(h: Harness) -> None:
    """A Ping with 8 bytes of binary payload: the Pong must carry exactly those bytes
    (§5.5.3), and the connection goes on."""
    await _pong(h, b"\x00\xffping\x01\x80")


@case("10.8", "a Ping with 125 bytes (the maximum) is echoed", "RFC 6455 §5.5")
async def ping_125(h: Harness) -> None:
    """Control frames carry at most 125 bytes: a Ping of exactly 125 is valid and its
    Pong must echo all of them."""
    await _pong(h, bytes(range(125)))


@case("10.9", "a Ping with 126 bytes fails the connection with 1002", "RFC 6455 §5.5")
async def ping_126(h: Harness) -> None:
    """A Ping of 126 bytes (a 16-bit length field on a control frame) breaks §5.5: the
    server must fail the connection with 1002."""
    peer = await h.raw()
    await peer.send(RawFrame.ping(b"x" * 126))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.5")


@case("10.10", "an unsolicited Pong is ignored", "RFC 6455 §5.5.3")
async def unsolicited_pong(h: Harness) -> None:
    """A Pong nobody asked for MAY be sent as a unidirectional heartbeat and needs no
    answer: the connection must go on (marker round trip)."""
    peer = await h.raw()
    await peer.send(RawFrame.pong(b"unsolicited"))
    await round_trip(h, peer)


# --- 10.11-10.16: reserved bits and opcodes -----------------------------------------------


@case("10.11", "RSV1 set on a text frame fails with 1002", "RFC 6455 §5.2")
async def rsv1(h: Harness) -> None:
    """A valid marker text frame with RSV1 set, no extension negotiated: §5.2 says the
    receiving endpoint MUST fail the connection (1002)."""
    peer = await h.raw()
    data, _ = marker(h)
    await peer.send(RawFrame.text(data, rsv=4))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.2")


@case("10.12", "RSV2 and RSV3 set on a Ping fail with 1002", "RFC 6455 §5.2")
async def rsv_ping(h: Harness) -> None:
    """A Ping with RSV2 and RSV3 set: the connection must fail with 1002 and the Ping must
    not be answered first."""
    peer = await h.raw()
    await peer.send(RawFrame.ping(b"rsv", rsv=3))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.2")
    if any(f.opcode == OP_PONG for f in peer.conn.frames):
        raise NonStrict("the Ping with reserved bits was answered before the close",
                        expected="no Pong for an invalid frame")  # fmt: skip


def _reserved_opcode(case_id: str, opcode: int) -> None:
    kind = "data" if opcode < 8 else "control"

    @case(case_id, f"reserved {kind} opcode {opcode:#x} fails with 1002", "RFC 6455 §5.2")
    async def body(h: Harness) -> None:
        peer = await h.raw()
        await peer.send(RawFrame(opcode=opcode, payload=b"reserved"))
        await fails_with(peer, [PROTOCOL_ERROR], "§5.2")

    _OPCODE_CASES.append(
        attrs.evolve(
            body,
            description=f"A frame with the reserved {kind} opcode {opcode:#x} and a short "
            "payload: the receiving endpoint MUST fail the connection (1002).",
        )
    )


_OPCODE_CASES: list[Case] = []


# --- 10.17-10.19: UTF-8 ----------------------------------------------------------------------


@case("10.17", "a text message that is not UTF-8 fails with 1007", "RFC 6455 §8.1")
async def utf8_invalid(h: Harness) -> None:
    """One text frame whose payload holds 0xFF (never valid in UTF-8): the server MUST
    fail the connection (§8.1), with 1007 (§7.4.1)."""
    peer = await h.raw()
    await peer.send(RawFrame.text(b'{"type":"ping","ts":"\xff\xfe"}'))
    await fails_with(peer, [INVALID_PAYLOAD], "§8.1")


@case("10.18", "invalid UTF-8 split across fragments fails with 1007", "RFC 6455 §8.1")
async def utf8_invalid_fragments(h: Harness) -> None:
    """A text message in two fragments: the first ends with the lead byte of a 3-byte
    character, the second starts with a byte that cannot continue it. Only the
    reassembled message shows the fault; the server must fail with 1007."""
    peer = await h.raw()
    await peer.send(
        RawFrame.text(b'{"type":"ping","ts":"\xe2', fin=False),
        RawFrame.continuation(b'A"}'),
    )
    await fails_with(peer, [INVALID_PAYLOAD], "§8.1")


@case("10.19", "a close reason that is not UTF-8 fails with 1007", "RFC 6455 §5.5.1")
async def close_reason_invalid(h: Harness) -> None:
    """Close 1000 with a reason holding 0xFF: the reason MUST be UTF-8 (§5.5.1); the
    server must fail the connection with 1007 rather than echo it."""
    peer = await h.raw()
    await peer.send(RawFrame.close(1000, b"bye \xff"))
    await fails_with(peer, [INVALID_PAYLOAD], "§5.5.1, §8.1")


# --- 10.20-10.25: the closing handshake ------------------------------------------------------


@case("10.20", "valid close codes are answered with a Close", "RFC 6455 §7.4.1")
async def close_valid_codes(h: Harness) -> None:
    """On a fresh connection each: Close 1000, 1001, 1002, 1003, 1007-1011, 3000, 3999,
    4000, 4999 (codes §7.4.1-§7.4.2 allow on the wire), with a reason. Each must be
    answered with a Close (§5.5.1), echoing the code (else NON-STRICT)."""
    soft: list[str] = []
    for code in VALID_CODES:
        peer = await h.raw()
        await peer.send(RawFrame.close(code, f"code {code}"))
        try:
            await echoed_close(peer, code)
        except NonStrict as deviation:
            soft.append(deviation.reason)
    if soft:
        raise NonStrict("; ".join(soft), expected="each code echoed")


@case("10.21", "an empty Close is answered with a Close", "RFC 6455 §5.5.1")
async def close_empty(h: Harness) -> None:
    """A Close frame without a payload (no status code: 1005 on the receiving side) must
    be answered with a Close, empty or 1000, never with 1005 on the wire."""
    peer = await h.raw()
    await peer.send(RawFrame.close())
    await echoed_close(peer, None)


def _invalid_codes(case_id: str, codes: tuple[int, ...], why: str) -> None:
    shown = ", ".join(map(str, codes))

    @case(case_id, f"close codes {shown} fail with 1002", "RFC 6455 §7.4.2")
    async def body(h: Harness) -> None:
        for code in codes:
            peer = await h.raw()
            await peer.send(RawFrame.close(code, "bad code"))
            try:
                await fails_with(peer, [PROTOCOL_ERROR], "§7.4")
            except CaseFailure as failure:
                failure.reason = f"Close {code}: {failure.reason}"
                raise

    _CLOSE_CASES.append(
        attrs.evolve(
            body,
            description=f"On a fresh connection each, a Close with code {shown} ({why}). The "
            "code may not appear on the wire, so the server must fail the connection with 1002.",
        )
    )


_CLOSE_CASES: list[Case] = []


@case("10.26", "a Close with a 1-byte payload fails with 1002", "RFC 6455 §5.5.1")
async def close_one_byte(h: Harness) -> None:
    """A Close whose payload is one byte: a code is two bytes, so the frame is malformed
    and the server must fail the connection with 1002."""
    peer = await h.raw()
    await peer.send(RawFrame(opcode=0x8, payload=b"\x03"))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.5.1")


@case("10.27", "frames after a Close are ignored", "RFC 6455 §5.5.1")
async def after_close(h: Harness) -> None:
    """Close 1000 and then, in the same write, a marker message and a Ping. After a
    Close the sender sends no more data (§5.5.1), so the server must answer the Close
    and ignore what follows: no answer to the marker, no Pong."""
    peer = await h.raw()
    data, match = marker(h)
    await peer.send(RawFrame.close(1000, "done"), RawFrame.text(data), RawFrame.ping(b"late"))
    await echoed_close(peer, 1000)
    if any(match(f) for f in _frames(peer)) or any(f.opcode == OP_PONG for f in peer.conn.frames):
        raise CaseFailure(
            "the server answered frames sent after the client's Close",
            expected="everything after the Close ignored (§5.5.1)",
        )


# --- 10.28-10.34: malformed frames and limits -------------------------------------------------


@case("10.28", "an unmasked client frame fails with 1002", "RFC 6455 §5.1")
async def unmasked(h: Harness) -> None:
    """A valid marker text frame without a mask: a server MUST close the connection upon
    receiving an unmasked frame (§5.1), with 1002."""
    peer = await h.raw()
    data, match = marker(h)
    await peer.send(RawFrame.text(data, mask=None))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.1")
    if any(match(f) for f in _frames(peer)):
        raise CaseFailure("the unmasked frame was served before the close",
                          expected="an unmasked frame never processed (§5.1)")  # fmt: skip


@case("10.29", "a declared length of 2^62 with no body fails with 1009", "RFC 6455 §10.4")
async def huge_declared(h: Harness) -> None:
    """A text frame header declaring 2^62 payload bytes, and no body. A server SHOULD
    limit frame and message sizes (§10.4); it must not wait for a body it would never
    accept: close 1009 (docs/protocol.md §7.1) at once. 1002 is PASS too (the frame
    is unacceptable); waiting is FAIL."""
    peer = await h.raw()
    await peer.send(RawFrame.text(b"", length=HUGE))
    await fails_with(peer, [TOO_BIG, PROTOCOL_ERROR], "§10.4, docs/protocol.md §7.1")


@case("10.30", "a 64-bit length with its top bit set fails with 1002", "RFC 6455 §5.2")
async def length_top_bit(h: Harness) -> None:
    """A text frame declaring 2^63 bytes: the most significant bit of a 64-bit length
    MUST be 0 (§5.2). The server must fail the connection with 1002 (1009 is PASS too:
    no server takes that much)."""
    peer = await h.raw()
    await peer.send(RawFrame.text(b"", length=2**63))
    await fails_with(peer, [PROTOCOL_ERROR, TOO_BIG], "§5.2")


@case("10.31", "a non-minimal length encoding fails with 1002", "RFC 6455 §5.2")
async def non_minimal_length(h: Harness) -> None:
    """The marker message with its length in the 64-bit field although 7 bits hold it:
    "the minimal number of bytes MUST be used" (§5.2). Failing with 1002 is PASS;
    serving it is NON-STRICT (lenient, but no harm done)."""
    peer = await h.raw()
    data, match = marker(h)
    await peer.send(RawFrame.text(data, length_bits=64))
    close = await peer.read_to_close(DEFAULT_WAIT_S)
    forbidden(peer)
    if close is not None and close.close_code == PROTOCOL_ERROR:
        return
    if any(match(f) for f in _frames(peer)):
        raise NonStrict("the frame was served", expected="Close 1002 (§5.2: minimal length)")
    if close is None and peer.conn.eof:
        raise NonStrict("dropped without a Close frame", expected="Close 1002")
    got = f"closed with {close.close_code}" if close else "no answer and no close"
    raise CaseFailure(got, expected="Close 1002, or the message served")


@case("10.32", "a continuation frame with no message fails with 1002", "RFC 6455 §5.4")
async def orphan_continuation(h: Harness) -> None:
    """A CONTINUATION frame (FIN set) with no fragmented message open: the server must
    fail the connection with 1002."""
    peer = await h.raw()
    await peer.send(RawFrame.continuation(b'{"type":"ping"}'))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.4")


@case("10.33", "a new text frame inside a fragmented message fails with 1002", "RFC 6455 §5.4")
async def nested_message(h: Harness) -> None:
    """TEXT (FIN=0), then another TEXT (FIN=1) before the first message ended: fragments
    of one message must be continuations (§5.4); the server must fail with 1002."""
    peer = await h.raw()
    data, _ = marker(h)
    await peer.send(RawFrame.text(b'{"type":', fin=False), RawFrame.text(data))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.4")


@case("10.34", "a fragmented Ping fails with 1002", "RFC 6455 §5.5")
async def fragmented_ping(h: Harness) -> None:
    """A Ping with FIN clear, then a CONTINUATION: control frames MUST NOT be fragmented
    (§5.5); the server must fail the connection with 1002."""
    peer = await h.raw()
    await peer.send(RawFrame.ping(b"frag", fin=False), RawFrame.continuation(b"ment"))
    await fails_with(peer, [PROTOCOL_ERROR], "§5.5")


@case("10.35", "a flood of tiny fragments over the size limit fails with 1009", "RFC 6455 §10.4",
      Feature.LIMITS, timeout_s=20.0)  # fmt: skip
async def fragment_flood(h: Harness) -> None:
    """A text message in 64-byte fragments, one more than `maxMessageBytes` allows in
    all (1025 frames for 65536 bytes), sent in one write: the limit applies to the
    reassembled message (docs/protocol.md §7.1), so the server must close with 1009, not
    buffer fragments forever."""
    probe = await h.connect(welcome=False)
    hello = await probe.expect("welcome", skip=())
    limit = int(advertised(hello, "maxMessageBytes"))
    if limit > 1024 * 1024:
        raise CaseFailure(f"maxMessageBytes is {limit}, over the 1 MiB probed",
                          verdict=Verdict.UNSUPPORTED)  # fmt: skip
    count = limit // FLOOD_FRAGMENT + 1
    parts = fragments(OP_TEXT, b"x" * (count * FLOOD_FRAGMENT), [FLOOD_FRAGMENT] * (count - 1))
    peer = await h.raw()
    await peer.send(*parts, note=f"{count} text fragments of {FLOOD_FRAGMENT} bytes")
    await fails_with(peer, [TOO_BIG], "§10.4, docs/protocol.md §7.1", wait_s=10.0)


@case("10.36", "a binary message in fragments gets unsupported_data", "RFC 6455 §5.6",
      Feature.ERRORS)  # fmt: skip
async def binary_fragmented(h: Harness) -> None:
    """A binary message in two fragments with a Ping between them: protocol v1 has no
    binary messages (docs/protocol.md §3.1), so the server answers error
    `unsupported_data`, answers the Ping, and keeps serving (marker round trip)."""
    peer = await h.raw()
    first, last = fragments(OP_BINARY, b"\x00\x01\x02binary\xff", [4])
    await peer.send(first, RawFrame.ping(b"bin"), last)
    await answered(
        peer,
        lambda f: f.get("type") == "error" and f.get("code") == "unsupported_data",
        "error unsupported_data",
    )
    if not any(f.opcode == OP_PONG and f.payload == b"bin" for f in peer.conn.frames):
        raise CaseFailure("no Pong for the Ping between the binary fragments",
                          expected="a Pong (§5.5.2)")  # fmt: skip
    await round_trip(h, peer)


for _id, _op in (("10.13", 0x3), ("10.14", 0x7), ("10.15", 0xB), ("10.16", 0xF)):
    _reserved_opcode(_id, _op)
for _id, _codes, _why in (
    ("10.22", (0, 999), "below the range of codes, 1000-4999"),
    ("10.23", (1004, 1005, 1006, 1015), "reserved, or for reporting only and never sent"),
    ("10.24", (1016, 1100, 2000, 2999), "unassigned codes of the RFC's own range"),
    ("10.25", (5000, 65535), "above the range of codes"),
):
    _invalid_codes(_id, _codes, _why)

CASES = (
    text_single,
    text_16bit,
    text_64bit,
    text_fragmented,
    utf8_split_valid,
    ping_between_fragments,
    ping_echo,
    ping_125,
    ping_126,
    unsolicited_pong,
    rsv1,
    rsv_ping,
    *_OPCODE_CASES,
    utf8_invalid,
    utf8_invalid_fragments,
    close_reason_invalid,
    close_valid_codes,
    close_empty,
    *_CLOSE_CASES,
    close_one_byte,
    after_close,
    unmasked,
    huge_declared,
    length_top_bit,
    non_minimal_length,
    orphan_continuation,
    nested_message,
    fragmented_ping,
    fragment_flood,
    binary_fragmented,
)
