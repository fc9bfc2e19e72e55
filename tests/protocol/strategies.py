"""The protocol's Hypothesis strategies now live in the product, `loadtool.fuzz.strategies`
(the fuzzer uses them too); this module re-exports them for the protocol tests."""

# ruff: noqa: F405 - the names come from the star import, listed once more in __all__

from __future__ import annotations

from loadtool.fuzz.strategies import *  # noqa: F403

__all__ = [
    "EXAMPLE_TIMESTAMP",
    "FRAME_STRATEGIES",
    "ODD_CHARACTERS",
    "ROOM_ALPHABET",
    "USER_ALPHABET",
    "ack_frames",
    "client_frames",
    "decode_inputs",
    "deeply_nested_json_texts",
    "error_frames",
    "history_page_frames",
    "history_request_frames",
    "huge_int_json_texts",
    "invalid_timestamps",
    "join_frames",
    "joined_frames",
    "json_texts",
    "json_values",
    "leave_frames",
    "left_frames",
    "malformed_frame_objects",
    "message_frames",
    "message_ids",
    "message_texts",
    "non_json_inputs",
    "odd_unicode_json_texts",
    "odd_unicode_strings",
    "ping_frames",
    "ping_tokens",
    "pong_frames",
    "presence_frames",
    "room_names",
    "seed_dialect_objects",
    "send_message_frames",
    "seqs",
    "server_frames",
    "typing_frames",
    "typing_notice_frames",
    "user_ids",
    "utc_timestamps",
    "welcome_frames",
]
