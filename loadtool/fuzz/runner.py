"""`run_fuzz`: Hypothesis draws frame sequences, a live server must answer them right.

Hypothesis is synchronous, the clients are trio: the search runs in a worker thread
(`trio.to_thread.run_sync`) and each example calls back into the event loop with
`trio.from_thread.run`. One example, bounded by `EXAMPLE_TIMEOUT_S`:

1. an observer (v1 targets) and the sender connect as fresh users, granted every room
   and joined to the run's own room;
2. the sender sends the example's 1-5 frames, then a marker ping; everything before the
   marker's pong is the server's answer (no sleeps), held against `model.plan`;
3. the observer must have received the sender's accepted messages unchanged, once each,
   in seq order (`model.check_observer`);
4. liveness: a third, new client connects and gets a pong within `answer_wait_s`.

A failure raises `FuzzAssertion`; Hypothesis shrinks the sequence and the report
carries the smallest one with a reproducer. Shrinking is bounded by `shrink_budget_s`:
after it, only the failures already seen fail again (from a cache, without I/O), so
Hypothesis ends at once with the smallest of them. If the server stops accepting
connections the search stops (`_TargetLost`): shrinking against a dead server would
only blame innocent examples.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import hypothesis
import orjson
import trio
from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from .. import protocol as p
from ..client import wsframes as wsf
from ..client.transport import Closed, Endpoint, Rejected, WsClient
from ..conform.model import Feature
from ..conform.target import SecretTokens, TokenSource
from . import model as m
from .model import FuzzAssertion, WireFrame
from .strategies import frame_sequences

ANSWER_WAIT_S: Final = 2.0  # seconds for answers after the marker, and for a probe's pong
CONNECT_TIMEOUT_S: Final = 5.0  # seconds for a connection's upgrade (and its welcome)
EXAMPLE_TIMEOUT_S: Final = 20.0  # seconds for one whole example: past it, a hang
SHRINK_BUDGET_S: Final = 60.0  # seconds of shrinking after the first failure
CLOSE_TIMEOUT_S: Final = 2.0  # seconds for closing one example's connections
_V1: Final = frozenset({Feature.ROOMS, Feature.ACKS, Feature.ERRORS})


class FuzzUnreachable(Exception):
    """The target could not be reached, or refused the first connection (before any
    example ran)."""


class _TargetLost(BaseException):
    """The server stopped accepting connections mid-run. A BaseException so that
    Hypothesis does not count it as this example's failure and stops at once."""


@attrs.frozen(kw_only=True)
class FuzzFailure:
    """The smallest failing example found: its frames and what went wrong."""

    message: str
    frames: tuple[WireFrame, ...]
    note: str = ""  # e.g. shrinking stopped early, or the failure did not repeat


@attrs.frozen(kw_only=True)
class FuzzReport:
    url: str
    seed: int
    examples: int  # requested (Hypothesis's max_examples)
    runs: int  # examples executed, shrinking included
    duration_s: float
    home_room: str
    command: str  # the `loadtool fuzz` command that repeats this search
    failure: FuzzFailure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def frames_json(self) -> str:
        return m.frames_json(self.failure.frames) if self.failure else "[]"

    def reproducer(self, *, frames_file: Path | None = None) -> str:
        """Copy-pasteable: the exact frames, a Python replay, and the search command.
        With `frames_file` the replay loads the frames from there (big frames)."""
        if self.failure is None:
            return ""
        if frames_file is None:
            frames_src = self.frames_json().replace("\n", "\n    ")
            frames_line = f"frames = {frames_src}"
        else:
            frames_line = f"frames = json.load(open({str(frames_file)!r}))"
        return "\n".join(
            [
                f"The smallest failing example ({_count(len(self.failure.frames), 'frame')}, "
                "exact payloads; a WebSocket text message each unless marked base64):",
                self.frames_json() if frames_file is None else f"  (in {frames_file})",
                "",
                "Replay it and see what the server answers (LOADTOOL_SECRET: the server's "
                "secret, if it checks tokens):",
                "  python - <<'EOF'",
                "  import json, os, trio",
                "  from loadtool.fuzz import replay",
                f"  {frames_line}",
                f"  trio.run(replay, {self.url!r}, frames, os.environ.get('LOADTOOL_SECRET'), "
                f"{self.home_room!r})",
                "  EOF",
                "",
                "Repeat the search (the example database replays the failure first):",
                f"  {self.command}",
            ]
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --- connections ---------------------------------------------------------------------


def _parse(text: str) -> m.Frame:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"type": "<not JSON>", "raw": text[:200]}
    return value if isinstance(value, dict) else {"type": "<not an object>", "raw": text[:200]}


@attrs.define(eq=False)
class _Link:
    """One client connection of an example: what it received, how it ended."""

    name: str
    conn: WsClient
    received: list[m.Frame] = attrs.field(factory=list)
    raw: list[str] = attrs.field(factory=list)
    closed: int | None = None  # the close code (1006: dropped)
    welcome: m.Frame | None = None
    joined: dict[str, int] = attrs.field(factory=dict)  # connect-time room -> head seq

    async def fill(self, deadline: float) -> bool:
        """Read one batch; False when closed or at `deadline` (a cancel point)."""
        if self.closed is not None:
            return False
        with trio.move_on_at(deadline):
            try:
                batch = await self.conn.receive_batch()
            except Closed as exc:
                self.closed = exc.code
                return False
            self.raw.extend(batch)
            self.received.extend(_parse(text) for text in batch)
            return True
        return False

    async def send(self, frame: WireFrame) -> bool:
        """Send one frame as it is; False once the connection is gone."""
        if self.closed is not None:
            return False
        try:
            text = frame.as_text
            if text is not None:
                await self.conn.send_text(text)
            else:
                opcode = wsf.OP_TEXT if frame.kind == "text" else wsf.OP_BINARY
                await self.conn.send_raw(wsf.client_frame(opcode, frame.data))
        except Closed:
            return False  # the close (or the drop) shows when reading
        return True

    async def close(self) -> None:
        await self.conn.close(1000)


@attrs.define(eq=False)
class _Fuzzer:
    """Runs examples against one target (in the trio thread)."""

    endpoint: Endpoint
    tokens: TokenSource
    features: frozenset[Feature]
    home_room: str
    answer_wait_s: float
    _tag: str = attrs.field(factory=lambda: secrets.token_hex(3))
    _numbers: itertools.count[int] = attrs.field(factory=itertools.count)

    @property
    def _v1(self) -> bool:
        return self.features >= _V1

    async def _open(self, user: str) -> _Link:
        """Connect `user` to the home room and read its welcome (v1 targets).

        Raises:
            OSError, Rejected, Closed, trio.TooSlowError: as `WsClient.connect`;
            FuzzAssertion: the server's first frames are not welcome and joined.
        """
        token = await self.tokens.token(user, [p.ANY_ROOM, self.home_room])
        params = {"token": token} if token else {}
        target = self.endpoint.with_query(**params, rooms=self.home_room)
        with trio.fail_after(CONNECT_TIMEOUT_S):
            conn = await WsClient.connect(self.endpoint, target=target)
        link = _Link(name=user, conn=conn)
        if Feature.ROOMS not in self.features:
            return link
        try:
            await _read_welcome(link)
        except BaseException:
            await link.conn.abort()
            raise
        return link

    async def _connect(self, role: str, number: int) -> _Link:
        """A fresh user's connection; failing to connect means the target is lost."""
        user = f"fuzz-{self._tag}-{role}{number}"
        try:
            return await self._open(user)
        except (OSError, Rejected, Closed, trio.TooSlowError) as exc:
            raise _TargetLost(f"{user} could not connect: {_why(exc)}") from None

    # --- markers ---------------------------------------------------------------------

    def _marker(self, link: _Link, label: str) -> tuple[dict[str, Any], Callable[[m.Frame], bool]]:
        """A frame whose answer delimits "everything answered": a ping (pong echoes
        `ts`) or, on servers without pings, a chat message that comes back to its
        sender. Returns the frame and a test for the frames that belong to it."""
        mark = f"fuzz-mark-{self._tag}-{label}"
        if Feature.PING in self.features:
            return {"type": "ping", "ts": mark}, lambda f: _is_pong(f, mark)
        chat: dict[str, Any] = {"id": mark, "room": self.home_room, "text": mark}
        if Feature.SEED_DIALECT in self.features and Feature.ACKS not in self.features:
            chat |= {"senderId": link.name, "sentAt": p.utc_now_iso()}
        else:
            chat = {"type": "message", **chat}
        return chat, lambda f: f.get("id") == mark or f.get("text") == mark

    def _is_answer(self, f: m.Frame, mark: Callable[[m.Frame], bool]) -> bool:
        """Is `f` the marker's final answer (the pong, or the chat marker's delivery)?"""
        if not mark(f):
            return False
        return f.get("type") in ("pong", "message") or "type" not in f

    async def _round_trip(self, link: _Link, label: str, deadline: float) -> bool:
        """Send a marker and read until its answer; False if none came by `deadline`."""
        frame, mark = self._marker(link, label)
        # A failed send still reads on: the close (or the drop) is in what arrives.
        await link.send(WireFrame.text(orjson.dumps(frame).decode()))
        while True:
            if any(self._is_answer(f, mark) for f in link.received):
                return True
            if not await link.fill(deadline):
                return any(self._is_answer(f, mark) for f in link.received)

    # --- one example ------------------------------------------------------------------

    async def example(self, frames: Sequence[WireFrame]) -> None:
        """Run one example. Raises FuzzAssertion (a failure) or _TargetLost."""
        with trio.move_on_after(EXAMPLE_TIMEOUT_S) as scope:
            await self._example(frames)
        if scope.cancelled_caught:
            raise FuzzAssertion(
                f"the example did not finish within {EXAMPLE_TIMEOUT_S:.0f}s: the server "
                "hangs (every wait is bounded, so this is a stuck send or close)"
            )

    async def _example(self, frames: Sequence[WireFrame]) -> None:
        n = next(self._numbers)
        observer = None
        if self._v1:
            observer = await self._connect("o", n)
        try:
            sender = await self._connect("s", n)
        except BaseException:
            if observer is not None:
                await observer.conn.abort()
            raise
        plans: tuple[m.FramePlan, ...] = ()
        try:
            plans, outcome = await self._sender_checks(sender, frames, n)
            if observer is not None:
                await self._observer_checks(observer, sender, plans, outcome, n)
            for link in (sender, observer):
                if link is not None and self._v1:
                    _check_server_frames(link)
        finally:
            with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                for link in (sender, observer):
                    if link is not None:
                        await link.close()
        await self._liveness(n, plans)

    async def _sender_checks(
        self, sender: _Link, frames: Sequence[WireFrame], n: int
    ) -> tuple[tuple[m.FramePlan, ...], m.Outcome]:
        ctx = m.Context.from_welcome(self.features, sender.welcome)
        plans = m.plan(frames, ctx)
        for frame in frames:
            if not await sender.send(frame):
                break
        deadline = trio.current_time() + self.answer_wait_s
        marker, mark = self._marker(sender, f"s{n}")
        answered = await self._round_trip(sender, f"s{n}", deadline)
        ours = [f for f in sender.received if not mark(f)]
        strict = self._v1
        problem, outcome = m.check_answers(
            plans, ours, close_code=sender.closed, user=ctx.user, strict=strict
        )
        # Acks held for a commit and pages read from disk MAY come after the marker.
        while problem and outcome.only_lagging_unmet and await sender.fill(deadline):
            ours = [f for f in sender.received if not mark(f)]
            problem, outcome = m.check_answers(
                plans, ours, close_code=sender.closed, user=ctx.user, strict=strict
            )
        if problem is None and not answered and sender.closed is None:
            problem = (
                f"no answer to the marker {marker!r} within {self.answer_wait_s:g}s after the "
                f"frames: the server went silent or hangs{m.tail(ours)}"
            )
        if problem is not None:
            raise FuzzAssertion(f"{problem}\nthe example:\n{m.describe(plans)}")
        return plans, outcome

    async def _observer_checks(
        self,
        observer: _Link,
        sender: _Link,
        plans: Sequence[m.FramePlan],
        outcome: m.Outcome,
        n: int,
    ) -> None:
        room = self.home_room
        if room not in observer.joined:
            return
        user = sender.welcome.get("userId") if sender.welcome else None
        user = user if isinstance(user, str) else None
        wanted = {q.accepted.id for q in plans if q.accepted and q.accepted.room == room}
        deadline = trio.current_time() + self.answer_wait_s

        def got_all() -> bool:
            ids = {
                f.get("id")
                for f in observer.received
                if f.get("type") == "message" and f.get("senderId") == user
            }
            return wanted <= ids

        while not got_all() and await observer.fill(deadline):
            pass
        if Feature.PING in self.features and observer.closed is None:
            _, mark = self._marker(observer, f"o{n}")
            await self._round_trip(observer, f"o{n}", deadline)
            observer.received[:] = [f for f in observer.received if not mark(f)]
        if observer.closed is not None:
            raise FuzzAssertion(
                f"another member of {room!r} was disconnected ({observer.closed}) while "
                f"the sender's frames were handled\nthe example:\n{m.describe(plans)}"
            )
        problem = m.check_observer(
            plans,
            outcome,
            observer.received,
            room=room,
            joined_seq=observer.joined.get(room),
            user=user,
            features=self.features,
        )
        if problem is not None:
            raise FuzzAssertion(f"{problem}\nthe example:\n{m.describe(plans)}")

    async def _liveness(self, n: int, plans: Sequence[m.FramePlan]) -> None:
        """A new client must still get service: connect, and a marker round trip."""
        user = f"fuzz-{self._tag}-p{n}"
        example = f"\nthe example:\n{m.describe(plans)}"
        try:
            probe = await self._open(user)
        except (OSError, Rejected, Closed, trio.TooSlowError) as exc:
            raise FuzzAssertion(
                f"liveness: after this example a new client could not connect: {_why(exc)}"
                + example
            ) from None
        try:
            deadline = trio.current_time() + self.answer_wait_s
            if not await self._round_trip(probe, f"p{n}", deadline):
                what = f"was closed ({probe.closed})" if probe.closed else "got no answer"
                raise FuzzAssertion(
                    f"liveness: after this example a new client {what} to its marker "
                    f"within {self.answer_wait_s:g}s{example}"
                )
        finally:
            with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await probe.close()

    async def preflight(self) -> None:
        """One connection and a marker round trip before the search.

        Raises:
            FuzzUnreachable: it could not connect, was refused, or got no answer.
        """
        try:
            link = await self._open(f"fuzz-{self._tag}-check")
        except (OSError, Rejected, Closed, trio.TooSlowError, FuzzAssertion) as exc:
            hint = ""
            if isinstance(exc, Rejected) and exc.status == 401:
                hint = " (does the server check tokens? pass --secret)"
            raise FuzzUnreachable(f"{self.endpoint.url}: {_why(exc)}{hint}") from None
        try:
            deadline = trio.current_time() + CONNECT_TIMEOUT_S
            if not await self._round_trip(link, "check", deadline):
                raise FuzzUnreachable(
                    f"{self.endpoint.url}: connected, but no answer to a marker "
                    f"({'closed ' + str(link.closed) if link.closed else 'silence'})"
                )
        finally:
            with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                await link.close()


async def _read_welcome(link: _Link) -> None:
    """Read the welcome and one joined per connect-time room (§2.6) into `link`.

    Raises:
        FuzzAssertion: something else came first, or nothing within the timeout.
    """
    deadline = trio.current_time() + CONNECT_TIMEOUT_S
    while not link.received and await link.fill(deadline):
        pass
    first = link.received[0] if link.received else None
    if first is None or first.get("type") != "welcome":
        why = f"closed {link.closed}" if link.closed else f"got {first!r}"
        raise FuzzAssertion(f"{link.name}: expected a welcome frame first (§2.6); {why}")
    link.welcome = first
    rooms = [r for r in first.get("rooms", ()) if isinstance(r, str)]
    while True:
        for fr in link.received:
            if fr.get("type") == "joined" and isinstance(fr.get("seq"), int):
                link.joined.setdefault(str(fr.get("room")), fr["seq"])
        if all(r in link.joined for r in rooms) or not await link.fill(deadline):
            break
    missing = [r for r in rooms if r not in link.joined]
    if missing:
        raise FuzzAssertion(f"{link.name}: no joined frame for {missing} after welcome (§2.6)")
    link.received.clear()  # what an example gets starts after the connect frames


def _is_pong(frame: m.Frame, mark: str) -> bool:
    return frame.get("type") == "pong" and frame.get("ts") == mark


def _check_server_frames(link: _Link) -> None:
    """Every frame a v1 server sends is a valid server frame (§3)."""
    for text in link.raw:
        try:
            p.decode(text, source=p.Source.SERVER)
        except p.ProtocolError as exc:
            shown = text if len(text) <= 200 else text[:197] + "..."
            raise FuzzAssertion(
                f"{link.name} received a frame that is not a valid v1 server frame "
                f"({exc.code.value}: {exc.message[:120]}): {shown}"
            ) from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return f"no upgrade (or welcome) within {CONNECT_TIMEOUT_S:g}s"
    if isinstance(exc, FuzzAssertion):
        return exc.message
    return str(exc) or type(exc).__name__


# --- the search ----------------------------------------------------------------------


@attrs.define(eq=False)
class _Search:
    """State shared by the Hypothesis thread's examples (only that thread writes it)."""

    budget_s: float
    clock: Callable[[], float]
    runs: int = 0
    failures: int = 0
    first_failure_at: float | None = None
    seen: dict[tuple[WireFrame, ...], str] = attrs.field(factory=dict)
    last: FuzzFailure | None = None

    @property
    def shrink_over(self) -> bool:
        return (
            self.first_failure_at is not None
            and self.clock() - self.first_failure_at > self.budget_s
        )

    def failed(self, frames: tuple[WireFrame, ...], message: str) -> None:
        self.failures += 1
        if self.first_failure_at is None:
            self.first_failure_at = self.clock()
        self.seen[frames] = message
        if self.last is None or _size(frames) <= _size(self.last.frames):
            self.last = FuzzFailure(message=message, frames=frames)


def _size(frames: Sequence[WireFrame]) -> tuple[int, int]:
    return len(frames), sum(len(f.data) for f in frames)


def _home_room(seed: int) -> str:
    name = f"fuzz-{seed}"
    return name if len(name) <= 64 else f"fuzz-{seed % 10**20}"


async def run_fuzz(
    endpoint: Endpoint,
    tokens: TokenSource,
    *,
    examples: int,
    seed: int | None,
    database_dir: Path | None,
    features: frozenset[Feature],
    answer_wait_s: float = ANSWER_WAIT_S,
    shrink_budget_s: float = SHRINK_BUDGET_S,
    on_progress: Callable[[int, int], None] | None = None,
    command: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FuzzReport:
    """Search for a frame sequence the server at `endpoint` answers wrongly.

    `tokens` must grant every room ("*"): the fuzzed clients join rooms at will.
    `seed` makes the search repeatable (None: a random one, reported); `database_dir`
    keeps failing examples for the next run (None: no database). `on_progress(runs,
    failures)` is called from the worker thread after every example.

    Raises:
        FuzzUnreachable: the target could not be reached or refused the first client.
    """
    seed = secrets.randbits(32) if seed is None else seed
    home = _home_room(seed)
    fuzzer = _Fuzzer(
        endpoint=endpoint,
        tokens=tokens,
        features=features,
        home_room=home,
        answer_wait_s=answer_wait_s,
    )
    started = clock()
    await fuzzer.preflight()
    search = _Search(budget_s=shrink_budget_s, clock=clock)

    def example(frames: list[WireFrame]) -> None:
        key = tuple(frames)
        search.runs += 1
        message: str | None = None
        if search.shrink_over:
            # Past the shrinking budget: repeat known failures, pass the rest.
            message = search.seen.get(key)
        else:
            try:
                trio.from_thread.run(fuzzer.example, key)
            except FuzzAssertion as failure:
                search.failed(key, failure.message)
                message = failure.message
        if on_progress is not None:
            on_progress(search.runs, search.failures)
        if message is not None:
            # One raise statement: Hypothesis tells bugs apart by where they are raised.
            raise FuzzAssertion(message, key)

    test = given(frame_sequences(home_room=home))(example)
    # `seed` first: it also switches the database off, which the settings applied after
    # it switch back on, so that a seeded run still saves (and replays) its failures.
    test = hypothesis.seed(seed)(test)
    test = search_settings(examples, database_dir)(test)

    def search_thread() -> tuple[str, FuzzAssertion | None]:
        try:
            test()
        except FuzzAssertion as failure:
            return "failed", failure
        except Flaky:
            return "flaky", None
        except _TargetLost as lost:
            return f"lost: {lost}", None
        return "passed", None

    outcome, raised = await trio.to_thread.run_sync(search_thread)
    failure: FuzzFailure | None = None
    if raised is not None:
        failure = FuzzFailure(message=raised.message, frames=raised.frames)
        if search.shrink_over:
            failure = attrs.evolve(
                failure, note=f"shrinking stopped after its {shrink_budget_s:g}s budget"
            )
    elif outcome == "flaky" and search.last is not None:
        failure = attrs.evolve(
            search.last, note="it did not fail again when repeated (a flaky failure)"
        )
    elif outcome.startswith("lost"):
        reason = outcome.removeprefix("lost: ")
        if search.last is not None:
            failure = attrs.evolve(
                search.last,
                note=f"then the server stopped accepting connections ({reason}); shrinking stopped",
            )
        else:
            failure = FuzzFailure(
                message=f"the server stopped accepting connections: {reason}",
                frames=(),
                note="no example had failed before; the server may have crashed between examples",
            )
    return FuzzReport(
        url=endpoint.url,
        seed=seed,
        examples=examples,
        runs=search.runs,
        duration_s=clock() - started,
        home_room=home,
        command=command or f"loadtool fuzz {endpoint.url} --seed {seed} --examples {examples}",
        failure=failure,
    )


async def replay(
    url: str,
    frames: Sequence[Mapping[str, str] | WireFrame],
    secret: str | None = None,
    room: str = "fuzz",
    *,
    wait_s: float = ANSWER_WAIT_S,
    out: Callable[[str], None] = print,
) -> list[str]:
    """Send `frames` (the reproducer's JSON items, or WireFrames) on one new connection
    and report what comes back until a marker ping's pong, a close, or `wait_s`.

    Returns the lines it reported. Raises what `WsClient.connect` raises.
    """
    items = [f if isinstance(f, WireFrame) else WireFrame.from_json(f) for f in frames]
    endpoint = Endpoint.from_url(url)
    user = f"fuzz-replay-{secrets.token_hex(3)}"
    token = await SecretTokens(secret).token(user, [p.ANY_ROOM, room]) if secret else None
    target = endpoint.with_query(**({"token": token} if token else {}), rooms=room)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    with trio.fail_after(CONNECT_TIMEOUT_S):
        conn = await WsClient.connect(endpoint, target=target)
    link = _Link(name=user, conn=conn)
    try:
        for frame in items:
            say(f"-> {frame.short()}")
            if not await link.send(frame):
                break
        mark = f"fuzz-replay-{secrets.token_hex(3)}"
        await link.send(WireFrame.text(orjson.dumps({"type": "ping", "ts": mark}).decode()))
        deadline = trio.current_time() + wait_s
        shown = 0
        while True:
            more = await link.fill(deadline)
            for text in link.raw[shown:]:
                say(f"<- {text if len(text) <= 300 else text[:297] + '...'}")
            shown = len(link.raw)
            if any(f.get("ts") == mark for f in link.received) or not more:
                break
        if link.closed is not None:
            say(f"!! closed {link.closed}")
    finally:
        with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            await link.close()
    return lines


def search_settings(examples: int, database_dir: Path | None) -> hypothesis.settings:
    """The settings both fuzz layers search with: network round trips make every example
    slow, so health checks about speed and size are off; quiet, no blobs, one bug."""
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=DirectoryBasedExampleDatabase(database_dir) if database_dir else None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
