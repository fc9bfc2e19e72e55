"""`loadtool fuzz --layer websocket`: Hypothesis drives raw frame sequences (RFC 6455),
and the server must survive them and answer only with what RFC 6455 allows.

One example (bounded by `EXAMPLE_TIMEOUT_S`):

1. a fresh client connects (a normal upgrade) and writes the example's frames, raw
   (`client.rawframes`), then a marker Ping;
2. it reads until the server's Close and EOF, the marker's Pong, or `answer_wait_s`
   (a lying length can leave the server waiting for bytes: that is no failure);
3. everything the server sent must be valid for a server to send (no masks, RSV bits,
   reserved opcodes, oversized or fragmented control frames, text that is not UTF-8,
   close codes that may not be on the wire, 1011 "internal error");
4. if the sequence was one a correct client may send, the connection must still serve:
   the marker Ping gets its Pong (unless the sequence closed the connection itself);
5. liveness: a new client connects and gets a marker message answered (the gate's probe,
   `conform.runner.Liveness`). A server that died is a failure of this example; with the
   target's `restart` command it is restarted, so Hypothesis can shrink the crash.
   Without one the search stops and reports the example unshrunk.

The failure's reproducer is the shrunk frame list byte for byte, with a replay snippet.
"""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import hypothesis
import orjson
import trio
from hypothesis import given
from hypothesis.errors import Flaky

from .. import protocol as p
from ..client.rawconn import RawConnection
from ..client.rawframes import RawFrame
from ..client.transport import Closed, Endpoint, Rejected
from ..client.wsframes import OP_CLOSE, OP_PONG
from ..conform.runner import GateStopped, Liveness
from ..conform.target import SecretTokens, Target
from .runner import CONNECT_TIMEOUT_S, SHRINK_BUDGET_S, FuzzUnreachable, search_settings
from .wsstrategies import frame_sequences, sequence_problems

ANSWER_WAIT_S: Final = 1.0  # seconds for the server's answer (Close, or the marker's Pong)
EXAMPLE_TIMEOUT_S: Final = 20.0  # seconds for one example: past it, a hang
_INTERNAL_ERROR: Final = 1011


class _WsFailure(AssertionError):
    """The property failed for `frames`."""

    def __init__(self, message: str, frames: Sequence[RawFrame] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.frames = tuple(frames)


class _TargetLost(BaseException):
    """The server died and cannot be restarted: stop the search (a BaseException, so
    Hypothesis does not take it for this example's failure)."""


@attrs.frozen(kw_only=True)
class WsFuzzFailure:
    message: str
    frames: tuple[RawFrame, ...]
    note: str = ""


@attrs.frozen(kw_only=True)
class WsFuzzReport:
    url: str
    seed: int
    examples: int
    runs: int
    duration_s: float
    command: str
    restarts: int = 0
    failure: WsFuzzFailure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def frames_json(self) -> str:
        frames = self.failure.frames if self.failure else ()
        return orjson.dumps([f.to_json() for f in frames], option=orjson.OPT_INDENT_2).decode()

    def reproducer(self, *, frames_file: Path | None = None) -> str:
        """The frames byte for byte (a readable line and the hex of each), a Python
        replay, and the command that repeats the search."""
        if self.failure is None:
            return ""
        frames = self.failure.frames
        lines = [f"The smallest failing example ({len(frames)} frame(s), byte for byte):"]
        for n, frame in enumerate(frames, 1):
            data = frame.to_bytes()
            shown = data[:64].hex(" ") + (f" ... ({len(data)} bytes)" if len(data) > 64 else "")
            lines += [f"  {n}. {frame.describe()}", f"     {shown}"]
        if frames_file is None:
            frames_line = "frames = " + self.frames_json().replace("\n", "\n  ")
        else:
            frames_line = f"frames = json.load(open({str(frames_file)!r}))"
        lines += [
            "",
            "Replay it and see what the server answers (LOADTOOL_SECRET: the server's secret, "
            "if it checks tokens):",
            "  python - <<'EOF'",
            "  import json, os, trio",
            "  from loadtool.fuzz import replay_raw",
            f"  {frames_line}",
            f"  trio.run(replay_raw, {self.url!r}, frames, os.environ.get('LOADTOOL_SECRET'))",
            "  EOF",
            "",
            "Repeat the search (the example database replays the failure first):",
            f"  {self.command}",
        ]
        return "\n".join(lines)


@attrs.define(eq=False)
class _WsFuzzer:
    endpoint: Endpoint
    target: Target
    answer_wait_s: float
    liveness: Liveness
    _tag: str = attrs.field(factory=lambda: secrets.token_hex(3))
    _n: int = 0

    async def connect(self, label: str) -> RawConnection:
        user = f"fuzzws-{self._tag}-{label}"
        token = await self.target.tokens.token(user, [p.ANY_ROOM])
        target = self.endpoint.with_query(**({"token": token} if token else {}))
        with trio.fail_after(CONNECT_TIMEOUT_S):
            return await RawConnection.connect(self.endpoint, target=target)

    async def example(self, frames: Sequence[RawFrame]) -> None:
        """Raises _WsFailure (this example failed) or _TargetLost."""
        with trio.move_on_after(EXAMPLE_TIMEOUT_S) as scope:
            await self._example(frames)
        if scope.cancelled_caught:
            raise _WsFailure(f"the example did not finish within {EXAMPLE_TIMEOUT_S:g}s")

    async def _example(self, frames: Sequence[RawFrame]) -> None:
        self._n += 1
        try:
            conn = await self.connect(f"e{self._n}")
        except (OSError, Rejected, Closed, trio.TooSlowError) as exc:
            # The last example's liveness probe passed: nothing here to blame.
            raise _TargetLost(f"a client could not connect: {exc or 'timed out'}") from None
        try:
            problem = await self._exchange(conn, frames)
        finally:
            await conn.aclose()
        if problem is None:
            why = await self.liveness.probe()
            if why is not None:
                problem = f"server crashed: after the frames a new client got no service ({why})"
                await self._lost_or_restart(problem)
        if problem is not None:
            raise _WsFailure(problem)

    async def _exchange(self, conn: RawConnection, frames: Sequence[RawFrame]) -> str | None:
        mark = f"fuzz-{secrets.token_hex(4)}".encode()
        for frame in frames:
            if not await conn.send(frame):
                break
        closed_by_client = any(f.opcode == OP_CLOSE for f in frames)
        if not closed_by_client:
            await conn.send(RawFrame.ping(mark))

        def settled() -> bool:
            return conn.close_frame is not None or any(
                f.opcode == OP_PONG and f.payload == mark for f in conn.frames
            )

        await conn.read_until(settled, self.answer_wait_s)
        if conn.close_frame is not None:
            await conn.read_until(lambda: False, min(self.answer_wait_s, 0.5))  # to EOF
        if conn.reader.problems:
            return "the server sent what RFC 6455 forbids: " + "; ".join(conn.reader.problems)
        close = conn.close_frame
        if close is not None and close.close_code == _INTERNAL_ERROR:
            return f"the server closed with 1011 (internal error) {close.close_reason!r}"
        if sequence_problems(frames) or closed_by_client:
            return None
        if close is not None:
            code, reason = close.close_code, close.close_reason
            return f"valid frames, yet the server closed with {code} {reason!r}"
        if not settled():
            how = f"dropped the connection ({conn.reset or 'EOF'})" if conn.eof else "no Pong"
            return f"valid frames, then a Ping: {how} within {self.answer_wait_s:g}s"
        return None

    async def _lost_or_restart(self, why: str) -> None:
        if self.target.restart is None:
            raise _TargetLost(why)
        try:
            await self.liveness.restart()
        except GateStopped as stop:
            raise _TargetLost(f"{why}; {stop.message}") from None


@attrs.define(eq=False)
class _Search:
    budget_s: float
    clock: Callable[[], float]
    runs: int = 0
    failures: int = 0
    first_failure_at: float | None = None
    seen: dict[tuple[RawFrame, ...], str] = attrs.field(factory=dict)
    last: WsFuzzFailure | None = None

    @property
    def shrink_over(self) -> bool:
        return (
            self.first_failure_at is not None
            and self.clock() - self.first_failure_at > self.budget_s
        )

    def failed(self, frames: tuple[RawFrame, ...], message: str) -> None:
        self.failures += 1
        if self.first_failure_at is None:
            self.first_failure_at = self.clock()
        self.seen[frames] = message
        size = (len(frames), sum(len(f.payload) for f in frames))
        if self.last is None or size <= (
            len(self.last.frames),
            sum(len(f.payload) for f in self.last.frames),
        ):
            self.last = WsFuzzFailure(message=message, frames=frames)


async def run_ws_fuzz(
    endpoint: Endpoint,
    target: Target,
    *,
    examples: int,
    seed: int | None,
    database_dir: Path | None,
    answer_wait_s: float = ANSWER_WAIT_S,
    shrink_budget_s: float = SHRINK_BUDGET_S,
    on_progress: Callable[[int, int], None] | None = None,
    command: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WsFuzzReport:
    """Search for a raw frame sequence that the server at `endpoint` answers with what RFC
    6455 forbids, that stops a valid connection, or that kills it.

    Raises:
        FuzzUnreachable: the target could not be reached (or served) before the search.
    """
    seed = secrets.randbits(32) if seed is None else seed
    liveness = Liveness(endpoint, target, timeout_s=max(2.0, answer_wait_s * 2))
    fuzzer = _WsFuzzer(endpoint=endpoint, target=target, answer_wait_s=answer_wait_s,
                       liveness=liveness)  # fmt: skip
    started = clock()
    why = await liveness.probe()
    if why is not None:
        raise FuzzUnreachable(f"{endpoint.url}: {why}")
    search = _Search(budget_s=shrink_budget_s, clock=clock)

    def example(frames: list[RawFrame]) -> None:
        key = tuple(frames)
        search.runs += 1
        message: str | None = None
        if search.shrink_over:
            message = search.seen.get(key)
        else:
            try:
                trio.from_thread.run(fuzzer.example, key)
            except _WsFailure as failure:
                search.failed(key, failure.message)
                message = failure.message
        if on_progress is not None:
            on_progress(search.runs, search.failures)
        if message is not None:
            raise _WsFailure(message, key)

    test = given(frame_sequences())(example)
    test = hypothesis.seed(seed)(test)
    test = search_settings(examples, database_dir)(test)

    def search_thread() -> tuple[str, _WsFailure | None]:
        try:
            test()
        except _WsFailure as failure:
            return "failed", failure
        except Flaky:
            return "flaky", None
        except _TargetLost as lost:
            return f"lost: {lost}", None
        return "passed", None

    outcome, raised = await trio.to_thread.run_sync(search_thread)
    failure: WsFuzzFailure | None = None
    if raised is not None:
        failure = WsFuzzFailure(message=raised.message, frames=raised.frames)
        if search.shrink_over:
            failure = attrs.evolve(
                failure, note=f"shrinking stopped after its {shrink_budget_s:g}s budget"
            )
    elif outcome == "flaky" and search.last is not None:
        failure = attrs.evolve(search.last, note="it did not fail again when repeated (flaky)")
    elif outcome.startswith("lost"):
        reason = outcome.removeprefix("lost: ")
        last = search.last
        failure = WsFuzzFailure(
            message=f"server crashed: {reason}",
            frames=last.frames if last else (),
            note="the server cannot be restarted (no `restart` in the target file), so the "
            "example is not shrunk",
        )
    return WsFuzzReport(
        url=endpoint.url,
        seed=seed,
        examples=examples,
        runs=search.runs,
        duration_s=clock() - started,
        command=command
        or f"loadtool fuzz {shlex.quote(endpoint.url)} --layer websocket --seed {seed}",
        restarts=liveness.restarts,
        failure=failure,
    )


async def replay_raw(
    url: str,
    frames: Sequence[Mapping[str, Any] | RawFrame],
    secret: str | None = None,
    *,
    wait_s: float = ANSWER_WAIT_S,
    out: Callable[[str], None] = print,
) -> list[str]:
    """Send `frames` (the reproducer's JSON items, or RawFrames) on one new connection and
    report what comes back until the server closes or `wait_s` passes. Returns the lines.
    Raises what `RawConnection.connect` raises."""
    items = [f if isinstance(f, RawFrame) else RawFrame.from_json(dict(f)) for f in frames]
    endpoint = Endpoint.from_url(url)
    user = f"fuzzws-replay-{secrets.token_hex(3)}"
    token = await SecretTokens(secret).token(user, [p.ANY_ROOM]) if secret else None
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    with trio.fail_after(CONNECT_TIMEOUT_S):
        conn = await RawConnection.connect(
            endpoint, target=endpoint.with_query(**({"token": token} if token else {}))
        )
    try:
        for frame in items:
            say(f"-> {frame.describe()}")
            if not await conn.send(frame):
                say(f"!! {conn.reset}")
                break
        await conn.read_until(lambda: conn.eof, wait_s)
        for received in conn.frames:
            say(f"<- {received.describe()}")
        for problem in conn.reader.problems:
            say(f"!! forbidden: {problem}")
        say(
            "!! the server closed the connection"
            if conn.eof
            else f"!! still open after {wait_s:g}s"
        )
    finally:
        await conn.aclose()
    return lines
