"""The gate has teeth: against a reference server with a deliberate fault injected
(`--inject-fault`, test-only), the cases that check that behaviour FAIL, and against the
healthy server the same cases PASS."""

from __future__ import annotations

import pytest
import trio

from loadtool.client.transport import Endpoint
from loadtool.conform.cases import all_cases
from loadtool.conform.model import Verdict, select
from loadtool.conform.runner import run_gate
from loadtool.conform.target import builtin
from loadtool.server.config import Fault
from tests.conftest import SECRET, Clients

# fault -> the cases that must catch it
CAUGHT_BY: dict[Fault, tuple[str, ...]] = {
    Fault.BROADCAST_PINGS: ("4.3",),
    Fault.IGNORE_SIZE_LIMIT: ("7.1", "7.3", "10.29", "10.35"),
    Fault.DUPLICATE_DELIVERY: ("6.8",),
    Fault.DROP_DELIVERY: ("6.8", "8.3"),
    Fault.BAD_CLOSE_CODE: ("10.13", "10.16"),
}


async def _verdicts(clients: Clients, ids: tuple[str, ...], **config: object) -> dict[str, Verdict]:
    server = await clients.start(**config)
    with trio.fail_after(60):
        report = await run_gate(
            select(all_cases(), list(ids)),
            Endpoint.from_url(server.url),
            builtin("reference", secret=SECRET),
        )
    return {r.id: r.verdict for r in report.results}


@pytest.mark.parametrize("fault", list(CAUGHT_BY), ids=lambda f: f.value)
async def test_injected_fault_is_caught(clients: Clients, fault: Fault) -> None:
    ids = CAUGHT_BY[fault]
    assert await _verdicts(clients, ids) == dict.fromkeys(ids, Verdict.PASS)
    assert await _verdicts(clients, ids, faults=[fault]) == dict.fromkeys(ids, Verdict.FAIL)
