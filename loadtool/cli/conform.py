"""`loadtool conform [URL]`: the conformance gate, a verdict per case and one exit code.

Exit codes (docs/conformance.md "Exit codes"): 0 nothing unexpected failed; 1 a case
FAILed, XPASSed or hit an ERROR (or, with --strict, was NON-STRICT); 2 invalid options or
target file (nothing was run); 3 the target was unreachable or refused the preflight
connection (or the embedded server did not start).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import click
import orjson
import trio

from ..client.transport import Closed, Endpoint, Rejected, WsClient
from ..conform import report as rep
from ..conform.cases import all_cases
from ..conform.model import Case, CaseResult, Feature, select
from ..conform.runner import DEFAULT_CONCURRENCY, GateReport, Liveness, run_gate
from ..conform.target import Target, TargetError, builtin, load_target
from ..server.config import Limits
from ..swarm.embedded import EmbeddedOptions, EmbeddedServer, EmbeddedServerError
from ._errors import sole_leaf
from ._types import secret_option

EXIT_GATE_FAILED: Final = 1
EXIT_UNREACHABLE: Final = 3
PREFLIGHT_TIMEOUT_S: Final = 10.0  # seconds for the one connection made before any case
PROFILES: Final = ("reference", "seed-broadcast")
_LIST_WIDTH: Final = 96  # characters per line of --list descriptions


class Unreachable(Exception):
    """The preflight connection failed: no case would have meant anything (exit 3)."""


class CasePatterns(click.ParamType):  # type: ignore[type-arg]
    """`3.*,5.2`: comma-separated fnmatch patterns over case ids, each matching a case."""

    name = "patterns"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        patterns = tuple(part.strip() for part in str(value).split(",") if part.strip())
        if not patterns:
            self.fail(f"{value!r} names no case: use ids or patterns such as 3.*,5.2", param, ctx)
        try:
            select(all_cases(), patterns)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return patterns


class OutputFile(click.ParamType):  # type: ignore[type-arg]
    """A file to write at the end: its folder must exist now, not after the whole run."""

    name = "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = Path(value)
        if path.is_dir():
            self.fail(f"{str(path)!r} is a folder: name a file", param, ctx)
        if not path.parent.is_dir():
            self.fail(f"the folder {str(path.parent)!r} does not exist", param, ctx)
        return path


CASE_PATTERNS = CasePatterns()
OUTPUT_FILE = OutputFile()


@attrs.frozen(kw_only=True)
class GateSettings:
    """Everything a gate run needs, validated: built by the command, run by `conform_gate`."""

    url: str | None  # None: start an embedded reference server
    target: Target
    cases: tuple[Case, ...]
    strict: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    secret: str | None = attrs.field(default=None, repr=False)  # the embedded server's
    server_log: Path | None = None  # the embedded server's stderr
    on_result: Callable[[CaseResult], None] | None = None


@click.command()
@click.argument("url", required=False)
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    help="Built-in target profile: reference (everything) or seed-broadcast (broadcast "
    "only, the seed article's servers). Default: reference.",
)
@click.option(
    "--target",
    "target_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Target file (YAML): features, tokens, expected failures (docs/conformance.md).",
)
@secret_option
@click.option(
    "--cases",
    "patterns",
    type=CASE_PATTERNS,
    default=None,
    metavar="PATTERNS",
    help="Only these cases: comma-separated ids or patterns, e.g. '3.*,5.2'.",
)
@click.option("--list", "list_only", is_flag=True, help="List the cases and exit.")
@click.option("--strict", is_flag=True, help="NON-STRICT verdicts fail the gate too.")
@click.option("--json", "json_file", type=OUTPUT_FILE, help="Write the report as JSON.")
@click.option(
    "--junit", "junit_file", type=OUTPUT_FILE, help="Write JUnit XML (one testcase each)."
)
@click.option("--html", "html_file", type=OUTPUT_FILE, help="Write a self-contained HTML report.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    help=f"Cases run at once. Default: {DEFAULT_CONCURRENCY}, or 1 for a target without "
    "rooms (on a broadcast-only server every case would hear every other).",
)
def conform(
    *,
    url: str | None,
    profile: str | None,
    target_file: Path | None,
    secret: str | None,
    patterns: tuple[str, ...] | None,
    list_only: bool,
    strict: bool,
    json_file: Path | None,
    junit_file: Path | None,
    html_file: Path | None,
    concurrency: int | None,
) -> None:
    """Check a chat server against the protocol (docs/protocol.md), case by case.

    URL is the ws:// or wss:// address of the server under test. Without it, an
    embedded reference server is started (and stopped) and the reference profile is used.
    """
    cases = tuple(select(all_cases(), patterns or ()))
    if list_only:
        click.echo(list_cases(cases))
        return
    if profile is not None and target_file is not None:
        raise click.UsageError(
            "--profile and --target exclude each other: a target file is a profile"
        )
    if url is None and (target_file is not None or profile not in (None, "reference")):
        raise click.UsageError(
            "without a URL the embedded reference server runs with the reference profile: "
            "give a URL to use --target or --profile seed-broadcast"
        )
    if url is not None:
        try:
            Endpoint.from_url(url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="URL") from None
    try:
        target = (
            load_target(target_file, secret=secret)
            if target_file is not None
            else builtin(profile or "reference", secret=secret)
        )
    except TargetError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    known = {c.id for c in all_cases()}
    unknown = sorted(set(target.expected_failures) - known)
    if unknown and target_file is not None:
        raise click.BadParameter(
            f"{target_file}: expected_failures: no case {', '.join(map(repr, unknown))} "
            "(see loadtool conform --list)",
            param_hint="--target",
        )
    if concurrency is None:
        concurrency = DEFAULT_CONCURRENCY if Feature.ROOMS in target.features else 1
    progress = _progress(len(cases)) if sys.stderr.isatty() else None
    with tempfile.TemporaryDirectory(prefix="loadtool-conform-") as scratch:
        settings = GateSettings(
            url=url,
            target=target,
            cases=cases,
            strict=strict,
            concurrency=concurrency,
            secret=secret,
            server_log=Path(scratch) / "server.log" if url is None else None,
            on_result=progress,
        )
        try:
            report = trio.run(conform_gate, settings)
        except (Unreachable, EmbeddedServerError, BaseExceptionGroup) as raised:
            leaf = sole_leaf(raised)
            if not isinstance(leaf, Unreachable | EmbeddedServerError):
                raise
            click.echo(f"Error: {leaf}", err=True)
            sys.exit(EXIT_UNREACHABLE)
    click.echo(rep.to_console(report))
    write_outputs(report, json_file=json_file, junit_file=junit_file, html_file=html_file)
    sys.exit(0 if report.passed else EXIT_GATE_FAILED)


async def conform_gate(settings: GateSettings) -> GateReport:
    """Start the embedded server if there is no URL, check the target answers, run the
    cases, stop the server. A cancel point.

    Raises:
        Unreachable: the preflight connection failed or was refused.
        EmbeddedServerError: the embedded server did not start.
    """
    if settings.url is not None:
        return await _run(settings, settings.url, settings.target)
    options = EmbeddedOptions(
        # The reference defaults, as `loadtool serve` runs, not the swarm's lifted limits.
        rate_per_s=Limits().rate_per_s,
        burst=Limits().rate_burst,
        max_connections=Limits().max_connections,
        log_path=settings.server_log,
    )
    server = EmbeddedServer(options, secret=settings.secret or secrets.token_urlsafe(32))
    try:
        url = await server.start()
        return await _run(settings, url, settings.target.with_secret(server.secret))
    finally:
        await server.stop()


async def _run(settings: GateSettings, url: str, target: Target) -> GateReport:
    endpoint = Endpoint.from_url(url)
    await preflight(endpoint, target)
    keeper = Liveness(endpoint, target)
    why = await keeper.probe()
    if why is not None:
        raise Unreachable(
            f"{endpoint.url} accepted the connection, but the liveness probe (one marker "
            f"round trip, made after every case) failed: {why}"
        )
    return await run_gate(
        settings.cases,
        endpoint,
        target,
        strict=settings.strict,
        concurrency=settings.concurrency,
        on_result=settings.on_result,
        liveness=keeper,
    )


async def preflight(endpoint: Endpoint, target: Target) -> None:
    """One connection (with a throwaway user's token, when the target has a token
    source) before any case, so a wrong URL or secret is one clear error, not a page of
    FAILs. A cancel point.

    Raises:
        Unreachable: no connection, a refusal, or no token from the token source.
    """
    tag = secrets.token_hex(4)
    claim = getattr(target.tokens, "claim_user", None)  # a fixed list: its next user
    user = claim() if claim is not None else f"conform-preflight-{tag}"
    try:
        with trio.fail_after(PREFLIGHT_TIMEOUT_S):
            token = await target.tokens.token(str(user), [f"preflight-{tag}"])
    except (OSError, subprocess.SubprocessError, trio.TooSlowError, ValueError) as exc:
        why = exc or type(exc).__name__
        raise Unreachable(f"the target's token source failed: {why}") from None
    query = endpoint.with_query(token=token) if token else None
    try:
        with trio.fail_after(PREFLIGHT_TIMEOUT_S):
            conn = await WsClient.connect(endpoint, target=query)
    except Rejected as exc:
        hint = " (check --secret or the target's tokens)" if exc.status in (401, 403) else ""
        raise Unreachable(f"{endpoint.url} refused the upgrade: {exc}{hint}") from None
    except (OSError, Closed, trio.TooSlowError) as exc:
        raise Unreachable(f"{endpoint.url} is unreachable: {exc or type(exc).__name__}") from None
    await conn.close(1000, "preflight")


def list_cases(cases: Sequence[Case]) -> str:
    """`--list`: id, section, features and title, then the description, indented."""
    lines: list[str] = []
    for case in cases:
        features = ",".join(sorted(f.value for f in case.features)) or "-"
        lines.append(f"{case.id:<6} {case.section:<6} {case.title}  [{features}]")
        if case.description:
            lines += textwrap.wrap(
                case.description,
                _LIST_WIDTH,
                initial_indent="       ",
                subsequent_indent="       ",
            )
    lines.append(rep.count_cases(len(cases)))
    return "\n".join(lines)


def write_outputs(
    report: GateReport,
    *,
    json_file: Path | None,
    junit_file: Path | None,
    html_file: Path | None,
) -> None:
    """Write the requested report files. Raises click.ClickException naming the file."""
    outputs: list[tuple[Path | None, Callable[[], str]]] = [
        (json_file, lambda: orjson.dumps(rep.to_json(report), option=orjson.OPT_INDENT_2).decode()),
        (junit_file, lambda: rep.to_junit(report)),
        (html_file, lambda: rep.to_html(report)),
    ]
    for path, render in outputs:
        if path is None:
            continue
        try:
            path.write_text(render() + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None


def _progress(total: int) -> Callable[[CaseResult], None]:
    done = 0

    def show(result: CaseResult) -> None:
        nonlocal done
        done += 1
        click.echo(rep.progress_line(result, done, total), err=True)

    return show
