"""Run conformance cases against a target, concurrently and each within its deadline.

Cases are independent (fresh users and rooms each), so they run side by side under a
`CapacityLimiter`; each gets its own `Harness` and cancel scope. A case's exception is
its verdict: `CaseFailure` is FAIL (or NON-STRICT), a deadline is FAIL with "timed out",
anything else is ERROR with the exception named, so a bug in a case never hides as PASS.

After every case a liveness probe (`Liveness`) connects a fresh client and makes one
marker round trip: a server that no longer serves gets the case the worst verdict,
CRASHED ("server crashed"). The target's `restart` command then brings it back and the
run goes on; without one the run stops (`GateReport.stopped` says why and how to fix it).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Final

import attrs
import trio

from ..client.transport import Endpoint
from .harness import Harness
from .model import Case, CaseFailure, CaseResult, Exchange, TargetGone, Verdict
from .target import Target

DEFAULT_CONCURRENCY: Final = 8
LIVENESS_TIMEOUT_S: Final = 5.0  # seconds for the probe's connect and round trip
RESTART_TIMEOUT_S: Final = 30.0  # seconds for the restart command, then as long to serve
_RETRY_S: Final = 0.2  # seconds between connection attempts while the server comes back
_OUTPUT_CHARS: Final = 500  # characters of a failed restart command's output shown


@attrs.frozen(kw_only=True)
class GateReport:
    target: str
    url: str
    results: tuple[CaseResult, ...]
    strict: bool
    stopped: str = ""  # why the run ended before its last case (a crash, no restart)
    restarts: int = 0  # times the target's restart command brought the server back

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for result in self.results:
            out[result.verdict.value] = out.get(result.verdict.value, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        """Nothing unexpected failed (and, with --strict, nothing NON-STRICT either)."""
        return not self.stopped and not any(
            r.verdict.unexpected or (self.strict and r.verdict is Verdict.NON_STRICT)
            for r in self.results
        )


async def run_case(
    case: Case, endpoint: Endpoint, target: Target, *, keep_transcript: bool = False
) -> CaseResult:
    """One case, start to verdict. Never raises (but for cancellation). The transcript is
    kept for every verdict but PASS (for PASS too with `keep_transcript`)."""
    started = time.perf_counter()
    if not case.features <= target.features:
        missing = ", ".join(sorted(f.value for f in case.features - target.features))
        return CaseResult(
            id=case.id,
            title=case.title,
            section=case.section,
            verdict=Verdict.UNSUPPORTED,
            reason=f"the target does not declare: {missing}",
        )
    harness = Harness(
        endpoint=endpoint, tokens=target.tokens, features=target.features, case_id=case.id
    )
    verdict, reason, expected = Verdict.PASS, "", ""
    try:
        with trio.fail_after(case.timeout_s):
            note = await case.body(harness)
        if case.info:
            verdict, reason = Verdict.INFO, note or ""
        elif note:
            reason = note
    except CaseFailure as failure:
        verdict, reason, expected = failure.verdict, failure.reason, failure.expected
        if case.info:
            verdict = Verdict.INFO
    except TargetGone as gone:
        verdict, reason = Verdict.ERROR, f"the target is gone: {gone}"
    except trio.TooSlowError:
        verdict, reason = Verdict.FAIL, f"timed out after {case.timeout_s:.0f}s"
    except Exception as exc:  # noqa: BLE001 - a bug in a case is ERROR, never PASS
        verdict, reason = Verdict.ERROR, f"{type(exc).__name__}: {exc}"
    finally:
        await harness.close_all()
    known = target.expected_failures.get(case.id)
    if known is not None:
        if verdict in (Verdict.FAIL, Verdict.NON_STRICT):
            verdict, reason = Verdict.XFAIL, f"{reason} (expected: {known})"
        elif verdict is Verdict.PASS:
            verdict, reason = Verdict.XPASS, f"listed as an expected failure: {known}"
    return CaseResult(
        id=case.id,
        title=case.title,
        section=case.section,
        verdict=verdict,
        reason=reason,
        expected=expected,
        duration_ms=(time.perf_counter() - started) * 1000,
        transcript=(
            tuple(harness.transcript) if keep_transcript or verdict is not Verdict.PASS else ()
        ),
    )


class GateStopped(Exception):
    """The server stopped serving and could not be restarted; `result` is the CRASHED
    result of the case after which it happened."""

    def __init__(self, message: str, result: CaseResult | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


@attrs.define(eq=False)
class Liveness:
    """Checks that the server still serves after each case, and restarts it when the
    target says how (docs/conformance.md "Liveness and restarts")."""

    endpoint: Endpoint
    target: Target
    timeout_s: float = LIVENESS_TIMEOUT_S
    restart_timeout_s: float = RESTART_TIMEOUT_S
    restarts: int = 0
    generation: int = 0  # restarts so far: a case that saw one began on another server
    _lock: trio.Lock = attrs.field(factory=trio.Lock)
    _user: str | None = None

    def __attrs_post_init__(self) -> None:
        claim = getattr(self.target.tokens, "claim_user", None)
        if claim is not None:  # a fixed token list: one user for every probe
            self._user = claim()

    async def probe(
        self, transcript: list[Exchange] | None = None, offset_ms: float = 0.0
    ) -> str | None:
        """None if a fresh client connects and gets a marker answered within
        `timeout_s`; else what went wrong. The probe's lines are added to `transcript`
        (their times shifted by `offset_ms`, to follow the case's). A cancel point."""
        harness = Harness(
            endpoint=self.endpoint,
            tokens=self.target.tokens,
            features=self.target.features,
            case_id="0",
        )
        why: str | None = None
        try:
            with trio.fail_after(self.timeout_s):
                peer = await harness.connect(self._user or f"liveness-{harness.name('p')}")
                await peer.sync(wait_s=self.timeout_s)
        except (CaseFailure, TargetGone) as exc:
            why = str(exc)
        except (OSError, subprocess.SubprocessError) as exc:
            why = f"the target's token source failed: {exc}"
        except trio.TooSlowError:
            why = f"no connection and round trip within {self.timeout_s:g}s"
        finally:
            await harness.close_all()
        if transcript is not None:
            transcript += [
                attrs.evolve(e, actor=f"liveness {e.actor}", at_ms=round(e.at_ms + offset_ms, 3))
                for e in harness.transcript
            ]
        return why

    async def check(self, case: Case, result: CaseResult, started_in: int) -> CaseResult:
        """`result`, or CRASHED when the server no longer serves after `case` (restarted
        if the target can be). Raises GateStopped when it cannot be."""
        transcript = list(result.transcript)
        why = await self.probe(transcript, offset_ms=result.duration_ms)
        async with self._lock:  # a restart in progress finishes first
            if self.generation != started_in:
                # Another case's crash restarted the server while this one ran: what this
                # case saw says nothing about the server (its probe neither).
                return attrs.evolve(
                    result,
                    verdict=Verdict.ERROR,
                    reason="the server was restarted while this case ran (another case "
                    f"crashed it); its verdict would have been {result.verdict.value}",
                )
            if why is None:
                return result
            crashed = attrs.evolve(
                result,
                verdict=Verdict.CRASHED,
                reason=f"server crashed: after this case a new client got no service ({why})"
                + (f"; the case itself: {result.verdict.value} {result.reason}".rstrip()),
                transcript=tuple(transcript),
            )
            if self.target.restart is None:
                raise GateStopped(_stop_message(case, why, self.target), crashed)
            try:
                note = await self.restart()
            except GateStopped as stop:
                stop.result = attrs.evolve(crashed, reason=f"{crashed.reason}; {stop.message}")
                raise
            return attrs.evolve(crashed, reason=f"{crashed.reason}; {note}")

    async def restart(self) -> str:
        """Run the restart command and wait until the server serves again.

        Raises:
            GateStopped: the command failed, or the server did not come back.
        """
        argv = self.target.restart
        assert argv is not None
        command = shlex.join(argv)
        started = time.perf_counter()
        try:
            with trio.fail_after(self.restart_timeout_s):
                done = await trio.run_process(
                    list(argv),
                    cwd=self.target.restart_cwd,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
        except (OSError, trio.TooSlowError) as exc:
            raise GateStopped(
                f"the restart command `{command}` failed: {exc or 'timed out'}"
            ) from None
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise GateStopped(
                f"the restart command `{command}` exited with {done.returncode}: "
                f"{output[-_OUTPUT_CHARS:]}"
            )
        why: str | None = "not probed"
        with trio.move_on_after(self.restart_timeout_s):
            while True:
                why = await self.probe()
                if why is None:
                    break
                # An external process coming up: there is no event to wait on, only retries.
                await trio.sleep(_RETRY_S)
        if why is not None:
            raise GateStopped(
                f"after `{command}` the server did not serve within "
                f"{self.restart_timeout_s:g}s: {why}"
            )
        self.restarts += 1
        self.generation += 1
        return f"restarted with `{command}` in {time.perf_counter() - started:.1f}s"


def _stop_message(case: Case, why: str, target: Target) -> str:
    where = f"to {target.source}" if target.source else "to a target file (--target FILE)"
    return (
        f"the server stopped serving after case {case.id} ({case.title}): {why}. The gate "
        f"stopped there. To restart the server and go on, add a command {where}, for "
        'example `restart: ./restart-server.sh` (docs/conformance.md, "Liveness and '
        'restarts").'
    )


async def run_gate(
    cases: Sequence[Case],
    endpoint: Endpoint,
    target: Target,
    *,
    strict: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[CaseResult], None] | None = None,
    liveness: bool | Liveness = True,
) -> GateReport:
    """Run `cases` with at most `concurrency` at a time; results in case order. With
    `liveness`, each case is followed by a liveness probe (see `Liveness`); a crash the
    target cannot restart from ends the run, the cases not run left out of the report."""
    slots = trio.Semaphore(concurrency)
    results: dict[str, CaseResult] = {}
    keeper = (
        liveness
        if isinstance(liveness, Liveness)
        else Liveness(endpoint, target)
        if liveness
        else None
    )
    stopped = ""

    async def one(case: Case, nursery: trio.Nursery) -> None:
        nonlocal stopped
        try:
            generation = keeper.generation if keeper else 0
            result = await run_case(case, endpoint, target, keep_transcript=keeper is not None)
            if keeper is not None:
                try:
                    result = await keeper.check(case, result, generation)
                except GateStopped as stop:
                    result = stop.result or result
                    stopped = stopped or stop.message
                    nursery.cancel_scope.cancel()
                if result.verdict is Verdict.PASS:
                    result = attrs.evolve(result, transcript=())  # kept to explain a crash
        finally:
            slots.release()
        results[case.id] = result
        if on_result is not None:
            on_result(result)

    async with trio.open_nursery() as nursery:
        for case in cases:  # started in case order (one at a time: run in case order)
            await slots.acquire()
            nursery.start_soon(one, case, nursery)
    return GateReport(
        target=target.name,
        url=endpoint.url,
        results=tuple(results[c.id] for c in cases if c.id in results),
        strict=strict,
        stopped=stopped,
        restarts=keeper.restarts if keeper else 0,
    )
