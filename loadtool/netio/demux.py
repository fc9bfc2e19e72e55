"""One reader task for many plain-TCP sockets: the generator's and the server's.

Why: with one reader task per connection, each message costs a task switch, an epoll
re-arm and a failed read before the real one, which is more than handling the message
(docs/performance.md). Here one task waits, through trio, on an epoll descriptor that
holds every registered socket (level-triggered, so nothing needs re-arming) and calls
each ready socket's handler synchronously: one `read` per ready socket and no task switch
per message. Handlers must not block and must not raise. Users: the generator's workers
(client/simclient.py, one demux per worker) and the reference server (server/connection.py).

Linux only (`select.epoll`); elsewhere, and for TLS connections, each connection reads in
its own task (`Demux.available()` is False and no demux is passed).
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable
from typing import Final

import trio

_MAX_EVENTS: Final = 1024  # ready sockets handled per wake-up before yielding to trio


class Demux:
    """Register a socket with `add`, always `remove` it before it is closed."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[], None]] = {}
        # trio's clock when the current batch of ready sockets was polled: handlers read it
        # instead of the clock (one clock read per wake-up, not one per socket).
        self.now = 0.0

    @staticmethod
    def available() -> bool:
        return hasattr(select, "epoll")

    def add(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Call `on_readable()` from the demux task whenever `fd` has data (or EOF)."""
        self._handlers[fd] = on_readable
        try:
            self._epoll.register(fd, select.EPOLLIN)
        except FileExistsError:  # a closed socket's number reused before its removal
            self._epoll.modify(fd, select.EPOLLIN)

    def remove(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Stop reading `fd` for this handler (idempotent; a reused fd number is kept)."""
        if self._handlers.get(fd) is not on_readable:
            return
        del self._handlers[fd]
        # Already closed: the kernel dropped the registration with the socket.
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)

    def __len__(self) -> int:
        return len(self._handlers)

    async def run(self, after_batch: Callable[[], None] | None = None) -> None:
        """Serve the registered sockets until cancelled; owns (and closes) the epoll fd.

        `after_batch()` runs after each batch of handlers (the server writes what they
        produced there, server/connection.py `Flusher`).
        """
        epoll = self._epoll
        handlers = self._handlers
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll.fileno())
                self.now = trio.current_time()
                for fd, _ in epoll.poll(0, _MAX_EVENTS):
                    handler = handlers.get(fd)
                    if handler is not None:
                        handler()
                if after_batch is not None:
                    after_batch()
        finally:
            trio.lowlevel.notify_closing(epoll.fileno())
            epoll.close()
