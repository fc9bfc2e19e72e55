"""The one encode/decode pair of protocol v1: frames <-> JSON text (docs/protocol.md §3).

Pure functions, no I/O. `decode` raises nothing but `ProtocolError`, whatever the
input, which the property tests check with Hypothesis.
"""

from __future__ import annotations

import enum
from typing import Any, Final, Literal, overload

import attrs
import orjson

from . import _fields as f
from . import _frames as fr
from ._errors import ErrorCode, ProtocolError

SEED_FIELDS: Final = ("id", "room", "senderId", "text", "sentAt")
_ABSENT: Final = object()


class Source(enum.Enum):
    """Who sent the frame being decoded: the same `type` can mean different frames."""

    CLIENT = "client"
    SERVER = "server"


@attrs.frozen
class _Field:
    name: str
    wire: str
    required: bool


def _plan(cls: type[Any]) -> tuple[_Field, ...]:
    return tuple(
        _Field(
            name=a.name,
            wire=str(a.metadata.get("wire", a.name)),
            required=a.default is attrs.NOTHING,
        )
        for a in attrs.fields(cls)
    )


_PLANS: Final[dict[type[Any], tuple[_Field, ...]]] = {
    cls: _plan(cls) for cls in (*fr.CLIENT_FRAMES.values(), *fr.SERVER_FRAMES.values())
}


def to_wire(frame: fr.Frame) -> dict[str, Any]:
    """The JSON object of a frame: wire names, `type` first, absent optionals omitted."""
    out: dict[str, Any] = {"type": frame.TYPE}
    for field in _PLANS[type(frame)]:
        value = getattr(frame, field.name)
        if value is None:
            continue
        if isinstance(frame, fr.HistoryPage) and field.name == "messages":
            value = [to_wire(m) for m in value]
        elif isinstance(frame, fr.Welcome) and field.name == "limits":
            value = dict(value)
        out[field.wire] = value
    return out


def encode(frame: fr.Frame) -> bytes:
    """UTF-8 JSON for one frame, ready to go out as a WebSocket text message."""
    return orjson.dumps(to_wire(frame))


@overload
def decode(data: str | bytes, *, source: Literal[Source.CLIENT] = ...) -> fr.ClientFrame: ...
@overload
def decode(data: str | bytes, *, source: Literal[Source.SERVER]) -> fr.ServerFrame: ...
@overload
def decode(data: str | bytes, *, source: Source) -> fr.Frame: ...
def decode(data: str | bytes, *, source: Source = Source.CLIENT) -> fr.Frame:
    """Parse one text message into a frame.

    A client's object without `type` that carries the seed's five ChatMessage fields is
    a chat message (the seed dialect, docs/protocol.md §3.2).

    Raises:
        ProtocolError: for any input that is not a valid frame from `source`; its `code`
            says why and its message names the field.
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            ErrorCode.BAD_FRAME, f"a frame must be a JSON object, got {type(obj).__name__}"
        )
    return decode_object(obj, source=source)


@overload
def decode_object(
    obj: dict[str, Any], *, source: Literal[Source.CLIENT] = ...
) -> fr.ClientFrame: ...
@overload
def decode_object(obj: dict[str, Any], *, source: Literal[Source.SERVER]) -> fr.ServerFrame: ...
@overload
def decode_object(obj: dict[str, Any], *, source: Source) -> fr.Frame: ...
def decode_object(obj: dict[str, Any], *, source: Source = Source.CLIENT) -> fr.Frame:
    """Like `decode`, for an already parsed JSON object."""
    frame_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    room = obj.get("room") if isinstance(obj.get("room"), str) else None
    kind = obj.get("type")
    if kind is None:
        kind = _ABSENT  # `"type": null` is an absent type (docs/protocol.md §3.1)
    table: dict[str, type[Any]] = (
        dict(fr.CLIENT_FRAMES) if source is Source.CLIENT else dict(fr.SERVER_FRAMES)
    )
    if kind is _ABSENT and source is Source.CLIENT:
        if not all(key in obj for key in SEED_FIELDS):
            missing = [key for key in SEED_FIELDS if key not in obj]
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                "missing 'type' (a frame without one must carry the seed ChatMessage "
                f"fields; missing {', '.join(missing)})",
                frame_id=frame_id,
                room=room,
            )
        cls: type[Any] = fr.SendMessage
    elif kind is _ABSENT:
        raise ProtocolError(ErrorCode.BAD_FRAME, "missing 'type'", frame_id=frame_id, room=room)
    elif not isinstance(kind, str):
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'type' must be a string, got {f.show(kind)}",
            frame_id=frame_id,
            room=room,
        )
    else:
        found = table.get(kind)
        if found is None:
            known = ", ".join(sorted(table))
            shown = kind if len(kind) <= 40 else kind[:37] + "..."
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE,
                f"unknown frame type {shown!r}; a {source.value} may send: {known}",
                frame_id=frame_id,
                room=room,
            )
        cls = found
    kwargs: dict[str, Any] = {}
    for field in _PLANS[cls]:
        if field.wire in obj:
            kwargs[field.name] = obj[field.wire]
        elif field.required:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"{cls.TYPE!r} frame is missing field {field.wire!r}",
                frame_id=frame_id,
                room=room,
            )
    try:
        if cls is fr.HistoryPage:
            kwargs["messages"] = _nested_messages(kwargs["messages"])
        elif cls is fr.Welcome:
            _check_welcome(kwargs)
        frame: fr.Frame = cls(**kwargs)
    except ProtocolError as exc:
        exc.frame_id = exc.frame_id or frame_id
        exc.room = exc.room or room
        raise
    except (TypeError, ValueError) as exc:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, f"{cls.TYPE!r} frame: {exc}", frame_id=frame_id, room=room
        ) from None
    return frame


def _nested_messages(value: Any) -> tuple[fr.Message, ...]:
    if not isinstance(value, list):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'messages' must be a list")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise ProtocolError(ErrorCode.INVALID_FIELD, "'messages' items must be objects")
        message: fr.Frame = decode_object({**item, "type": "message"}, source=Source.SERVER)
        assert isinstance(message, fr.Message)
        out.append(message)
    return tuple(out)


def _check_welcome(kwargs: dict[str, Any]) -> None:
    rooms = kwargs.get("rooms")
    if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'rooms' must be a list of strings")
    if not isinstance(kwargs.get("limits", {}), dict):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'limits' must be a JSON object")
