"""click parameter types that report bad input with `self.fail()` (what, and how to fix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..units import parse_duration, parse_size

_F = TypeVar("_F", bound=Callable[..., Any])


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            seconds = parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        return seconds


class Size(click.ParamType):  # type: ignore[type-arg]
    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            size = parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if size <= 0:
            self.fail(f"{value!r} must be larger than zero", param, ctx)
        return size


DURATION = Duration()
SIZE = Size()


# Options shared by the commands that dial a server (`run`, `capacity`, `conform`, `fuzz`).
def targets_option(default: str) -> Callable[[_F], _F]:
    """`--target URL`, repeatable; `default` says what is dialled without it."""
    return click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="URL",
        help="ws:// or wss:// URL of the server under test; repeat to spread clients. "
        f"Default: {default}.",
    )


dialect_option = click.option(
    "--dialect", type=click.Choice(["v1", "seed"]), help="Override the dialect."
)
secret_option = click.option(
    "--secret", help="Mint tokens with this secret (reference token scheme)."
)
insecure_option = click.option(
    "--insecure", is_flag=True, help="wss:// without certificate checks (self-signed servers)."
)
ca_file_option = click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA bundle (PEM) to trust for wss:// instead of the system's.",
)
