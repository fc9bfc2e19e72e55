"""The gate's runner: verdict mapping, expected failures, unsupported features, selection,
and the handshake cases against a real reference server."""

from __future__ import annotations

import pytest
import trio

from loadtool.client.transport import Endpoint
from loadtool.conform.cases import all_cases
from loadtool.conform.cases._case import case
from loadtool.conform.harness import Harness
from loadtool.conform.model import CaseFailure, Feature, NonStrict, Verdict, select
from loadtool.conform.runner import run_case, run_gate
from loadtool.conform.target import SecretTokens, Target, builtin
from loadtool.server.app import RunningServer
from tests.conftest import SECRET


def _target(**kw: object) -> Target:
    return Target(
        name="t",
        features=frozenset(Feature),
        tokens=SecretTokens(SECRET),
        **kw,  # type: ignore[arg-type]
    )


@case("90.1", "passes", "§0")
async def _passes(h: Harness) -> None:
    peer = await h.connect()
    await peer.sync()


@case("90.2", "fails", "§0")
async def _fails(h: Harness) -> None:
    raise CaseFailure("it broke", expected="it holds")


@case("90.3", "deviates", "§0")
async def _deviates(h: Harness) -> None:
    raise NonStrict("a SHOULD")


@case("90.4", "crashes", "§0")
async def _crashes(h: Harness) -> None:
    raise KeyError("oops")


@case("90.5", "hangs", "§0", timeout_s=0.2)
async def _hangs(h: Harness) -> None:
    await trio.sleep_forever()


@case("90.6", "needs history", "§0", Feature.HISTORY)
async def _needs_history(h: Harness) -> None:
    pass


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        (_passes, Verdict.PASS),
        (_fails, Verdict.FAIL),
        (_deviates, Verdict.NON_STRICT),
        (_crashes, Verdict.ERROR),
        (_hangs, Verdict.FAIL),
    ],
)
async def test_verdicts(server: RunningServer, body: object, verdict: Verdict) -> None:
    with trio.fail_after(20):
        result = await run_case(body, Endpoint.from_url(server.url), _target())  # type: ignore[arg-type]
    assert result.verdict is verdict
    if verdict is Verdict.FAIL and result.id == "90.2":
        assert result.reason == "it broke"
        assert result.expected == "it holds"
    if verdict is Verdict.ERROR:
        assert result.reason == "KeyError: 'oops'"
    if verdict is Verdict.PASS:
        assert result.transcript == ()  # kept only for what needs explaining
    else:
        assert isinstance(result.transcript, tuple)


async def test_expected_failures_become_xfail_and_xpass(server: RunningServer) -> None:
    target = _target(expected_failures={"90.2": "known", "90.1": "thought broken"})
    endpoint = Endpoint.from_url(server.url)
    with trio.fail_after(20):
        failed = await run_case(_fails, endpoint, target)
        passed = await run_case(_passes, endpoint, target)
    assert failed.verdict is Verdict.XFAIL
    assert passed.verdict is Verdict.XPASS
    assert "thought broken" in passed.reason


async def test_missing_feature_is_unsupported(server: RunningServer) -> None:
    target = Target(name="t", features=frozenset({Feature.AUTH}), tokens=SecretTokens(SECRET))
    result = await run_case(_needs_history, Endpoint.from_url(server.url), target)
    assert result.verdict is Verdict.UNSUPPORTED
    assert result.reason == "the target does not declare: history"


async def test_gate_fails_on_unexpected_only_and_strict_counts_non_strict(
    server: RunningServer,
) -> None:
    endpoint = Endpoint.from_url(server.url)
    with trio.fail_after(20):
        lenient = await run_gate([_passes, _deviates], endpoint, _target())
        strict = await run_gate([_passes, _deviates], endpoint, _target(), strict=True)
        failing = await run_gate([_passes, _fails], endpoint, _target())
    assert lenient.passed
    assert not strict.passed
    assert not failing.passed
    assert failing.counts == {"PASS": 1, "FAIL": 1}


async def test_handshake_cases_pass_against_the_reference_server(server: RunningServer) -> None:
    cases = select(all_cases(), ["1.*"])
    assert len(cases) >= 7
    with trio.fail_after(30):
        report = await run_gate(
            cases, Endpoint.from_url(server.url), builtin("reference", secret=SECRET)
        )
    assert {r.id: r.verdict for r in report.results} == {c.id: Verdict.PASS for c in cases}


def test_select_patterns() -> None:
    cases = all_cases()
    assert [c.id for c in select(cases, ["1.2", "1.1"])] == ["1.1", "1.2"]
    assert all(c.id.startswith("1.") for c in select(cases, ["1.*"]))
    with pytest.raises(ValueError, match=r"no case matches '42\.7'"):
        select(cases, ["42.7"])


async def test_a_fixed_token_list_runs_the_suite(server: RunningServer) -> None:
    """Tokens handed over as a list (granting every room): every case passes or is
    UNSUPPORTED where it would have to check a grant."""
    from loadtool import protocol as p
    from loadtool.conform.target import FixedTokens

    tokens = tuple(p.mint_token(SECRET, f"listed{i}", ["*"]) for i in range(400))
    target = Target(name="list", features=frozenset(Feature), tokens=FixedTokens(tokens))
    with trio.fail_after(60):
        report = await run_gate(all_cases(), Endpoint.from_url(server.url), target)
    verdicts = {r.id: r.verdict for r in report.results}
    assert report.passed
    assert {i for i, v in verdicts.items() if v is Verdict.UNSUPPORTED} == {"1.7", "3.5", "6.9"}


async def test_websocket_cases_pass_against_the_reference_server(server: RunningServer) -> None:
    """10.x (RFC 6455 framing): the reference server fails every violation with the
    RFC's close code and serves every valid frame: all PASS, none crashes it."""
    cases = select(all_cases(), ["10.*"])
    assert len(cases) >= 25
    with trio.fail_after(90):
        report = await run_gate(
            cases, Endpoint.from_url(server.url), builtin("reference", secret=SECRET)
        )
    assert {r.id: r.verdict for r in report.results} == {c.id: Verdict.PASS for c in cases}
    assert report.restarts == 0
    assert not report.stopped
