"""Planning: `--plan` parsing and the node formula
nodes = ceil(deliveries/s needed / sustainable deliveries/s per node x (1 + headroom))."""

from __future__ import annotations

import pytest

from loadtool.capacity.plan import PlanError, nodes_needed, parse_plan, plan_nodes
from loadtool.scenario import Plan


def test_parse_plan_reads_every_key() -> None:
    plan = parse_plan("users=50000, rooms=5000, rate=0.2/s, headroom=25%")
    assert plan == Plan(users=50000, rooms=5000, rate=0.2, headroom=0.25)
    assert plan.deliveries_per_message == 10
    assert plan.messages_per_s == pytest.approx(10_000)
    assert plan.deliveries_per_s == pytest.approx(100_000)
    explicit = parse_plan("users=1000,rate=12/m,fanout=50")
    assert explicit.rate == pytest.approx(0.2)
    assert explicit.headroom == pytest.approx(0.3)  # the default
    assert explicit.deliveries_per_s == pytest.approx(1000 * 0.2 * 50)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users=10", "expected rate=... in the plan"),
        ("rate=1/s,rooms=2", "expected users=... in the plan"),
        ("users=10,rate=1/s", "plan key fanout: expected 'fanout' or 'rooms'"),
        ("users=ten,rate=1/s,rooms=1", "plan key users=ten: expected a whole number"),
        ("users=10,rate=fast,rooms=1", "plan key rate=fast: 'fast' is not a rate"),
        ("users=10,rate=1/s,rooms=1,people=3", "unknown plan key 'people'"),
        ("users=10,rate=1/s,rooms=1,rooms=2", "plan key 'rooms' is given twice"),
        ("users 10,rate=1/s", "expected key=value pairs joined by commas"),
        ("users=0,rate=1/s,rooms=1", "plan key users: expected a whole number of at least 1"),
        ("users=10,rate=1/s,fanout=0.5", "plan key fanout: expected deliveries per message"),
    ],
)
def test_parse_plan_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(text)
    assert message in str(info.value)


def test_nodes_needed() -> None:
    assert nodes_needed(100_000, 10_000, 0.3) == 13  # 10 x 1.3
    assert nodes_needed(100_000, 10_000, 0.0) == 10  # exactly 10, not 11
    assert nodes_needed(100_001, 10_000, 0.0) == 11
    assert nodes_needed(1, 10_000, 0.3) == 1  # at least one node
    with pytest.raises(ValueError, match="above 0"):
        nodes_needed(1, 0.0, 0.3)


def test_plan_nodes_counts_connections_only_when_they_limit() -> None:
    plan = Plan(users=50_000, rooms=5000, rate=0.2, headroom=0.3)
    by_deliveries = plan_nodes(
        plan,
        deliveries_per_node=20_000,
        connections_per_node=2000,
        connections_limit=False,
        lower_bound=False,
    )
    assert by_deliveries.nodes_for_deliveries == 7  # 100,000 / 20,000 x 1.3 = 6.5
    assert by_deliveries.nodes_for_connections == 33  # 50,000 / 2,000 x 1.3 = 32.5
    assert by_deliveries.nodes == 7
    by_connections = plan_nodes(
        plan,
        deliveries_per_node=20_000,
        connections_per_node=2000,
        connections_limit=True,
        lower_bound=True,
    )
    assert by_connections.nodes == 33
    assert by_connections.as_dict()["per_node_is_lower_bound"] is True
