"""Field rules shared by every frame class: names, lengths, sequence numbers, timestamps.

Validators raise `ProtocolError(INVALID_FIELD)` naming the field, so a frame class both
checks itself on construction (like h11's events) and gives the decoder its error text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from ._errors import ErrorCode, ProtocolError

PROTOCOL_VERSION: Final = 1

ROOM_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:@#-]{1,64}")
USER_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")
MAX_ID_CHARS: Final = 128  # characters in a message `id`
MAX_SEQ: Final = 2**53 - 1  # largest integer every JSON parser reads exactly
MAX_TEXT_CHARS_HARD: Final = 1_000_000  # codec sanity cap; servers set a lower limit
MAX_TS_CHARS: Final = 64  # characters in an echoed ping `ts` string

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def show(value: object) -> str:
    """A short, bounded description of a JSON value for error messages (never recurses)."""
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    if isinstance(value, str):
        return repr(value[:60] + "...") if len(value) > 60 else repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:40] + "..."


def _fail(attribute: attrs.Attribute[Any], what: str, value: object) -> ProtocolError:
    shown = show(value)
    return ProtocolError(
        ErrorCode.INVALID_FIELD, f"field {_wire_name(attribute)!r} must be {what}, got {shown}"
    )


def _wire_name(attribute: attrs.Attribute[Any]) -> str:
    wire = attribute.metadata.get("wire")
    return str(wire) if wire else attribute.name


def wire(name: str) -> dict[str, str]:
    """Metadata naming a field's JSON key when it differs from the Python name."""
    return {"wire": name}


def name_validator(pattern: re.Pattern[str], what: str) -> Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise _fail(attribute, what, value)

    return check


room_name = name_validator(ROOM_PATTERN, "a room name of 1-64 characters from [A-Za-z0-9_.:@#-]")
user_name = name_validator(USER_PATTERN, "a user id of 1-128 characters from [A-Za-z0-9_.:@+-]")


def message_id(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS or not value.isprintable():
        raise _fail(attribute, f"a printable string of 1-{MAX_ID_CHARS} characters", value)


def text(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS_HARD:
        raise _fail(attribute, "a string", value)


def seq(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # bool is an int subclass in Python; JSON true is not a sequence number.
    if type(value) is not int or not 0 <= value <= MAX_SEQ:
        raise _fail(attribute, f"an integer from 0 to {MAX_SEQ}", value)


def positive_int(limit: int) -> Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if type(value) is not int or not 1 <= value <= limit:
            raise _fail(attribute, f"an integer from 1 to {limit}", value)

    return check


def boolean(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not bool:
        raise _fail(attribute, "true or false", value)


def optional(check: Validator) -> Validator:
    def run(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(inst, attribute, value)

    return run


_UTC_TIME: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(?:Z|z|\+00:00)"
)


def utc_timestamp(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """ISO-8601 / RFC 3339 in UTC (`Z` or `+00:00`), as the seed's `toIso8601String()`.

    Up to nanosecond digits are accepted (Go emits 9); `-00:00` ("offset unknown" in
    RFC 3339) is not UTC.
    """
    match = _UTC_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        date, time_, fraction = match.groups()
        micros = f".{(fraction or '0')[:6]:0<6}"
        try:
            datetime.fromisoformat(f"{date}T{time_}{micros}+00:00")
        except ValueError:
            pass
        else:
            return
    raise _fail(attribute, "an ISO-8601 UTC time such as '2026-11-29T10:00:00.000Z'", value)


def ping_token(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    ok = (
        value is None
        or (isinstance(value, str) and len(value) <= MAX_TS_CHARS)
        or (type(value) is int and -MAX_SEQ <= value <= MAX_SEQ)
        or (type(value) is float and math.isfinite(value))
    )
    if not ok:
        raise _fail(
            attribute, f"a finite number, null or a string of at most {MAX_TS_CHARS}", value
        )


def non_negative_int(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not int or not 0 <= value <= MAX_SEQ:
        raise _fail(attribute, "a non-negative integer", value)


def one_of(*choices: str) -> Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise _fail(attribute, "one of " + ", ".join(repr(c) for c in choices), value)

    return check


def string(max_chars: int) -> Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or len(value) > max_chars:
            raise _fail(attribute, f"a string of at most {max_chars} characters", value)

    return check


def utc_now_iso() -> str:
    """The current UTC time in the seed's format (millisecond precision, `Z`)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
