"""What the server under test is: its features, how to get tokens, its known failures.

A target file (`--target target.yaml`) or a built-in profile (`reference`,
`seed-broadcast`) says so, like Matrix Complement's per-server lists: cases for missing
features are UNSUPPORTED, listed failures are XFAIL (docs/conformance.md).
"""

from __future__ import annotations

import base64
import difflib
import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import attrs
import trio
import yaml

from .. import protocol as p
from .model import ALL_FEATURES, Feature

TOKEN_COMMAND_TIMEOUT_S: Final = 10.0
_TARGET_KEYS: Final = ("name", "features", "tokens", "expected_failures", "restart")


class TargetError(ValueError):
    """A target file is invalid; the message names the file and the key."""


class TokenSource(Protocol):
    async def token(self, user: str, rooms: list[str]) -> str | None: ...


@attrs.frozen
class SecretTokens:
    """Mint with the reference scheme (HS256, `sub` and `rooms`)."""

    secret: str = attrs.field(repr=False)

    async def token(self, user: str, rooms: list[str]) -> str | None:
        return p.mint_token(self.secret, user, rooms, ttl_s=3600)


@attrs.frozen
class CommandTokens:
    """Run a command with {user} and {rooms} (comma-separated) filled in; stdout is the token."""

    argv: tuple[str, ...]

    async def token(self, user: str, rooms: list[str]) -> str | None:
        argv = [a.replace("{user}", user).replace("{rooms}", ",".join(rooms)) for a in self.argv]
        with trio.fail_after(TOKEN_COMMAND_TIMEOUT_S):
            done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True)
        return done.stdout.decode().strip() or None


@attrs.define
class FixedTokens:
    """Ready-made tokens, one per simulated user: each a JWT whose `sub` is its user and
    which grants every room ("*"), since cases make fresh rooms. Cases take users in order
    (`claim_user`); the whole suite needs about 200. Grant checks cannot be made with
    tokens that grant everything: those cases are UNSUPPORTED."""

    tokens: tuple[str, ...]
    _users: list[str] = attrs.field(init=False)
    _by_user: dict[str, str] = attrs.field(init=False, factory=dict)
    _next: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._users = [jwt_subject(t) for t in self.tokens]

    def claim_user(self) -> str | None:
        """The next unused user of the list (None when it is used up)."""
        if self._next >= len(self.tokens):
            return None
        user, token = self._users[self._next], self.tokens[self._next]
        self._next += 1
        self._by_user[user] = token
        return user

    async def token(self, user: str, rooms: list[str]) -> str | None:
        return self._by_user.get(user)


def jwt_subject(token: str) -> str:
    """The `sub` of a JWT, read without checking the signature (the server checks it).

    Raises:
        ValueError: the token is not a JWT with a string `sub`.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (expected three dot-separated parts)")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a JWT (the payload is not base64url JSON)") from None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(sub, str) or not sub:
        raise ValueError("the JWT has no string 'sub'")
    return sub


@attrs.frozen
class NoTokens:
    async def token(self, user: str, rooms: list[str]) -> str | None:
        return None


@attrs.frozen(kw_only=True)
class Target:
    name: str
    features: frozenset[Feature]
    tokens: TokenSource
    expected_failures: Mapping[str, str] = attrs.field(factory=dict)  # case id -> reason
    restart: tuple[str, ...] | None = None  # a command that restarts a crashed server
    restart_cwd: Path | None = None  # where it runs: the target file's folder
    source: Path | None = None  # the target file, if there is one (for messages)

    def with_secret(self, secret: str) -> Target:
        return attrs.evolve(self, tokens=SecretTokens(secret))


def builtin(name: str, *, secret: str | None = None) -> Target:
    """The built-in profiles.

    Raises:
        TargetError: an unknown profile name (with the known ones).
    """
    tokens: TokenSource = SecretTokens(secret) if secret else NoTokens()
    if name == "reference":
        return Target(name=name, features=ALL_FEATURES, tokens=tokens)
    if name == "seed-broadcast":
        return Target(name=name, features=frozenset({Feature.SEED_DIALECT}), tokens=tokens)
    raise TargetError(f"unknown profile {name!r}: use reference or seed-broadcast")


def load_target(path: Path, *, secret: str | None = None) -> Target:
    """Read a target file (YAML). Raises TargetError naming the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TargetError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: expected a mapping of {', '.join(_TARGET_KEYS)}")
    for key in data:
        if key not in _TARGET_KEYS:
            near = difflib.get_close_matches(str(key), _TARGET_KEYS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TargetError(f"{path}: unknown key {key!r}{hint}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise TargetError(f"{path}: name: expected a non-empty string")
    tokens = _tokens(path, data.get("tokens"))  # checked even when --secret replaces it
    return Target(
        name=name,
        features=_features(path, data.get("features", [f.value for f in Feature])),
        tokens=SecretTokens(secret) if secret else tokens,
        expected_failures=_failures(path, data.get("expected_failures", [])),
        restart=_argv(path, "restart", data["restart"]) if data.get("restart") else None,
        restart_cwd=path.resolve().parent,
        source=path,
    )


def _features(path: Path, value: Any) -> frozenset[Feature]:
    if not isinstance(value, list):
        raise TargetError(f"{path}: features: expected a list of feature names")
    out = set()
    for item in value:
        try:
            out.add(Feature(item))
        except ValueError:
            known = ", ".join(f.value for f in Feature)
            raise TargetError(f"{path}: features: unknown {item!r}; known: {known}") from None
    return frozenset(out)


def _tokens(path: Path, value: Any) -> TokenSource:
    if value is None or value == "none":
        return NoTokens()
    if isinstance(value, dict) and set(value) == {"secret"}:
        secret = value["secret"]
        if not isinstance(secret, str) or len(secret) < p.MIN_SECRET_BYTES:
            raise TargetError(
                f"{path}: tokens.secret: expected a string of at least "
                f"{p.MIN_SECRET_BYTES} characters"
            )
        return SecretTokens(secret)
    if isinstance(value, dict) and set(value) == {"command"}:
        return CommandTokens(_argv(path, "tokens.command", value["command"]))
    if isinstance(value, dict) and set(value) == {"list"}:
        tokens = value["list"]
        if not (isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens)):
            raise TargetError(f"{path}: tokens.list: expected a non-empty list of tokens")
        for i, token in enumerate(tokens):
            try:
                jwt_subject(token)
            except ValueError as exc:
                raise TargetError(f"{path}: tokens.list[{i}]: {exc}") from None
        return FixedTokens(tuple(tokens))
    raise TargetError(
        f"{path}: tokens: expected none, {{secret: S}}, {{command: [...]}} or {{list: [...]}}, "
        f"found {value!r}"
    )


def _failures(path: Path, value: Any) -> dict[str, str]:
    if not isinstance(value, list):
        raise TargetError(f"{path}: expected_failures: expected a list of {{case, reason}}")
    out = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"case", "reason"}:
            raise TargetError(f"{path}: expected_failures[{i}]: expected {{case: ID, reason: ...}}")
        if not isinstance(item["case"], str):
            raise TargetError(
                f"{path}: expected_failures[{i}].case: quote the case id (YAML reads "
                f'{item["case"]!r} as a number): case: "{item["case"]}"'
            )
        out[item["case"]] = str(item["reason"])
    return out


def _argv(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and shlex.split(value):
        return tuple(shlex.split(value))
    if (
        isinstance(value, Sequence)
        and value
        and all(isinstance(v, str) for v in value)
        and value[0]
    ):
        return tuple(value)
    raise TargetError(f"{path}: {key}: expected a command (a string or a list of strings)")
