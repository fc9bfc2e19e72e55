"""The reference server process: listeners, routing, heartbeats, group commit, shutdown.

Follows trio's `nursery.start()` convention: `server = await nursery.start(serve, config)`
returns a `RunningServer` once the port is bound, and `server.shutdown()` begins the
graceful stop of docs/protocol.md §9 (what SIGTERM does in `loadtool serve`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Final

import attrs
import orjson
import trio

from .. import protocol as p
from ..netio.demux import Demux
from . import handshake as hs
from .broker import Broker
from .cluster import ClusterEdge, default_node_id
from .config import ServerConfig
from .connection import Connection, Flusher
from .hub import Hub, frame_bytes
from .metrics import CONTENT_TYPE, Metrics
from .storage import HistorySource, MemoryStore, MessageStore, SqliteStore, StorageError

log = logging.getLogger("loadtool.server")

_MIN_SWEEP_S: Final = 0.05  # seconds between heartbeat sweeps, at the fastest
_HTTP_PATHS: Final = ("/healthz", "/metrics")  # plain HTTP, never upgraded


@attrs.define(eq=False)
class RunningServer:
    """Handle on a started server: where it listens, its counters, and how to stop it."""

    host: str
    port: int
    scheme: str
    metrics: Metrics
    _stop: trio.Event = attrs.field(factory=trio.Event)
    stopped: trio.Event = attrs.field(factory=trio.Event)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"

    def shutdown(self) -> None:
        """Begin the graceful stop (never blocks): see `serve`."""
        self._stop.set()


async def serve(
    config: ServerConfig,
    *,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[RunningServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the reference server until `RunningServer.shutdown()` (or cancellation).

    Graceful stop: stop accepting, commit pending messages (their acks go out), close
    every connection with 1001, wait for the close handshakes (bounded), close storage.

    Raises:
        StorageError: the database cannot be opened, or a commit failed (acks cannot be
            honoured, so the server stops rather than lose acknowledged messages).
        OSError: the port cannot be bound.
    """
    if config.redis_url is not None:
        node_id = config.node_id or default_node_id()
        async with Broker.connect(config.redis_url, node_id) as broker:
            log.info("cluster mode", extra={"fields": {"redis": broker.url, "node": node_id}})
            server = _Server(config, MemoryStore(), clock, broker=broker)
            await server.run(task_status)
        return
    store: MessageStore = (
        await SqliteStore.open(config.db_path) if config.db_path else MemoryStore()
    )
    try:
        server = _Server(config, store, clock)
        await server.start()
        await server.run(task_status)
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()


class _Server:
    def __init__(
        self,
        config: ServerConfig,
        store: MessageStore,
        clock: Callable[[], float],
        *,
        broker: Broker | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._metrics = Metrics()
        self._pending = trio.Event()
        self._cluster: ClusterEdge | None = None
        self._history: HistorySource = store
        self._hub: Hub
        if broker is not None:
            self._cluster = ClusterEdge(config, broker, clock=clock, metrics=self._metrics)
            self._hub = self._cluster.hub
            self._history = broker
        else:
            self._hub = Hub(
                config.limits,
                durable=store.durable,
                clock=clock,
                metrics=self._metrics,
                on_pending=self._wake_committer,
                faults=config.faults,
            )
        self._commit_lock = trio.Lock()
        self._advertised = config.limits.advertised()  # the `limits` of every welcome
        self._connections: dict[Connection, None] = {}
        self._flusher = Flusher()  # one write per connection per scheduler pass
        # One reader task for every plain-TCP connection (Linux; docs/performance.md).
        self._demux = (
            Demux() if config.read_demux and config.certfile is None and Demux.available() else None
        )

    async def start(self) -> None:
        limits = self._config.limits
        snapshot = await self._store.load(
            per_room=limits.history_cache,
            dedupe_since=self._clock() - limits.dedupe_window_s,
            dedupe_limit=limits.dedupe_max_entries,
        )
        self._hub.restore(snapshot)

    async def run(self, task_status: trio.TaskStatus[RunningServer]) -> None:
        config = self._config
        listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(
            await trio.open_tcp_listeners(config.port, host=config.host)
        )
        if config.certfile is not None and config.keyfile is not None:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(config.certfile, config.keyfile)
            listeners = [
                trio.SSLListener(listener, context, https_compatible=True) for listener in listeners
            ]
        sock = _socket_of(listeners[0])
        host, port = sock.getsockname()[:2]
        handle = RunningServer(
            host=host,
            port=port,
            scheme="wss" if config.certfile else "ws",
            metrics=self._metrics,
        )
        log.info("listening", extra={"fields": {"url": handle.url}})
        try:
            async with trio.open_nursery() as background:
                if self._cluster is not None:
                    background.start_soon(self._cluster.run)
                elif self._store.durable:
                    background.start_soon(self._commit_loop)
                background.start_soon(self._sweep_loop)
                background.start_soon(self._flusher.run)
                if self._demux is not None:
                    background.start_soon(self._flusher.run_demux, self._demux)
                async with trio.open_nursery() as connections:
                    async with trio.open_nursery() as accepting:
                        accepting.start_soon(_serve_listeners, self._handle, listeners, connections)
                        task_status.started(handle)
                        await handle._stop.wait()
                        accepting.cancel_scope.cancel()
                    await self._stop_connections()
                background.cancel_scope.cancel()
        finally:
            handle.stopped.set()
            log.info("stopped", extra={"fields": {"url": handle.url}})

    async def _stop_connections(self) -> None:
        for conn in self._connections:
            conn.drain()
        if self._cluster is not None:
            # Redis may be down: what it has not stored by then is never acked (§9).
            with trio.move_on_after(self._config.close_timeout_s):
                await self._cluster.flush()
        else:
            await self._commit()
        for conn in self._connections:
            conn.close(p.CloseCode.GOING_AWAY, "server shutting down")

    # --- per connection --------------------------------------------------------------------

    async def _handle(self, stream: trio.abc.Stream) -> None:
        accepted: tuple[hs.Upgrade, bytes] | None = None
        try:
            with trio.move_on_after(self._config.handshake_timeout_s):
                accepted = await self._handshake(hs.HttpSession(stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            accepted = None
        if accepted is None:
            await trio.aclose_forcefully(stream)
            return
        await self._run_connection(stream, *accepted)

    async def _handshake(self, http: hs.HttpSession) -> tuple[hs.Upgrade, bytes] | None:
        """Answer plain HTTP and refusals; for an accepted upgrade send the 101."""
        request = await http.read_request()
        if request is None:
            return None
        if not hs.is_upgrade(request) or request.path in _HTTP_PATHS:
            await self._plain_http(http, request)
            return None
        decision = hs.authorise(request, self._config, self._hub.refuse_reason)
        if isinstance(decision, hs.Refusal):
            self._metrics.refused[decision.status.value] += 1
            log.info(
                "upgrade refused",
                extra={"fields": {"status": decision.status.value, "why": decision.reason}},
            )
            await http.refuse(decision)
            return None
        self._hub.reserve(decision.grant.user_id)
        try:
            initial = await http.accept(decision.key)
        except BaseException:
            self._hub.unreserve(decision.grant.user_id)
            raise
        return decision, initial

    async def _run_connection(
        self, stream: trio.abc.Stream, up: hs.Upgrade, initial: bytes
    ) -> None:
        conn = Connection(
            stream,
            up.grant,
            config=self._config,
            hub=self._hub,
            store=self._history,
            metrics=self._metrics,
            flusher=self._flusher,
            demux=self._demux,
        )
        self._connections[conn] = None
        self._metrics.connections += 1
        self._metrics.connections_total += 1
        joined = False
        try:
            welcome = p.Welcome(
                user_id=up.grant.user_id,
                rooms=up.rooms,
                heartbeat_ms=round(self._config.heartbeat_interval_s * 1000),
                idle_timeout_ms=round(self._config.idle_timeout_s * 1000),
                limits=self._advertised,
            )
            conn.deliver(frame_bytes(welcome))
            self._hub.connect(conn, up.rooms, reserved=True)
            joined = True
            await conn.run(initial)
        except Exception:
            # A bug must cost one connection, not the server: log it with its traceback.
            log.exception("connection failed", extra={"fields": {"user": up.grant.user_id}})
            await conn.fail("internal error")
            await trio.aclose_forcefully(stream)
        finally:
            if joined:
                self._hub.disconnect(conn)
            else:
                self._hub.unreserve(up.grant.user_id)
            del self._connections[conn]
            self._metrics.connections -= 1

    async def _plain_http(self, http: hs.HttpSession, request: hs.Request) -> None:
        if request.method != "GET":
            await http.refuse(
                hs.Refusal(status=HTTPStatus.METHOD_NOT_ALLOWED, reason="only GET is served")
            )
        elif request.path == "/healthz":
            health: dict[str, object] = {"status": "ok", "connections": self._metrics.connections}
            status = HTTPStatus.OK
            if self._cluster is not None:
                health["node"] = self._cluster.node_id
                health["redis"] = "up" if self._cluster.up else "down"
                if not self._cluster.up:  # not ready: a load balancer routes around this node
                    health["status"] = "unavailable"
                    status = HTTPStatus.SERVICE_UNAVAILABLE
            await http.respond(status, orjson.dumps(health), "application/json")
        elif request.path == "/metrics":
            await http.respond(
                HTTPStatus.OK, self._metrics.render_prometheus().encode(), CONTENT_TYPE
            )
        else:
            await http.refuse(
                hs.Refusal(
                    status=HTTPStatus.UPGRADE_REQUIRED,
                    reason="this is a WebSocket endpoint (or GET /healthz, /metrics)",
                    headers=(("Upgrade", "websocket"),),
                )
            )

    # --- background ------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await self._pending.wait()
            self._pending = trio.Event()
            await self._commit()

    def _wake_committer(self) -> None:
        self._pending.set()

    async def _commit(self) -> None:
        """Group commit: store every accepted message, then release acks and deliveries."""
        async with self._commit_lock:
            batch = self._hub.take_pending()
            if not batch:
                return
            try:
                await self._store.append([pending.stored for pending in batch])
            except StorageError:
                log.exception("commit failed; stopping so no unstored message is acked")
                raise
            self._hub.release(batch)

    async def _sweep_loop(self) -> None:
        """Heartbeat pings and the idle timeout for every connection (§6)."""
        config = self._config
        period = max(_MIN_SWEEP_S, min(config.heartbeat_interval_s, config.idle_timeout_s) / 4)
        while True:
            await trio.sleep(period)
            now = trio.current_time()
            for conn in list(self._connections):
                if now - conn.last_received > config.idle_timeout_s:
                    conn.close(p.CloseCode.IDLE_TIMEOUT, "idle timeout")
                elif now - conn.last_ping >= config.heartbeat_interval_s:
                    conn.ping()


async def _serve_listeners(
    handler: Callable[[trio.abc.Stream], object],
    listeners: list[trio.abc.Listener[trio.abc.Stream]],
    connections: trio.Nursery,
) -> None:
    await trio.serve_listeners(handler, listeners, handler_nursery=connections)  # type: ignore[arg-type]


def _socket_of(listener: trio.abc.Listener[trio.abc.Stream]) -> trio.socket.SocketType:
    inner = listener.transport_listener if isinstance(listener, trio.SSLListener) else listener
    assert isinstance(inner, trio.SocketListener)
    return inner.socket
