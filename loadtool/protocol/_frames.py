"""One frozen attrs class per frame type of protocol v1 (docs/protocol.md §4-§7).

Frames validate themselves on construction, as h11's events do, so a frame that exists
is a frame that is legal on the wire. Client frames are what a client may send; server
frames what the server sends. `message` and `history` exist in both directions with
different fields, hence two classes each (`SendMessage`/`Message`,
`HistoryRequest`/`HistoryPage`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

import attrs

from . import _fields as f
from ._errors import ErrorCode, ProtocolError

MAX_HISTORY_LIMIT = 1000  # messages per history page, protocol-wide ceiling
MAX_ERROR_MESSAGE_CHARS = 1000  # characters in an `error` frame's message


def _limit_pairs(
    value: Mapping[str, float] | Iterable[tuple[str, float]],
) -> tuple[tuple[str, float], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    pairs = tuple(sorted((str(k), v) for k, v in items))
    for key, number in pairs:
        ok = (type(number) is int and 0 <= number <= f.MAX_SEQ) or (
            type(number) is float and math.isfinite(number) and number >= 0
        )
        if not ok:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"field 'limits' must map names to non-negative numbers ({key!r})",
            )
    return pairs


def _error_code(value: Any) -> ErrorCode:
    # Look up by value ourselves: ErrorCode(value) would repr any value, however deep.
    code = ErrorCode._value2member_map_.get(value) if isinstance(value, str) else None
    if not isinstance(code, ErrorCode):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            f"field 'code' must be a known error code, got {f.show(value)}",
        )
    return code


def _messages_tuple(value: Iterable[Message]) -> tuple[Message, ...]:
    return tuple(value)


def _room_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'rooms' must be a list of room names")
    rooms = tuple(value)
    for room in rooms:
        if not isinstance(room, str) or f.ROOM_PATTERN.fullmatch(room) is None:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"field 'rooms' must be a list of room names, got {f.show(room)}",
            )
    return rooms


# --- client -> server -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SendMessage:
    """A chat message from a client; the seed's ChatMessage with `type` optional."""

    TYPE: ClassVar[str] = "message"
    id: str = attrs.field(validator=f.message_id)
    room: str = attrs.field(validator=f.room_name)
    text: str = attrs.field(validator=f.text)
    sent_at: str | None = attrs.field(
        default=None, validator=f.optional(f.utc_timestamp), metadata=f.wire("sentAt")
    )
    # Read from seed-dialect frames, never trusted: the server uses the token's `sub`.
    sender_id: str | None = attrs.field(
        default=None, validator=f.optional(f.text), metadata=f.wire("senderId")
    )


@attrs.frozen(kw_only=True)
class Join:
    """Join a room the token grants; `since` asks for the messages after that seq."""

    TYPE: ClassVar[str] = "join"
    room: str = attrs.field(validator=f.room_name)
    since: int | None = attrs.field(default=None, validator=f.optional(f.seq))


@attrs.frozen(kw_only=True)
class Leave:
    TYPE: ClassVar[str] = "leave"
    room: str = attrs.field(validator=f.room_name)


@attrs.frozen(kw_only=True)
class HistoryRequest:
    """One page of stored messages: the newest, or those `before`/`after` a seq."""

    TYPE: ClassVar[str] = "history"
    room: str = attrs.field(validator=f.room_name)
    before: int | None = attrs.field(default=None, validator=f.optional(f.seq))
    after: int | None = attrs.field(default=None, validator=f.optional(f.seq))
    limit: int | None = attrs.field(
        default=None, validator=f.optional(f.positive_int(MAX_HISTORY_LIMIT))
    )

    def __attrs_post_init__(self) -> None:
        if self.before is not None and self.after is not None:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD, "give at most one of 'before' and 'after'", room=self.room
            )


@attrs.frozen(kw_only=True)
class Ping:
    """Application heartbeat; answered by `pong` to the sender only."""

    TYPE: ClassVar[str] = "ping"
    ts: str | int | float | None = attrs.field(default=None, validator=f.ping_token)


@attrs.frozen(kw_only=True)
class Typing:
    TYPE: ClassVar[str] = "typing"
    room: str = attrs.field(validator=f.room_name)
    typing: bool = attrs.field(default=True, validator=f.boolean)


ClientFrame = SendMessage | Join | Leave | HistoryRequest | Ping | Typing


# --- server -> client -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Welcome:
    """First frame on every connection: who you are, your rooms, the server's limits."""

    TYPE: ClassVar[str] = "welcome"
    user_id: str = attrs.field(validator=f.user_name, metadata=f.wire("userId"))
    rooms: tuple[str, ...] = attrs.field(converter=_room_tuple)
    protocol: int = attrs.field(default=f.PROTOCOL_VERSION, validator=f.non_negative_int)
    heartbeat_ms: int = attrs.field(validator=f.non_negative_int, metadata=f.wire("heartbeatMs"))
    idle_timeout_ms: int = attrs.field(
        validator=f.non_negative_int, metadata=f.wire("idleTimeoutMs")
    )
    # Sorted (name, value) pairs, so the frame stays hashable; a JSON object on the wire.
    limits: tuple[tuple[str, float], ...] = attrs.field(factory=tuple, converter=_limit_pairs)


@attrs.frozen(kw_only=True)
class Joined:
    """The connection is now a member; `seq` is the room's latest sequence number."""

    TYPE: ClassVar[str] = "joined"
    room: str = attrs.field(validator=f.room_name)
    seq: int = attrs.field(validator=f.seq)


@attrs.frozen(kw_only=True)
class Left:
    TYPE: ClassVar[str] = "left"
    room: str = attrs.field(validator=f.room_name)


@attrs.frozen(kw_only=True)
class Message:
    """A stored chat message as delivered to every member (the sender included)."""

    TYPE: ClassVar[str] = "message"
    id: str = attrs.field(validator=f.message_id)
    room: str = attrs.field(validator=f.room_name)
    sender_id: str = attrs.field(validator=f.user_name, metadata=f.wire("senderId"))
    text: str = attrs.field(validator=f.text)
    sent_at: str = attrs.field(validator=f.utc_timestamp, metadata=f.wire("sentAt"))
    seq: int = attrs.field(validator=f.seq)


@attrs.frozen(kw_only=True)
class Ack:
    """The sender's receipt: the message is stored as `seq` in `room`."""

    TYPE: ClassVar[str] = "ack"
    id: str = attrs.field(validator=f.message_id)
    room: str = attrs.field(validator=f.room_name)
    seq: int = attrs.field(validator=f.seq)
    duplicate: bool = attrs.field(default=False, validator=f.boolean)


@attrs.frozen(kw_only=True)
class HistoryPage:
    TYPE: ClassVar[str] = "history"
    room: str = attrs.field(validator=f.room_name)
    messages: tuple[Message, ...] = attrs.field(converter=_messages_tuple)
    has_more: bool = attrs.field(validator=f.boolean, metadata=f.wire("hasMore"))


@attrs.frozen(kw_only=True)
class Pong:
    TYPE: ClassVar[str] = "pong"
    ts: str | int | float | None = attrs.field(default=None, validator=f.ping_token)


@attrs.frozen(kw_only=True)
class TypingNotice:
    TYPE: ClassVar[str] = "typing"
    room: str = attrs.field(validator=f.room_name)
    user_id: str = attrs.field(validator=f.user_name, metadata=f.wire("userId"))
    typing: bool = attrs.field(validator=f.boolean)


@attrs.frozen(kw_only=True)
class Presence:
    """A user's first connection joined the room, or its last one left (not stored)."""

    TYPE: ClassVar[str] = "presence"
    room: str = attrs.field(validator=f.room_name)
    user_id: str = attrs.field(validator=f.user_name, metadata=f.wire("userId"))
    status: Literal["joined", "left"] = attrs.field(validator=f.one_of("joined", "left"))


@attrs.frozen(kw_only=True)
class Error:
    """The server refused a frame; the connection stays open."""

    TYPE: ClassVar[str] = "error"
    code: ErrorCode = attrs.field(converter=_error_code)
    message: str = attrs.field(validator=f.string(MAX_ERROR_MESSAGE_CHARS))
    id: str | None = attrs.field(default=None, validator=f.optional(f.text))
    room: str | None = attrs.field(default=None, validator=f.optional(f.text))
    retry_after_ms: int | None = attrs.field(
        default=None, validator=f.optional(f.seq), metadata=f.wire("retryAfterMs")
    )


ServerFrame = (
    Welcome | Joined | Left | Message | Ack | HistoryPage | Pong | TypingNotice | Presence | Error
)
Frame = ClientFrame | ServerFrame

CLIENT_FRAMES: dict[str, type[ClientFrame]] = {
    cls.TYPE: cls for cls in (SendMessage, Join, Leave, HistoryRequest, Ping, Typing)
}
SERVER_FRAMES: dict[str, type[ServerFrame]] = {
    cls.TYPE: cls
    for cls in (
        Welcome,
        Joined,
        Left,
        Message,
        Ack,
        HistoryPage,
        Pong,
        TypingNotice,
        Presence,
        Error,
    )
}
