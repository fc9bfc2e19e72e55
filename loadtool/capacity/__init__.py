"""Capacity search: the largest load a server holds within an SLO (docs/capacity.md).

The search itself is pure (`search`); the scenario scaling, step measurement and
planning are pure too; `driver` runs the steps on the swarm engine.
"""
