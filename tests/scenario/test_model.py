"""The scenario model built directly: validation, membership, the time line, overrides."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import loadtool.scenario as scenario_pkg
from loadtool.scenario import (
    Arrival,
    Auth,
    Behaviour,
    CommandFault,
    Dialect,
    DropFault,
    FixedSize,
    NormalSize,
    Phase,
    Population,
    Reconnect,
    RestartServerFault,
    Scenario,
    ScenarioError,
    Spread,
    Target,
    UniformSize,
    parse_threshold,
)
from loadtool.scenario.model import join_path


def scenario(**overrides: Any) -> Scenario:
    values: dict[str, Any] = {
        "name": "t",
        "population": Population(clients=10),
        "phases": (Phase(duration_s=10.0),),
    }
    values.update(overrides)
    return Scenario(**values)


def error_of(factory: Any, **kwargs: Any) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        factory(**kwargs)
    return info.value


# -- errors ------------------------------------------------------------------------------


def test_scenario_error_formats() -> None:
    err = ScenarioError("expected x, found y", path="phases[1].duration", file="a.yaml", line=3)
    assert str(err) == "a.yaml:3: phases[1].duration: expected x, found y"
    assert str(ScenarioError("m", path="seed")) == "seed: m"
    assert str(ScenarioError("m", file="a.yaml")) == "a.yaml: m"
    assert str(ScenarioError("m", file="a.yaml", line=1)) == "a.yaml:1: m"
    assert str(err.under("outer")) == "a.yaml:3: outer.phases[1].duration: expected x, found y"
    assert str(ScenarioError("m", path="d").at("b.yaml", 7)) == "b.yaml:7: d: m"
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("prefix", "path", "joined"),
    [
        ("", "a", "a"),
        ("a", "", "a"),
        ("a", "b", "a.b"),
        ("a", "[1]", "a[1]"),
        ("a[1]", "b", "a[1].b"),
    ],
)
def test_join_path(prefix: str, path: str, joined: str) -> None:
    assert join_path(prefix, path) == joined


def test_the_package_exports_each_public_name_once() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(scenario_pkg.__file__).read_text())
    names = [
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert len(names) == len(set(names))
    for name in names:
        assert name is not None
        assert hasattr(scenario_pkg, name)


# -- exactly-one-of rules in the model -----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "path", "found"),
    [
        ({}, "", "none of them"),
        ({"secret": "s", "tokens": ["a"]}, "tokens", "'secret' and 'tokens'"),
        ({"secret": "s", "none": True}, "none", "'secret' and 'none'"),
        ({"tokens": ["a"], "secret": "s", "none": True}, "tokens", "'secret', 'tokens' and 'none'"),
    ],
)
def test_auth_exactly_one(kwargs: dict[str, Any], path: str, found: str) -> None:
    err = error_of(Auth, **kwargs)
    assert err.path == path
    assert err.message == (
        f"expected exactly one of 'secret', 'tokens' or 'none: true', found {found}"
    )


def test_auth_values() -> None:
    assert error_of(Auth, secret="").message == "expected a non-empty secret, found ''"
    assert error_of(Auth, tokens=[]).path == "tokens"
    assert error_of(Auth, tokens=["a", ""]).path == "tokens[1]"
    auth = Auth(tokens=["a", "b"])
    assert [auth.token_for(i) for i in range(3)] == ["a", "b", "a"]
    assert Auth(secret="s").token_for(0) is None
    assert "s3cret" not in repr(Auth(secret="s3cret"))


@pytest.mark.parametrize(
    ("kwargs", "path", "found"),
    [
        ({}, "clients", "neither"),
        (
            {"clients": 1, "arrival": Arrival(rate=1.0, lifetime_s=1.0, max_clients=1)},
            "arrival",
            "both",
        ),
    ],
)
def test_population_exactly_one(kwargs: dict[str, Any], path: str, found: str) -> None:
    err = error_of(Population, **kwargs)
    assert err.path == path
    assert err.message.endswith(f"found {found}")
    assert "exactly one of 'clients' (closed model) or 'arrival' (open model)" in err.message


def test_fault_kinds_and_details() -> None:
    assert DropFault(at_s=1.0, fraction=0.25).kind == "drop"
    assert DropFault(at_s=1.0, fraction=0.25).detail == "25% of connections"
    assert RestartServerFault(at_s=1.0).kind == "restart_server"
    command = CommandFault(at_s=1.0, argv=["sh", "-c", "echo hi"])
    assert command.kind == "command"
    assert command.argv == ("sh", "-c", "echo hi")
    assert command.detail == "sh -c 'echo hi'"
    assert error_of(CommandFault, at_s=1.0, argv=[]).path == "command"
    assert error_of(DropFault, at_s=-1.0, fraction=0.5).path == "at"


def test_target() -> None:
    assert Target().embedded
    target = Target(urls=["ws://a/", "wss://b/"], dialect="seed")
    assert not target.embedded
    assert target.dialect is Dialect.SEED
    assert [target.url_for(i) for i in range(3)] == ["ws://a/", "wss://b/", "ws://a/"]
    with pytest.raises(ValueError, match="embedded server"):
        Target().url_for(0)
    assert error_of(Target, urls=["ws://"]).path == "urls[0]"
    assert error_of(Target, dialect="v2").message == "expected one of v1, seed, found 'v2'"


def test_reconnect_and_sizes() -> None:
    assert error_of(Reconnect, base_s=0.0).path == "base"
    assert error_of(Reconnect, base_s=2.0, cap_s=1.0).message == (
        "expected at least base (2s), found 1s"
    )
    assert error_of(UniformSize, min=5, max=4).path == "max"
    assert error_of(NormalSize, mean=10.0, stddev=-1.0).path == "stddev"
    assert error_of(NormalSize, mean=0.0, stddev=1.0).path == "mean"


def test_message_size_samples() -> None:
    rng = random.Random(1)
    assert FixedSize(size=7).sample(rng) == 7
    uniform = [UniformSize(min=3, max=5).sample(rng) for _ in range(200)]
    assert set(uniform) == {3, 4, 5}
    normal = [NormalSize(mean=4.0, stddev=10.0).sample(rng) for _ in range(200)]
    assert min(normal) == 1  # clamped
    assert UniformSize(min=3, max=5).mean == 4.0
    assert FixedSize(size=7).mean == 7.0


# -- membership --------------------------------------------------------------------------


def room_sizes(membership: tuple[tuple[int, ...], ...], rooms: int) -> list[int]:
    counts = Counter(room for client in membership for room in client)
    return [counts[room] for room in range(rooms)]


def test_round_robin_ten_rooms_of_fifty() -> None:
    population = Population(clients=500, rooms=10)
    membership = population.membership(seed=1)
    assert len(membership) == 500
    assert room_sizes(membership, 10) == [50] * 10
    assert membership[:11] == tuple((i % 10,) for i in range(11))


def test_round_robin_several_rooms_each() -> None:
    population = Population(clients=5, rooms=10, rooms_per_client=4)
    assert population.membership(seed=1) == (
        (0, 1, 2, 3),
        (4, 5, 6, 7),
        (0, 1, 8, 9),
        (2, 3, 4, 5),
        (6, 7, 8, 9),
    )
    assert room_sizes(population.membership(seed=1), 10) == [2] * 10


def test_round_robin_ignores_the_seed() -> None:
    population = Population(clients=50, rooms=7, rooms_per_client=3)
    assert population.membership(1) == population.membership(2)


@pytest.mark.parametrize("spread", list(Spread))
def test_membership_shape_and_determinism(spread: Spread) -> None:
    population = Population(clients=300, rooms=12, rooms_per_client=3, spread=spread)
    membership = population.membership(seed=7)
    assert len(membership) == 300
    for rooms in membership:
        assert len(rooms) == 3
        assert len(set(rooms)) == 3
        assert list(rooms) == sorted(rooms)
        assert all(0 <= room < 12 for room in rooms)
    assert membership == population.membership(seed=7)
    # Prefix-stable: asking for fewer clients gives the first ones.
    assert population.membership(seed=7, clients=100) == membership[:100]


@pytest.mark.parametrize("spread", [Spread.UNIFORM, Spread.ZIPF])
def test_random_spreads_depend_on_the_seed(spread: Spread) -> None:
    population = Population(clients=200, rooms=20, rooms_per_client=2, spread=spread)
    assert population.membership(1) != population.membership(2)


def test_uniform_is_roughly_even() -> None:
    population = Population(clients=2000, rooms=10, spread=Spread.UNIFORM)
    sizes = room_sizes(population.membership(seed=3), 10)
    assert min(sizes) > 150
    assert max(sizes) < 250


def test_zipf_is_skewed_towards_low_rooms() -> None:
    population = Population(clients=2000, rooms=20, spread=Spread.ZIPF)
    sizes = room_sizes(population.membership(seed=3), 20)
    assert sizes[0] > 3 * sizes[9]
    assert sizes[0] > sizes[1] > sizes[4]
    assert sum(sizes[:3]) > sum(sizes[10:])
    steeper = room_sizes(
        attrs.evolve(population, zipf_s=2.5).membership(seed=3),
        20,
    )
    assert steeper[0] > sizes[0]


def test_zipf_with_every_room_and_steep_skew() -> None:
    """k close to R takes the exact path and still returns k distinct rooms."""
    population = Population(clients=20, rooms=30, rooms_per_client=25, spread="zipf", zipf_s=4)
    for rooms in population.membership(seed=5):
        assert len(set(rooms)) == 25
    full = Population(clients=3, rooms=4, rooms_per_client=4, spread="zipf")
    assert full.membership(seed=1) == ((0, 1, 2, 3),) * 3


@st.composite
def populations(draw: st.DrawFn) -> Population:
    rooms = draw(st.integers(min_value=1, max_value=40))
    return Population(
        clients=draw(st.integers(min_value=1, max_value=60)),
        rooms=rooms,
        rooms_per_client=draw(st.integers(min_value=1, max_value=rooms)),
        spread=draw(st.sampled_from(list(Spread))),
        zipf_s=draw(st.floats(min_value=0.1, max_value=5.0)),
    )


@given(populations(), st.integers())
def test_membership_property(population: Population, seed: int) -> None:
    membership = population.membership(seed)
    assert len(membership) == population.capacity
    for rooms in membership:
        assert len(rooms) == population.rooms_per_client
        assert rooms == tuple(sorted(set(rooms)))
        assert all(0 <= room < population.rooms for room in rooms)
    assert population.membership(seed) == membership


def test_open_model_membership_covers_max_clients() -> None:
    population = Population(arrival=Arrival(rate=5.0, lifetime_s=10.0, max_clients=40), rooms=4)
    assert len(population.membership(seed=1)) == 40
    assert population.capacity == 40


def test_scenario_membership_uses_its_seed() -> None:
    s = scenario(seed=9, population=Population(clients=50, rooms=5, spread="uniform"))
    assert s.membership() == s.population.membership(9)
    assert s.membership(seed=3) == s.population.membership(3)


# -- the time line -----------------------------------------------------------------------


def ramp_scenario() -> Scenario:
    return scenario(
        population=Population(clients=100),
        phases=(
            Phase(name="ramp", duration_s=10.0, clients=100, ramp_from=0),
            Phase(name="steady", duration_s=20.0, send_rate=2.0),
            Phase(name="down", duration_s=10.0, clients=50),
            Phase(name="spike", duration_s=5.0, ramp_from=80, clients=80),
        ),
        behaviour=Behaviour(send_rate=0.5),
    )


def test_timeline() -> None:
    windows = ramp_scenario().timeline
    assert [(w.name, w.start_s, w.end_s) for w in windows] == [
        ("ramp", 0.0, 10.0),
        ("steady", 10.0, 30.0),
        ("down", 30.0, 40.0),
        ("spike", 40.0, 45.0),
    ]
    assert [(w.clients_start, w.clients_end) for w in windows] == [
        (0, 100),
        (100, 100),
        (100, 50),
        (80, 80),
    ]
    assert [w.send_rate for w in windows] == [0.5, 2.0, 0.5, 0.5]
    assert ramp_scenario().total_duration_s == 45.0


@pytest.mark.parametrize(
    ("t", "clients"),
    [
        (-1.0, 0),
        (0.0, 0),
        (0.05, 0),
        (0.1, 1),
        (2.5, 25),
        (3.0, 30),  # 0.3 * 100 lands on 30, not 29
        (9.99, 99),
        (10.0, 100),
        (29.0, 100),
        (35.0, 75),
        (39.99, 50),  # ramping down, rounded down
        (40.0, 80),  # a phase with ramp_from steps
        (45.0, 80),  # after the last phase: its end value
        (1000.0, 80),
    ],
)
def test_clients_at(t: float, clients: int) -> None:
    assert ramp_scenario().clients_at(t) == clients


def test_first_phase_without_ramp_from_starts_at_its_value() -> None:
    s = scenario(
        population=Population(clients=100),
        phases=(Phase(duration_s=10.0, clients=40), Phase(duration_s=10.0)),
    )
    assert [s.clients_at(t) for t in (0.0, 5.0, 15.0)] == [40, 40, 40]
    default = scenario(population=Population(clients=100))
    assert default.clients_at(0.0) == 100


def test_phase_at_and_send_rate_at() -> None:
    s = ramp_scenario()
    assert s.phase_at(-0.001) is None
    window = s.phase_at(0.0)
    assert window is not None
    assert window.name == "ramp"
    window = s.phase_at(10.0)
    assert window is not None
    assert (window.index, window.name) == (1, "steady")
    window = s.phase_at(44.999)
    assert window is not None
    assert window.name == "spike"
    assert s.phase_at(45.0) is None  # drain
    assert s.send_rate_at(5.0) == 0.5
    assert s.send_rate_at(10.0) == 2.0
    assert s.send_rate_at(45.0) == 0.0
    assert s.send_rate_at(-1.0) == 0.0


def test_open_model_has_no_client_target() -> None:
    s = scenario(population=Population(arrival=Arrival(rate=1.0, lifetime_s=5.0, max_clients=9)))
    window = s.phase_at(1.0)
    assert window is not None
    assert (window.clients_start, window.clients_end) == (None, None)
    with pytest.raises(ValueError, match="open model"):
        s.clients_at(1.0)


def test_scenario_cross_checks() -> None:
    assert error_of(scenario, phases=()).path == "phases"
    assert error_of(scenario, name="Bad Name").path == "name"
    assert error_of(scenario, seed=True).path == "seed"
    assert error_of(scenario, drain_s=-1.0).path == "drain"
    err = error_of(scenario, faults=(DropFault(at_s=10.5, fraction=0.1),))
    assert str(err) == "faults[0].at: expected a time within the run (0s to 10s), found 10500ms"
    scenario(faults=(DropFault(at_s=10.0, fraction=0.1),))  # the very end is allowed
    err = error_of(
        scenario,
        target=Target(urls=["ws://a/"], dialect="seed"),
        population=Population(clients=3, rooms=2),
    )
    assert err.path == "population.rooms"


# -- overrides ---------------------------------------------------------------------------


def storm() -> Scenario:
    return scenario(
        phases=(Phase(duration_s=10.0), Phase(duration_s=20.0)),
        faults=(DropFault(at_s=15.0, fraction=0.5), RestartServerFault(at_s=30.0)),
        thresholds=(parse_threshold("lost == 0"),),
    )


def test_with_overrides_targets_dialect_secret_seed() -> None:
    s = scenario().with_overrides(
        targets=["ws://h:1/", "ws://h:2/"], dialect="seed", secret="abc", seed=5
    )
    assert s.target.urls == ("ws://h:1/", "ws://h:2/")
    assert s.target.dialect is Dialect.SEED
    assert s.target.auth == Auth(secret="abc")
    assert s.seed == 5
    assert s.with_overrides(targets=[]).target.embedded


def test_with_overrides_tls_settings() -> None:
    s = scenario().with_overrides(insecure=True, ca_file="/etc/ca.pem")
    assert (s.target.insecure, s.target.ca_file) == (True, "/etc/ca.pem")
    # insecure=False only leaves the scenario's own setting (it never turns checks back on)
    assert s.with_overrides(insecure=False).target.insecure


def test_with_overrides_nothing_is_equal() -> None:
    s = storm()
    assert s.with_overrides() == s


def test_with_overrides_duration_rescales_phases_and_faults() -> None:
    s = storm().with_overrides(duration=60.0)
    assert s.total_duration_s == pytest.approx(60.0)
    assert [p.duration_s for p in s.phases] == pytest.approx([20.0, 40.0])
    assert [f.at_s for f in s.faults] == pytest.approx([30.0, 60.0])
    assert s.thresholds == storm().thresholds


def test_with_overrides_revalidates() -> None:
    with pytest.raises(ScenarioError) as info:
        storm().with_overrides(targets=["ws://elsewhere/"])
    assert str(info.value) == (
        "faults[1].restart_server: expected the embedded server (no target url); use "
        "'command' for a foreign one, found target ws://elsewhere/"
    )
    with pytest.raises(ScenarioError) as info:
        scenario().with_overrides(targets=["http://x/"])
    assert info.value.path == "target.urls[0]"
    with pytest.raises(ScenarioError) as info:
        scenario().with_overrides(dialect="v3")
    assert info.value.path == "target.dialect"
    with pytest.raises(ScenarioError) as info:
        scenario().with_overrides(secret="")
    assert info.value.path == "target.auth.secret"
    with pytest.raises(ScenarioError) as info:
        scenario().with_overrides(duration=0.0)
    assert str(info.value) == "duration: expected a duration longer than 0s, found 0s"
    with pytest.raises(ScenarioError) as info:
        scenario(population=Population(clients=3, rooms=3)).with_overrides(dialect="seed")
    assert info.value.path == "population.rooms"


def test_scenario_is_frozen() -> None:
    s = scenario()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.seed = 2  # type: ignore[misc]
