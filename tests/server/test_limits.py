"""Server limits over real sockets (docs/protocol.md §7): message size (close 1009, also
across fragments), text length (too_long), the rate limit (rate_limited, then 1008), slow
consumers (policy close: 1013; policy drop: frames dropped, memory bounded) and binary
messages (unsupported_data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import orjson
import trio
from trio_websocket import ConnectionClosed
from wsproto.events import CloseConnection

from loadtool import protocol as p
from loadtool.client.rawframes import RawFrame
from loadtool.server.app import RunningServer
from loadtool.server.config import Limits, SlowConsumerPolicy
from tests.conftest import Client, Clients
from tests.server.rawws import RawClient

CEILING_S: Final = 20
MAX_BYTES: Final = Limits().max_message_bytes  # 65536
MAX_TEXT: Final = Limits().max_text_chars  # 4096
QUEUE: Final = 64 * 1024  # outbound queue of the slow-consumer tests
FLOOD_TEXT: Final = "x" * 4000  # one flood message: about 4 KiB on the wire
FLOOD_MAX: Final = 2000  # flood messages at most before a slow-consumer test gives up
UNLIMITED_RATE: Final = {"rate_per_s": 1e6, "rate_burst": 1_000_000}


def _code(closed: ConnectionClosed) -> int:
    assert closed.reason is not None
    return int(closed.reason.code)


def _message_of_size(size: int, msg_id: str = "big") -> str:
    """A `message` frame of exactly `size` UTF-8 bytes (ASCII text padding)."""
    empty = orjson.dumps({"type": "message", "id": msg_id, "room": "general", "text": ""})
    return orjson.dumps(
        {"type": "message", "id": msg_id, "room": "general", "text": "x" * (size - len(empty))}
    ).decode()


async def _closed_with(client: Client) -> int:
    """Read until the server closes; the close code."""
    while True:
        try:
            await client.recv()
        except ConnectionClosed as closed:
            return _code(closed)


async def _still_serves(client: Client, ts: str = "alive") -> None:
    await client.send(p.Ping(ts=ts))
    assert await client.recv_type(p.Pong) == p.Pong(ts=ts)


# --- max_message_bytes: close 1009 ------------------------------------------------------------


async def test_message_of_exactly_max_bytes_is_read(
    server: RunningServer, clients: Clients
) -> None:
    alice = await clients.connect(server, "alice")
    frame = _message_of_size(MAX_BYTES)
    assert len(frame.encode()) == MAX_BYTES
    with trio.fail_after(CEILING_S):
        await alice.send(frame)
        error = await alice.recv()
        # Within the byte limit, so it is parsed: its text is over max_text_chars.
        assert isinstance(error, p.Error)
        assert (error.code, error.id, error.room) == (p.ErrorCode.TOO_LONG, "big", "general")
        await _still_serves(alice)


async def test_message_one_byte_over_max_bytes_closes_1009(
    server: RunningServer, clients: Clients
) -> None:
    alice = await clients.connect(server, "alice")
    with trio.fail_after(CEILING_S):
        await alice.send(_message_of_size(MAX_BYTES + 1))
        assert await _closed_with(alice) == p.CloseCode.MESSAGE_TOO_BIG
    assert server.metrics.closes[p.CloseCode.MESSAGE_TOO_BIG] == 1


async def test_limit_counts_utf8_bytes_not_characters(
    server: RunningServer, clients: Clients
) -> None:
    alice = await clients.connect(server, "alice")
    text = "\u20ac" * 30_000  # 30,000 characters, 90,000 bytes
    with trio.fail_after(CEILING_S):
        await alice.send({"type": "message", "id": "euro", "room": "general", "text": text})
        assert await _closed_with(alice) == p.CloseCode.MESSAGE_TOO_BIG
    assert server.metrics.closes[p.CloseCode.MESSAGE_TOO_BIG] == 1


async def test_fragmented_message_over_max_bytes_closes_1009(
    server: RunningServer, clients: Clients
) -> None:
    raw = await clients.raw(server, "alice")
    frame = _message_of_size(MAX_BYTES + 16 * 1024)  # 80 KiB in five 16 KiB fragments
    parts = [frame[i : i + 16 * 1024] for i in range(0, len(frame), 16 * 1024)]
    assert len(parts) == 5
    with trio.fail_after(CEILING_S):
        await raw.send_fragments(parts)
        close = await raw.until_eof()
    assert isinstance(close, CloseConnection)
    assert close.code == p.CloseCode.MESSAGE_TOO_BIG
    assert server.metrics.closes[p.CloseCode.MESSAGE_TOO_BIG] == 1


async def test_fragmented_multibyte_message_over_max_bytes_closes_1009(
    server: RunningServer, clients: Clients
) -> None:
    raw = await clients.raw(server, "alice")
    frame = orjson.dumps(
        {"type": "message", "id": "euro", "room": "general", "text": "\u20ac" * 30_000}
    ).decode()  # 30,060 characters, over 90,000 bytes
    parts = [frame[i : i + 10_000] for i in range(0, len(frame), 10_000)]
    with trio.fail_after(CEILING_S):
        await raw.send_fragments(parts)
        close = await raw.until_eof()
    assert isinstance(close, CloseConnection)
    assert close.code == p.CloseCode.MESSAGE_TOO_BIG


async def test_declared_length_over_the_limit_closes_1009_before_any_body(
    server: RunningServer, clients: Clients
) -> None:
    """A header declaring 2**62 bytes and no body: refused by the header, at once (the
    body would never be acceptable), not after the idle timeout."""
    raw = await clients.raw(server, "alice")
    with trio.fail_after(CEILING_S):
        await raw.send_bytes_raw(RawFrame.text(b"", length=2**62).to_bytes())
        close = await raw.until_eof()
    assert isinstance(close, CloseConnection)
    assert close.code == p.CloseCode.MESSAGE_TOO_BIG
    assert server.metrics.closes[p.CloseCode.MESSAGE_TOO_BIG] == 1


async def test_declared_fragment_lengths_add_up_to_1009(
    server: RunningServer, clients: Clients
) -> None:
    """Two fragment headers whose declared lengths together pass the limit: 1009 as soon
    as the second header arrives, its body never sent."""
    raw = await clients.raw(server, "alice")
    first = RawFrame.text(b"x" * 40_000, fin=False)
    second = RawFrame.continuation(b"", length=MAX_BYTES - 39_999)
    with trio.fail_after(CEILING_S):
        await raw.send_bytes_raw(first.to_bytes() + second.to_bytes())
        close = await raw.until_eof()
    assert isinstance(close, CloseConnection)
    assert close.code == p.CloseCode.MESSAGE_TOO_BIG


async def test_fragments_under_the_limit_are_reassembled(
    server: RunningServer, clients: Clients
) -> None:
    raw = await clients.raw(server, "alice")
    with trio.fail_after(CEILING_S):
        assert isinstance(await raw.next_frame(), p.Welcome)
        assert await raw.next_frame() == p.Joined(room="general", seq=0)
        await raw.send_fragments(['{"type":', '"ping","ts"', ':"in three"}'])
        assert await raw.next_frame() == p.Pong(ts="in three")
        frame = _message_of_size(MAX_BYTES - 1, msg_id="frag")
        await raw.send_fragments([frame[:30_000], frame[30_000:60_000], frame[60_000:]])
        error = await raw.next_frame()
    assert isinstance(error, p.Error)
    assert (error.code, error.id) == (p.ErrorCode.TOO_LONG, "frag")


# --- max_text_chars: error too_long -----------------------------------------------------------


async def test_text_over_max_chars_is_refused_and_the_connection_stays(
    server: RunningServer, clients: Clients
) -> None:
    alice = await clients.connect(server, "alice")
    bob = await clients.connect(server, "bob")
    with trio.fail_after(CEILING_S):
        await alice.send(p.SendMessage(id="long", room="general", text="a" * (MAX_TEXT + 1)))
        error = await alice.recv_type(p.Error)
        assert (error.code, error.id, error.room) == (p.ErrorCode.TOO_LONG, "long", "general")
        # Exactly at the limit is fine, and it is characters that count (3 bytes each).
        at_limit = "\u20ac" * MAX_TEXT
        await alice.send(p.SendMessage(id="ok", room="general", text=at_limit))
        assert await alice.recv_type(p.Ack) == p.Ack(id="ok", room="general", seq=1)
        delivered = await bob.recv_type(p.Message)
    assert (delivered.id, delivered.seq, delivered.text) == ("ok", 1, at_limit)
    assert server.metrics.errors["too_long"] == 1
    assert server.metrics.messages_in == 1


# --- rate limit: rate_limited, then 1008 ------------------------------------------------------


async def test_rate_limit_refuses_then_closes_1008_on_sustained_abuse(clients: Clients) -> None:
    limits = Limits(rate_per_s=0.5, rate_burst=3, abuse_refusals=5)
    srv = await clients.start(limits=limits)
    alice = await clients.connect(srv, "alice")
    bob = await clients.connect(srv, "bob")
    with trio.fail_after(CEILING_S):
        for i in range(3):  # the burst
            await alice.send(p.Ping(ts=i))
            assert await alice.recv_type(p.Pong) == p.Pong(ts=i)
        # Refused frames are not processed: this message is never stored nor delivered.
        await alice.send(p.SendMessage(id="refused", room="general", text="hi"))
        first = await alice.recv_type(p.Error)
        assert first.code == p.ErrorCode.RATE_LIMITED
        assert first.retry_after_ms is not None
        assert 1500 < first.retry_after_ms <= 2000  # one token at 0.5/s
        for i in range(4):  # refusals 2..5: still answered
            await alice.send(p.Ping(ts=f"r{i}"))
            error = await alice.recv()
            assert isinstance(error, p.Error), error
            assert error.code == p.ErrorCode.RATE_LIMITED
            assert error.retry_after_ms is not None
            assert error.retry_after_ms > 0
        await alice.send(p.Ping(ts="abuse"))  # refusal 6 > abuse_refusals
        assert await _closed_with(alice) == p.CloseCode.POLICY_VIOLATION
        await bob.send(p.HistoryRequest(room="general"))
        page = await bob.recv_type(p.HistoryPage)
    assert page.messages == ()
    assert srv.metrics.errors["rate_limited"] == 5
    assert srv.metrics.closes[p.CloseCode.POLICY_VIOLATION] == 1
    assert srv.metrics.messages_in == 0


async def test_waiting_retry_after_ms_is_enough(clients: Clients) -> None:
    limits = Limits(rate_per_s=5, rate_burst=1)
    srv = await clients.start(limits=limits)
    alice = await clients.connect(srv, "alice")
    with trio.fail_after(CEILING_S):
        await alice.send(p.Ping(ts=1))
        assert await alice.recv() == p.Pong(ts=1)
        await alice.send(p.Ping(ts=2))
        error = await alice.recv()
        assert isinstance(error, p.Error)
        assert error.code == p.ErrorCode.RATE_LIMITED
        assert error.retry_after_ms is not None
        assert 0 < error.retry_after_ms <= 200
        # The client does what the error says: wait retryAfterMs, then try again. (+1 ms:
        # the value is rounded to the nearest millisecond, so it can be 0.5 ms short.)
        await trio.sleep((error.retry_after_ms + 1) / 1000)
        await alice.send(p.Ping(ts=3))
        assert await alice.recv() == p.Pong(ts=3)


async def test_websocket_pings_do_not_cost_tokens(clients: Clients) -> None:
    srv = await clients.start(limits=Limits(rate_per_s=0.5, rate_burst=1))
    alice = await clients.connect(srv, "alice")
    with trio.fail_after(CEILING_S):
        for i in range(5):
            await alice.ws.ping(f"ws{i}".encode())  # returns once the pong arrived
        await alice.send(p.Ping(ts="app"))
        assert await alice.recv() == p.Pong(ts="app")


# --- slow consumers ---------------------------------------------------------------------------


async def _flood(flooder: Client, until: Callable[[], bool]) -> int:
    """Send flood messages one round trip at a time until `until()` is true; how many."""
    for n in range(1, FLOOD_MAX + 1):
        await flooder.send(p.SendMessage(id=f"f{n}", room="general", text=FLOOD_TEXT))
        message = await flooder.recv_type(p.Message)
        assert (message.id, message.seq) == (f"f{n}", n)
        if until():
            return n
    raise AssertionError(f"{FLOOD_MAX} flood messages did not meet the condition")


async def test_slow_consumer_is_closed_1013_and_others_are_served(clients: Clients) -> None:
    limits = Limits(outbound_queue_bytes=QUEUE, **UNLIMITED_RATE)  # type: ignore[arg-type]
    srv = await clients.start(limits=limits, close_timeout_s=2)
    assert limits.slow_consumer is SlowConsumerPolicy.CLOSE
    # Never reads while the flood lasts; a small kernel buffer makes that show soon.
    slow = await clients.raw(srv, "slow", receive_buffer=4096)
    flooder = await clients.connect(srv, "flooder")
    with trio.fail_after(CEILING_S):
        sent = await _flood(flooder, lambda: srv.metrics.closes[p.CloseCode.TRY_AGAIN_LATER] > 0)
        # Now read: what was queued, then the close frame, then EOF.
        close = await slow.until_eof()
        assert isinstance(close, CloseConnection)
        assert close.code == p.CloseCode.TRY_AGAIN_LATER
        assert srv.metrics.closes[p.CloseCode.TRY_AGAIN_LATER] == 1
        # The server goes on serving the others, and new connections.
        await flooder.send(p.SendMessage(id="after", room="general", text="still here"))
        assert await flooder.recv_type(p.Ack) == p.Ack(id="after", room="general", seq=sent + 1)
        carol = await clients.connect(srv, "carol", welcome=False)
        assert isinstance(await carol.recv(), p.Welcome)
        assert await carol.recv() == p.Joined(room="general", seq=sent + 1)
    assert srv.metrics.dropped == 0


async def test_slow_consumer_with_drop_policy_loses_frames_not_memory(clients: Clients) -> None:
    limits = Limits(
        outbound_queue_bytes=QUEUE,
        slow_consumer=SlowConsumerPolicy.DROP,
        **UNLIMITED_RATE,  # type: ignore[arg-type]
    )
    srv = await clients.start(limits=limits)
    slow = await clients.raw(srv, "slow", receive_buffer=4096)
    flooder = await clients.connect(srv, "flooder")
    flood_bytes = 2 * 1024 * 1024  # 32 times the queue
    with trio.fail_after(CEILING_S):
        sent = await _flood_bytes(flooder, flood_bytes)
        dropped = srv.metrics.dropped
        assert dropped > 0
        # Only the slow client fell behind, so it must get exactly the frames not dropped.
        welcome = await slow.next_frame()
        assert isinstance(welcome, p.Welcome)
        seqs: list[int] = []
        while len(seqs) < sent - dropped:
            frame = await slow.next_frame()
            if isinstance(frame, p.Message):
                seqs.append(frame.seq)
        assert seqs == sorted(set(seqs))  # in order, no duplicates
        gap = next((i for i, seq in enumerate(seqs, start=1) if seq != i), len(seqs) + 1)
        # Still open: an app ping round trip, and a re-sync over the gap.
        await slow.send_json({"type": "ping", "ts": "still open"})
        pong = await _next_not_message(slow)
        assert pong == p.Pong(ts="still open")
        # (a page small enough for the queue: see test_history_page_over_queue_...)
        await slow.send_json({"type": "history", "room": "general", "after": gap - 1, "limit": 10})
        page = await _next_not_message(slow)
    # The server never held the flood for the slow client: it read little of it.
    assert slow.bytes_received < flood_bytes // 4, (slow.bytes_received, flood_bytes)
    assert srv.metrics.dropped == dropped
    assert isinstance(page, p.HistoryPage)
    assert [m.seq for m in page.messages] == list(range(gap, gap + 10))
    assert page.has_more is True


async def _flood_bytes(flooder: Client, total: int) -> int:
    sent_bytes = 0

    def enough() -> bool:
        nonlocal sent_bytes
        sent_bytes += len(FLOOD_TEXT)
        return sent_bytes >= total

    return await _flood(flooder, enough)


async def _next_not_message(raw: RawClient) -> p.ServerFrame:
    while isinstance(frame := await raw.next_frame(), p.Message | p.Presence):
        pass
    return frame


async def test_history_page_over_queue_limit_reaches_a_fast_reader(clients: Clients) -> None:
    """Default limits except the rate: 100 messages of 4096 three-byte characters make a
    1.2 MB history page, over the 1 MiB outbound queue, for a client that reads at once."""
    limits = Limits(**UNLIMITED_RATE)  # type: ignore[arg-type]
    srv = await clients.start(limits=limits)
    alice = await clients.connect(srv, "alice")
    text = "\u20ac" * MAX_TEXT
    with trio.fail_after(CEILING_S):
        for n in range(1, 101):
            await alice.send(p.SendMessage(id=f"m{n}", room="general", text=text))
            assert (await alice.recv_type(p.Message)).seq == n
        bob = await clients.connect(srv, "bob")
        await bob.send(p.HistoryRequest(room="general"))
        try:
            page = await bob.recv_type(p.HistoryPage)
        except ConnectionClosed as closed:
            code = _code(closed)
            raise AssertionError(f"closed with {code} instead of a history page") from None
    assert [m.seq for m in page.messages] == list(range(1, 101))
    assert srv.metrics.closes[p.CloseCode.TRY_AGAIN_LATER] == 0


# --- binary messages: error unsupported_data --------------------------------------------------


async def test_binary_message_is_refused_and_the_connection_stays(
    server: RunningServer, clients: Clients
) -> None:
    alice = await clients.connect(server, "alice")
    with trio.fail_after(CEILING_S):
        await alice.ws.send_message(b'{"type": "ping", "ts": "binary"}')
        error = await alice.recv()
        assert isinstance(error, p.Error)
        assert error.code == p.ErrorCode.UNSUPPORTED_DATA
        await _still_serves(alice)
    assert server.metrics.errors["unsupported_data"] == 1


async def test_raw_binary_message_is_refused(server: RunningServer, clients: Clients) -> None:
    raw = await clients.raw(server, "alice")
    with trio.fail_after(CEILING_S):
        assert isinstance(await raw.next_frame(), p.Welcome)
        assert isinstance(await raw.next_frame(), p.Joined)
        await raw.send_binary(b"\x00\x01\x02")
        error = await raw.next_frame()
        assert isinstance(error, p.Error)
        assert error.code == p.ErrorCode.UNSUPPORTED_DATA
        await raw.send_text('{"type": "ping"}')
        assert await raw.next_frame() == p.Pong(ts=None)
