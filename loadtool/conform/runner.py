"""Run conformance cases against a target, concurrently and each within its deadline.

Cases are independent (fresh users and rooms each), so they run side by side under a
`CapacityLimiter`; each gets its own `Harness` and cancel scope. A case's exception is
its verdict: `CaseFailure` is FAIL (or NON-STRICT), a deadline is FAIL with "timed out",
anything else is ERROR with the exception named, so a bug in a case never hides as PASS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

import attrs
import trio

from ..client.transport import Endpoint
from .harness import Harness
from .model import Case, CaseFailure, CaseResult, TargetGone, Verdict
from .target import Target

DEFAULT_CONCURRENCY: Final = 8


@attrs.frozen(kw_only=True)
class GateReport:
    target: str
    url: str
    results: tuple[CaseResult, ...]
    strict: bool

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for result in self.results:
            out[result.verdict.value] = out.get(result.verdict.value, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        """Nothing unexpected failed (and, with --strict, nothing NON-STRICT either)."""
        return not any(
            r.verdict.unexpected or (self.strict and r.verdict is Verdict.NON_STRICT)
            for r in self.results
        )


async def run_case(case: Case, endpoint: Endpoint, target: Target) -> CaseResult:
    """One case, start to verdict. Never raises (but for cancellation)."""
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
        transcript=tuple(harness.transcript) if verdict is not Verdict.PASS else (),
    )


async def run_gate(
    cases: Sequence[Case],
    endpoint: Endpoint,
    target: Target,
    *,
    strict: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[CaseResult], None] | None = None,
) -> GateReport:
    """Run `cases` with at most `concurrency` at a time; results in case order."""
    limiter = trio.CapacityLimiter(concurrency)
    results: dict[str, CaseResult] = {}

    async def one(case: Case) -> None:
        async with limiter:
            result = await run_case(case, endpoint, target)
        results[case.id] = result
        if on_result is not None:
            on_result(result)

    async with trio.open_nursery() as nursery:
        for case in cases:
            nursery.start_soon(one, case)
    return GateReport(
        target=target.name,
        url=endpoint.url,
        results=tuple(results[c.id] for c in cases),
        strict=strict,
    )
