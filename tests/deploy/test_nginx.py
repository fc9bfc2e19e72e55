"""The shipped NGINX config (deploy/nginx/loadtool.conf) in a real nginx in front of real
reference nodes (`loadtool serve` processes):

the idle-timeout pitfall (docs/scaling.md): with proxy_read_timeout 2s an idle client
whose server pings only every 30 s is cut by the proxy after ~2 s; with server pings, or
client pings, every 0.5 s the same connection outlives three timeouts. (A scenario through
nginx to two nodes sharing Redis: test_nginx_cluster.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import orjson
import pytest
import trio
from wsproto.events import CloseConnection, Event, Ping

from loadtool import protocol as p
from tests.conftest import token
from tests.deploy.nginxproc import nginx_proxy
from tests.serveproc import serve_process
from tests.server.rawws import RawClient

PROXY_TIMEOUT_S: Final = 2.0
TIMER_SLACK_S: Final = 0.35  # nginx re-arms a timer only when it moves by 300 ms or more
SURVIVE_S: Final = 3 * PROXY_TIMEOUT_S
DEADLINE_S: Final = 20.0
BEAT_S: Final = 0.5


async def _welcomed(port: int, user: str) -> RawClient:
    raw = await RawClient.connect(port, token(user))
    frame = await raw.next_frame()
    assert isinstance(frame, p.Welcome), frame
    return raw


async def test_an_idle_websocket_is_cut_by_the_proxy_timeout(tmp_path: Path) -> None:
    async with (
        serve_process(tmp_path / "node.log", "--heartbeat", "30s") as node,
        nginx_proxy(tmp_path / "nginx", [node.url], read_timeout="2s") as proxy,
    ):
        raw = await _welcomed(proxy.plain_port, "alice")
        try:
            last = trio.current_time()
            seen: list[Event] = []
            with trio.fail_after(DEADLINE_S):
                while (event := await raw.next_event()) is not None:  # until the TCP close
                    seen.append(event)
                    last = trio.current_time()
            idle = trio.current_time() - last
        finally:
            await raw.close()
    assert not [e for e in seen if isinstance(e, Ping | CloseConnection)], seen
    assert PROXY_TIMEOUT_S - TIMER_SLACK_S <= idle < DEADLINE_S
    # nginx, not the server, closed it (the server's idle timeout is 60 s and sends 4000).
    assert "upstream timed out" in proxy.errors()
    assert "while proxying upgraded connection" in proxy.errors()


@pytest.mark.parametrize("who", ["server", "client"])
async def test_heartbeats_below_the_proxy_timeout_keep_it_open(tmp_path: Path, who: str) -> None:
    heartbeat = f"{int(BEAT_S * 1000)}ms" if who == "server" else "30s"
    async with (
        serve_process(tmp_path / "node.log", "--heartbeat", heartbeat) as node,
        nginx_proxy(tmp_path / "nginx", [node.url], read_timeout="2s") as proxy,
    ):
        raw = await _welcomed(proxy.plain_port, "alice")
        try:
            opened = trio.current_time()
            beats = 0
            with trio.fail_after(DEADLINE_S):
                while trio.current_time() - opened < SURVIVE_S:
                    if who == "server":
                        event = await raw.next_event()  # answered with a pong by RawClient
                        assert event is not None, "closed by the proxy despite server pings"
                        beats += isinstance(event, Ping)
                    else:
                        await raw.send_json({"type": "ping", "ts": beats})
                        while not isinstance(frame := await raw.next_frame(), p.Pong):
                            pass
                        assert frame.ts == beats
                        beats += 1
                        await trio.sleep(BEAT_S)  # the heartbeat's own schedule
                # Still open after three proxy timeouts: a round trip through the proxy.
                await raw.send_text(orjson.dumps({"type": "ping", "ts": "alive"}).decode())
                while not isinstance(frame := await raw.next_frame(), p.Pong):
                    pass
                assert frame.ts == "alive"
        finally:
            await raw.close()
    assert beats >= SURVIVE_S / BEAT_S - 2
    assert "upstream timed out" not in proxy.errors()
