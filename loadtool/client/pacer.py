"""One timer for every simulated client of a worker: their sends and heartbeats.

Why: with a pacing task per client, an idle client held two tasks and a nursery (~7.5 KB
of its ~17-23 KB, docs/performance.md); here every client's next send and next
heartbeat are entries in one heap, served by one task. Callbacks run synchronously in
that task and must not block: a client writes without waiting (`WsClient.send_text_nowait`)
and starts a writer task (`Pacer.start_soon`) only when its socket buffer is full, as the
reference server's flusher does.

Why a timerfd: trio sleeps in `epoll_wait`, whose timeout is whole milliseconds rounded
up, so a trio timer fires 0-1 ms late (~0.8 ms at the median here). Latency is measured
from the *intended* send time (no coordinated omission), so that lateness was reported as
latency. A timerfd armed at the absolute due time wakes the same `epoll_wait` to within
microseconds. Elsewhere (not Linux, or a virtual clock in tests) trio's own timer is used.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import trio

from ..results.runclock import RunClock

BATCH: Final = 256  # callbacks run per wake-up before letting other tasks in

# previous due time (run-clock ns) -> nothing; runs inside the pacer's task
Due = Callable[[int], None]


class _Timer(Protocol):
    def arm(self, due_ns: int | None) -> None:
        """Fire at run-clock time `due_ns` (None: never); replaces the previous arming."""

    async def wait(self) -> None:
        """Until the armed time has passed (may return early; the caller re-checks)."""

    def close(self) -> None: ...


class _TrioTimer:
    """trio's clock (millisecond wake-ups; works with MockClock)."""

    def __init__(self, clock: RunClock) -> None:
        self._clock = clock
        self._deadline = float("inf")
        self._scope: trio.CancelScope | None = None

    def arm(self, due_ns: int | None) -> None:
        if due_ns is None:
            self._deadline = float("inf")
        else:
            self._deadline = trio.current_time() + (due_ns - self._clock.now_ns()) / 1e9
        if self._scope is not None:
            self._scope.deadline = self._deadline

    async def wait(self) -> None:
        with trio.CancelScope(deadline=self._deadline) as self._scope:
            await trio.sleep_forever()
        self._scope = None

    def close(self) -> None:
        pass


class _TimerFd:
    """A Linux timerfd on CLOCK_MONOTONIC (the run clock's base), waited on through trio."""

    _CLOCK_MONOTONIC: Final = 1
    _TFD_NONBLOCK: Final = os.O_NONBLOCK
    _TFD_CLOEXEC: Final = os.O_CLOEXEC
    _TFD_TIMER_ABSTIME: Final = 1

    class _Spec(ctypes.Structure):  # struct itimerspec: interval, then value
        _fields_ = [(name, ctypes.c_long) for name in ("i_s", "i_ns", "v_s", "v_ns")]

    def __init__(self, clock: RunClock, libc: Any) -> None:
        self._offset_ns = clock.offset_ns  # run clock = CLOCK_MONOTONIC + offset
        self._libc = libc
        fd = libc.timerfd_create(self._CLOCK_MONOTONIC, self._TFD_NONBLOCK | self._TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._fd: int = fd
        self._spec = self._Spec()

    @classmethod
    def create(cls, clock: RunClock) -> _TimerFd | None:
        """A timerfd, or None where there is none (not Linux, no libc symbol, no fd)."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.timerfd_settime.argtypes = [
                ctypes.c_int, ctypes.c_int, ctypes.POINTER(cls._Spec), ctypes.c_void_p
            ]  # fmt: skip
            return cls(clock, libc)
        except (OSError, AttributeError):
            return None

    def arm(self, due_ns: int | None) -> None:
        spec = self._spec
        # 0 disarms; an absolute time in the past fires at once, hence at least 1 ns
        mono = 0 if due_ns is None else max(1, due_ns - self._offset_ns)
        spec.v_s, spec.v_ns = divmod(mono, 1_000_000_000)
        if self._libc.timerfd_settime(self._fd, self._TFD_TIMER_ABSTIME, spec, None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    async def wait(self) -> None:
        await trio.lowlevel.wait_readable(self._fd)
        # The expiry count; reading clears readiness (nothing to read: re-armed since).
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 8)

    def close(self) -> None:
        trio.lowlevel.notify_closing(self._fd)
        os.close(self._fd)


class Pacer:
    """Calls each registered callback at its due time, in due order, from one task.

    `at(due_ns, callback)` registers one call (run-clock ns); a client registers its next
    send from inside the previous one. There is no cancel: a client that ends ignores its
    late calls. `run()` owns the task and a nursery for the clients' writer tasks.
    """

    def __init__(self, clock: RunClock, *, precise: bool = True) -> None:
        self._clock = clock
        self._precise = precise
        self._heap: list[tuple[int, int, Due]] = []
        self._order = itertools.count()  # ties keep registration order
        self._timer: _Timer | None = None
        self._armed: int | None = None  # what the timer is set to (None: nothing)
        self._dispatching = False
        self._nursery: trio.Nursery | None = None

    @property
    def precise(self) -> bool:
        """True once running on a timerfd (microsecond wake-ups)."""
        return isinstance(self._timer, _TimerFd)

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, due_ns: int, callback: Due) -> None:
        heapq.heappush(self._heap, (due_ns, next(self._order), callback))
        armed = self._armed
        if self._timer is not None and not self._dispatching and (armed is None or due_ns < armed):
            self._arm(due_ns)

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start a task in the pacer's nursery (a client's writer while its socket is full).

        Raises:
            RuntimeError: the pacer is not running.
        """
        if self._nursery is None:
            raise RuntimeError("the pacer is not running")
        self._nursery.start_soon(fn, *args)

    def _arm(self, due_ns: int | None) -> None:
        assert self._timer is not None
        self._armed = due_ns
        self._timer.arm(due_ns)

    async def run(self) -> None:
        """Serve the heap until cancelled."""
        timer: _Timer | None = _TimerFd.create(self._clock) if self._precise else None
        self._timer = timer if timer is not None else _TrioTimer(self._clock)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._serve()
        finally:
            self._nursery = None
            self._timer.close()
            self._timer = None

    async def _serve(self) -> None:
        heap = self._heap
        clock = self._clock
        self._arm(heap[0][0] if heap else None)
        while True:
            await self._timer.wait()  # type: ignore[union-attr]  # set in run()
            self._armed = None
            self._dispatching = True
            try:
                now = clock.now_ns()
                done = 0
                while heap and heap[0][0] <= now:
                    due, _, callback = heapq.heappop(heap)
                    callback(due)
                    done += 1
                    if done >= BATCH:
                        await trio.lowlevel.checkpoint()
                        now, done = clock.now_ns(), 0
            finally:
                self._dispatching = False
            self._arm(heap[0][0] if heap else None)
