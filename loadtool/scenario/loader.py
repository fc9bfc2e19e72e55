"""YAML -> Scenario, with every error pointing at a file, a line and a key path. Pure.

The document is composed (yaml.compose, SafeLoader), not loaded, so each node keeps its
position; values are read node by node. The loader checks shapes and units (a duration
where a duration belongs, known keys, no duplicates, the exactly-one-of rules); ranges
and cross-field rules live in the model, and their errors (which carry a key path) are
located afterwards by walking the same node tree.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from loadtool.units import parse_duration, parse_percent, parse_rate, parse_size

from .model import (
    AUTH_ONE_OF,
    POPULATION_ONE_OF,
    Arrival,
    Auth,
    Behaviour,
    Capacity,
    CommandFault,
    DropFault,
    Fault,
    FixedSize,
    MessageSize,
    NormalSize,
    Phase,
    Plan,
    Population,
    Reconnect,
    RestartServerFault,
    Scenario,
    ScenarioError,
    Target,
    UniformSize,
    build_under,
    join_path,
)
from .thresholds import Threshold, ThresholdError, parse_slo, parse_threshold

T = TypeVar("T")

ROOT_KEYS: Final = (
    "name",
    "description",
    "seed",
    "target",
    "population",
    "phases",
    "duration",
    "behaviour",
    "faults",
    "drain",
    "thresholds",
    "capacity",
)
TARGET_KEYS: Final = ("url", "urls", "dialect", "auth", "insecure", "ca_file")
AUTH_KEYS: Final = ("secret", "tokens", "none")
POPULATION_KEYS: Final = (
    "clients",
    "arrival",
    "rooms",
    "rooms_per_client",
    "spread",
    "zipf_s",
    "connect_rate",
)
ARRIVAL_KEYS: Final = ("rate", "lifetime", "max_clients")
PHASE_KEYS: Final = ("name", "duration", "clients", "ramp_from", "send_rate")
BEHAVIOUR_KEYS: Final = (
    "send_rate",
    "message_size",
    "heartbeat",
    "reconnect",
    "outbox",
    "resync",
)
SIZE_KEYS: Final = ("min", "max", "mean", "stddev")
RECONNECT_KEYS: Final = ("policy", "base", "cap")
FAULT_KEYS: Final = ("at", "drop", "restart_server", "command")
FAULT_ACTIONS: Final = ("drop", "restart_server", "command")
CAPACITY_KEYS: Final = (
    "vary",
    "start",
    "factor",
    "max_steps",
    "step_duration",
    "warmup",
    "resolution",
    "slo",
    "plan",
)
PLAN_KEYS: Final = ("users", "rooms", "rate", "fanout", "headroom")

DURATION: Final = "a duration such as 500ms, 10s or 5m"
RATE: Final = "a rate such as 10/s, 30/m or 5 (per second)"
PERCENT: Final = "a percentage such as 30% or 0.3"
_PATH_PART: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file.

    Raises:
        ScenarioError: naming the file (and line and key path where there is one).
    """
    filename = os.fspath(path)
    try:
        data = Path(filename).read_bytes()
    except OSError as err:
        raise ScenarioError(
            f"expected a readable scenario file, found {err.strerror or err}", file=filename
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ScenarioError(
            f"expected UTF-8 text, found byte 0x{data[err.start]:02x}", file=filename, line=line
        ) from None
    return _parse(text, filename, hashlib.sha256(data).hexdigest())


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    """Validate scenario YAML `text`; `filename` is what errors call it.

    Raises:
        ScenarioError: with file, line, key path, what was expected and what was found.
    """
    return _parse(text, filename, hashlib.sha256(text.encode("utf-8")).hexdigest())


def _parse(text: str, filename: str, sha256: str) -> Scenario:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = "; ".join(part for part in (err.context, err.problem) if part)
        raise ScenarioError(
            f"expected valid YAML, found a syntax error: {problem}",
            file=filename,
            line=None if mark is None else mark.line + 1,
        ) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow
        raise ScenarioError(
            f"expected valid YAML, found character {chr(err.character)!r}, which YAML does "
            "not allow",
            file=filename,
            line=text[: err.position].count("\n") + 1,
        ) from None
    if root is None:
        raise ScenarioError(
            "expected a mapping of scenario keys (name, population, ...), found an empty document",
            file=filename,
            line=1,
        )
    reader = _Reader(file=filename)
    try:
        scenario = reader.scenario(root)
    except ScenarioError as err:
        if err.file is not None:
            raise
        raise err.at(filename, _locate(root, err.path).start_mark.line + 1) from None
    return attrs.evolve(scenario, file=filename, sha256=sha256)


def _locate(root: Node, path: str) -> Node:
    """The deepest node along `path` (`phases[1].duration`) that exists in the document."""
    node = root
    for match in _PATH_PART.finditer(path):
        key, index = match.groups()
        if key is not None and isinstance(node, MappingNode):
            found = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key]
            if not found:
                break
            node = found[-1]
        elif index is not None and isinstance(node, SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
        else:
            break
    return node


_Entries = dict[str, tuple[Node, Node]]  # key -> (key node, value node)


@attrs.define
class _Reader:
    """Reads one document's nodes; every error it raises is already located."""

    file: str
    constructor: SafeConstructor = attrs.field(factory=SafeConstructor)

    # -- errors ---------------------------------------------------------------------------

    def error(self, node: Node, path: str, message: str) -> ScenarioError:
        return ScenarioError(message, path=path, file=self.file, line=node.start_mark.line + 1)

    def expected(self, node: Node, path: str, expected: str) -> ScenarioError:
        return self.error(node, path, f"expected {expected}, found {self.describe(node)}")

    def describe(self, node: Node) -> str:
        """What a node holds, as a person would say it: 'ten', 0, a list, nothing."""
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (ConstructorError, ValueError):
            return repr(node.value)
        if value is None:
            return "nothing" if node.value in ("", "~") else f"{node.value} (null)"
        if isinstance(value, bool):
            written: str = node.value
            if written.lower() in ("true", "false"):
                return written
            return f"{written!r} (YAML reads it as {str(value).lower()})"
        if isinstance(value, int | float):
            return str(node.value)
        if isinstance(value, str):
            return repr(value)
        return f"{node.value!r} (a {type(value).__name__})"

    # -- shapes ---------------------------------------------------------------------------

    def scalar(self, node: Node, path: str, expected: str) -> object:
        if not isinstance(node, ScalarNode):
            raise self.expected(node, path, expected)
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ConstructorError, ValueError):
            raise self.error(
                node, path, f"expected {expected}, found {node.value!r} ({node.tag})"
            ) from None

    def mapping(self, node: Node, path: str, keys: Sequence[str], what: str) -> _Entries:
        """The entries of a mapping node, refusing unknown and duplicate keys."""
        if not isinstance(node, MappingNode):
            raise self.expected(node, path, what)
        entries: _Entries = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, path, "a key name")
            if not isinstance(key, str):
                raise self.expected(key_node, path, "a key name")
            key_path = join_path(path, key)
            if key in entries:
                first = entries[key][0].start_mark.line + 1
                raise self.error(
                    key_node,
                    key_path,
                    f"duplicate key: expected each key once, found {key!r} again "
                    f"(first on line {first})",
                )
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self.error(
                    key_node,
                    key_path,
                    f"unknown key {key!r}{hint} (expected one of: {', '.join(keys)})",
                )
            entries[key] = (key_node, value_node)
        return entries

    def sequence(self, node: Node, path: str, what: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.expected(node, path, what)
        return list(node.value)

    def one_of(
        self, entries: _Entries, node: Node, path: str, keys: Sequence[str], rule: str
    ) -> str:
        """The one key of `keys` present in `entries` (an exactly-one-of rule)."""
        present = [key for key in keys if key in entries]
        if len(present) == 1:
            return present[0]
        if not present:
            raise self.error(node, join_path(path, keys[0]), f"expected {rule}, found neither")
        second = entries[present[1]][0]
        names = [repr(key) for key in present]
        found = f"{', '.join(names[:-1])} and {names[-1]}"
        raise self.error(second, join_path(path, present[1]), f"expected {rule}, found {found}")

    def required(self, entries: _Entries, node: Node, path: str, key: str, what: str) -> Node:
        if key not in entries:
            raise self.error(node, join_path(path, key), f"expected {what}, found no {key!r} key")
        return entries[key][1]

    # -- values ---------------------------------------------------------------------------

    def optional(
        self,
        entries: _Entries,
        path: str,
        key: str,
        read: Callable[[Node, str], T],
    ) -> dict[str, T]:
        """{key: value} if `key` is present, else {} (so the model's default applies)."""
        if key not in entries:
            return {}
        return {key: read(entries[key][1], join_path(path, key))}

    def string(self, node: Node, path: str, what: str = "a string") -> str:
        value = self.scalar(node, path, what)
        if not isinstance(value, str):
            raise self.expected(node, path, what)
        return value

    def text(self, node: Node, path: str) -> str:
        """Free text: any scalar, as written."""
        if not isinstance(node, ScalarNode):
            raise self.expected(node, path, "text")
        return str(node.value)

    def integer(self, node: Node, path: str, what: str = "a whole number") -> int:
        value = self.scalar(node, path, what)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.expected(node, path, what)
        return value

    def number(self, node: Node, path: str, what: str = "a number") -> float:
        value = self.scalar(node, path, what)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.expected(node, path, what)
        return float(value)

    def boolean(self, node: Node, path: str) -> bool:
        value = self.scalar(node, path, "true or false")
        if not isinstance(value, bool):
            raise self.expected(node, path, "true or false")
        return value

    def _unit(self, node: Node, path: str, what: str, parse: Callable[[str], float]) -> float:
        value = self.scalar(node, path, what)
        if isinstance(value, bool):
            raise self.expected(node, path, what)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return parse(value)
            except ValueError:
                pass
        raise self.expected(node, path, what)

    def duration(self, node: Node, path: str) -> float:
        return self._unit(node, path, DURATION, parse_duration)

    def rate(self, node: Node, path: str) -> float:
        return self._unit(node, path, RATE, parse_rate)

    def percent(self, node: Node, path: str) -> float:
        return self._unit(node, path, PERCENT, parse_percent)

    def size(self, node: Node, path: str) -> int:
        what = "a size in characters such as 128 or 1KiB"
        value = self.scalar(node, path, what)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return parse_size(value)
            except ValueError:
                pass
        raise self.expected(node, path, what)

    def choice(self, node: Node, path: str) -> str:
        """An enum value as written (`no` stays 'no'); the model says which are allowed."""
        if not isinstance(node, ScalarNode):
            raise self.expected(node, path, "a name")
        return str(node.value)

    def heartbeat(self, node: Node, path: str) -> float:
        """A duration, or 0 / off / false for no heartbeat."""
        value = self.scalar(node, path, f"{DURATION}, or off")
        if value is False or value == "off":
            return 0.0
        return self.duration(node, path)

    # -- sections -------------------------------------------------------------------------

    def scenario(self, root: Node) -> Scenario:
        entries = self.mapping(root, "", ROOT_KEYS, "a mapping of scenario keys")
        name_node = self.required(entries, root, "", "name", "a scenario name such as 'fanout'")
        population_node = self.required(
            entries, root, "", "population", "a population such as {clients: 10}"
        )
        timing = self.one_of(
            entries, root, "", ("duration", "phases"), "exactly one of 'duration' or 'phases'"
        )
        phases: tuple[Phase, ...]
        if timing == "duration":
            phases = (build_under("", Phase, duration_s=self.duration(*_at(entries, "duration"))),)
        else:
            phases = self.phases(*_at(entries, "phases"))
        kwargs: dict[str, Any] = {
            "name": self.string(name_node, "name", "a scenario name such as 'fanout'"),
            "population": self.population(population_node, "population"),
            "phases": phases,
        }
        kwargs |= self.optional(entries, "", "description", self.text)
        kwargs |= self.optional(entries, "", "seed", self.integer)
        kwargs |= self.optional(entries, "", "target", self.target)
        kwargs |= self.optional(entries, "", "behaviour", self.behaviour)
        kwargs |= self.optional(entries, "", "faults", self.faults)
        kwargs |= _renamed(self.optional(entries, "", "drain", self.duration), drain="drain_s")
        kwargs |= self.optional(entries, "", "thresholds", self.thresholds)
        kwargs |= self.optional(entries, "", "capacity", self.capacity)
        return build_under("", Scenario, **kwargs)

    def target(self, node: Node, path: str) -> Target:
        entries = self.mapping(node, path, TARGET_KEYS, "a target mapping such as {url: ...}")
        which = self.one_of(entries, node, path, ("url", "urls"), "exactly one of 'url' or 'urls'")
        if which == "url":
            urls = [self.string(*_at(entries, "url", path), "a ws:// or wss:// URL")]
        else:
            list_node, list_path = _at(entries, "urls", path)
            items = self.sequence(list_node, list_path, "a list of ws:// or wss:// URLs")
            if not items:
                raise self.expected(list_node, list_path, "at least one URL")
            urls = [
                self.string(item, f"{list_path}[{i}]", "a ws:// or wss:// URL")
                for i, item in enumerate(items)
            ]
        kwargs: dict[str, Any] = {"urls": urls}
        kwargs |= self.optional(entries, path, "dialect", self.choice)
        kwargs |= self.optional(entries, path, "auth", self.auth)
        kwargs |= self.optional(entries, path, "insecure", self.boolean)
        kwargs |= self.optional(entries, path, "ca_file", self.string)
        try:
            return build_under(path, Target, **kwargs)
        except ScenarioError as err:
            if which == "url" and err.path == join_path(path, "urls[0]"):
                raise ScenarioError(err.message, path=join_path(path, "url")) from None
            raise

    def auth(self, node: Node, path: str) -> Auth:
        entries = self.mapping(node, path, AUTH_KEYS, "an auth mapping such as {secret: ...}")
        which = self.one_of(entries, node, path, AUTH_KEYS, AUTH_ONE_OF)
        value_node, value_path = _at(entries, which, path)
        if which == "secret":
            return build_under(path, Auth, secret=self.string(value_node, value_path))
        if which == "tokens":
            items = self.sequence(value_node, value_path, "a list of tokens")
            tokens = [
                self.string(item, f"{value_path}[{i}]", "a token") for i, item in enumerate(items)
            ]
            return build_under(path, Auth, tokens=tokens)
        if not self.boolean(value_node, value_path):
            raise self.expected(value_node, value_path, "true (no token at all)")
        return Auth(none=True)

    def population(self, node: Node, path: str) -> Population:
        entries = self.mapping(node, path, POPULATION_KEYS, "a population such as {clients: 10}")
        self.one_of(entries, node, path, ("clients", "arrival"), POPULATION_ONE_OF)
        kwargs: dict[str, Any] = {}
        kwargs |= self.optional(entries, path, "clients", self.integer)
        kwargs |= self.optional(entries, path, "arrival", self.arrival)
        kwargs |= self.optional(entries, path, "rooms", self.integer)
        kwargs |= self.optional(entries, path, "rooms_per_client", self.integer)
        kwargs |= self.optional(entries, path, "spread", self.choice)
        kwargs |= self.optional(entries, path, "zipf_s", self.number)
        kwargs |= self.optional(entries, path, "connect_rate", self.rate)
        if "zipf_s" in entries and kwargs.get("spread") != "zipf":
            key_node = entries["zipf_s"][0]
            raise self.error(
                key_node,
                join_path(path, "zipf_s"),
                f"expected zipf_s only with spread: zipf, found spread: "
                f"{kwargs.get('spread', 'round-robin')}",
            )
        return build_under(path, Population, **kwargs)

    def arrival(self, node: Node, path: str) -> Arrival:
        entries = self.mapping(node, path, ARRIVAL_KEYS, "an arrival mapping {rate, lifetime}")
        return build_under(
            path,
            Arrival,
            rate=self.rate(self.required(entries, node, path, "rate", RATE), f"{path}.rate"),
            lifetime_s=self.duration(
                self.required(entries, node, path, "lifetime", DURATION), f"{path}.lifetime"
            ),
            max_clients=self.integer(
                self.required(entries, node, path, "max_clients", "a client count"),
                f"{path}.max_clients",
            ),
        )

    def phases(self, node: Node, path: str) -> tuple[Phase, ...]:
        items = self.sequence(node, path, "a list of phases")
        if not items:
            raise self.expected(node, path, "at least one phase")
        return tuple(self.phase(item, f"{path}[{i}]", i) for i, item in enumerate(items))

    def phase(self, node: Node, path: str, index: int) -> Phase:
        entries = self.mapping(node, path, PHASE_KEYS, "a phase such as {name: ..., duration: ...}")
        duration_node = self.required(entries, node, path, "duration", DURATION)
        kwargs: dict[str, Any] = {
            "name": f"phase-{index}",
            "duration_s": self.duration(duration_node, f"{path}.duration"),
        }
        kwargs |= self.optional(entries, path, "name", self.text)
        kwargs |= self.optional(entries, path, "clients", self.integer)
        kwargs |= self.optional(entries, path, "ramp_from", self.integer)
        kwargs |= self.optional(entries, path, "send_rate", self.rate)
        return build_under(path, Phase, **kwargs)

    def behaviour(self, node: Node, path: str) -> Behaviour:
        entries = self.mapping(node, path, BEHAVIOUR_KEYS, "a behaviour mapping")
        kwargs: dict[str, Any] = {}
        kwargs |= self.optional(entries, path, "send_rate", self.rate)
        kwargs |= self.optional(entries, path, "message_size", self.message_size)
        kwargs |= _renamed(
            self.optional(entries, path, "heartbeat", self.heartbeat), heartbeat="heartbeat_s"
        )
        kwargs |= self.optional(entries, path, "reconnect", self.reconnect)
        kwargs |= self.optional(entries, path, "outbox", self.boolean)
        kwargs |= self.optional(entries, path, "resync", self.boolean)
        return build_under(path, Behaviour, **kwargs)

    def message_size(self, node: Node, path: str) -> MessageSize:
        if not isinstance(node, MappingNode):
            return build_under(path, FixedSize, size=self.size(node, path))
        entries = self.mapping(node, path, SIZE_KEYS, "a size or {min, max} or {mean, stddev}")
        uniform = [key for key in ("min", "max") if key in entries]
        normal = [key for key in ("mean", "stddev") if key in entries]
        if uniform and normal:
            raise self.error(
                entries[normal[0]][0],
                join_path(path, normal[0]),
                "expected either {min, max} (uniform) or {mean, stddev} (normal), "
                f"found {uniform[0]!r} and {normal[0]!r}",
            )
        what = "{min, max} (uniform) or {mean, stddev} (normal)"
        if uniform or not normal:
            low = self.size(self.required(entries, node, path, "min", what), f"{path}.min")
            high = self.size(self.required(entries, node, path, "max", what), f"{path}.max")
            return build_under(path, UniformSize, min=low, max=high)
        mean = self.number(self.required(entries, node, path, "mean", what), f"{path}.mean")
        stddev = self.number(self.required(entries, node, path, "stddev", what), f"{path}.stddev")
        return build_under(path, NormalSize, mean=mean, stddev=stddev)

    def reconnect(self, node: Node, path: str) -> Reconnect:
        entries = self.mapping(node, path, RECONNECT_KEYS, "a reconnect mapping {policy, ...}")
        kwargs: dict[str, Any] = {}
        kwargs |= self.optional(entries, path, "policy", self.choice)
        kwargs |= _renamed(self.optional(entries, path, "base", self.duration), base="base_s")
        kwargs |= _renamed(self.optional(entries, path, "cap", self.duration), cap="cap_s")
        return build_under(path, Reconnect, **kwargs)

    def faults(self, node: Node, path: str) -> tuple[Fault, ...]:
        items = self.sequence(node, path, "a list of faults")
        return tuple(self.fault(item, f"{path}[{i}]") for i, item in enumerate(items))

    def fault(self, node: Node, path: str) -> Fault:
        entries = self.mapping(node, path, FAULT_KEYS, "a fault such as {at: 10s, drop: 30%}")
        at_s = self.duration(self.required(entries, node, path, "at", DURATION), f"{path}.at")
        rule = "exactly one of 'drop', 'restart_server' or 'command'"
        action = self.one_of(entries, node, path, FAULT_ACTIONS, rule)
        value_node, value_path = _at(entries, action, path)
        if action == "drop":
            fraction = self.percent(value_node, value_path)
            return build_under(path, DropFault, at_s=at_s, fraction=fraction)
        if action == "restart_server":
            if not self.boolean(value_node, value_path):
                raise self.expected(value_node, value_path, "true")
            return build_under(path, RestartServerFault, at_s=at_s)
        return build_under(path, CommandFault, at_s=at_s, argv=self.command(value_node, value_path))

    def command(self, node: Node, path: str) -> list[str]:
        """A command as a list of arguments, or one string split like a shell would (no
        shell runs it)."""
        what = "a command: a list of arguments or a string"
        if isinstance(node, SequenceNode):
            return [self.text(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        text = self.string(node, path, what)
        try:
            return shlex.split(text)
        except ValueError as err:
            raise self.error(node, path, f"expected {what}, found {text!r} ({err})") from None

    def thresholds(self, node: Node, path: str) -> tuple[Threshold, ...]:
        items = self.sequence(node, path, "a list of thresholds such as 'lost == 0'")
        result = []
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            text = self.string(item, item_path, "a threshold such as 'lost == 0'")
            try:
                result.append(parse_threshold(text))
            except ThresholdError as err:
                raise self.error(item, item_path, err.message) from None
        return tuple(result)

    def capacity(self, node: Node, path: str) -> Capacity:
        entries = self.mapping(
            node, path, CAPACITY_KEYS, "a capacity mapping such as {vary: clients, start: 50}"
        )
        kwargs: dict[str, Any] = {}
        kwargs |= self.optional(entries, path, "vary", self.choice)
        kwargs |= self.optional(entries, path, "start", self.rate)
        kwargs |= self.optional(entries, path, "factor", self.number)
        kwargs |= self.optional(entries, path, "max_steps", self.integer)
        kwargs |= _renamed(
            self.optional(entries, path, "step_duration", self.duration),
            step_duration="step_duration_s",
        )
        kwargs |= _renamed(self.optional(entries, path, "warmup", self.duration), warmup="warmup_s")
        kwargs |= self.optional(entries, path, "resolution", self.percent)
        kwargs |= self.optional(entries, path, "slo", self.slo)
        kwargs |= self.optional(entries, path, "plan", self.plan)
        return build_under(path, Capacity, **kwargs)

    def slo(self, node: Node, path: str) -> tuple[Threshold, ...]:
        """A list of thresholds, or one string of them joined by commas."""
        if isinstance(node, SequenceNode):
            return self.thresholds(node, path)
        text = self.string(node, path, "an SLO such as 'latency.p99<100ms,lost==0' or a list")
        try:
            return parse_slo(text)
        except ThresholdError as err:
            raise self.error(node, path, err.message) from None

    def plan(self, node: Node, path: str) -> Plan:
        entries = self.mapping(
            node, path, PLAN_KEYS, "a plan such as {users: 50000, rooms: 5000, rate: 0.2/s}"
        )
        kwargs: dict[str, Any] = {
            "users": self.integer(
                self.required(entries, node, path, "users", "a number of users"), f"{path}.users"
            ),
            "rate": self.rate(
                self.required(entries, node, path, "rate", f"{RATE} per user"), f"{path}.rate"
            ),
        }
        kwargs |= self.optional(entries, path, "rooms", self.integer)
        kwargs |= self.optional(entries, path, "fanout", self.number)
        kwargs |= self.optional(entries, path, "headroom", self.percent)
        return build_under(path, Plan, **kwargs)


def _at(entries: _Entries, key: str, path: str = "") -> tuple[Node, str]:
    """The value node of `key` and its key path."""
    return entries[key][1], join_path(path, key)


def _renamed(values: dict[str, T], **names: str) -> dict[str, T]:
    """Rename YAML keys to model attribute names (`drain` -> `drain_s`)."""
    return {names.get(key, key): value for key, value in values.items()}
