"""Capacity planning: from a target population to a number of nodes. Pure.

    deliveries/s needed = users x rate x fanout
    nodes               = ceil(deliveries/s needed / sustainable deliveries/s per node
                               x (1 + headroom))
    nodes (connections) = ceil(users / connections held per node x (1 + headroom)),
                          counted only when the search was limited by connections

The per-node figures are those measured at the sustainable step (docs/capacity.md).
`--plan users=50000,rooms=5000,rate=0.2/s,fanout=10,headroom=30%` is parsed here.
"""

from __future__ import annotations

import math
from typing import Any, Final

import attrs

from ..scenario import Plan, ScenarioError
from ..units import parse_percent, parse_rate

PLAN_EXAMPLE: Final = "users=50000,rooms=5000,rate=0.2/s,headroom=30%"
_ROUNDING: Final = 1e-9  # 2.0000000001 nodes is 2 nodes


class PlanError(ValueError):
    """A `--plan` text does not parse; str() says which key and how to write it."""


def parse_plan(text: str) -> Plan:
    """`users=N,rooms=N,rate=R,fanout=F,headroom=P` (any order; users and rate required,
    and rooms or fanout).

    Raises:
        PlanError: naming the bad key=value pair and the expected form.
    """
    values: dict[str, Any] = {}
    readers = {
        "users": _whole,
        "rooms": _whole,
        "rate": parse_rate,
        "fanout": float,
        "headroom": parse_percent,
    }
    for item in text.split(","):
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not sep or not key or not raw:
            raise PlanError(
                f"expected key=value pairs joined by commas such as {PLAN_EXAMPLE}, "
                f"found {item.strip()!r}"
            )
        if key not in readers:
            raise PlanError(
                f"unknown plan key {key!r} (expected one of: {', '.join(readers)}); "
                f"e.g. {PLAN_EXAMPLE}"
            )
        if key in values:
            raise PlanError(f"plan key {key!r} is given twice")
        try:
            values[key] = readers[key](raw)
        except ValueError as err:
            raise PlanError(f"plan key {key}={raw}: {err}") from None
    for key in ("users", "rate"):
        if key not in values:
            raise PlanError(f"expected {key}=... in the plan, e.g. {PLAN_EXAMPLE}")
    try:
        return Plan(**values)
    except ScenarioError as err:
        raise PlanError(f"plan key {err.path}: {err.message}") from None


def _whole(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError(f"expected a whole number, found {raw!r}")
    return int(raw)


@attrs.frozen(kw_only=True)
class NodePlan:
    """The planning table's figures (capacity.json `plan`)."""

    plan: Plan
    deliveries_per_node: float  # sustainable deliveries/s of one node, measured
    connections_per_node: float | None  # clients connected at the sustainable step
    nodes_for_deliveries: int
    nodes_for_connections: int | None
    connections_limit: bool  # the search was limited by connections
    nodes: int
    lower_bound: bool  # the per-node figure is a lower bound: `nodes` is an upper bound

    def as_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "users": plan.users,
            "rooms": plan.rooms,
            "rate_per_user": plan.rate,
            "fanout": plan.deliveries_per_message,
            "headroom": plan.headroom,
            "messages_per_s": plan.messages_per_s,
            "deliveries_per_s": plan.deliveries_per_s,
            "deliveries_per_node": self.deliveries_per_node,
            "connections_per_node": self.connections_per_node,
            "nodes_for_deliveries": self.nodes_for_deliveries,
            "nodes_for_connections": self.nodes_for_connections,
            "connections_limit": self.connections_limit,
            "nodes": self.nodes,
            "per_node_is_lower_bound": self.lower_bound,
        }


def nodes_needed(demand: float, per_node: float, headroom: float) -> int:
    """ceil(demand / per_node x (1 + headroom)), at least 1.

    Raises:
        ValueError: a per-node figure that is not above 0.
    """
    if not per_node > 0:
        raise ValueError(f"a node's capacity must be above 0, got {per_node!r}")
    return max(1, math.ceil(demand / per_node * (1 + headroom) - _ROUNDING))


def plan_nodes(
    plan: Plan,
    *,
    deliveries_per_node: float,
    connections_per_node: float | None,
    connections_limit: bool,
    lower_bound: bool,
) -> NodePlan:
    """The nodes `plan` needs at the measured per-node figures.

    Raises:
        ValueError: a per-node figure that is not above 0 (nothing was delivered).
    """
    for_deliveries = nodes_needed(plan.deliveries_per_s, deliveries_per_node, plan.headroom)
    for_connections = None
    if connections_per_node:
        for_connections = nodes_needed(plan.users, connections_per_node, plan.headroom)
    nodes = for_deliveries
    if connections_limit and for_connections is not None:
        nodes = max(nodes, for_connections)
    return NodePlan(
        plan=plan,
        deliveries_per_node=deliveries_per_node,
        connections_per_node=connections_per_node,
        nodes_for_deliveries=for_deliveries,
        nodes_for_connections=for_connections,
        connections_limit=connections_limit,
        nodes=nodes,
        lower_bound=lower_bound,
    )
