"""`loadtool fuzz [URL]`: Hypothesis-driven frame fuzzing of a chat server.

Exit codes: 0 no failure found; 1 a failure was found (its reproducer is printed);
2 invalid usage; 3 the target was unreachable or refused the connection.
"""

from __future__ import annotations

import secrets
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Final

import click
import trio

from ..client.transport import Endpoint
from ..conform.target import TargetError, builtin, load_target
from ..fuzz import FuzzReport, FuzzUnreachable, WsFuzzReport, run_fuzz, run_ws_fuzz
from ..server.config import Limits
from ..swarm.embedded import EmbeddedOptions, EmbeddedServer, EmbeddedServerError
from ._errors import sole_leaf
from ._types import ca_file_option, insecure_option

EXIT_FAILURE_FOUND: Final = 1
EXIT_UNREACHABLE: Final = 3
PROGRESS_EVERY: Final = 50  # examples between progress lines
DEFAULT_DB: Final = Path(".hypothesis/loadtool-fuzz")
MAX_PRINTED_FRAMES_CHARS: Final = 4000  # longer reproducers go to a file


@click.command()
@click.argument("url", required=False)
@click.option(
    "--secret",
    envvar="LOADTOOL_SECRET",
    help="Mint tokens with this secret, reference scheme (or $LOADTOOL_SECRET).",
)
@click.option(
    "--profile",
    type=click.Choice(["reference", "seed-broadcast"]),
    help="Built-in target profile: reference (all of protocol v1) or seed-broadcast (the "
    "seed article's broadcast relay). Default: reference.",
)
@click.option(
    "--target",
    "target_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A target file (features, tokens) instead of --profile (docs/conformance.md).",
)
@click.option(
    "--examples",
    type=click.IntRange(1, 1_000_000),
    default=200,
    show_default=True,
    help="Examples to generate (shrinking a failure runs more).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    help="Seed of the search, for a repeatable run (default: random, printed).",
)
@click.option(
    "--db",
    "db_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="Hypothesis example database: failures found are replayed first next time.",
)
@click.option("--no-db", is_flag=True, help="Keep no example database.")
@click.option(
    "--layer",
    type=click.Choice(["chat", "websocket"]),
    default="chat",
    show_default=True,
    help="chat: protocol frames (JSON messages); websocket: raw RFC 6455 frames, valid and "
    "mutated (a target file's `restart` command restarts a crashed server).",
)
@insecure_option
@ca_file_option
def fuzz(
    url: str | None,
    secret: str | None,
    profile: str | None,
    target_file: Path | None,
    examples: int,
    seed: int | None,
    db_dir: Path,
    no_db: bool,
    layer: str,
    insecure: bool,
    ca_file: Path | None,
) -> None:
    """Fuzz the chat server at URL with Hypothesis-generated frame sequences.

    Every invalid frame must get an error frame or a documented close, every valid one
    its documented answer, another member must receive the sender's messages intact,
    and a new client must still get service after every example. Without URL, an
    embedded reference server is started (and stopped at the end).

    With --layer websocket the sequences are raw WebSocket frames instead: the server
    may answer only with frames RFC 6455 allows it to send, valid frames must leave the
    connection serving, and the server must survive every example.
    """
    endpoint: Endpoint | None = None
    if url is not None:
        try:
            endpoint = Endpoint.from_url(url, insecure=insecure, ca_file=ca_file)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="URL") from None
    if profile is not None and target_file is not None:
        raise click.UsageError("--profile and --target exclude each other")
    if url is None and (target_file is not None or profile not in (None, "reference")):
        raise click.UsageError(
            "without a URL the embedded reference server runs with the reference profile: "
            "give a URL to use --target or --profile seed-broadcast"
        )
    try:
        target = load_target(target_file, secret=secret) if target_file else None
    except TargetError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    database = None if no_db else db_dir
    the_seed = secrets.randbits(32) if seed is None else seed
    words = ["loadtool", "fuzz", *([url] if url else [])]
    if target_file is not None:
        words += ["--target", str(target_file)]
    elif profile is not None and profile != "reference":
        words += ["--profile", profile]
    if layer != "chat":
        words += ["--layer", layer]
    words += ["--examples", str(examples), "--seed", str(the_seed)]
    words += ["--no-db"] if database is None else ["--db", str(database)]
    command = shlex.join(words)
    if url and secret:
        command += ' --secret "$LOADTOOL_SECRET"'

    def progress(runs: int, failures: int) -> None:
        if runs % PROGRESS_EVERY == 0:
            found = f", {failures} failing (shrinking)" if failures else ""
            click.echo(f"fuzz: {runs} examples run{found}", err=True)

    async def main() -> FuzzReport | WsFuzzReport:
        server: EmbeddedServer | None = None
        the_endpoint = endpoint
        the_target = target or builtin(profile or "reference", secret=secret)
        if the_endpoint is None:
            # The reference defaults, as `loadtool serve` runs, not the swarm's lifted limits.
            options = EmbeddedOptions(
                rate_per_s=Limits().rate_per_s,
                burst=Limits().rate_burst,
                max_connections=Limits().max_connections,
                log_path=server_log,
            )
            server = EmbeddedServer(options, secret=secret)
            the_endpoint = Endpoint.from_url(await server.start())
            the_target = the_target.with_secret(server.secret)
            click.echo(f"embedded reference server at {the_endpoint.url}", err=True)
        try:
            click.echo(
                f"fuzzing {the_endpoint.url} ({the_target.name}): {examples} examples, "
                f"seed {the_seed}, database {database or 'none'}",
                err=True,
            )
            if layer == "websocket":
                return await run_ws_fuzz(
                    the_endpoint,
                    the_target,
                    examples=examples,
                    seed=the_seed,
                    database_dir=database,
                    on_progress=progress,
                    command=command,
                )
            return await run_fuzz(
                the_endpoint,
                the_target.tokens,
                examples=examples,
                seed=the_seed,
                database_dir=database,
                features=the_target.features,
                on_progress=progress,
                command=command,
            )
        finally:
            if server is not None:
                await server.stop()

    with tempfile.TemporaryDirectory(prefix="loadtool-fuzz-") as scratch:
        server_log = Path(scratch) / "server.log"
        try:
            report = trio.run(main)
        except (FuzzUnreachable, EmbeddedServerError, BaseExceptionGroup) as raised:
            leaf = sole_leaf(raised)
            if not isinstance(leaf, FuzzUnreachable | EmbeddedServerError):
                raise
            click.echo(f"Error: {leaf}", err=True)
            sys.exit(EXIT_UNREACHABLE)
    click.echo(_summary(report, database))
    sys.exit(0 if report.passed else EXIT_FAILURE_FOUND)


def _summary(report: FuzzReport | WsFuzzReport, database: Path | None) -> str:
    head = f"{report.runs} examples run in {report.duration_s:.1f}s, seed {report.seed}"
    restarts = getattr(report, "restarts", 0)
    if restarts:
        head += f", server restarted {restarts}x"
    if report.failure is None:
        return f"PASSED: no failure found ({head})"
    failure = report.failure
    lines = [f"FAILED: {failure.message}"]
    if failure.note:
        lines.append(f"({failure.note})")
    frames_file = None
    if len(report.frames_json()) > MAX_PRINTED_FRAMES_CHARS:
        folder = database or Path(".")
        folder.mkdir(parents=True, exist_ok=True)
        frames_file = folder / f"fuzz-failure-{report.seed}.json"
        frames_file.write_text(report.frames_json() + "\n", encoding="utf-8")
    lines += ["", report.reproducer(frames_file=frames_file), "", f"FAILED ({head})"]
    return "\n".join(lines)
