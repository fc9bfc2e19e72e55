"""The `case` decorator: turns an async function into a numbered `Case`."""

from __future__ import annotations

from collections.abc import Callable

from ..model import Case, CaseBody, Feature


def case(
    case_id: str,
    title: str,
    section: str,
    *features: Feature,
    timeout_s: float = 10.0,
    info: bool = False,
) -> Callable[[CaseBody], Case]:
    """`@case("3.2", "room isolation", "§4.4", Feature.ROOMS)` above `async def f(h)`.

    The function's docstring becomes the case's description (shown by --list and in
    reports): say what is sent and what the section requires.
    """

    def wrap(body: CaseBody) -> Case:
        return Case(
            id=case_id,
            title=title,
            section=section,
            features=frozenset(features),
            body=body,
            description=" ".join((body.__doc__ or "").split()),
            timeout_s=timeout_s,
            info=info,
        )

    return wrap
