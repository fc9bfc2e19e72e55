"""The demux itself (loadtool.netio.demux) over real socket pairs: handlers called for
ready sockets only, removal by (fd, handler), and the end-of-batch callback. Its two users'
read paths are compared with their plain paths in tests/client/test_demux.py and
tests/server/test_demux.py."""

from __future__ import annotations

import functools
import socket
from typing import Final

import pytest
import trio

from loadtool.netio.demux import Demux

CEILING_S: Final = 15

pytestmark = pytest.mark.skipif(not Demux.available(), reason="select.epoll is Linux-only")


async def test_demux_calls_each_handler_and_forgets_removed_ones(nursery: trio.Nursery) -> None:
    demux = Demux()
    nursery.start_soon(demux.run)
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    got: list[bytes] = []
    ready = trio.Event()

    def read_b() -> None:
        got.append(b.recv(100))
        ready.set()

    def read_d() -> None:
        got.append(d.recv(100))

    b.setblocking(False)
    demux.add(b.fileno(), read_b)
    demux.add(d.fileno(), read_d)
    demux.remove(d.fileno(), read_b)  # not its handler: kept
    assert len(demux) == 2
    demux.remove(d.fileno(), read_d)
    c.send(b"unread")
    a.send(b"hello")
    with trio.fail_after(CEILING_S):
        await ready.wait()
    assert got == [b"hello"]
    demux.remove(b.fileno(), read_b)
    assert len(demux) == 0
    for s in (a, b, c, d):
        s.close()


async def test_after_batch_runs_once_the_batch_handlers_have_run(nursery: trio.Nursery) -> None:
    demux = Demux()
    order: list[str] = []
    done = trio.Event()
    pairs = [socket.socketpair() for _ in range(3)]

    def handler(i: int, sock: socket.socket) -> None:
        sock.recv(100)
        order.append(f"read{i}")

    def after() -> None:
        order.append("after")
        if order.count("read0") + order.count("read1") + order.count("read2") == 3:
            done.set()

    for i, (_, b) in enumerate(pairs):
        b.setblocking(False)
        demux.add(b.fileno(), functools.partial(handler, i, b))
    for a, _ in pairs:
        a.send(b"x")  # all three ready before the demux task first runs
    nursery.start_soon(demux.run, after)
    with trio.fail_after(CEILING_S):
        await done.wait()
    assert sorted(order[:3]) == ["read0", "read1", "read2"]
    assert order[3] == "after"  # one batch: the callback after every handler, once
    for a, b in pairs:
        a.close()
        b.close()
