"""`loadtool serve`: run the reference chat server until SIGTERM or SIGINT."""

from __future__ import annotations

import errno
import logging
import signal
from pathlib import Path

import click
import trio

from ..server.app import RunningServer
from ..server.app import serve as run_server
from ..server.broker import BrokerUnreachable
from ..server.config import DEFAULT_PORT, Fault, Limits, ServerConfig, SlowConsumerPolicy
from ..server.storage import StorageError
from . import _logging
from ._errors import sole_leaf
from ._types import DURATION, SIZE

log = logging.getLogger("loadtool.server")
_DEFAULTS = Limits()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port (0: any free port; the URL is printed on stdout).",
)
@click.option(
    "--secret",
    envvar="LOADTOOL_SECRET",
    required=True,
    help="Token signing secret, at least 8 characters (or $LOADTOOL_SECRET).",
)
@click.option(
    "--allow-origin", "origins", multiple=True, help="Allowed Origin; repeat. Default: any."
)
@click.option("--require-origin", is_flag=True, help="Refuse upgrades without an Origin header.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file for durable history (default: memory only).",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    envvar="LOADTOOL_REDIS",
    help="Cluster mode: share rooms, seq, dedupe and history with every node using this Redis"
    " (redis://HOST:PORT/DB; docs/scaling.md).",
)
@click.option(
    "--node-id",
    help="This node's name in the cluster (default: host-pid-random).",
)
@click.option(
    "--cert",
    "certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS certificate chain (PEM), for wss://.",
)
@click.option(
    "--key",
    "keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS private key (PEM).",
)
@click.option(
    "--heartbeat", type=DURATION, default="20s", show_default=True, help="WebSocket ping interval."
)
@click.option(
    "--idle-timeout",
    type=DURATION,
    default="60s",
    show_default=True,
    help="Close (4000) connections silent this long.",
)
@click.option(
    "--max-message",
    type=SIZE,
    default=str(_DEFAULTS.max_message_bytes),
    show_default=True,
    help="Largest message in bytes (close 1009).",
)
@click.option(
    "--max-text",
    type=click.IntRange(1),
    default=_DEFAULTS.max_text_chars,
    show_default=True,
    help="Longest message text in characters.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=_DEFAULTS.rate_per_s,
    show_default=True,
    help="Frames per second per connection.",
)
@click.option(
    "--burst",
    type=click.IntRange(1),
    default=_DEFAULTS.rate_burst,
    show_default=True,
    help="Token bucket size, frames.",
)
@click.option(
    "--max-rooms",
    type=click.IntRange(1),
    default=_DEFAULTS.max_rooms_per_connection,
    show_default=True,
    help="Rooms per connection.",
)
@click.option(
    "--max-user-connections",
    type=click.IntRange(1),
    default=_DEFAULTS.max_connections_per_user,
    show_default=True,
    help="Connections per user (HTTP 429 past it).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=_DEFAULTS.max_connections,
    show_default=True,
    help="Connections per server (HTTP 503 past it).",
)
@click.option(
    "--queue",
    "queue_bytes",
    type=SIZE,
    default="1MiB",
    show_default=True,
    help="Outbound queue per connection.",
)
@click.option(
    "--slow-consumer",
    type=click.Choice([p.value for p in SlowConsumerPolicy]),
    default=_DEFAULTS.slow_consumer.value,
    show_default=True,
    help="When the outbound queue is full: close (1013) or drop frames.",
)
@click.option(
    "--history-page",
    type=click.IntRange(1, 1000),
    default=_DEFAULTS.history_page_max,
    show_default=True,
    help="Largest history page.",
)
@click.option(
    "--resync-max",
    type=click.IntRange(1),
    default=_DEFAULTS.resync_max,
    show_default=True,
    help="Messages sent on join with since.",
)
@click.option(
    "--history-cache",
    type=click.IntRange(1),
    default=_DEFAULTS.history_cache,
    show_default=True,
    help="Messages per room kept in memory.",
)
@click.option(
    "--dedupe-window",
    type=DURATION,
    default=f"{int(_DEFAULTS.dedupe_window_s)}s",
    show_default=True,
    help="How long a message id is remembered.",
)
@click.option(
    "--dedupe-max",
    type=click.IntRange(1),
    default=_DEFAULTS.dedupe_max_entries,
    show_default=True,
    help="Message ids remembered server-wide (oldest forgotten first).",
)
@click.option(
    "--abuse-refusals",
    type=click.IntRange(1),
    default=_DEFAULTS.abuse_refusals,
    show_default=True,
    help="Rate-limit refusals within --abuse-window that close a connection (1008).",
)
@click.option(
    "--abuse-window",
    type=DURATION,
    default=f"{int(_DEFAULTS.abuse_window_s)}s",
    show_default=True,
    help="Window for --abuse-refusals.",
)
@click.option(
    "--handshake-timeout",
    type=DURATION,
    default="10s",
    show_default=True,
    help="Time a client has to complete the HTTP upgrade.",
)
@click.option(
    "--close-timeout",
    type=DURATION,
    default="5s",
    show_default=True,
    help="Time a client has to answer a close frame before it is dropped.",
)
@click.option(
    "--inject-fault",
    "faults",
    multiple=True,
    type=click.Choice([f.value for f in Fault]),
    hidden=True,
    help="Test-only: break the protocol on purpose (the gate's own tests).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True
)
def serve(
    *,
    host: str,
    port: int,
    secret: str,
    origins: tuple[str, ...],
    require_origin: bool,
    db_path: Path | None,
    redis_url: str | None,
    node_id: str | None,
    certfile: Path | None,
    keyfile: Path | None,
    heartbeat: float,
    idle_timeout: float,
    max_message: int,
    max_text: int,
    rate: float,
    burst: int,
    max_rooms: int,
    max_user_connections: int,
    max_connections: int,
    queue_bytes: int,
    slow_consumer: str,
    history_page: int,
    resync_max: int,
    history_cache: int,
    dedupe_window: float,
    dedupe_max: int,
    abuse_refusals: int,
    abuse_window: float,
    handshake_timeout: float,
    close_timeout: float,
    faults: tuple[str, ...],
    log_level: str,
    log_format: str,
) -> None:
    """Run the reference chat server (protocol v1, docs/protocol.md).

    Prints the server's URL alone on stdout once it listens; logs go to stderr.
    SIGTERM or SIGINT stops it gracefully (connections closed with 1001).
    """
    _logging.configure(log_level, log_format)
    try:
        limits = Limits(
            max_message_bytes=max_message,
            max_text_chars=max_text,
            rate_per_s=rate,
            rate_burst=burst,
            max_rooms_per_connection=max_rooms,
            max_connections_per_user=max_user_connections,
            max_connections=max_connections,
            outbound_queue_bytes=queue_bytes,
            slow_consumer=SlowConsumerPolicy(slow_consumer),
            history_page_max=history_page,
            resync_max=resync_max,
            history_cache=history_cache,
            dedupe_window_s=dedupe_window,
            dedupe_max_entries=dedupe_max,
            abuse_refusals=abuse_refusals,
            abuse_window_s=abuse_window,
        )
        config = ServerConfig(
            secret=secret,
            host=host,
            port=port,
            allowed_origins=origins,
            require_origin=require_origin,
            limits=limits,
            heartbeat_interval_s=heartbeat,
            idle_timeout_s=idle_timeout,
            handshake_timeout_s=handshake_timeout,
            close_timeout_s=close_timeout,
            db_path=db_path,
            certfile=certfile,
            keyfile=keyfile,
            faults=faults,
            redis_url=redis_url,
            node_id=node_id,
        )
    except ValueError as invalid:
        raise click.UsageError(str(invalid)) from None
    if len(config.secret) < 32:
        log.warning("short secret", extra={"fields": {"hint": "use 32+ characters outside tests"}})
    try:
        trio.run(_main, config)
    except (StorageError, BrokerUnreachable, OSError, BaseExceptionGroup) as raised:
        leaf = sole_leaf(raised)
        if isinstance(leaf, BrokerUnreachable):
            raise _Unreachable(str(leaf)) from None
        if isinstance(leaf, StorageError):
            raise click.ClickException(f"storage: {leaf}") from None
        if not isinstance(leaf, OSError):
            raise
        if leaf.errno == errno.EADDRINUSE:
            raise click.UsageError(
                f"port {config.port} on {config.host} is in use: choose another with --port"
            ) from None
        where = f"{config.host}:{config.port}"
        raise click.ClickException(f"cannot listen on {where}: {leaf}") from None


class _Unreachable(click.ClickException):
    """Exit 3: the target (here Redis) is unreachable."""

    exit_code = 3


async def _main(config: ServerConfig) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            server: RunningServer = await nursery.start(run_server, config)
            click.echo(server.url)  # stdout: the one machine-readable line
            async for signum in signals:
                log.info("signal", extra={"fields": {"signal": signal.Signals(signum).name}})
                server.shutdown()
                break
