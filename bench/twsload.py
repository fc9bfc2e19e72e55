"""The stock trio-websocket fan-out driver that bench/cluster.py uses (it was bench/fanout.py's).

C clients in one room on the reference server, each sending R messages/s; `_Counts` tells
when every expected delivery arrived. Plain trio-websocket on purpose: the same simple
client side for every server set-up compared. bench/fanout.py now drives its comparison
with `loadtool run` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import trio
from trio_websocket import WebSocketConnection, connect_websocket_url

from loadtool import protocol as p

SECRET = "bench-secret-0123456789abcdef0123"
ROOM = "bench"


@attrs.define
class _Counts:
    expected: int = 0
    delivered: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _connect(nursery: trio.Nursery, url: str, n: int, counts: _Counts) -> WebSocketConnection:
    token = p.mint_token(SECRET, f"u{n}", [ROOM])
    ws = await connect_websocket_url(nursery, f"{url}?token={token}")
    while not (await ws.get_message()).startswith('{"type":"joined"'):
        pass

    async def reader() -> None:
        while True:
            if (await ws.get_message()).startswith('{"type":"message"'):
                counts.delivered += 1
                if counts.delivered == counts.expected:
                    counts.done.set()

    nursery.start_soon(reader)
    return ws


async def _send(ws: WebSocketConnection, n: int, clients: int, rate: float, count: int) -> None:
    interval = 1.0 / rate
    start = trio.current_time() + interval * n / clients  # spread senders over the interval
    for i in range(count):
        await trio.sleep_until(start + i * interval)
        frame = p.SendMessage(id=f"{n}-{i}", room=ROOM, text="x" * 64)
        await ws.send_message(p.encode(frame).decode())
