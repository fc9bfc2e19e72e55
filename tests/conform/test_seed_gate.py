"""The gate against the seed article's Node server (`--profile seed-broadcast`): it fails
(exit 1) for the right reason, pings broadcast to everybody, and reports what the server
lacks as UNSUPPORTED instead of failing it."""

from __future__ import annotations

import trio

from loadtool.client.transport import Endpoint
from loadtool.conform.cases import all_cases
from loadtool.conform.model import Verdict
from loadtool.conform.runner import run_gate
from loadtool.conform.target import builtin


async def test_seed_node_server_verdicts(seed_server: str) -> None:
    with trio.fail_after(120):
        report = await run_gate(
            list(all_cases()),
            Endpoint.from_url(seed_server),
            builtin("seed-broadcast"),
            concurrency=1,
        )
    verdicts = {r.id: r.verdict for r in report.results}
    assert not report.passed
    assert verdicts["4.3"] is Verdict.FAIL  # app pings are relayed to everyone
    for case_id in ("2.1", "2.11", "3.1"):  # it does relay seed ChatMessages to all
        assert verdicts[case_id] is Verdict.PASS
    assert verdicts["1.2"] is Verdict.UNSUPPORTED  # no auth
    assert verdicts["5.1"] is Verdict.UNSUPPORTED  # no acks
    unexpected = {i: v for i, v in verdicts.items() if v.unexpected}
    assert unexpected == {"4.3": Verdict.FAIL}
