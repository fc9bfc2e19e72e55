"""Error codes, close codes and the one exception the protocol layer raises.

Why one exception: everything that reads frames (the reference server, the simulated
clients, the conformance gate) must be able to turn *any* bad input into a documented
answer. `ProtocolError` carries that answer: the `error` frame code to send back and,
when the connection cannot go on, the WebSocket close code to use (docs/protocol.md §8).
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """`code` of an `error` frame (docs/protocol.md §8.1)."""

    BAD_JSON = "bad_json"  # not valid JSON text
    BAD_FRAME = "bad_frame"  # JSON, but not an object, or no usable `type`
    UNKNOWN_TYPE = "unknown_type"  # `type` names no frame a client may send
    INVALID_FIELD = "invalid_field"  # a field is missing, of the wrong type or out of range
    TOO_LONG = "too_long"  # message text longer than the server's limit
    UNSUPPORTED_DATA = "unsupported_data"  # a binary WebSocket message
    FORBIDDEN = "forbidden"  # the token does not grant this room
    NOT_MEMBER = "not_member"  # the connection has not joined this room
    TOO_MANY_ROOMS = "too_many_rooms"  # the per-connection room limit is reached
    RATE_LIMITED = "rate_limited"  # the per-connection rate limit refused the frame
    UNAVAILABLE = "unavailable"  # the server could not store or read history right now


class CloseCode(enum.IntEnum):
    """WebSocket close codes the reference server uses (RFC 6455 §7.4, docs/protocol.md §8.2)."""

    NORMAL = 1000  # RFC 6455 §7.4.1: normal closure
    GOING_AWAY = 1001  # RFC 6455 §7.4.1: server shutting down
    PROTOCOL_ERROR = 1002  # RFC 6455 §7.4.1: WebSocket protocol violation
    UNSUPPORTED_DATA = 1003  # RFC 6455 §7.4.1
    INVALID_PAYLOAD = 1007  # RFC 6455 §7.4.1: e.g. invalid UTF-8 in a text message
    POLICY_VIOLATION = 1008  # RFC 6455 §7.4.1: sustained rate-limit abuse
    MESSAGE_TOO_BIG = 1009  # RFC 6455 §7.4.1: message over the frame-size limit
    INTERNAL_ERROR = 1011  # RFC 6455 §7.4.1
    TRY_AGAIN_LATER = 1013  # IANA registry: slow consumer, outbound queue full
    IDLE_TIMEOUT = 4000  # private use (RFC 6455 §7.4.2): nothing received for too long


class ProtocolError(ValueError):
    """A frame (or field) broke protocol v1.

    `code` is the `error` frame code to answer with; `close_code`, when set, says the
    connection must be closed with it instead of answered. `frame_id` and `room` echo the
    offending frame's `id`/`room` when they could be read, so a client can match the error
    to what it sent.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        frame_id: str | None = None,
        room: str | None = None,
        close_code: CloseCode | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_id = frame_id
        self.room = room
        self.close_code = close_code

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.message!r})"
