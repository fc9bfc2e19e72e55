"""`loadtool demo`: a short real exchange through an embedded reference server.

Until the load engine (`loadtool run`) lands, this is the README's first command: it
starts the server on a free port, connects N clients to one room over real WebSockets,
has each send M messages, and checks that every member received every message once,
with its ack.
"""

from __future__ import annotations

import secrets
import statistics
import time
from typing import Final

import attrs
import click
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from .. import protocol as p
from ..server.app import RunningServer
from ..server.app import serve as run_server
from ..server.config import Limits, ServerConfig

_ROOM: Final = "demo"
_CEILING_S: Final = 60.0  # seconds: the whole demo, start to finish
_DRAIN_S: Final = 30.0  # seconds to wait for the last deliveries


@attrs.define
class _Tally:
    expected: int
    deliveries: int = 0
    duplicates: int = 0
    acks: int = 0
    latencies_ms: list[float] = attrs.field(factory=list)
    seen: set[tuple[str, str]] = attrs.field(factory=set)
    done: trio.Event = attrs.field(factory=trio.Event)


@click.command()
@click.option("--clients", type=click.IntRange(2, 500), default=20, show_default=True)
@click.option(
    "--messages",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Messages each client sends.",
)
def demo(clients: int, messages: int) -> None:
    """Start a reference server and push a real fan-out exchange through it."""
    try:
        ok = trio.run(_demo, clients, messages)
    except trio.TooSlowError:
        raise click.ClickException(f"demo did not finish within {_CEILING_S:.0f}s") from None
    raise SystemExit(0 if ok else 1)


async def _demo(clients: int, messages: int) -> bool:
    secret = secrets.token_urlsafe(32)
    limits = Limits(rate_per_s=1000.0, rate_burst=1000)
    config = ServerConfig(secret=secret, port=0, limits=limits)
    with trio.fail_after(_CEILING_S):
        async with trio.open_nursery() as nursery:
            server: RunningServer = await nursery.start(run_server, config)
            click.echo(f"reference server on {server.url}; {clients} clients in room {_ROOM!r}")
            tally = _Tally(expected=clients * clients * messages)
            joined = trio.Semaphore(0)
            go = trio.Event()
            started = time.perf_counter()
            async with trio.open_nursery() as swarm:
                for n in range(clients):
                    token = p.mint_token(secret, f"user{n}", [_ROOM])
                    swarm.start_soon(
                        _client,
                        f"{server.url}?token={token}",
                        f"user{n}",
                        messages,
                        tally,
                        joined,
                        go,
                    )
                for _ in range(clients):
                    await joined.acquire()
                go.set()
                with trio.move_on_after(_DRAIN_S):
                    await tally.done.wait()
                swarm.cancel_scope.cancel()
            elapsed = time.perf_counter() - started
            server.shutdown()
    lat = sorted(tally.latencies_ms)
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    click.echo(
        f"sent {clients * messages}, acked {tally.acks}, delivered {tally.deliveries}/"
        f"{tally.expected}, duplicates {tally.duplicates}; "
        f"latency p50 {p50:.2f} ms, p99 {p99:.2f} ms; {elapsed:.2f}s"
    )
    return tally.deliveries == tally.expected and tally.duplicates == 0


async def _client(
    url: str, user: str, messages: int, tally: _Tally, joined: trio.Semaphore, go: trio.Event
) -> None:
    async with open_websocket_url(url) as ws:
        while not isinstance(p.decode(await ws.get_message(), source=p.Source.SERVER), p.Joined):
            pass
        joined.release()
        await go.wait()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_receive, ws, tally)
            for i in range(messages):
                sent = p.SendMessage(id=f"{user}-{i}", room=_ROOM, text=f"{time.perf_counter()}")
                await ws.send_message(p.encode(sent).decode())
            await trio.sleep_forever()


async def _receive(ws: WebSocketConnection, tally: _Tally) -> None:
    while True:
        frame = p.decode(await ws.get_message(), source=p.Source.SERVER)
        now = time.perf_counter()
        if isinstance(frame, p.Ack):
            tally.acks += 1
        elif isinstance(frame, p.Message):
            key = (frame.id, str(id(ws)))
            if key in tally.seen:
                tally.duplicates += 1
                continue
            tally.seen.add(key)
            tally.deliveries += 1
            tally.latencies_ms.append((now - float(frame.text)) * 1000)
            if tally.deliveries == tally.expected:
                tally.done.set()
