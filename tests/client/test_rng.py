"""The clients' small random stream (loadtool.client.rng): it replays from its seed, its
draws stay in range and are spread as the distributions say, and the back-off policies
and message sizes take it in place of a `random.Random`."""

from __future__ import annotations

import math
import statistics
from collections import Counter

import pytest

from loadtool.client.policies import PolicyName, make_backoff
from loadtool.client.rng import ClientRandom
from loadtool.scenario.model import NormalSize, UniformSize

N = 20_000
PINNED = [344, 683, 152, 122, 463]  # ClientRandom("1:client:0").randrange(1000) x 5


def _draws(rng: ClientRandom) -> list[float]:
    return [rng.random(), rng.randrange(7), rng.randint(3, 9), rng.uniform(-1.0, 1.0)] + [
        rng.gauss(10.0, 2.0) for _ in range(3)
    ]


def test_the_same_seed_gives_the_same_stream() -> None:
    assert _draws(ClientRandom("1:client:5")) == _draws(ClientRandom("1:client:5"))


def test_neighbouring_seeds_give_different_streams() -> None:
    streams = {tuple(_draws(ClientRandom(f"1:client:{i}"))) for i in range(100)}
    assert len(streams) == 100


def test_it_is_splitmix64() -> None:
    # The first outputs of Vigna's reference splitmix64.c from state 0; random() keeps
    # the top 53 bits of each.
    reference = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC]
    rng = ClientRandom(0)
    assert [rng.random() for _ in reference] == [(x >> 11) / 2**53 for x in reference]


def test_a_string_seed_gives_one_fixed_stream() -> None:
    # Pinned: a change here changes which room and size every run of a scenario draws.
    rng = ClientRandom("1:client:0")
    assert [rng.randrange(1000) for _ in range(5)] == PINNED


def test_random_is_uniform_in_the_unit_interval() -> None:
    rng = ClientRandom("u")
    values = [rng.random() for _ in range(N)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert abs(statistics.fmean(values) - 0.5) < 0.01
    deciles = Counter(int(v * 10) for v in values)
    assert sorted(deciles) == list(range(10))
    # chi-square with 9 degrees of freedom: 27.9 is the 0.999 quantile
    expected = N / 10
    assert sum((c - expected) ** 2 / expected for c in deciles.values()) < 27.9


@pytest.mark.parametrize("stop", [1, 2, 3, 7, 250, 1000])
def test_randrange_covers_the_range_without_bias(stop: int) -> None:
    rng = ClientRandom(f"r{stop}")
    counts = Counter(rng.randrange(stop) for _ in range(N))
    assert set(counts) == set(range(stop))  # 20 draws per value even at 1000: all seen
    if stop <= 7:
        expected = N / stop
        chi2 = sum((counts[k] - expected) ** 2 / expected for k in range(stop))
        assert chi2 < 22.5  # the 0.999 quantile for 6 degrees of freedom


def test_randint_includes_both_ends_and_rejects_an_empty_range() -> None:
    rng = ClientRandom("i")
    assert {rng.randint(3, 5) for _ in range(1000)} == {3, 4, 5}
    assert rng.randint(4, 4) == 4
    with pytest.raises(ValueError, match="empty range"):
        rng.randint(5, 4)
    with pytest.raises(ValueError, match="empty range"):
        rng.randrange(0)


def test_uniform_stays_between_its_bounds() -> None:
    rng = ClientRandom("f")
    values = [rng.uniform(0.5, 8.0) for _ in range(N)]
    assert all(0.5 <= v <= 8.0 for v in values)
    assert abs(statistics.fmean(values) - 4.25) < 0.1


def test_gauss_has_the_asked_mean_and_spread() -> None:
    rng = ClientRandom("g")
    values = [rng.gauss(128.0, 16.0) for _ in range(N)]
    assert abs(statistics.fmean(values) - 128.0) < 0.5
    assert abs(statistics.stdev(values) - 16.0) < 0.5
    within = sum(abs(v - 128.0) <= 16.0 for v in values) / N
    assert abs(within - math.erf(1 / math.sqrt(2))) < 0.02  # ~68 % within one sigma


def test_message_sizes_draw_from_it() -> None:
    sizes = [UniformSize(min=10, max=20).sample(ClientRandom("s")) for _ in range(100)]
    assert all(10 <= s <= 20 for s in sizes)
    normal = NormalSize(mean=5.0, stddev=50.0)
    rng = ClientRandom("n")
    assert all(normal.sample(rng) >= 1 for _ in range(1000))


@pytest.mark.parametrize(
    "policy", [PolicyName.SEED, PolicyName.FULL_JITTER, PolicyName.DECORRELATED_JITTER]
)
def test_back_off_replays_from_the_seed(policy: PolicyName) -> None:
    def timeline(seed: str) -> list[float | None]:
        backoff = make_backoff(policy, base=0.2, cap=5.0, rng=ClientRandom(seed))
        return [backoff.next_delay() for _ in range(20)]

    assert timeline("7:client:3") == timeline("7:client:3")
    assert timeline("7:client:3") != timeline("7:client:4")
