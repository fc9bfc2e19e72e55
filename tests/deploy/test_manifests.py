"""deploy/ agrees with the CLI: every YAML parses; every `loadtool ...` command line in the
Kubernetes manifests, the compose file and docs/scaling.md is parsed by the real click
commands (so every flag and value they use exists); the Indexed Job's shard count
matches its completions; what the manifests reference exists; the Dockerfile's
entrypoint is the real console script. No image is built here (docs/scaling.md has the
commands)."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final

import click
import pytest
import yaml

from loadtool.cli import cli

REPO: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = REPO / "deploy"
SCALING_DOC: Final = REPO / "docs" / "scaling.md"
IMAGE: Final = re.compile(r"^loadtool:[\w.-]+$")  # the image built from deploy/Dockerfile
# What the shell lines may expand, with a value of the right shape for each.
SHELL_VALUES: Final = {
    "JOB_COMPLETION_INDEX + 1": "1",  # $((JOB_COMPLETION_INDEX + 1))
    "START_AT": "2026-11-29T10:00:00Z",
    "T": "2026-11-29T10:00:00Z",
    "LOADTOOL_SECRET": "a-secret-of-32-characters-or-more!",
    "SECRET": "a-secret-of-32-characters-or-more!",
    "URL": "wss://chat.example.com/",
    "I": "1",
    "N": "4",
}
SHELL_OPERATORS: Final = {"&&", "||", ";", "|", ">", ">>", "&", "then", "do"}


def yaml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yaml"))


def documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted((DEPLOY / "k8s").rglob("*.yaml")):
        for doc in documents(path):
            yield path, doc


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    return None


def expand(word: str, where: str) -> str:
    """`word` with the shell expansions of SHELL_VALUES done; anything else fails."""
    word = word.replace("$((JOB_COMPLETION_INDEX + 1))", SHELL_VALUES["JOB_COMPLETION_INDEX + 1"])

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in SHELL_VALUES, f"{where}: add a sample value for ${name} to SHELL_VALUES"
        return SHELL_VALUES[name]

    word = re.sub(r"\$\{(\w+)\}|\$(\w+)", value, word)
    assert "$" not in word, f"{where}: an expansion this test does not know: {word!r}"
    return word


def loadtool_argvs(script: str, where: str) -> list[list[str]]:
    """The loadtool argument lists in a shell line: after a `loadtool` command word (or a
    loadtool image name, `docker run ... loadtool:0.1.0 ARGS`), up to a shell operator."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # words as the shell splits them; ; & | > apart
    words = list(lexer)
    found = []
    for i, word in enumerate(words):
        image = IMAGE.match(word) and words[:2] == ["docker", "run"]
        command = i == 0 or words[i - 1] in {*SHELL_OPERATORS, "exec"} or "=" in words[i - 1]
        if (command and (word == "loadtool" or word.endswith("/loadtool"))) or image:
            argv = []
            for arg in words[i + 1 :]:
                if arg in SHELL_OPERATORS:
                    break
                argv.append(expand(arg, where))
            found.append(argv)
    return found


Command = tuple[str, list[str], dict[str, str]]  # where, argv, the environment it runs with


def container_argvs() -> Iterator[Command]:
    """(where, argv, env) of every container of the loadtool image, in k8s and compose."""
    for path, obj in k8s_objects():
        spec = pod_spec(obj)
        for container in (spec or {}).get("containers", []):
            if not IMAGE.match(container["image"]):
                continue
            where = f"{path.relative_to(REPO)} {obj['metadata']['name']}/{container['name']}"
            env = {var["name"]: f"sample-{var['name']}" for var in container.get("env", [])}
            command = container.get("command")
            if command is None:
                yield where, [str(a) for a in container["args"]], env
            else:
                assert command[:2] == ["/bin/sh", "-c"], f"{where}: command {command}"
                argvs = loadtool_argvs(command[2], where)
                assert argvs, f"{where}: no loadtool command in {command}"
                for argv in argvs:
                    yield where, argv, env
    compose = documents(DEPLOY / "compose.yaml")[0]
    for name, service in compose["services"].items():
        if IMAGE.match(service["image"]):
            env = {var: f"sample-{var}" for var in service.get("environment", {})}
            yield f"deploy/compose.yaml {name}", [str(a) for a in service["command"]], env


def doc_argvs() -> Iterator[Command]:
    """Every loadtool command line in the shell blocks of docs/scaling.md (run with no
    loadtool variables in the environment)."""
    text = SCALING_DOC.read_text()
    for block in re.finditer(r"```(?:sh|bash|shell)\n(.*?)```", text, re.DOTALL):
        start = text[: block.start()].count("\n") + 2
        lines = block.group(1).replace("\\\n", " ").splitlines()
        for offset, line in enumerate(lines):
            where = f"docs/scaling.md block at line {start} ({offset + 1})"
            for argv in loadtool_argvs(line, where):
                yield where, argv, {}


def parse(argv: list[str], tmp_path: Path) -> click.Context:
    """Parse `loadtool *argv` with the real commands (resilient parsing off). Paths that
    must exist where the command runs (--ca-file, --cert...) point at a file here."""
    if argv and argv[0].startswith("-"):  # group options: --version, --help
        with pytest.raises(click.exceptions.Exit) as done:
            cli.make_context("loadtool", list(argv))
        assert done.value.exit_code == 0
        return click.Context(cli, info_name="loadtool")
    group = click.Context(cli, info_name="loadtool")
    name, command, rest = cli.resolve_command(group, list(argv))
    assert command is not None
    assert name is not None
    rest = list(rest)
    for param in command.params:
        if isinstance(param.type, click.Path) and param.type.exists:
            for i, arg in enumerate(rest[:-1]):
                if arg in param.opts:
                    stand_in = tmp_path / Path(rest[i + 1]).name
                    stand_in.write_text("stand-in for a file that exists where this runs\n")
                    rest[i + 1] = str(stand_in)
    return command.make_context(name, rest, parent=group)


def test_every_yaml_file_parses() -> None:
    files = yaml_files()
    assert {p.relative_to(DEPLOY).as_posix() for p in files} >= {
        "compose.yaml",
        "k8s/secret.yaml",
        "k8s/redis.yaml",
        "k8s/server.yaml",
        "k8s/results-pvc.yaml",
        "k8s/jobs/load-job.yaml",
        "k8s/jobs/merge-job.yaml",
    }
    for path in files:
        docs = documents(path)
        assert docs, f"{path}: empty"
        if path.is_relative_to(DEPLOY / "k8s"):
            for doc in docs:
                assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path


def every_command() -> list[Command]:
    return [*container_argvs(), *doc_argvs()]


def command_params() -> list[Any]:
    return [pytest.param(argv, env, id=where) for where, argv, env in every_command()]


def test_the_manifests_and_docs_run_loadtool_commands() -> None:
    commands = {argv[0] for _, argv, _ in every_command()}
    assert {"serve", "run", "merge"} <= commands


@pytest.mark.parametrize(("argv", "env"), command_params())
def test_every_loadtool_command_line_parses(
    argv: list[str], env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the environment the manifest gives it (e.g. LOADTOOL_SECRET from the Secret,
    which `loadtool serve` requires) and no other LOADTOOL_* variable."""
    for name in [n for n in os.environ if n.startswith("LOADTOOL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        parse(argv, tmp_path)
    except click.ClickException as exc:
        pytest.fail(f"`loadtool {shlex.join(argv)}`: {exc.format_message()}")


def test_a_misspelt_flag_would_be_caught(tmp_path: Path) -> None:
    with pytest.raises(click.NoSuchOption, match="--shards"):
        parse(["run", "x.yaml", "--shards", "1/4"], tmp_path)
    with pytest.raises(click.BadParameter):
        parse(["serve", "--port", "eighty"], tmp_path)


def test_the_indexed_job_runs_one_shard_per_completion() -> None:
    (job,) = [obj for _, obj in k8s_objects() if obj["metadata"]["name"] == "loadtool-load"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"]
    assert spec["backoffLimit"] == 0  # a shard that ran must not run twice
    script = spec["template"]["spec"]["containers"][0]["command"][2]
    (argv,) = loadtool_argvs(script, "load-job")
    shard = argv[argv.index("--shard") + 1]
    assert shard == "1/" + str(spec["completions"])  # $((JOB_COMPLETION_INDEX + 1))/N
    assert "$((JOB_COMPLETION_INDEX + 1))/" + str(spec["completions"]) in script
    assert "--start-at" in argv
    out = argv[argv.index("--out") + 1]
    (merge,) = [obj for _, obj in k8s_objects() if obj["metadata"]["name"] == "loadtool-merge"]
    merge_script = merge["spec"]["template"]["spec"]["containers"][0]["command"][2]
    merge_argv, report_argv = loadtool_argvs(merge_script, "merge-job")
    assert merge_argv[1] == str(Path(out).parent / "shard-*" / "results.json")
    assert report_argv == ["report", merge_argv[merge_argv.index("-o") + 1]]
    assert out == "/results/shard-1"


def test_what_the_manifests_reference_exists() -> None:
    objects = [obj for _, obj in k8s_objects()]
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    ports = {
        (obj["metadata"]["name"], port["port"])
        for obj in objects
        if obj["kind"] == "Service"
        for port in obj["spec"]["ports"]
    }
    text = json.dumps(objects)
    for host, port in re.findall(r"(?:ws|redis)://([a-z0-9-]+):(\d+)/", text):
        assert (host, int(port)) in ports, f"no Service {host} with port {port}"
    for ref in re.findall(r'"secretKeyRef": \{"name": "([^"]+)"', text):
        assert ("Secret", ref) in names, f"no Secret {ref}"
    for claim in re.findall(r'"claimName": "([^"]+)"', text):
        assert ("PersistentVolumeClaim", claim) in names, f"no PersistentVolumeClaim {claim}"
    # The ConfigMap holds the run's start time, so it is created per run (docs/scaling.md).
    for ref in set(re.findall(r'"configMapKeyRef": \{"name": "([^"]+)"', text)):
        assert f"kubectl create configmap {ref}" in SCALING_DOC.read_text()
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None and all(IMAGE.match(c["image"]) for c in spec["containers"]):
            assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]


def test_the_dockerfile_runs_the_console_script_as_a_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [
        line.split(None, 1) for line in text.replace("\\\n", " ").splitlines() if line.strip()
    ]
    instructions = [i for i in instructions if not i[0].startswith("#")]
    by_name: dict[str, list[str]] = {}
    for name, rest in instructions:
        by_name.setdefault(name.upper(), []).append(rest.strip())
    assert by_name["FROM"] == ["python:3.11-slim"]
    (entrypoint,) = by_name["ENTRYPOINT"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(entrypoint) == ["loadtool"]
    assert scripts["loadtool"] == "loadtool.cli:main"
    (installed,) = entry_points(group="console_scripts", name="loadtool")
    assert installed.value == "loadtool.cli:main"
    assert installed.load().__module__ == "loadtool.cli"
    (user,) = by_name["USER"]
    assert not user.startswith(("root", "0"))
    for copy in by_name["COPY"]:
        *sources, _dest = copy.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert (DEPLOY / "Dockerfile.dockerignore").is_file()
