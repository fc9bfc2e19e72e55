"""The scenario model: one frozen value per YAML section, validated on construction. Pure.

docs/scenarios.md documents every key and default; the defaults below are those of the
design (docs/scenarios.md repeats them). The loader turns YAML into these classes and
gives every error a file and a line; building them directly (tests, CLI overrides) gets
the same checks, with a key path but no line.

Times are seconds (floats, `_s` suffix), rates are per second, fractions are 0..1.
Errors raised from here are `ScenarioError`s whose `path` names the YAML key, e.g.
`phases[1].duration`, so the loader can find its line.
"""

from __future__ import annotations

import bisect
import difflib
import enum
import functools
import itertools
import math
import random
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Final, Protocol, TypeVar

import attrs

from loadtool.units import format_duration

from .thresholds import Threshold

NAME_PATTERN: Final = re.compile(r"[a-z0-9-]+")
URL_PATTERN: Final = re.compile(r"wss?://[^\s/?#]+\S*")
DEFAULT_SEED: Final = 1
DEFAULT_PHASE_NAME: Final = "steady"  # the one phase of a scenario written with `duration`
DEFAULT_CONNECT_RATE: Final = 500.0  # connections/s
DEFAULT_ZIPF_S: Final = 1.1  # zipf exponent
DEFAULT_SEND_RATE: Final = 1.0  # messages/s per client
DEFAULT_MESSAGE_SIZE: Final = 128  # characters of text
DEFAULT_HEARTBEAT_S: Final = 20.0  # seconds between app-level pings; 0 = none
DEFAULT_RECONNECT_BASE_S: Final = 0.5
DEFAULT_RECONNECT_CAP_S: Final = 32.0
DEFAULT_DRAIN_S: Final = 5.0
_ZIPF_ATTEMPTS_PER_ROOM: Final = 64  # rejection draws before the exact fallback

T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario is invalid. str() is one readable line: `file:line: key.path: message`.

    `file` and `line` (1-based) are None when the scenario did not come from a file (or
    the problem is not tied to a line); `path` is the key path such as `phases[1].duration`.
    """

    def __init__(
        self, message: str, *, path: str = "", file: str | None = None, line: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = None
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        return ": ".join(part for part in (where, self.path, self.message) if part)

    def under(self, prefix: str) -> ScenarioError:
        """The same error with its path below `prefix` (`population` + `rooms`)."""
        return ScenarioError(
            self.message, path=join_path(prefix, self.path), file=self.file, line=self.line
        )

    def at(self, file: str, line: int | None) -> ScenarioError:
        """The same error located in `file` at `line`."""
        return ScenarioError(self.message, path=self.path, file=file, line=line)


def join_path(prefix: str, path: str) -> str:
    """`population` + `rooms` -> `population.rooms`; `phases` + `[1]` -> `phases[1]`."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def seconds_text(value: float) -> str:
    """A duration as written in scenarios (30s, 500ms), for messages."""
    try:
        return format_duration(value)
    except ValueError:
        return f"{value}s"


def _expected(path: str, expected: str, found: str) -> ScenarioError:
    return ScenarioError(f"expected {expected}, found {found}", path=path)


# -- validators: each names the YAML key, not the attribute ------------------------------


def _count(key: str, minimum: int) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: int | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise _expected(key, "a whole number", repr(value))
        if value < minimum:
            raise _expected(key, f"a whole number of at least {minimum}", str(value))

    return check


def _duration(key: str, *, allow_zero: bool) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: float) -> None:
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
        if not ok:
            bound = "at least 0s" if allow_zero else "longer than 0s"
            raise _expected(key, f"a duration {bound}", seconds_text(value))

    return check


def _rate(key: str, *, allow_zero: bool) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: float | None) -> None:
        if value is None:
            return
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
        if not ok:
            bound = "of at least 0/s" if allow_zero else "above 0/s"
            raise _expected(key, f"a rate {bound}", f"{value:g}/s")

    return check


def _positive_number(key: str) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise _expected(key, "a number above 0", f"{value:g}")

    return check


def _choice_error(key: str, choices: type[enum.StrEnum], value: object) -> ScenarioError:
    names = [c.value for c in choices]
    close = difflib.get_close_matches(str(value), names, n=1) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return _expected(key, f"one of {', '.join(names)}", f"{value!r}{hint}")


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _opt_str_tuple(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


# -- target ------------------------------------------------------------------------------


class Dialect(enum.StrEnum):
    """The protocol the target speaks (docs/protocol.md)."""

    V1 = "v1"  # protocol v1: rooms, acks, history, re-sync
    SEED = "seed"  # the seed article's server: one broadcast room, no history


def _dialect(value: str) -> Dialect:
    try:
        return Dialect(value)
    except ValueError:
        raise _choice_error("dialect", Dialect, value) from None


@attrs.frozen(kw_only=True)
class Auth:
    """How clients get a token: exactly one of `secret`, `tokens` or `none`."""

    secret: str | None = attrs.field(default=None, repr=False)  # mint HS256 tokens
    tokens: tuple[str, ...] | None = attrs.field(
        default=None, converter=_opt_str_tuple, repr=False
    )  # fixed list, used round-robin by client index
    none: bool = False  # no token at all (seed servers)

    def __attrs_post_init__(self) -> None:
        given = [
            name
            for name, present in (
                ("secret", self.secret is not None),
                ("tokens", self.tokens is not None),
                ("none", self.none),
            )
            if present
        ]
        if len(given) != 1:
            names = [repr(name) for name in given]
            found = f"{', '.join(names[:-1])} and {names[-1]}" if given else "none of them"
            raise _expected(given[1] if len(given) > 1 else "", AUTH_ONE_OF, found)
        if self.secret is not None and not self.secret:
            raise _expected("secret", "a non-empty secret", "''")
        if self.tokens is not None:
            if not self.tokens:
                raise _expected("tokens", "at least one token", "an empty list")
            for index, token in enumerate(self.tokens):
                if not token:
                    raise _expected(f"tokens[{index}]", "a non-empty token", "''")

    def token_for(self, client: int) -> str | None:
        """The fixed token of `client` (round-robin), or None when not using `tokens`."""
        return None if self.tokens is None else self.tokens[client % len(self.tokens)]


AUTH_ONE_OF: Final = "exactly one of 'secret', 'tokens' or 'none: true'"


@attrs.frozen(kw_only=True)
class Target:
    """The server under test. No `urls`: the embedded reference server on a free port."""

    urls: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    dialect: Dialect = attrs.field(default=Dialect.V1, converter=_dialect)
    # None: for the embedded server a random secret shared with it; for a given target no
    # token at all (as `none: true`).
    auth: Auth | None = None
    insecure: bool = False  # wss:// without certificate checks
    ca_file: str | None = None  # CA bundle for wss://

    @urls.validator
    def _check_urls(self, _attr: Any, urls: tuple[str, ...]) -> None:
        for index, url in enumerate(urls):
            if not URL_PATTERN.fullmatch(url):
                raise _expected(f"urls[{index}]", "a ws:// or wss:// URL", repr(url))

    @property
    def embedded(self) -> bool:
        return not self.urls

    def url_for(self, client: int) -> str:
        """The URL `client` connects to (round-robin over `urls`).

        Raises:
            ValueError: for the embedded server, whose URL is known only once it listens.
        """
        if not self.urls:
            raise ValueError("the embedded server's URL is known only once it listens")
        return self.urls[client % len(self.urls)]


# -- population --------------------------------------------------------------------------


class Spread(enum.StrEnum):
    """How clients are spread over rooms (see `Population.membership`)."""

    ROUND_ROBIN = "round-robin"  # client i -> rooms (i*k + j) % R, j < k: equal room sizes
    UNIFORM = "uniform"  # k distinct rooms drawn uniformly per client
    ZIPF = "zipf"  # k distinct rooms drawn with weight 1/rank**zipf_s: room 0 the busiest


def _spread(value: str) -> Spread:
    try:
        return Spread(value)
    except ValueError:
        raise _choice_error("spread", Spread, value) from None


@attrs.frozen(kw_only=True)
class Arrival:
    """The open model: clients arrive as a Poisson process and leave after `lifetime`."""

    rate: float = attrs.field(validator=_rate("rate", allow_zero=False))  # arrivals/s
    lifetime_s: float = attrs.field(validator=_duration("lifetime", allow_zero=False))
    max_clients: int = attrs.field(validator=_count("max_clients", 1))  # connected at once


@attrs.frozen(kw_only=True)
class Population:
    """Who connects: exactly one of `clients` (closed model) or `arrival` (open model)."""

    clients: int | None = attrs.field(default=None, validator=_count("clients", 1))
    arrival: Arrival | None = None
    rooms: int = attrs.field(default=1, validator=_count("rooms", 1))
    rooms_per_client: int = attrs.field(default=1, validator=_count("rooms_per_client", 1))
    spread: Spread = attrs.field(default=Spread.ROUND_ROBIN, converter=_spread)
    zipf_s: float = attrs.field(default=DEFAULT_ZIPF_S, validator=_positive_number("zipf_s"))
    connect_rate: float = attrs.field(
        default=DEFAULT_CONNECT_RATE, validator=_rate("connect_rate", allow_zero=False)
    )  # connections/s

    def __attrs_post_init__(self) -> None:
        if (self.clients is None) == (self.arrival is None):
            found = "both" if self.clients is not None else "neither"
            raise _expected(
                "arrival" if self.clients is not None else "clients", POPULATION_ONE_OF, found
            )
        if self.rooms_per_client > self.rooms:
            raise _expected(
                "rooms_per_client",
                f"at most rooms ({self.rooms})",
                str(self.rooms_per_client),
            )

    @property
    def capacity(self) -> int:
        """How many client indexes exist: `clients`, or `arrival.max_clients`."""
        if self.clients is not None:
            return self.clients
        assert self.arrival is not None  # one of the two, by construction
        return self.arrival.max_clients

    def membership(self, seed: int, clients: int | None = None) -> tuple[tuple[int, ...], ...]:
        """The rooms (ascending indexes) of each client 0..clients-1 (default `capacity`).

        Deterministic for a seed, and prefix-stable: the first n entries do not depend on
        how many clients are asked for. round-robin ignores the seed.
        """
        count = self.capacity if clients is None else clients
        k, rooms = self.rooms_per_client, self.rooms
        if self.spread is Spread.ROUND_ROBIN:
            return tuple(tuple(sorted((i * k + j) % rooms for j in range(k))) for i in range(count))
        rng = random.Random(seed)
        if self.spread is Spread.UNIFORM:
            return tuple(tuple(sorted(rng.sample(range(rooms), k))) for _ in range(count))
        weights = [1.0 / (rank**self.zipf_s) for rank in range(1, rooms + 1)]
        cumulative = list(itertools.accumulate(weights))
        return tuple(_weighted_distinct(rng, weights, cumulative, k) for _ in range(count))


POPULATION_ONE_OF: Final = "exactly one of 'clients' (closed model) or 'arrival' (open model)"


def _weighted_distinct(
    rng: random.Random, weights: Sequence[float], cumulative: Sequence[float], k: int
) -> tuple[int, ...]:
    """k distinct indexes drawn with the given weights, without replacement.

    Rejection sampling on the cumulative weights is O(k log R) in the usual case (k at
    most half the rooms); otherwise, or when the skew makes repeats too likely, the rest is
    drawn exactly with Efraimidis-Spirakis keys, O(R log R).
    """
    total = cumulative[-1]
    last = len(cumulative) - 1
    chosen: set[int] = set()
    attempts = _ZIPF_ATTEMPTS_PER_ROOM * k if 2 * k <= len(weights) else 0
    for _ in range(attempts):
        if len(chosen) == k:
            break
        chosen.add(min(bisect.bisect_right(cumulative, rng.random() * total), last))
    if len(chosen) < k:
        rest = [r for r in range(len(weights)) if r not in chosen]
        # u ** (1 / w), compared through its logarithm so tiny weights do not underflow.
        keys = {r: math.log(1.0 - rng.random()) / weights[r] for r in rest}
        rest.sort(key=keys.__getitem__, reverse=True)
        chosen.update(rest[: k - len(chosen)])
    return tuple(sorted(chosen))


# -- phases ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Phase:
    """A stretch of the run. None fields fall back as `Scenario.timeline` describes."""

    name: str = attrs.field(default=DEFAULT_PHASE_NAME)
    duration_s: float = attrs.field(validator=_duration("duration", allow_zero=False))
    clients: int | None = attrs.field(default=None, validator=_count("clients", 0))
    ramp_from: int | None = attrs.field(default=None, validator=_count("ramp_from", 0))
    send_rate: float | None = attrs.field(
        default=None, validator=_rate("send_rate", allow_zero=True)
    )  # messages/s per client

    @name.validator
    def _check_name(self, _attr: Any, name: str) -> None:
        if not name.strip():
            raise _expected("name", "a phase name", "an empty name")


@attrs.frozen(kw_only=True)
class PhaseWindow:
    """A phase placed on the run's time line, its fallbacks resolved.

    `clients_start`/`clients_end` are None in the open model.
    """

    index: int
    phase: Phase
    start_s: float
    end_s: float
    clients_start: int | None
    clients_end: int | None
    send_rate: float  # messages/s per client

    @property
    def name(self) -> str:
        return self.phase.name

    def clients_at(self, t_s: float) -> int:
        """The target connected clients at `t_s`: a linear ramp from `clients_start` at
        `start_s` to `clients_end` at `end_s`, rounded down; clamped outside the window.

        Raises:
            ValueError: in the open model (no target count).
        """
        if self.clients_start is None or self.clients_end is None:
            raise ValueError("the open model (population.arrival) has no target client count")
        fraction = min(1.0, max(0.0, (t_s - self.start_s) / (self.end_s - self.start_s)))
        value = self.clients_start + (self.clients_end - self.clients_start) * fraction
        return math.floor(value + 1e-9)  # 1e-9: 0.1 * 30 lands on 3, not 2.9999999996


# -- behaviour ---------------------------------------------------------------------------


class SizeDraws(Protocol):
    """The draws a message size needs: a `random.Random`, or a client's own small stream
    (loadtool/client/rng.py)."""

    def randint(self, a: int, b: int) -> int: ...

    def gauss(self, mu: float, sigma: float) -> float: ...


@attrs.frozen(kw_only=True)
class FixedSize:
    """Every message has `size` characters of text."""

    size: int = attrs.field(validator=_count("", 1))  # "": the whole of `message_size`

    @property
    def mean(self) -> float:
        return float(self.size)

    def sample(self, rng: SizeDraws) -> int:
        """`size`; takes `rng` like the other sizes do."""
        return self.size


@attrs.frozen(kw_only=True)
class UniformSize:
    """Sizes drawn uniformly from min..max (inclusive)."""

    min: int = attrs.field(validator=_count("min", 1))
    max: int = attrs.field(validator=_count("max", 1))

    def __attrs_post_init__(self) -> None:
        if self.max < self.min:
            raise _expected("max", f"at least min ({self.min})", str(self.max))

    @property
    def mean(self) -> float:
        return (self.min + self.max) / 2

    def sample(self, rng: SizeDraws) -> int:
        return rng.randint(self.min, self.max)


@attrs.frozen(kw_only=True)
class NormalSize:
    """Sizes drawn from a normal distribution, rounded, at least 1."""

    mean: float = attrs.field(validator=_positive_number("mean"))
    stddev: float = attrs.field()

    @stddev.validator
    def _check_stddev(self, _attr: Any, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise _expected("stddev", "a number of at least 0", f"{value:g}")

    def sample(self, rng: SizeDraws) -> int:
        return max(1, round(rng.gauss(self.mean, self.stddev)))


MessageSize = FixedSize | UniformSize | NormalSize


class ReconnectPolicy(enum.StrEnum):
    """Back-off between reconnect attempts (loadtool/client/policies.py implements them)."""

    SEED = "seed"  # the seed article's 0.5 s doubling to 32 s plus 0-249 ms
    EXPONENTIAL = "exponential"  # base * 2**attempt, capped, no jitter
    FULL_JITTER = "full-jitter"  # uniform 0..min(cap, base * 2**attempt)
    DECORRELATED_JITTER = "decorrelated-jitter"  # min(cap, uniform(base, previous * 3))
    NONE = "none"  # never reconnect


def _policy(value: str) -> ReconnectPolicy:
    try:
        return ReconnectPolicy(value)
    except ValueError:
        raise _choice_error("policy", ReconnectPolicy, value) from None


@attrs.frozen(kw_only=True)
class Reconnect:
    policy: ReconnectPolicy = attrs.field(default=ReconnectPolicy.EXPONENTIAL, converter=_policy)
    base_s: float = attrs.field(
        default=DEFAULT_RECONNECT_BASE_S, validator=_duration("base", allow_zero=False)
    )
    cap_s: float = attrs.field(
        default=DEFAULT_RECONNECT_CAP_S, validator=_duration("cap", allow_zero=False)
    )

    def __attrs_post_init__(self) -> None:
        if self.cap_s < self.base_s:
            raise _expected(
                "cap", f"at least base ({seconds_text(self.base_s)})", seconds_text(self.cap_s)
            )


@attrs.frozen(kw_only=True)
class Behaviour:
    """What every client does while connected."""

    send_rate: float = attrs.field(
        default=DEFAULT_SEND_RATE, validator=_rate("send_rate", allow_zero=True)
    )  # messages/s per client, open-loop
    message_size: MessageSize = attrs.field(factory=lambda: FixedSize(size=DEFAULT_MESSAGE_SIZE))
    heartbeat_s: float = attrs.field(
        default=DEFAULT_HEARTBEAT_S, validator=_duration("heartbeat", allow_zero=True)
    )  # 0 = no app-level pings
    reconnect: Reconnect = attrs.field(factory=Reconnect)
    outbox: bool = True  # buffer sends while disconnected, replay them (same id) on reconnect
    resync: bool = True  # v1: rejoin with since=last seq and page history (ignored for seed)


# -- faults ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DropFault:
    """Abruptly close `fraction` of the open connections (client side)."""

    kind: ClassVar[str] = "drop"
    at_s: float = attrs.field(validator=_duration("at", allow_zero=True))
    fraction: float = attrs.field()

    @fraction.validator
    def _check_fraction(self, _attr: Any, value: float) -> None:
        if not (0 < value <= 1):
            raise _expected("drop", "a percentage above 0% and at most 100%", f"{value * 100:g}%")

    @property
    def detail(self) -> str:
        return f"{self.fraction * 100:g}% of connections"


@attrs.frozen(kw_only=True)
class RestartServerFault:
    """Kill the embedded server and start it again on the same port and database."""

    kind: ClassVar[str] = "restart_server"
    at_s: float = attrs.field(validator=_duration("at", allow_zero=True))

    @property
    def detail(self) -> str:
        return "embedded server restarted"


@attrs.frozen(kw_only=True)
class CommandFault:
    """Run a command (argv, no shell), e.g. to restart a foreign server."""

    kind: ClassVar[str] = "command"
    at_s: float = attrs.field(validator=_duration("at", allow_zero=True))
    argv: tuple[str, ...] = attrs.field(converter=_str_tuple)

    @argv.validator
    def _check_argv(self, _attr: Any, argv: tuple[str, ...]) -> None:
        if not argv or not argv[0]:
            raise _expected("command", "a command to run", "an empty command")

    @property
    def detail(self) -> str:
        return shlex.join(self.argv)


Fault = DropFault | RestartServerFault | CommandFault


# -- capacity (loadtool capacity) --------------------------------------------------------


DEFAULT_CAPACITY_FACTOR: Final = 2.0  # each growth step multiplies the load by this
DEFAULT_CAPACITY_MAX_STEPS: Final = 8
DEFAULT_CAPACITY_STEP_S: Final = 15.0  # seconds measured per step (after the warm-up)
DEFAULT_CAPACITY_WARMUP_S: Final = 5.0  # seconds per step not measured
DEFAULT_CAPACITY_RESOLUTION: Final = 0.1  # bisect until (bad - good) / good <= this
DEFAULT_PLAN_HEADROOM: Final = 0.3  # 30% spare capacity per node


class Vary(enum.StrEnum):
    """The load dimension a capacity search varies (docs/capacity.md)."""

    CLIENTS = "clients"  # population.clients (closed model)
    ARRIVAL_RATE = "arrival_rate"  # population.arrival.rate, arrivals/s (open model)
    SEND_RATE = "send_rate"  # behaviour.send_rate, messages/s per client

    @property
    def unit(self) -> str:
        return _VARY_UNITS[self]


_VARY_UNITS: Final = {
    Vary.CLIENTS: "clients",
    Vary.ARRIVAL_RATE: "arrivals/s",
    Vary.SEND_RATE: "messages/s per client",
}


def _vary(value: Vary | str | None) -> Vary | None:
    if value is None:
        return None
    try:
        return Vary(value)
    except ValueError:
        raise _choice_error("vary", Vary, value) from None


def _fraction(key: str, *, allow_zero: bool, below_one: bool) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: float) -> None:
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
        if below_one:
            ok = ok and value < 1
        if not ok:
            low = "at least 0%" if allow_zero else "above 0%"
            high = " and below 100%" if below_one else ""
            raise _expected(key, f"a percentage {low}{high}", f"{value * 100:g}%")

    return check


@attrs.frozen(kw_only=True)
class Plan:
    """A target population to plan nodes for (docs/capacity.md, "Planning").

    Deliveries needed per second = users x rate x fanout; `fanout` is the deliveries per
    message (the members of its room, the sender's own copy included) and defaults to
    users / rooms (one room each, rooms of equal size).
    """

    users: int = attrs.field(validator=_count("users", 1))  # connected at once
    rate: float = attrs.field(validator=_rate("rate", allow_zero=False))  # msgs/s per user
    rooms: int | None = attrs.field(default=None, validator=_count("rooms", 1))
    fanout: float | None = attrs.field(default=None)  # deliveries per message
    headroom: float = attrs.field(
        default=DEFAULT_PLAN_HEADROOM,
        validator=_fraction("headroom", allow_zero=True, below_one=False),
    )

    @fanout.validator
    def _check_fanout(self, _attr: Any, value: float | None) -> None:
        if value is not None and not (math.isfinite(value) and value >= 1):
            raise _expected("fanout", "deliveries per message of at least 1", f"{value:g}")

    def __attrs_post_init__(self) -> None:
        if self.fanout is None and self.rooms is None:
            raise _expected("fanout", "'fanout' or 'rooms' (fanout = users / rooms)", "neither")

    @property
    def deliveries_per_message(self) -> float:
        if self.fanout is not None:
            return self.fanout
        assert self.rooms is not None  # one of the two, by construction
        return self.users / self.rooms

    @property
    def messages_per_s(self) -> float:
        return self.users * self.rate

    @property
    def deliveries_per_s(self) -> float:
        return self.messages_per_s * self.deliveries_per_message


def _slo_terms(values: Iterable[Threshold]) -> tuple[Threshold, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class Capacity:
    """How `loadtool capacity` searches (docs/capacity.md). None: resolved per scenario.

    `vary` None: clients in the closed model, arrival_rate in the open one. `start` None:
    the scenario's own value of the varied dimension. `slo` empty: the scenario's
    `thresholds` are the SLO.
    """

    vary: Vary | None = attrs.field(default=None, converter=_vary)
    start: float | None = attrs.field(default=None)
    factor: float = attrs.field(default=DEFAULT_CAPACITY_FACTOR)
    max_steps: int = attrs.field(
        default=DEFAULT_CAPACITY_MAX_STEPS, validator=_count("max_steps", 2)
    )
    step_duration_s: float = attrs.field(
        default=DEFAULT_CAPACITY_STEP_S, validator=_duration("step_duration", allow_zero=False)
    )
    warmup_s: float = attrs.field(
        default=DEFAULT_CAPACITY_WARMUP_S, validator=_duration("warmup", allow_zero=True)
    )
    resolution: float = attrs.field(
        default=DEFAULT_CAPACITY_RESOLUTION,
        validator=_fraction("resolution", allow_zero=False, below_one=True),
    )
    slo: tuple[Threshold, ...] = attrs.field(default=(), converter=_slo_terms)
    plan: Plan | None = None

    @start.validator
    def _check_start(self, _attr: Any, value: float | None) -> None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise _expected("start", "a load above 0", f"{value:g}")

    @factor.validator
    def _check_factor(self, _attr: Any, value: float) -> None:
        if not (math.isfinite(value) and value > 1):
            raise _expected("factor", "a growth factor above 1 such as 2", f"{value:g}")

    def resolved_vary(self, population: Population) -> Vary:
        """`vary`, or the default for the population's model."""
        if self.vary is not None:
            return self.vary
        return Vary.CLIENTS if population.clients is not None else Vary.ARRIVAL_RATE


# -- the scenario ------------------------------------------------------------------------


def _phases(values: Iterable[Phase]) -> tuple[Phase, ...]:
    return tuple(values)


def _faults(values: Iterable[Fault]) -> tuple[Fault, ...]:
    return tuple(values)


def _thresholds(values: Iterable[Threshold]) -> tuple[Threshold, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class Scenario:
    """A whole scenario. `phases` is never empty: `duration: 30s` is one phase `steady`.

    Time line: phase i runs over [start_i, start_i + duration_i). In the closed model the
    target connected-client count ramps linearly within each phase from its start value
    to its end value (rounded down):
      - end value: the phase's `clients`; if omitted, the previous phase's end value; for
        the first phase, `population.clients`.
      - start value: the phase's `ramp_from`; if omitted, the previous phase's end value;
        for the first phase, its own end value (no ramp: the first phase ramps up from
        zero only when it says `ramp_from: 0`). Connections are paced by `connect_rate`.
    The send rate is the phase's `send_rate`, else `behaviour.send_rate`, constant within
    the phase and 0 after the last phase (during `drain`).
    """

    name: str = attrs.field()
    description: str = ""
    seed: int = attrs.field(default=DEFAULT_SEED)
    target: Target = attrs.field(factory=Target)
    population: Population
    phases: tuple[Phase, ...] = attrs.field(converter=_phases)
    drain_s: float = attrs.field(
        default=DEFAULT_DRAIN_S, validator=_duration("drain", allow_zero=True)
    )
    behaviour: Behaviour = attrs.field(factory=Behaviour)
    faults: tuple[Fault, ...] = attrs.field(default=(), converter=_faults)
    thresholds: tuple[Threshold, ...] = attrs.field(default=(), converter=_thresholds)
    capacity: Capacity = attrs.field(factory=Capacity)  # only `loadtool capacity` reads it
    # Where the scenario came from (results.json `scenario`); not part of its identity.
    file: str | None = attrs.field(default=None, eq=False)
    sha256: str | None = attrs.field(default=None, eq=False)  # of the file's bytes

    @name.validator
    def _check_name(self, _attr: Any, name: str) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise _expected("name", "a name of a-z, 0-9 and '-' such as 'fanout'", repr(name))

    @seed.validator
    def _check_seed(self, _attr: Any, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise _expected("seed", "a whole number", repr(seed))

    def __attrs_post_init__(self) -> None:
        if not self.phases:
            raise _expected("phases", "at least one phase", "an empty list")
        self._check_phases()
        if self.target.dialect is Dialect.SEED and self.population.rooms != 1:
            raise _expected(
                "population.rooms",
                "1 with the seed dialect (one broadcast room)",
                str(self.population.rooms),
            )
        self._check_capacity()
        total = self.total_duration_s
        for index, fault in enumerate(self.faults):
            if fault.at_s > total:
                raise _expected(
                    f"faults[{index}].at",
                    f"a time within the run (0s to {seconds_text(total)})",
                    seconds_text(fault.at_s),
                )
            if isinstance(fault, RestartServerFault) and not self.target.embedded:
                raise _expected(
                    f"faults[{index}].restart_server",
                    "the embedded server (no target url); use 'command' for a foreign one",
                    f"target {', '.join(self.target.urls)}",
                )

    def _check_capacity(self) -> None:
        capacity = self.capacity
        vary = capacity.resolved_vary(self.population)
        closed = self.population.clients is not None
        if vary is Vary.CLIENTS and not closed:
            raise _expected(
                "capacity.vary",
                "arrival_rate or send_rate with the open model (population.arrival)",
                "clients",
            )
        if vary is Vary.ARRIVAL_RATE and closed:
            raise _expected(
                "capacity.vary",
                "clients or send_rate with the closed model (population.clients)",
                "arrival_rate",
            )
        start = capacity.start
        if vary is Vary.CLIENTS and start is not None and start != math.floor(start):
            raise _expected("capacity.start", "a whole number of clients", f"{start:g}")

    def _check_phases(self) -> None:
        closed = self.population.clients
        for index, phase in enumerate(self.phases):
            for key, value in (("clients", phase.clients), ("ramp_from", phase.ramp_from)):
                if value is None:
                    continue
                path = f"phases[{index}].{key}"
                if closed is None:
                    raise _expected(
                        path, "no client count with the open model (population.arrival)", str(value)
                    )
                if value > closed:
                    raise _expected(path, f"at most population.clients ({closed})", str(value))

    # -- derived values for the engine ----------------------------------------------------

    @property
    def total_duration_s(self) -> float:
        """Seconds from the start of the first phase to the end of the last (no drain)."""
        return self.timeline[-1].end_s

    @functools.cached_property
    def timeline(self) -> tuple[PhaseWindow, ...]:
        """The phases placed on the time line with clients and send rate resolved."""
        windows = []
        start = 0.0
        previous: int | None = None
        closed = self.population.clients
        for index, phase in enumerate(self.phases):
            end = start + phase.duration_s
            clients_start = clients_end = None
            if closed is not None:
                clients_end = phase.clients
                if clients_end is None:
                    clients_end = closed if previous is None else previous
                clients_start = phase.ramp_from
                if clients_start is None:
                    clients_start = clients_end if previous is None else previous
                previous = clients_end
            send_rate = self.behaviour.send_rate if phase.send_rate is None else phase.send_rate
            windows.append(
                PhaseWindow(
                    index=index,
                    phase=phase,
                    start_s=start,
                    end_s=end,
                    clients_start=clients_start,
                    clients_end=clients_end,
                    send_rate=send_rate,
                )
            )
            start = end
        return tuple(windows)

    def phase_at(self, t_s: float) -> PhaseWindow | None:
        """The phase running at `t_s` seconds into the run; None before 0 and from the end
        of the last phase on (drain)."""
        windows = self.timeline
        if t_s < 0 or t_s >= windows[-1].end_s:
            return None
        index = bisect.bisect_right([w.start_s for w in windows], t_s) - 1
        return windows[index]

    def clients_at(self, t_s: float) -> int:
        """The target connected-client count at `t_s` (closed model); before 0 the first
        phase's start value, after the last phase its end value.

        Raises:
            ValueError: in the open model (population.arrival), which has no target count.
        """
        windows = self.timeline
        window = self.phase_at(t_s)
        if window is None:
            window = windows[0] if t_s < 0 else windows[-1]
        return window.clients_at(t_s)

    def send_rate_at(self, t_s: float) -> float:
        """Messages/s per client at `t_s`: the phase's rate, 0 outside the phases."""
        window = self.phase_at(t_s)
        return 0.0 if window is None else window.send_rate

    def membership(self, seed: int | None = None) -> tuple[tuple[int, ...], ...]:
        """The rooms of each client (`Population.membership`), seeded by the scenario's
        seed unless `seed` is given."""
        return self.population.membership(self.seed if seed is None else seed)

    def with_overrides(
        self,
        *,
        targets: Sequence[str] | None = None,
        dialect: Dialect | str | None = None,
        secret: str | None = None,
        duration: float | None = None,
        seed: int | None = None,
        insecure: bool = False,
        ca_file: str | None = None,
    ) -> Scenario:
        """A copy with command-line overrides applied, validated again.

        `targets` replaces the target URLs (an empty sequence: the embedded server).
        `secret` sets token minting with that secret. `insecure` (only ever turns
        certificate checks off) and `ca_file` override the target's wss:// settings.
        `duration` (seconds) rescales every phase and every fault time by new/old total,
        keeping the scenario's shape.

        Raises:
            ScenarioError: naming the key (`target.urls[0]`, `duration`, ...) that is wrong.
        """
        changes: dict[str, Any] = {}
        target_changes: dict[str, Any] = {}
        if targets is not None:
            target_changes["urls"] = tuple(targets)
        if dialect is not None:
            target_changes["dialect"] = dialect
        if secret is not None:
            target_changes["auth"] = build_under("target.auth", Auth, secret=secret)
        if insecure:
            target_changes["insecure"] = True
        if ca_file is not None:
            target_changes["ca_file"] = ca_file
        if target_changes:
            changes["target"] = build_under("target", attrs.evolve, self.target, **target_changes)
        if duration is not None:
            if not (math.isfinite(duration) and duration > 0):
                raise _expected("duration", "a duration longer than 0s", seconds_text(duration))
            factor = duration / self.total_duration_s
            changes["phases"] = tuple(
                attrs.evolve(p, duration_s=p.duration_s * factor) for p in self.phases
            )
            changes["faults"] = tuple(attrs.evolve(f, at_s=f.at_s * factor) for f in self.faults)
        if seed is not None:
            changes["seed"] = seed
        scenario: Scenario = build_under("", attrs.evolve, self, **changes)
        return scenario


def build_under(path: str, factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`factory(*args, **kwargs)`, its ScenarioError's path placed under `path`."""
    try:
        return factory(*args, **kwargs)
    except ScenarioError as err:
        raise err.under(path) from None
