"""A small seeded random stream per simulated client (SplitMix64), and what it offers.

Why not a `random.Random` per client: its Mersenne Twister state is 2.5 KB, a quarter of
the memory budget of an idle client (docs/performance.md), while a client draws a room and
a size per send and a jitter per reconnect. SplitMix64 (Steele, Lea and Flood, "Fast
splittable pseudorandom number generators", OOPSLA 2014; the seeder of Java's
SplittableRandom) keeps one 64-bit integer and passes BigCrush; it is plenty for choosing
rooms and jitter, and replays exactly from its seed. Pure: no I/O, no global state.
"""

from __future__ import annotations

import hashlib
import math
from typing import Final, Protocol

_MASK: Final = (1 << 64) - 1
_GAMMA: Final = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd
_TO_UNIT: Final = 1.0 / (1 << 53)  # 53 random bits -> [0, 1)


class Rng(Protocol):
    """The draws clients and back-off policies make; `random.Random` has them too."""

    def random(self) -> float: ...

    def randrange(self, stop: int) -> int: ...

    def randint(self, a: int, b: int) -> int: ...

    def uniform(self, a: float, b: float) -> float: ...

    def gauss(self, mu: float, sigma: float) -> float: ...


class ClientRandom:
    """SplitMix64 seeded from a string (e.g. "<scenario seed>:client:<index>").

    A string seed goes through BLAKE2b, so neighbouring seeds give unrelated streams and
    the same seed gives the same stream in every process and on every Python version (no
    `hash()` randomisation). An integer seed is the generator's 64-bit state itself (the
    reference implementation's, for its test vectors). About 100 bytes per instance.
    """

    __slots__ = ("_gauss_next", "_state")

    def __init__(self, seed: str | int) -> None:
        if isinstance(seed, int):
            self._state = seed & _MASK
        else:
            digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
            self._state = int.from_bytes(digest, "big")
        self._gauss_next: float | None = None

    def _next64(self) -> int:
        self._state = state = (self._state + _GAMMA) & _MASK
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        return (self._next64() >> 11) * _TO_UNIT

    def randrange(self, stop: int) -> int:
        """An integer in [0, stop), unbiased (rejection sampling, as `random.Random`)."""
        if stop <= 0:
            raise ValueError(f"empty range for randrange({stop})")
        bits = stop.bit_length()
        if bits > 64:
            raise ValueError(f"randrange({stop}): at most 2**64 values")
        while True:
            value = self._next64() >> (64 - bits)
            if value < stop:
                return value

    def randint(self, a: int, b: int) -> int:
        """An integer in [a, b], both ends included."""
        if b < a:
            raise ValueError(f"empty range for randint({a}, {b})")
        return a + self.randrange(b - a + 1)

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def gauss(self, mu: float, sigma: float) -> float:
        """Normal draw; the polar-free Box-Muller pair of `random.Random.gauss`."""
        z = self._gauss_next
        self._gauss_next = None
        if z is None:
            angle = self.random() * math.tau
            radius = math.sqrt(-2.0 * math.log(1.0 - self.random()))
            z = math.cos(angle) * radius
            self._gauss_next = math.sin(angle) * radius
        return mu + z * sigma
