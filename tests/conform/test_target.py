"""Target files and profiles (loadtool/conform/target.py, docs/conformance.md "Target
files"): a valid file reads as written; every mistake is a TargetError naming the file
and the key, with a did-you-mean for a misspelt key."""

from __future__ import annotations

import sys
from pathlib import Path

import jwt
import pytest

from loadtool.conform.model import ALL_FEATURES, Feature
from loadtool.conform.target import (
    CommandTokens,
    NoTokens,
    SecretTokens,
    TargetError,
    builtin,
    load_target,
)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(text)
    return path


def test_a_full_target_file(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """\
name: my-server
features: [rooms, acks, seed-dialect]
tokens: {secret: s3cret-s3cret}
expected_failures:
  - {case: "4.3", reason: pings are broadcast}
restart: ./restart.sh --now
""",
    )
    target = load_target(path)
    assert target.name == "my-server"
    assert target.features == {Feature.ROOMS, Feature.ACKS, Feature.SEED_DIALECT}
    assert target.tokens == SecretTokens("s3cret-s3cret")
    assert target.expected_failures == {"4.3": "pings are broadcast"}
    assert target.restart == ("./restart.sh", "--now")


def test_defaults_every_feature_no_tokens_and_the_file_name(tmp_path: Path) -> None:
    target = load_target(_file(tmp_path, "{}\n"))
    assert target.name == "target"
    assert target.features == ALL_FEATURES
    assert isinstance(target.tokens, NoTokens)
    assert target.expected_failures == {}
    assert target.restart is None


def test_secret_option_overrides_the_files_tokens(tmp_path: Path) -> None:
    path = _file(tmp_path, "tokens: none\n")
    assert load_target(path, secret="from-cli").tokens == SecretTokens("from-cli")


def test_tokens_command(tmp_path: Path) -> None:
    path = _file(tmp_path, "tokens: {command: [prog, --user, '{user}', --rooms, '{rooms}']}\n")
    tokens = load_target(path).tokens
    assert tokens == CommandTokens(("prog", "--user", "{user}", "--rooms", "{rooms}"))


async def test_command_tokens_fill_in_user_and_rooms() -> None:
    tokens = CommandTokens(
        (sys.executable, "-c", "import sys; print(' '.join(sys.argv[1:]))", "{user}", "{rooms}")
    )
    assert await tokens.token("alice", ["a", "b"]) == "alice a,b"


async def test_secret_tokens_mint_the_reference_scheme() -> None:
    token = await SecretTokens("s" * 32).token("alice", ["general"])
    assert token is not None
    claims = jwt.decode(token, "s" * 32, algorithms=["HS256"])
    assert (claims["sub"], claims["rooms"]) == ("alice", ["general"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nmae: x\n", r"target\.yaml: unknown key 'nmae' \(did you mean 'name'\?\)"),
        ("expected_failure: []\n", r"unknown key 'expected_failure' \(did you mean 'expected_f"),
        ("colour: red\n", r"unknown key 'colour'$"),
        ("features: [rooms, room]\n", r"features: unknown 'room'; known: auth, rooms"),
        ("features: rooms\n", r"features: expected a list of feature names"),
        ("tokens: {secret: s, command: c}\n", r"tokens: expected none, \{secret: S\}, \{comm"),
        ("tokens: fixed\n", r"tokens: .* found 'fixed'"),
        ("tokens: {command: []}\n", r"tokens\.command: expected a command"),
        ("expected_failures: {case: 1.1}\n", r"expected_failures: expected a list"),
        ("expected_failures: [{case: '1.1'}]\n", r"expected_failures\[0\]: expected \{case"),
        ("restart: [1, 2]\n", r"restart: expected a command"),
        ("- name\n", r"target\.yaml: expected a mapping of name, features"),
        ("name: [unclosed\n", r"target\.yaml: while parsing"),
        ("tokens: {secret: null}\n", r"tokens\.secret: expected a string of at least 8"),
        ("tokens: {secret: ''}\n", r"tokens\.secret: expected a string of at least 8"),
        ("tokens: {command: ''}\n", r"tokens\.command: expected a command"),
        ("expected_failures: [{case: 1.10, reason: r}]\n", r"quote the case id .* 1\.1"),
        ("name: null\n", r"name: expected a non-empty string"),
    ],
)
def test_target_file_errors_name_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(TargetError, match=message):
        load_target(_file(tmp_path, text))


def test_a_missing_file_is_a_target_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"nothere\.yaml"):
        load_target(tmp_path / "nothere.yaml")


def test_builtin_profiles() -> None:
    assert builtin("reference").features == ALL_FEATURES
    assert builtin("seed-broadcast").features == {Feature.SEED_DIALECT}
    assert builtin("reference", secret="s").tokens == SecretTokens("s")
    with pytest.raises(TargetError, match="unknown profile 'nope': use reference or seed-"):
        builtin("nope")


def test_token_list_users_come_from_the_tokens(tmp_path: Path) -> None:
    from loadtool import protocol as p
    from loadtool.conform.target import FixedTokens

    minted = [p.mint_token("list-secret-0123456789", f"listed{i}", ["*"]) for i in range(2)]
    target = load_target(_file(tmp_path, f"tokens: {{list: [{minted[0]}, {minted[1]}]}}\n"))
    tokens = target.tokens
    assert isinstance(tokens, FixedTokens)
    assert [tokens.claim_user(), tokens.claim_user(), tokens.claim_user()] == [
        "listed0",
        "listed1",
        None,
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tokens: {list: []}\n", r"tokens\.list: expected a non-empty list"),
        ("tokens: {list: [abc]}\n", r"tokens\.list\[0\]: not a JWT"),
    ],
)
def test_token_list_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        load_target(_file(tmp_path, text))
