"""YAML -> Scenario: every error names the file, the line, the key path, what was expected
and what was found; the shipped scenarios load."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from loadtool.scenario import (
    Auth,
    Capacity,
    CommandFault,
    Dialect,
    DropFault,
    FixedSize,
    NormalSize,
    Phase,
    Plan,
    ReconnectPolicy,
    RestartServerFault,
    Scenario,
    ScenarioError,
    Spread,
    UniformSize,
    Vary,
    load_scenario,
    parse_scenario,
)

FILE = "scenarios/x.yaml"
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
BASE = """\
name: t
population:
  clients: 10
duration: 10s
"""


def parse(text: str) -> Scenario:
    return parse_scenario(textwrap.dedent(text), FILE)


def error_of(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse(text)
    return info.value


def test_the_documented_example_message() -> None:
    text = """\
        name: x
        population:
          clients: 10
        phases:
          - name: warm
            duration: 5s
          - name: steady
            duration: ten
        """
    err = error_of(text)
    assert str(err) == (
        "scenarios/x.yaml:8: phases[1].duration: "
        "expected a duration such as 500ms, 10s or 5m, found 'ten'"
    )
    assert (err.file, err.line, err.path) == (FILE, 8, "phases[1].duration")
    assert err.message == "expected a duration such as 500ms, 10s or 5m, found 'ten'"


# (yaml, line, key path, message): each is a whole document.
MALFORMED = {
    "missing name": (
        "population: {clients: 1}\nduration: 1s\n",
        1,
        "name",
        "expected a scenario name such as 'fanout', found no 'name' key",
    ),
    "bad name": (
        "name: Fan Out\npopulation: {clients: 1}\nduration: 1s\n",
        1,
        "name",
        "expected a name of a-z, 0-9 and '-' such as 'fanout', found 'Fan Out'",
    ),
    "name not a string": (
        "name: [a]\npopulation: {clients: 1}\nduration: 1s\n",
        1,
        "name",
        "expected a scenario name such as 'fanout', found a list",
    ),
    "missing population": (
        "name: t\nduration: 1s\n",
        1,
        "population",
        "expected a population such as {clients: 10}, found no 'population' key",
    ),
    "population not a mapping": (
        "name: t\npopulation: 10\nduration: 1s\n",
        2,
        "population",
        "expected a population such as {clients: 10}, found 10",
    ),
    "unknown root key with a suggestion": (
        BASE + "behavior:\n  send_rate: 1/s\n",
        5,
        "behavior",
        "unknown key 'behavior'; did you mean 'behaviour'? (expected one of: name, "
        "description, seed, target, population, phases, duration, behaviour, faults, "
        "drain, thresholds, capacity)",
    ),
    "unknown nested key with a suggestion": (
        "name: t\npopulation:\n  clients: 10\n  room: 3\nduration: 1s\n",
        4,
        "population.room",
        "unknown key 'room'; did you mean 'rooms'?",
    ),
    "unknown key without a suggestion": (
        BASE + "frobnicate: 1\n",
        5,
        "frobnicate",
        "unknown key 'frobnicate' (expected one of:",
    ),
    "duplicate root key": (
        BASE + "duration: 20s\n",
        5,
        "duration",
        "duplicate key: expected each key once, found 'duration' again (first on line 4)",
    ),
    "duplicate nested key": (
        "name: t\npopulation:\n  clients: 10\n  clients: 20\nduration: 1s\n",
        4,
        "population.clients",
        "found 'clients' again (first on line 3)",
    ),
    "non-string key": (
        BASE + "1: x\n",
        5,
        "",
        "expected a key name, found 1",
    ),
    "clients zero": (
        "name: t\npopulation:\n  clients: 0\nduration: 1s\n",
        3,
        "population.clients",
        "expected a whole number of at least 1, found 0",
    ),
    "clients not a number": (
        "name: t\npopulation:\n  clients: many\nduration: 1s\n",
        3,
        "population.clients",
        "expected a whole number, found 'many'",
    ),
    "clients a float": (
        "name: t\npopulation:\n  clients: 1.5\nduration: 1s\n",
        3,
        "population.clients",
        "expected a whole number, found 1.5",
    ),
    "seed a YAML boolean": (
        BASE + "seed: yes\n",
        5,
        "seed",
        "expected a whole number, found 'yes' (YAML reads it as true)",
    ),
    "rooms_per_client above rooms": (
        "name: t\npopulation:\n  clients: 10\n  rooms: 2\n  rooms_per_client: 3\nduration: 1s\n",
        5,
        "population.rooms_per_client",
        "expected at most rooms (2), found 3",
    ),
    "spread misspelt": (
        "name: t\npopulation:\n  clients: 10\n  spread: round_robin\nduration: 1s\n",
        4,
        "population.spread",
        "expected one of round-robin, uniform, zipf, found 'round_robin'; "
        "did you mean 'round-robin'?",
    ),
    "spread a number": (
        "name: t\npopulation:\n  clients: 10\n  spread: 3\nduration: 1s\n",
        4,
        "population.spread",
        "expected one of round-robin, uniform, zipf, found '3'",
    ),
    "dialect a YAML boolean": (
        BASE + "target:\n  url: ws://a/\n  dialect: no\n",
        7,
        "target.dialect",
        "expected one of v1, seed, found 'no'",
    ),
    "policy a list": (
        BASE + "behaviour:\n  reconnect:\n    policy: [none]\n",
        7,
        "behaviour.reconnect.policy",
        "expected a name, found a list",
    ),
    "zipf_s without zipf": (
        "name: t\npopulation:\n  clients: 10\n  spread: uniform\n  zipf_s: 1.2\nduration: 1s\n",
        5,
        "population.zipf_s",
        "expected zipf_s only with spread: zipf, found spread: uniform",
    ),
    "zipf_s not positive": (
        "name: t\npopulation:\n  clients: 10\n  spread: zipf\n  zipf_s: 0\nduration: 1s\n",
        5,
        "population.zipf_s",
        "expected a number above 0, found 0",
    ),
    "connect_rate zero": (
        "name: t\npopulation:\n  clients: 10\n  connect_rate: 0/s\nduration: 1s\n",
        4,
        "population.connect_rate",
        "expected a rate above 0/s, found 0/s",
    ),
    "connect_rate words": (
        "name: t\npopulation:\n  clients: 10\n  connect_rate: quick\nduration: 1s\n",
        4,
        "population.connect_rate",
        "expected a rate such as 10/s, 30/m or 5 (per second), found 'quick'",
    ),
    "arrival missing lifetime": (
        "name: t\npopulation:\n  arrival:\n    rate: 10/s\n    max_clients: 5\nduration: 1s\n",
        4,
        "population.arrival.lifetime",
        "expected a duration such as 500ms, 10s or 5m, found no 'lifetime' key",
    ),
    "arrival rate zero": (
        "name: t\npopulation:\n  arrival: {rate: 0, lifetime: 5s, max_clients: 5}\nduration: 1s\n",
        3,
        "population.arrival.rate",
        "expected a rate above 0/s, found 0/s",
    ),
    "phases empty": (
        "name: t\npopulation: {clients: 1}\nphases: []\n",
        3,
        "phases",
        "expected at least one phase, found a list",
    ),
    "phases not a list": (
        "name: t\npopulation: {clients: 1}\nphases: {duration: 1s}\n",
        3,
        "phases",
        "expected a list of phases, found a mapping",
    ),
    "phase without duration": (
        "name: t\npopulation: {clients: 1}\nphases:\n  - name: a\n    clients: 1\n",
        4,
        "phases[0].duration",
        "expected a duration such as 500ms, 10s or 5m, found no 'duration' key",
    ),
    "phase duration zero": (
        "name: t\npopulation: {clients: 1}\nphases:\n  - duration: 0s\n",
        4,
        "phases[0].duration",
        "expected a duration longer than 0s, found 0s",
    ),
    "phase clients above the population": (
        "name: t\npopulation: {clients: 10}\nphases:\n  - duration: 1s\n  - duration: 1s\n"
        "    clients: 11\n",
        6,
        "phases[1].clients",
        "expected at most population.clients (10), found 11",
    ),
    "phase ramp_from above the population": (
        "name: t\npopulation: {clients: 10}\nphases:\n  - duration: 1s\n    ramp_from: 12\n",
        5,
        "phases[0].ramp_from",
        "expected at most population.clients (10), found 12",
    ),
    "phase clients in the open model": (
        "name: t\npopulation:\n  arrival: {rate: 1/s, lifetime: 5s, max_clients: 5}\n"
        "phases:\n  - duration: 1s\n    clients: 3\n",
        6,
        "phases[0].clients",
        "expected no client count with the open model (population.arrival), found 3",
    ),
    "phase send_rate negative": (
        "name: t\npopulation: {clients: 1}\nphases:\n  - duration: 1s\n    send_rate: -1\n",
        5,
        "phases[0].send_rate",
        "expected a rate of at least 0/s, found -1/s",
    ),
    "phase unknown key": (
        "name: t\npopulation: {clients: 1}\nphases:\n  - duration: 1s\n    sendrate: 1\n",
        5,
        "phases[0].sendrate",
        "unknown key 'sendrate'; did you mean 'send_rate'?",
    ),
    "drain not a duration": (
        BASE + "drain: -1s\n",
        5,
        "drain",
        "expected a duration such as 500ms, 10s or 5m, found '-1s'",
    ),
    "drain negative number": (
        BASE + "drain: -1\n",
        5,
        "drain",
        "expected a duration at least 0s, found -1.0s",
    ),
    "duration empty": (
        "name: t\npopulation: {clients: 1}\nduration:\n",
        3,
        "duration",
        "expected a duration such as 500ms, 10s or 5m, found nothing",
    ),
    "send_rate words": (
        BASE + "behaviour:\n  send_rate: fast\n",
        6,
        "behaviour.send_rate",
        "expected a rate such as 10/s, 30/m or 5 (per second), found 'fast'",
    ),
    "heartbeat words": (
        BASE + "behaviour:\n  heartbeat: often\n",
        6,
        "behaviour.heartbeat",
        "expected a duration such as 500ms, 10s or 5m, found 'often'",
    ),
    "message_size mixes the forms": (
        BASE + "behaviour:\n  message_size: {min: 1, mean: 4}\n",
        6,
        "behaviour.message_size.mean",
        "expected either {min, max} (uniform) or {mean, stddev} (normal), found 'min' and 'mean'",
    ),
    "message_size missing max": (
        BASE + "behaviour:\n  message_size:\n    min: 10\n",
        7,
        "behaviour.message_size.max",
        "expected {min, max} (uniform) or {mean, stddev} (normal), found no 'max' key",
    ),
    "message_size max below min": (
        BASE + "behaviour:\n  message_size:\n    min: 10\n    max: 5\n",
        8,
        "behaviour.message_size.max",
        "expected at least min (10), found 5",
    ),
    "message_size zero": (
        BASE + "behaviour:\n  message_size: 0\n",
        6,
        "behaviour.message_size",
        "expected a whole number of at least 1, found 0",
    ),
    "message_size words": (
        BASE + "behaviour:\n  message_size: large\n",
        6,
        "behaviour.message_size",
        "expected a size in characters such as 128 or 1KiB, found 'large'",
    ),
    "reconnect policy misspelt": (
        BASE + "behaviour:\n  reconnect:\n    policy: full_jitter\n",
        7,
        "behaviour.reconnect.policy",
        "expected one of seed, exponential, full-jitter, decorrelated-jitter, none, "
        "found 'full_jitter'; did you mean 'full-jitter'?",
    ),
    "reconnect cap below base": (
        BASE + "behaviour:\n  reconnect:\n    base: 2s\n    cap: 1s\n",
        8,
        "behaviour.reconnect.cap",
        "expected at least base (2s), found 1s",
    ),
    "outbox not a boolean": (
        BASE + "behaviour:\n  outbox: sometimes\n",
        6,
        "behaviour.outbox",
        "expected true or false, found 'sometimes'",
    ),
    "target url not websocket": (
        BASE + "target:\n  url: http://example.com/\n",
        6,
        "target.url",
        "expected a ws:// or wss:// URL, found 'http://example.com/'",
    ),
    "target urls item not websocket": (
        BASE + "target:\n  urls:\n    - ws://a:1/\n    - b:2\n",
        8,
        "target.urls[1]",
        "expected a ws:// or wss:// URL, found 'b:2'",
    ),
    "target urls empty": (
        BASE + "target:\n  urls: []\n",
        6,
        "target.urls",
        "expected at least one URL, found a list",
    ),
    "target dialect misspelt": (
        BASE + "target:\n  url: ws://a/\n  dialect: sead\n",
        7,
        "target.dialect",
        "expected one of v1, seed, found 'sead'; did you mean 'seed'?",
    ),
    "target ca_file a list": (
        BASE + "target:\n  url: wss://a/\n  ca_file: [a]\n",
        7,
        "target.ca_file",
        "expected a string, found a list",
    ),
    "seed dialect with many rooms": (
        "name: t\npopulation:\n  clients: 10\n  rooms: 4\nduration: 1s\n"
        "target:\n  url: ws://a/\n  dialect: seed\n",
        4,
        "population.rooms",
        "expected 1 with the seed dialect (one broadcast room), found 4",
    ),
    "auth none false": (
        BASE + "target:\n  url: ws://a/\n  auth:\n    none: false\n",
        8,
        "target.auth.none",
        "expected true (no token at all), found false",
    ),
    "auth tokens empty": (
        BASE + "target:\n  url: ws://a/\n  auth:\n    tokens: []\n",
        8,
        "target.auth.tokens",
        "expected at least one token, found an empty list",
    ),
    "fault without at": (
        BASE + "faults:\n  - drop: 10%\n",
        6,
        "faults[0].at",
        "expected a duration such as 500ms, 10s or 5m, found no 'at' key",
    ),
    "fault after the run": (
        BASE + "faults:\n  - at: 11s\n    drop: 10%\n",
        6,
        "faults[0].at",
        "expected a time within the run (0s to 10s), found 11s",
    ),
    "drop above 100%": (
        BASE + "faults:\n  - at: 1s\n    drop: 150%\n",
        7,
        "faults[0].drop",
        "expected a percentage above 0% and at most 100%, found 150%",
    ),
    "drop zero": (
        BASE + "faults:\n  - at: 1s\n    drop: 0\n",
        7,
        "faults[0].drop",
        "expected a percentage above 0% and at most 100%, found 0%",
    ),
    "drop words": (
        BASE + "faults:\n  - at: 1s\n    drop: lots\n",
        7,
        "faults[0].drop",
        "expected a percentage such as 30% or 0.3, found 'lots'",
    ),
    "restart_server false": (
        BASE + "faults:\n  - at: 1s\n    restart_server: false\n",
        7,
        "faults[0].restart_server",
        "expected true, found false",
    ),
    "restart_server with a foreign target": (
        BASE + "target: {url: 'ws://a/'}\nfaults:\n  - at: 1s\n    restart_server: true\n",
        8,
        "faults[0].restart_server",
        "expected the embedded server (no target url); use 'command' for a foreign one, "
        "found target ws://a/",
    ),
    "command unterminated quote": (
        BASE + "faults:\n  - at: 1s\n    command: echo 'hi\n",
        7,
        "faults[0].command",
        'expected a command: a list of arguments or a string, found "echo \'hi" '
        "(No closing quotation)",
    ),
    "command empty list": (
        BASE + "faults:\n  - at: 1s\n    command: []\n",
        7,
        "faults[0].command",
        "expected a command to run, found an empty command",
    ),
    "faults not a list": (
        BASE + "faults:\n  at: 1s\n",
        6,
        "faults",
        "expected a list of faults, found a mapping",
    ),
    "threshold unknown metric": (
        BASE + "thresholds:\n  - lost == 0\n  - latncy.p99 < 150ms\n",
        7,
        "thresholds[1]",
        "expected a metric name, found 'latncy.p99'; did you mean 'latency.p99'? "
        "Known metrics: latency.p50",
    ),
    "threshold single equals": (
        BASE + "thresholds:\n  - lost = 0\n",
        6,
        "thresholds[0]",
        "found '='; use '=='",
    ),
    "threshold bad unit": (
        BASE + "thresholds:\n  - errors.rate < 5ms\n",
        6,
        "thresholds[0]",
        "expected a fraction or a percentage such as 0.001 or 0.1%, found '5ms'",
    ),
    "threshold a mapping": (
        BASE + "thresholds:\n  - lost: 0\n",
        6,
        "thresholds[0]",
        "expected a threshold such as 'lost == 0', found a mapping",
    ),
    "top level a list": (
        "- name: t\n",
        1,
        "",
        "expected a mapping of scenario keys, found a list",
    ),
    "empty document": (
        "",
        1,
        "",
        "expected a mapping of scenario keys (name, population, ...), found an empty document",
    ),
    "unknown YAML tag": (
        BASE + "seed: !!python/object:os.system x\n",
        5,
        "seed",
        "expected a whole number, found 'x' (tag:yaml.org,2002:python/object:os.system)",
    ),
}


@pytest.mark.parametrize(("text", "line", "path", "message"), MALFORMED.values(), ids=MALFORMED)
def test_malformed(text: str, line: int, path: str, message: str) -> None:
    err = error_of(text)
    assert err.file == FILE
    assert err.line == line, str(err)
    assert err.path == path, str(err)
    assert message in err.message, str(err)
    prefix = f"{FILE}:{line}: {path}: " if path else f"{FILE}:{line}: "
    assert str(err).startswith(prefix), str(err)


# -- exactly-one-of rules ----------------------------------------------------------------

ONE_OF = {
    "duration and phases": (
        BASE + "phases:\n  - duration: 1s\n",
        5,
        "phases",
        "expected exactly one of 'duration' or 'phases', found 'duration' and 'phases'",
    ),
    "neither duration nor phases": (
        "name: t\npopulation: {clients: 1}\n",
        1,
        "duration",
        "expected exactly one of 'duration' or 'phases', found neither",
    ),
    "url and urls": (
        BASE + "target:\n  url: ws://a/\n  urls: [ws://b/]\n",
        7,
        "target.urls",
        "expected exactly one of 'url' or 'urls', found 'url' and 'urls'",
    ),
    "neither url nor urls": (
        BASE + "target:\n  dialect: seed\n",
        6,
        "target.url",
        "expected exactly one of 'url' or 'urls', found neither",
    ),
    "clients and arrival": (
        "name: t\npopulation:\n  clients: 3\n  arrival: {rate: 1/s, lifetime: 1s, max_clients: 2}\n"
        "duration: 1s\n",
        4,
        "population.arrival",
        "expected exactly one of 'clients' (closed model) or 'arrival' (open model), "
        "found 'clients' and 'arrival'",
    ),
    "neither clients nor arrival": (
        "name: t\npopulation:\n  rooms: 3\nduration: 1s\n",
        3,
        "population.clients",
        "expected exactly one of 'clients' (closed model) or 'arrival' (open model), found neither",
    ),
    "secret and tokens": (
        BASE + "target:\n  url: ws://a/\n  auth:\n    secret: s3cret\n    tokens: [a]\n",
        9,
        "target.auth.tokens",
        "expected exactly one of 'secret', 'tokens' or 'none: true', found 'secret' and 'tokens'",
    ),
    "secret, tokens and none": (
        BASE + "target:\n  url: ws://a/\n  auth: {none: true, tokens: [a], secret: s}\n",
        7,
        "target.auth.tokens",
        "found 'secret', 'tokens' and 'none'",
    ),
    "no auth method": (
        BASE + "target:\n  url: ws://a/\n  auth: {}\n",
        7,
        "target.auth.secret",
        "expected exactly one of 'secret', 'tokens' or 'none: true', found neither",
    ),
    "drop and command": (
        BASE + "faults:\n  - at: 1s\n    drop: 10%\n    command: [true]\n",
        8,
        "faults[0].command",
        "expected exactly one of 'drop', 'restart_server' or 'command', found 'drop' and 'command'",
    ),
    "no fault action": (
        BASE + "faults:\n  - at: 1s\n",
        6,
        "faults[0].drop",
        "expected exactly one of 'drop', 'restart_server' or 'command', found neither",
    ),
}


@pytest.mark.parametrize(("text", "line", "path", "message"), ONE_OF.values(), ids=ONE_OF)
def test_exactly_one_of(text: str, line: int, path: str, message: str) -> None:
    err = error_of(text)
    assert (err.file, err.line, err.path) == (FILE, line, path), str(err)
    assert message in err.message, str(err)


# -- YAML syntax -------------------------------------------------------------------------


def test_yaml_forbidden_character() -> None:
    err = error_of("name: t\ndescription: bell\x07\n")
    assert str(err) == (
        f"{FILE}:2: expected valid YAML, found character '\\x07', which YAML does not allow"
    )


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("name: t\npopulation: {clients: 1\nduration: 1s\n", 3, "expected ',' or '}'"),
        ("name: t\n  population: x\n", 2, "mapping values are not allowed here"),
        ("name: t\n---\nname: u\n", 2, "expected a single document in the stream"),
        ("name: t\npopulation:\n\tclients: 1\n", 3, "found character '\\t'"),
        ("name: *nowhere\n", 1, "found undefined alias 'nowhere'"),
    ],
)
def test_yaml_syntax_errors(text: str, line: int, fragment: str) -> None:
    err = error_of(text)
    assert (err.file, err.line, err.path) == (FILE, line, "")
    assert err.message.startswith("expected valid YAML, found a syntax error: ")
    assert fragment in err.message
    assert str(err).startswith(f"{FILE}:{line}: expected valid YAML")


# -- what a valid file gives -------------------------------------------------------------


def test_defaults() -> None:
    scenario = parse(BASE)
    assert scenario.name == "t"
    assert scenario.description == ""
    assert scenario.seed == 1
    assert scenario.target.embedded
    assert scenario.target.urls == ()
    assert scenario.target.dialect is Dialect.V1
    assert scenario.target.auth is None
    assert scenario.target.insecure is False
    assert scenario.target.ca_file is None
    population = scenario.population
    assert population.clients == 10
    assert population.arrival is None
    assert population.rooms == 1
    assert population.rooms_per_client == 1
    assert population.spread is Spread.ROUND_ROBIN
    assert population.zipf_s == 1.1
    assert population.connect_rate == 500.0
    assert scenario.phases == (Phase(name="steady", duration_s=10.0),)
    assert scenario.drain_s == 5.0
    behaviour = scenario.behaviour
    assert behaviour.send_rate == 1.0
    assert behaviour.message_size == FixedSize(size=128)
    assert behaviour.heartbeat_s == 20.0
    assert behaviour.reconnect.policy is ReconnectPolicy.EXPONENTIAL
    assert behaviour.reconnect.base_s == 0.5
    assert behaviour.reconnect.cap_s == 32.0
    assert behaviour.outbox is True
    assert behaviour.resync is True
    assert scenario.faults == ()
    assert scenario.thresholds == ()
    assert scenario.file == FILE
    assert scenario.sha256 == hashlib.sha256(BASE.encode()).hexdigest()


def test_everything_given() -> None:
    scenario = parse(
        """\
        name: full-house
        description: every key
        seed: 42
        target:
          urls: [ws://a:1/, wss://b:2/chat]
          dialect: v1
          auth:
            tokens: [t1, t2]
          insecure: true
          ca_file: ca.pem
        population:
          clients: 100
          rooms: 10
          rooms_per_client: 2
          spread: zipf
          zipf_s: 1.3
          connect_rate: 600/m
        phases:
          - name: ramp
            duration: 10s
            clients: 100
            ramp_from: 0
            send_rate: 30/m
          - duration: 1m
        drain: 2s
        behaviour:
          send_rate: 2
          message_size: {mean: 200, stddev: 50}
          heartbeat: off
          reconnect: {policy: decorrelated-jitter, base: 100ms, cap: 10s}
          outbox: false
          resync: false
        faults:
          - at: 5s
            drop: 30%
          - at: 6s
            drop: 0.5
          - at: 7s
            command: ["sh", "-c", "kill -HUP 1"]
          - at: 8s
            command: systemctl restart "chat server"
        thresholds:
          - latency.p99 < 150ms
          - errors.rate < 0.1%
        """
    )
    assert scenario.description == "every key"
    assert scenario.seed == 42
    assert scenario.target.urls == ("ws://a:1/", "wss://b:2/chat")
    assert scenario.target.auth == Auth(tokens=("t1", "t2"))
    assert scenario.target.insecure is True
    assert scenario.target.ca_file == "ca.pem"
    assert scenario.population.spread is Spread.ZIPF
    assert scenario.population.zipf_s == 1.3
    assert scenario.population.connect_rate == pytest.approx(10.0)
    assert scenario.phases == (
        Phase(name="ramp", duration_s=10.0, clients=100, ramp_from=0, send_rate=0.5),
        Phase(name="phase-1", duration_s=60.0),
    )
    assert scenario.drain_s == 2.0
    assert scenario.behaviour.send_rate == 2.0
    assert scenario.behaviour.message_size == NormalSize(mean=200.0, stddev=50.0)
    assert scenario.behaviour.heartbeat_s == 0.0
    assert scenario.behaviour.reconnect.policy is ReconnectPolicy.DECORRELATED_JITTER
    assert scenario.behaviour.reconnect.base_s == pytest.approx(0.1)
    assert scenario.behaviour.outbox is False
    assert scenario.behaviour.resync is False
    assert scenario.faults == (
        DropFault(at_s=5.0, fraction=0.3),
        DropFault(at_s=6.0, fraction=0.5),
        CommandFault(at_s=7.0, argv=("sh", "-c", "kill -HUP 1")),
        CommandFault(at_s=8.0, argv=("systemctl", "restart", "chat server")),
    )
    assert [t.expr for t in scenario.thresholds] == ["latency.p99 < 150ms", "errors.rate < 0.1%"]


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("{secret: s3cret}", Auth(secret="s3cret")),
        ("{tokens: [a, b]}", Auth(tokens=("a", "b"))),
        ("{none: true}", Auth(none=True)),
    ],
)
def test_auth_forms(auth: str, expected: Auth) -> None:
    scenario = parse(BASE + f"target:\n  url: ws://a/\n  dialect: seed\n  auth: {auth}\n")
    assert scenario.target.auth == expected
    assert scenario.target.dialect is Dialect.SEED


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("64", FixedSize(size=64)),
        ("1KiB", FixedSize(size=1024)),
        ("{min: 64, max: 512}", UniformSize(min=64, max=512)),
        ("{min: 1KiB, max: 2KiB}", UniformSize(min=1024, max=2048)),
        ("{mean: 200, stddev: 0}", NormalSize(mean=200.0, stddev=0.0)),
    ],
)
def test_message_size_forms(size: str, expected: object) -> None:
    assert parse(BASE + f"behaviour:\n  message_size: {size}\n").behaviour.message_size == expected


@pytest.mark.parametrize(
    ("text", "seconds"), [("off", 0.0), ("false", 0.0), ("0", 0.0), ("5s", 5.0), ("1m", 60.0)]
)
def test_heartbeat_forms(text: str, seconds: float) -> None:
    assert parse(BASE + f"behaviour:\n  heartbeat: {text}\n").behaviour.heartbeat_s == seconds


@pytest.mark.parametrize(
    ("text", "per_second"), [("10/s", 10.0), ("30/m", 0.5), ("5", 5.0), ("0.5", 0.5), ("0", 0.0)]
)
def test_rate_forms(text: str, per_second: float) -> None:
    assert parse(BASE + f"behaviour:\n  send_rate: {text}\n").behaviour.send_rate == per_second


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("2m", 120.0), ("90", 90.0)])
def test_duration_forms(text: str, seconds: float) -> None:
    scenario = parse(f"name: t\npopulation: {{clients: 1}}\nduration: {text}\n")
    assert scenario.total_duration_s == seconds


def test_open_model() -> None:
    scenario = parse(
        "name: t\npopulation:\n  arrival: {rate: 10/s, lifetime: 30s, max_clients: 1000}\n"
        "duration: 1m\n"
    )
    arrival = scenario.population.arrival
    assert arrival is not None
    assert (arrival.rate, arrival.lifetime_s, arrival.max_clients) == (10.0, 30.0, 1000)
    assert scenario.population.capacity == 1000


def test_restart_server_on_the_embedded_server() -> None:
    scenario = parse(BASE + "faults:\n  - at: 5s\n    restart_server: true\n")
    assert scenario.faults == (RestartServerFault(at_s=5.0),)


def test_anchors_and_aliases_are_followed() -> None:
    scenario = parse(
        "name: t\npopulation: {clients: 4}\nphases:\n"
        "  - &p {duration: 1s, send_rate: 3/s}\n  - *p\n"
    )
    assert [p.send_rate for p in scenario.phases] == [3.0, 3.0]


# -- files -------------------------------------------------------------------------------


def test_load_scenario_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    scenario = load_scenario(path)
    assert scenario.file == str(path)
    assert scenario.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scenario == parse(BASE)


def test_load_scenario_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE + "seed: one\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}:5: seed: expected a whole number, found 'one'"


def test_load_scenario_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.file, info.value.line) == (str(path), None)
    assert str(info.value) == (
        f"{path}: expected a readable scenario file, found No such file or directory"
    )


def test_load_scenario_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: t\ndescription: caf\xe9\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}:2: expected UTF-8 text, found byte 0xe9"


SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def test_the_seven_scenarios_ship() -> None:
    assert {p.stem for p in SHIPPED} >= {
        "smoke",
        "fanout",
        "many-rooms",
        "heartbeat",
        "reconnect-storm",
        "dedupe",
        "soak",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description
    assert scenario.target.embedded  # they run as written, against the embedded server
    assert scenario.thresholds
    assert len(scenario.membership()) == scenario.population.capacity


def test_capacity_section() -> None:
    scenario = parse(
        BASE
        + textwrap.dedent(
            """\
        capacity:
          vary: clients
          start: 50
          factor: 1.5
          max_steps: 6
          step_duration: 20s
          warmup: 3s
          resolution: 5%
          slo: latency.p99<100ms, lost==0
          plan: {users: 50000, rooms: 5000, rate: 0.2/s, headroom: 25%}
        """
        )
    )
    capacity = scenario.capacity
    assert capacity.vary is Vary.CLIENTS
    assert capacity.start == 50
    assert capacity.factor == 1.5
    assert capacity.max_steps == 6
    assert capacity.step_duration_s == 20.0
    assert capacity.warmup_s == 3.0
    assert capacity.resolution == pytest.approx(0.05)
    assert [t.expr for t in capacity.slo] == ["latency.p99<100ms", "lost==0"]
    assert capacity.plan == Plan(users=50000, rooms=5000, rate=0.2, headroom=0.25)
    assert capacity.plan.deliveries_per_s == pytest.approx(50000 * 0.2 * 10)


def test_capacity_defaults_follow_the_population() -> None:
    closed = parse(BASE)
    assert closed.capacity == Capacity()
    assert closed.capacity.resolved_vary(closed.population) is Vary.CLIENTS
    opened = parse(
        "name: t\npopulation:\n  arrival: {rate: 5/s, lifetime: 10s, max_clients: 100}\n"
        "duration: 10s\ncapacity:\n  slo: [lost == 0]\n"
    )
    assert opened.capacity.resolved_vary(opened.population) is Vary.ARRIVAL_RATE
    assert [t.expr for t in opened.capacity.slo] == ["lost == 0"]


@pytest.mark.parametrize(
    ("section", "line", "path", "message"),
    [
        ("capacity:\n  vary: users\n", 6, "capacity.vary", "expected one of clients, arrival"),
        ("capacity:\n  vary: arrival_rate\n", 6, "capacity.vary", "with the closed model"),
        ("capacity:\n  start: 2.5\n", 6, "capacity.start", "a whole number of clients"),
        ("capacity:\n  factor: 1\n", 6, "capacity.factor", "a growth factor above 1"),
        ("capacity:\n  max_steps: 1\n", 6, "capacity.max_steps", "at least 2"),
        ("capacity:\n  resolution: 100%\n", 6, "capacity.resolution", "below 100%"),
        ("capacity:\n  step_duration: soon\n", 6, "capacity.step_duration", "a duration"),
        (
            "capacity:\n  slo: 'latency.p99<100ms, lots==0'\n",
            6,
            "capacity.slo",
            "SLO term 2 'lots==0': expected a metric name, found 'lots'; did you mean 'lost'?",
        ),
        ("capacity:\n  slo: [latency.p99 < fast]\n", 6, "capacity.slo[0]", "expected milli"),
        ("capacity:\n  plan: {users: 10}\n", 6, "capacity.plan.rate", "found no 'rate' key"),
        (
            "capacity:\n  plan: {users: 10, rate: 1/s}\n",
            6,
            "capacity.plan.fanout",
            "expected 'fanout' or 'rooms'",
        ),
        (
            "capacity:\n  plan: {users: 10, rate: 1/s, fanout: 0.5}\n",
            6,
            "capacity.plan.fanout",
            "at least 1",
        ),
        ("capacity:\n  budget: 10m\n", 6, "capacity.budget", "unknown key 'budget'"),
    ],
)
def test_capacity_errors(section: str, line: int, path: str, message: str) -> None:
    err = error_of(BASE + section)
    assert err.file == FILE
    assert err.line == line
    assert err.path == path
    assert message in err.message
