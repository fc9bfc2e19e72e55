"""9.x Closing and shutdown: the close codes a server sends, the closing handshake
(docs/protocol.md §8.2, §9).

A server's shutdown (Close 1001 after committing pending messages) cannot be triggered
black-box; what can be checked is that the codes a server does send are the documented,
valid ones and that a client's Close is answered.
"""

from __future__ import annotations

import struct

from ...client import wsframes as wsf
from ..harness import Harness
from ..model import CaseFailure, Feature, NonStrict
from ._case import case
from .heartbeat import watch
from .limits import MAX_PROBE_BYTES, advertised, connect_welcome, sized_message


@case("9.1", "the close codes the server sends are the documented ones", "§8.2", Feature.ERRORS,
      info=True)  # fmt: skip
async def close_codes(h: Harness) -> str:
    """Provokes the closes a client can cause: a text message that is not UTF-8 (1007), an
    unmasked frame (1002) and, where the server advertises `maxMessageBytes`, a message
    over it (1009). Reports each code seen, whether RFC 6455 allows it on the wire and
    whether it is the code §8.2 documents. Needs `errors`: a server that does not claim to
    handle malformed input may crash on it (the seed Node server does, taking every other
    case's connection with it)."""
    seen: list[str] = []

    async def provoke(what: str, data: bytes, want: int, room: str | None = None) -> None:
        peer = await h.connect(rooms=[room] if room else None)
        await peer.send_raw(data, what)
        try:
            code = (await peer.expect_close()).code
        except CaseFailure:
            seen.append(f"{what}: no close (expected {want})")
            return
        valid = "valid" if wsf.valid_close_code(code) else "NOT a valid wire code"
        verdict = "as documented" if code == want else f"UNEXPECTED, §8.2 says {want}"
        seen.append(f"{what}: {code} ({valid}, {verdict})")

    await provoke("invalid UTF-8", wsf.client_frame(wsf.OP_TEXT, b'{"type":"ping","ts":"\xff"}'),
                  1007)  # fmt: skip
    payload = b'{"type":"ping"}'
    await provoke("unmasked frame", struct.pack("!BB", 0x81, len(payload)) + payload, 1002)
    if Feature.LIMITS in h.features and Feature.ROOMS in h.features:
        room = h.room()
        _, hello = await connect_welcome(h, h.user("probe"), [room])
        size = int(advertised(hello, "maxMessageBytes"))
        if size <= MAX_PROBE_BYTES:
            big = sized_message("big", room, size + 1).decode()
            await provoke(f"{size + 1}-byte message", wsf.text_frame(big), 1009, room)
    return "; ".join(seen)


@case("9.2", "a client's Close 1000 is answered with a Close", "§8.2")
async def close_answered(h: Harness) -> None:
    """The client sends Close 1000 on an open connection. The server must answer with a
    Close frame (RFC 6455 §5.5.1) within the client's 1 s wait; §8.2 says it echoes 1000
    (another code is NON-STRICT)."""
    peer = await h.connect()
    await peer.sync()
    watcher = watch(peer)
    h.log(peer.name, "->", "Close 1000")
    await peer.close()
    closes = [c for _, c in watcher.of(wsf.OP_CLOSE)]
    h.log(peer.name, "!!", f"Close frames received: {[c.code for c in closes]}")
    if not closes:
        raise CaseFailure("no Close frame came back within 1 s", expected="a Close in answer")
    if closes[0].code != 1000:
        raise NonStrict(f"answered with Close {closes[0].code}", expected="Close 1000 echoed")


CASES = (close_codes, close_answered)
