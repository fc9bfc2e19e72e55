"""One accepted WebSocket connection: the reader, the writer and the close handshake.

wsproto parses what the client sends; what the server sends is pre-framed bytes from the
hub (`wsframe.text_frame`). Frames produced for one connection during one pass of trio's
scheduler are written together by the `Flusher`, one non-blocking write per connection
per pass; what the socket does not take goes to a bounded outbox that one writer task
drains (docs/protocol.md §7.6 for what happens when the outbox is full;
docs/performance.md for why). On Linux one demux task reads every plain-TCP connection
(`_on_readable`); the connection's own task then only awaits what must be awaited
(history pages from the store, the end of reading).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from typing import Final

import orjson
import trio
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from .. import protocol as p
from ..netio.demux import Demux
from .config import Fault, ServerConfig, SlowConsumerPolicy
from .hub import HistoryQuery, Hub, frame_bytes
from .metrics import Metrics
from .ratelimit import RateLimiter
from .storage import HistorySource, StorageError
from .wsframe import OP_PING, OP_PONG, OP_TEXT, LengthGuard, control_frame, split_simple

log = logging.getLogger("loadtool.server")

_RECEIVE_BYTES: Final = 64 * 1024
_ABNORMAL: Final = 1006  # RFC 6455 §7.1.5: closed without a close frame (never sent)
_NO_STATUS: Final = 1005  # RFC 6455 §7.4.1: never on the wire, but for Fault.BAD_CLOSE_CODE
_FAULTY_CLOSE: Final = b"\x88\x02\x03\xed"  # Close 1005, unmasked (Fault.BAD_CLOSE_CODE)


class Flusher:
    """Writes what each connection was given during one scheduler pass, in one syscall.

    A connection that is handed a frame marks itself dirty; the flush task wakes in trio's
    next batch, after every task that was already runnable (the readers whose broadcasts
    produced the frames), so all frames one pass made for a connection leave together.
    There is no timer: an idle server flushes a lone frame as soon as the pass ends.
    Frames the demux's handlers produce are written at the end of the demux's batch
    instead (`run_demux`), without waking the flush task: no task switch per message.
    """

    def __init__(self) -> None:
        self._dirty: list[Connection] = []
        self._wake = trio.Event()
        self._inline: trio.lowlevel.Task | None = None  # the task running the demux

    def mark(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if trio.lowlevel.current_task() is not self._inline:
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            self._flush()

    async def run_demux(self, demux: Demux) -> None:
        """Run `demux` in this task, writing what each batch of handlers produced."""
        self._inline = trio.lowlevel.current_task()
        try:
            await demux.run(after_batch=self._flush)
        finally:
            self._inline = None

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()


class Connection:
    """Implements the hub's `Peer` for one client.

    Slotted, with a writer task only while a backlog exists: an idle connection is a
    few small objects and one task (docs/performance.md, memory).
    """

    __slots__ = (
        "__weakref__",
        "_attention",
        "_close_code",
        "_config",
        "_demux",
        "_dirty",
        "_draining",
        "_failure",
        "_fd",
        "_flusher",
        "_grant",
        "_guard",
        "_handler",
        "_hub",
        "_limiter",
        "_limits",
        "_max_bytes",
        "_metrics",
        "_nursery",
        "_open",
        "_outbox",
        "_part_bytes",
        "_parts",
        "_pending",
        "_queries",
        "_queued",
        "_reading",
        "_scope",
        "_simple",
        "_store",
        "_stream",
        "_unguarded",
        "_writer_running",
        "_writing",
        "_ws",
        "last_ping",
        "last_received",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        grant: p.Grant,
        *,
        config: ServerConfig,
        hub: Hub,
        store: HistorySource,
        metrics: Metrics,
        flusher: Flusher,
        demux: Demux | None = None,
    ) -> None:
        self._stream = stream
        self._flusher = flusher
        self._grant = grant
        self._config = config
        self._limits = config.limits
        self._max_bytes = (
            config.limits.max_message_bytes
            if Fault.IGNORE_SIZE_LIMIT not in config.faults
            else 2**62
        )
        self._hub = hub
        self._store = store
        self._metrics = metrics
        self._ws: WsConnection | None = None  # made when first needed: `_wsproto`
        self._guard = LengthGuard(self._max_bytes)  # sees every byte wsproto sees
        self._simple = True  # wsproto has seen nothing yet: `split_simple` may go first
        self._pending: list[bytes] = []  # frames of this scheduler pass, not yet written
        self._dirty = False  # registered with the flusher for this pass
        self._outbox: list[bytes] = []  # what the socket did not take: the writer's
        self._queued = 0  # bytes pending or in the outbox
        self._writer_running = False  # a writer task exists (only while there is a backlog)
        self._nursery: trio.Nursery | None = None  # where the writer runs (set by `run`)
        self._writing = True  # False once the transport is gone or the close is sent
        self._draining = False  # shutting down: stop accepting frames
        self._close_code: int | None = None
        self._scope = trio.CancelScope()
        # Plain TCP only: TLS records must go through the SSL object, not the socket.
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self._open = True  # False once the stream is being closed: nothing more is written
        # The server's demux reads plain-TCP connections (None: this task reads).
        self._demux = demux if self._fd >= 0 else None
        self._handler = self._on_readable  # one bound method: the demux's key for removal
        self._attention = trio.Event()  # set by the demux: this task has work
        self._reading = True  # what the demux saw: False once reading is over
        self._failure: Exception | None = None  # a server bug met in the demux task
        self._unguarded = b""  # a chunk's length check, deferred behind history pages
        now = trio.current_time()
        self.last_received = now
        self.last_ping = now
        self._limiter = RateLimiter.from_limits(self._limits, now)
        self._parts: list[str | bytes | bytearray] = []
        self._queries: list[HistoryQuery] = []
        self._part_bytes = 0

    # --- Peer ------------------------------------------------------------------------------

    @property
    def grant(self) -> p.Grant:
        return self._grant

    def deliver(self, wire: bytes) -> None:
        if not self._writing or self._close_code is not None:
            return
        # The limit bounds the backlog before a frame is queued, so one frame larger than
        # the limit (a full history page) still reaches a reader that keeps up; the
        # backlog stays under the limit plus one frame.
        if self._queued >= self._limits.outbound_queue_bytes:
            if self._limits.slow_consumer is SlowConsumerPolicy.DROP:
                self._metrics.dropped += 1
                return
            self.close(p.CloseCode.TRY_AGAIN_LATER, "outbound queue full: read faster")
            return
        self._push(wire)

    def _push(self, data: bytes) -> None:
        """Queue `data` for the end of this scheduler pass (`flush`)."""
        if not self._open:
            return
        self._pending.append(data)
        self._queued += len(data)
        if not self._dirty:
            self._dirty = True
            self._flusher.mark(self)

    def flush(self) -> None:
        """Write this pass's frames now: one non-blocking write, nothing awaited.

        Skipping the writer task (a task switch per write) is most of a fan-out's cost
        (docs/performance.md); whatever the socket buffer does not take is queued, and
        the writer coalesces the backlog into one `send_all`.
        """
        self._dirty = False
        pending = self._pending
        if not pending or not self._open:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if self._fd >= 0 and not self._outbox and not self._writer_running:
            try:
                sent = os.write(self._fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._writing = False  # the peer is gone; the reader sees it too
                self._scope.cancel()
                return
            self._queued -= sent
            if sent == len(data):
                return
            data = data[sent:]
        self._outbox.append(data)
        self._start_writer()

    def _start_writer(self) -> None:
        if not self._writer_running and self._nursery is not None:
            self._writer_running = True
            self._nursery.start_soon(self._write_loop)

    # --- control -----------------------------------------------------------------------------

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake (never blocks). The client has `close_timeout`
        to answer before the TCP connection is dropped."""
        if self._close_code is not None or not self._ws_open():
            return
        self._close_code = code
        self._metrics.closes[code] += 1
        self._push(self._wsproto().send(CloseConnection(code=code, reason=reason)))
        self._scope.deadline = min(
            self._scope.deadline, trio.current_time() + self._config.close_timeout_s
        )

    async def fail(self, reason: str) -> None:
        """Close with 1011 after a server bug broke this connection (bounded, never raises)."""
        if not self._ws_open() or not self._open:
            return
        self._close_code = p.CloseCode.INTERNAL_ERROR
        self._metrics.closes[p.CloseCode.INTERNAL_ERROR] += 1
        data = self._wsproto().send(CloseConnection(code=p.CloseCode.INTERNAL_ERROR, reason=reason))
        with trio.move_on_after(self._config.close_timeout_s, shield=True):
            with contextlib.suppress(
                trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError
            ):
                await self._stream.send_all(data)
        self._open = False

    def drain(self) -> None:
        """Stop taking frames from this client (shutdown); what is queued still goes out."""
        self._draining = True

    def ping(self) -> None:
        """Send a WebSocket ping (heartbeat); the pong, like any frame, resets idle time."""
        if self._ws_open() and self._close_code is None:
            self.last_ping = trio.current_time()
            self._push(control_frame(OP_PING, b"hb"))

    def _ws_open(self) -> bool:
        return self._ws is None or self._ws.state is ConnectionState.OPEN

    def _wsproto(self) -> WsConnection:
        """wsproto, made when the fast path first leaves it a frame (or at the first
        close): ~1.7 KB that an idle connection, or one that only sends simple frames,
        never needs (docs/performance.md, Memory)."""
        ws = self._ws
        if ws is None:
            ws = self._ws = WsConnection(ConnectionType.SERVER)
        return ws

    # --- running -----------------------------------------------------------------------------

    async def run(self, initial: bytes) -> None:
        """Serve the connection until it closes. `initial`: bytes that came with the
        upgrade request. Returns when the TCP connection is done with."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._outbox:
                    self._start_writer()
                try:
                    if self._demux is not None:
                        await self._read_demuxed(self._demux, initial)
                    else:
                        await self._read_loop(initial)
                finally:
                    self._writing = False  # write what is queued (a close frame last), stop
                    if self._pending or self._outbox:
                        self._start_writer()
            self._nursery = None
        if self._close_code is None:
            self._metrics.closes[_ABNORMAL] += 1
        self._open = False
        self._fd = -1  # no direct write may reach a descriptor the kernel could reuse
        with trio.move_on_after(self._config.close_timeout_s, shield=True):
            await self._stream.aclose()

    async def _write_loop(self) -> None:
        """Drain the backlog (one `send_all` per round, coalescing what queued meanwhile),
        then end: the task exists only while the socket is behind."""
        outbox = self._outbox
        try:
            while outbox or self._pending:
                if self._pending:  # not flushed yet: they follow the backlog
                    outbox += self._pending
                    self._pending.clear()
                data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
                outbox.clear()
                self._queued = 0
                await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._writing = False
            self._scope.cancel()
        finally:
            self._writer_running = False

    async def _read_loop(self, initial: bytes) -> None:
        """The plain path: this task reads (TLS, non-Linux, or `read_demux` off)."""
        data = initial
        while True:
            if data and not await self._settle(self._take(data)):
                return
            try:
                data = await self._receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return  # EOF without a close frame

    async def _read_demuxed(self, demux: Demux, initial: bytes) -> None:
        """The demux path: the server's demux task reads and handles each chunk
        (`_on_readable`, no task switch per message); this task only does what needs an
        await (history pages from the store) and ends the reading (docs/performance.md)."""
        going_on = self._take(initial) if initial else True
        while await self._settle(going_on):
            self._attention = trio.Event()
            demux.add(self._fd, self._handler)
            try:
                await self._attention.wait()
            finally:
                demux.remove(self._fd, self._handler)
            if self._failure is not None:
                raise self._failure  # a server bug met in the demux task: this connection's
            going_on = self._reading

    def _on_readable(self) -> None:
        """Called by the demux when the socket is readable: one read, handled here.

        Wakes the connection's task only when something needs an await or reading is
        over, and unregisters first (the socket stays readable until then). Never raises:
        the demux task serves every connection.
        """
        going_on = False
        try:
            data = os.read(self._fd, _RECEIVE_BYTES)
        except BlockingIOError:
            return
        except OSError:  # reset by the peer
            data = b""
        if data:
            try:
                going_on = self._take(data)
            except Exception as exc:  # noqa: BLE001 - re-raised by the connection's task
                self._failure = exc
                going_on = False
            if going_on and not self._queries:
                return
        self._reading = going_on
        if self._demux is not None:
            self._demux.remove(self._fd, self._handler)
        self._attention.set()

    def _take(self, data: bytes) -> bool:
        """Handle one chunk from the client without awaiting; False once reading is over.

        History pages the store must answer wait in `_queries` for `_settle`, and so
        does the length check of the chunk: a page asked for goes out before a close.
        """
        self.last_received = trio.current_time()
        going_on = True
        if self._simple:
            data, going_on = self._handle_simple(data)
        if data and going_on:
            self._wsproto().receive_data(data)
            going_on = self._handle_events()
        if not going_on:
            return False
        if self._queries:
            self._unguarded = data
            return True
        return not data or self._guarded(data)

    async def _settle(self, going_on: bool) -> bool:
        """Answer the history queries `_take` left, then its deferred length check."""
        while self._queries:
            await self._answer(self._queries.pop(0))
        unguarded, self._unguarded = self._unguarded, b""
        if going_on and unguarded:
            return self._guarded(unguarded)
        return going_on

    def _guarded(self, data: bytes) -> bool:
        """Follow the frame headers wsproto is parsing; False once one declares a message
        over the limit."""
        if self._guard.feed(data) is None:
            return True
        # Refused by its header: nothing would make the body acceptable.
        self.close(
            p.CloseCode.MESSAGE_TOO_BIG, f"message over {self._limits.max_message_bytes} bytes"
        )
        return False

    async def _receive(self) -> bytes:
        """The next chunk from the client (b"" at EOF).

        Plain TCP waits for readiness first and then reads once: `receive_some` tries the
        read first, one failed syscall per message when clients send now and then.
        """
        fd = self._fd
        if fd < 0:
            return bytes(await self._stream.receive_some(_RECEIVE_BYTES))
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                return os.read(fd, _RECEIVE_BYTES)
            except BlockingIOError:
                continue  # woken without data (another reader cannot exist): wait again
            except OSError as exc:  # reset by the peer
                raise trio.BrokenResourceError(str(exc)) from exc

    def _handle_simple(self, data: bytes) -> tuple[bytes, bool]:
        """The fast path: handle the leading simple frames (`wsframe.split_simple`) without
        wsproto. Returns (what wsproto must parse, whether to go on reading).

        Once wsproto is handed anything, it sees every later byte too (its parser state
        must stay whole), so this runs only while the client sends nothing unusual.
        """
        used = 0
        for opcode, payload, end in split_simple(data, self._max_bytes):
            if not self._ws_open():
                break  # closing: wsproto's rules from here on
            used = end
            if opcode == OP_TEXT:
                assert isinstance(payload, str)
                if self._draining or self._close_code is not None:
                    continue
                if not self._dispatch(payload):
                    return data[used:], False
            elif opcode == OP_PING:
                assert isinstance(payload, bytes)
                self._push(control_frame(OP_PONG, payload))
        if used == len(data):
            return b"", True
        self._simple = False
        return data[used:], True

    def _handle_events(self) -> bool:
        """Process parsed events; False when the connection is finished reading."""
        ws = self._wsproto()
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                if not self._collect(event):
                    return False
            elif isinstance(event, Ping):
                self._push(ws.send(event.response()))
            elif isinstance(event, Pong):
                pass
            elif isinstance(event, CloseConnection):
                return self._on_close(event)
        return True

    def _on_close(self, event: CloseConnection) -> bool:
        ws = self._wsproto()
        state = ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The client closed first: answer with its code (RFC 6455 §5.5.1).
            self._close_code = event.code
            self._metrics.closes[event.code] += 1
            self._push(ws.send(event.response()))
        elif state is ConnectionState.OPEN:
            # wsproto found a protocol violation and reports the code to fail with.
            if Fault.BAD_CLOSE_CODE in self._config.faults and "opcode" in (event.reason or ""):
                self._close_code = _NO_STATUS
                self._push(_FAULTY_CLOSE)
            else:
                self.close(event.code, event.reason or "")
        self._writing = False  # finish the queue (close frame last), then stop
        return False

    def _collect(self, event: TextMessage | BytesMessage) -> bool:
        """Reassemble fragments within the size limit; dispatch whole messages."""
        self._part_bytes += len(event.data)  # characters for text: checked in bytes later
        if self._part_bytes > self._max_bytes:
            self.close(
                p.CloseCode.MESSAGE_TOO_BIG,
                f"message over {self._limits.max_message_bytes} bytes",
            )
            self._writing = False
            return False
        if not event.message_finished:
            self._parts.append(event.data)
            return True
        if self._parts:
            self._parts.append(event.data)
            whole: str | bytes | bytearray = (
                "".join(x for x in self._parts if isinstance(x, str))
                if isinstance(event, TextMessage)
                else b"".join(x for x in self._parts if isinstance(x, bytes | bytearray))
            )
            self._parts.clear()
        else:
            whole = event.data
        self._part_bytes = 0
        if self._draining or self._close_code is not None:
            return True
        return self._dispatch(whole)

    def _dispatch(self, data: str | bytes | bytearray) -> bool:
        """Apply one whole message; False once the connection is closing."""
        self._apply(data)
        return self._close_code is None

    def _apply(self, data: str | bytes | bytearray) -> None:
        retry = self._limiter.take(trio.current_time())
        if retry is not None:
            if self._limiter.abusive:
                self.close(p.CloseCode.POLICY_VIOLATION, "rate limit exceeded persistently")
                return
            self._hub.error(
                self,
                p.ProtocolError(p.ErrorCode.RATE_LIMITED, "too many frames; slow down"),
                retry_after_ms=max(1, math.ceil(retry * 1000)),
            )
            return
        if not isinstance(data, str):
            self._hub.error(
                self,
                p.ProtocolError(
                    p.ErrorCode.UNSUPPORTED_DATA, "binary messages are not part of protocol v1"
                ),
            )
            return
        if len(data) * 4 > self._max_bytes and len(data.encode()) > self._max_bytes:
            self.close(p.CloseCode.MESSAGE_TOO_BIG, "message too big")
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None  # the codec says why, below
        if type(obj) is dict and self._hub.handle_simple(self, obj):
            return
        try:
            frame = p.decode_object(obj) if type(obj) is dict else p.decode(data)
        except p.ProtocolError as exc:
            self._hub.error(self, exc)
            return
        query = self._hub.handle(self, frame)
        if query is not None:
            self._queries.append(query)

    async def _answer(self, query: HistoryQuery) -> None:
        """A history page from the durable store (a cancel point)."""
        try:
            messages, has_more = await self._store.page(
                query.room, before=query.before, after=query.after, limit=query.limit
            )
        except StorageError as exc:
            log.warning("history read failed", extra={"fields": {"error": str(exc)}})
            self._hub.error(
                self,
                p.ProtocolError(
                    p.ErrorCode.UNAVAILABLE, "history is unavailable right now", room=query.room
                ),
            )
            return
        page = p.HistoryPage(
            room=query.room, messages=[m.to_frame() for m in messages], has_more=has_more
        )
        self.deliver(frame_bytes(page))
