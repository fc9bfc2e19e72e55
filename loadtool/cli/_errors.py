"""Turning what a command raised into its message and exit code (one place)."""

from __future__ import annotations


def sole_leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member groups (trio's nurseries wrap what
    their tasks raise), or `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
