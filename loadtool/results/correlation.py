"""Run ids, message ids, room names and the correlation payload inside a message's `text`.

Every simulated message carries who sent it, its sequence number, its room and the time
it was meant to be sent, inside the chat text itself:

    lt1:<run_id>:<sender>:<seq>:<room>:<intended_ns>:xxxxxxxx...

so a recipient can account for it (loadtool/results/ledger.py) whatever the server does to
the other fields (the seed dialect keeps only id, room, senderId, text and sentAt), and
the latency is measured from the *intended* send time, not the actual one, which keeps
coordinated omission out of the numbers. Padding ("x") brings the text up to the
scenario's message size. Pure: no clock is read here, randomness is injected.
"""

from __future__ import annotations

import random
import re
from typing import Final

import attrs

MAGIC: Final = "lt1"  # payload format version 1
_PREFIX: Final = MAGIC + ":"
PAD: Final = "x"
ROOM_PREFIX: Final = "lt-"  # room names on the wire: f"{prefix}{index}"
RUN_ID_PATTERN: Final = re.compile(r"[0-9a-f]{8}")
RUN_ID_BITS: Final = 32  # 8 lowercase hex characters


def new_run_id(rng: random.Random) -> str:
    """A fresh run id: 8 lowercase hex characters drawn from `rng` (seeded by the caller)."""
    return f"{rng.getrandbits(RUN_ID_BITS):08x}"


def check_run_id(run_id: str) -> str:
    """`run_id` itself if it is 8 lowercase hex characters.

    Raises:
        ValueError: naming the expected form.
    """
    if RUN_ID_PATTERN.fullmatch(run_id) is None:
        raise ValueError(f"run id must be 8 lowercase hex characters, got {run_id!r}")
    return run_id


def room_name(index: int, prefix: str = ROOM_PREFIX) -> str:
    """The wire name of room `index` (0-based): "lt-0", "lt-1"..."""
    return f"{prefix}{index}"


def room_index(name: str, prefix: str = ROOM_PREFIX) -> int | None:
    """The index `room_name` encoded in `name`, or None for a room that is not ours."""
    if not name.startswith(prefix):
        return None
    digits = name[len(prefix) :]
    if not digits.isdigit() or not digits.isascii():
        return None
    return int(digits)


def message_id(run_id: str, sender: int, seq: int) -> str:
    """The wire `id` of message `seq` (from 1) of client `sender` (0-based) in run `run_id`."""
    return f"{run_id}-{sender}-{seq}"


def parse_message_id(wire_id: str, run_id: str) -> tuple[int, int] | None:
    """(sender, seq) from a wire id `message_id` built for `run_id`; None for any other id."""
    if not wire_id.startswith(run_id) or wire_id[len(run_id) : len(run_id) + 1] != "-":
        return None
    sender, sep, seq = wire_id[len(run_id) + 1 :].partition("-")
    if not sep or not sender.isdigit() or not seq.isdigit():
        return None
    if not (sender.isascii() and seq.isascii()):
        return None
    return int(sender), int(seq)


# Dict-based on purpose: attrs' frozen __init__ writes __dict__ directly, ~0.2 us cheaper per
# decode than the object.__setattr__ calls of a slotted frozen class (decode is per delivery).
@attrs.frozen(slots=False)
class Correlation:
    """What a recipient learns from a message's text (all indexes 0-based, seq from 1)."""

    run_id: str
    sender: int
    seq: int
    room: int
    intended_ns: int  # run clock, ns: when the sender meant to send it


def encode_text(run_id: str, sender: int, seq: int, room: int, intended_ns: int, size: int) -> str:
    """The chat text for one message: the header, then "x" padding up to `size` characters.

    A header longer than `size` is sent whole (no padding, never truncated).

    Raises:
        ValueError: `run_id` contains ":" (it would break decoding).
    """
    if ":" in run_id:
        raise ValueError(f"run id must not contain ':', got {run_id!r}")
    header = f"{_PREFIX}{run_id}:{sender}:{seq}:{room}:{intended_ns}:"
    pad = size - len(header)
    return header + PAD * pad if pad > 0 else header


def decode_text(text: str) -> Correlation | None:
    """The correlation in `text`, or None for texts that are not ours. Never raises.

    For texts of any run (the run id is read from the text); the receive hot path knows
    its run and uses `decode_fields` directly.
    """
    if not text.startswith(_PREFIX):
        return None
    run_id, colon, _ = text[len(_PREFIX) :].partition(":")
    fields = decode_fields(text, run_prefix(run_id)) if colon else None
    if fields is None:
        return None
    return Correlation(run_id, *fields)


def run_prefix(run_id: str) -> str:
    """The start of every text of run `run_id` ("lt1:<run_id>:"), for `decode_fields`."""
    return f"{_PREFIX}{run_id}:"


def decode_fields(text: str, prefix: str) -> tuple[int, int, int, int] | None:
    """(sender, seq, room, intended_ns) of a text of the run whose `run_prefix` is `prefix`;
    None for texts that are not that run's (or not ours at all). Never raises.

    The receive hot path's form of `decode_text` (tests/results/test_correlation.py checks
    they agree): the run id is matched with the prefix instead of being split out, and no
    `Correlation` is built, which halves the cost per delivery.
    """
    if not text.startswith(prefix):
        return None
    parts = text[len(prefix) :].split(":", 4)
    if len(parts) != 5:
        return None
    try:
        sender = int(parts[0])
        seq = int(parts[1])
        room = int(parts[2])
        intended_ns = int(parts[3])
    except ValueError:
        return None
    if sender < 0 or seq < 1 or room < 0:
        return None
    return sender, seq, room, intended_ns
