"""`loadtool token`: mint a connection token for tests and demos (printed alone on stdout)."""

from __future__ import annotations

import click

from .. import protocol as p
from ._types import DURATION


@click.command()
@click.option("--user", "user_id", required=True, help="User id (the token's `sub`).")
@click.option(
    "--room",
    "rooms",
    multiple=True,
    required=True,
    help="A room the token grants; repeat for more; '*' grants every room.",
)
@click.option(
    "--secret",
    envvar="LOADTOOL_SECRET",
    required=True,
    help="Signing secret (or $LOADTOOL_SECRET).",
)
@click.option("--ttl", type=DURATION, default="24h", show_default=True, help="Validity.")
def token(user_id: str, rooms: tuple[str, ...], secret: str, ttl: float) -> None:
    """Print an HS256 token for USER granting ROOMs (docs/protocol.md §2.2)."""
    if p.USER_PATTERN.fullmatch(user_id) is None:
        raise click.BadParameter(
            f"{user_id!r} is not a user id: use 1-128 of [A-Za-z0-9_.:@+-]", param_hint="--user"
        )
    try:
        click.echo(p.mint_token(secret, user_id, rooms, ttl_s=ttl))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
