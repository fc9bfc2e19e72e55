"""The correlation payload and run/message/room ids (loadtool.results.correlation)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtool.results.correlation import (
    Correlation,
    check_run_id,
    decode_fields,
    decode_text,
    encode_text,
    message_id,
    new_run_id,
    parse_message_id,
    room_index,
    room_name,
    run_prefix,
)

run_ids = st.from_regex(r"[0-9a-f]{8}", fullmatch=True)
indexes = st.integers(0, 10**6)
seqs = st.integers(1, 10**9)
times_ns = st.integers(0, 2**62)


def test_example_text() -> None:
    text = encode_text("0a1b2c3d", 7, 42, 3, 1_732_880_000_123_456_789, 64)
    assert text == "lt1:0a1b2c3d:7:42:3:1732880000123456789:" + "x" * 24
    assert len(text) == 64
    assert decode_text(text) == Correlation("0a1b2c3d", 7, 42, 3, 1_732_880_000_123_456_789)


@given(run_ids, indexes, seqs, indexes, times_ns, st.integers(0, 5000))
def test_round_trip_and_size(
    run_id: str, sender: int, seq: int, room: int, intended_ns: int, size: int
) -> None:
    text = encode_text(run_id, sender, seq, room, intended_ns, size)
    header = f"lt1:{run_id}:{sender}:{seq}:{room}:{intended_ns}:"
    assert len(text) == max(size, len(header))  # a header longer than size is never cut
    assert text.startswith(header)
    assert decode_text(text) == Correlation(run_id, sender, seq, room, intended_ns)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "lt1:",
        "lt1:abcd0123:1:2:3:4",  # no trailing colon: not ours
        "lt1:abcd0123:x:2:3:4:",
        "lt1:abcd0123:-1:2:3:4:",
        "lt1:abcd0123:1:0:3:4:",  # seq counts from 1
        "lt2:abcd0123:1:2:3:4:",
        "LT1:abcd0123:1:2:3:4:",
    ],
)
def test_foreign_texts_decode_to_none(text: str) -> None:
    assert decode_text(text) is None


@given(st.text())
def test_decode_never_raises(text: str) -> None:
    decode_text(text)
    decode_text("lt1:" + text)


def _same_as_decode_text(text: str, run_id: str) -> None:
    corr = decode_text(text)
    expected = None
    if corr is not None and corr.run_id == run_id:
        expected = (corr.sender, corr.seq, corr.room, corr.intended_ns)
    assert decode_fields(text, run_prefix(run_id)) == expected


@given(run_ids, indexes, seqs, indexes, times_ns, st.integers(0, 300), run_ids)
def test_decode_fields_agrees_with_decode_text_on_our_texts(
    run_id: str, sender: int, seq: int, room: int, intended_ns: int, size: int, other: str
) -> None:
    text = encode_text(run_id, sender, seq, room, intended_ns, size)
    assert decode_fields(text, run_prefix(run_id)) == (sender, seq, room, intended_ns)
    _same_as_decode_text(text, run_id)
    _same_as_decode_text(text, other)  # another run's text: None unless the ids are equal


@given(run_ids, st.text(alphabet="0123456789:-x _lt", max_size=40) | st.text(max_size=40))
def test_decode_fields_agrees_with_decode_text_on_any_text(run_id: str, tail: str) -> None:
    """Near misses included: the run's prefix followed by anything (signs, spaces, too few
    fields, empty fields), and arbitrary text. `decode_fields` never raises either."""
    _same_as_decode_text(run_prefix(run_id) + tail, run_id)
    _same_as_decode_text(tail, run_id)


def test_run_id_must_not_break_the_format() -> None:
    with pytest.raises(ValueError, match="must not contain ':'"):
        encode_text("ab:cd", 0, 1, 0, 0, 0)


def test_new_run_id_is_seeded_and_well_formed() -> None:
    first = new_run_id(random.Random(1))
    assert first == new_run_id(random.Random(1))
    assert first != new_run_id(random.Random(2))
    assert check_run_id(first) == first
    with pytest.raises(ValueError, match="8 lowercase hex"):
        check_run_id("ABCDEF01")


def test_message_ids() -> None:
    assert message_id("abcd0123", 12, 7) == "abcd0123-12-7"
    assert parse_message_id("abcd0123-12-7", "abcd0123") == (12, 7)
    for other in ("abcd0124-12-7", "abcd0123-12", "abcd0123-x-7", "abcd0123_12-7", "m-1"):
        assert parse_message_id(other, "abcd0123") is None


def test_room_names() -> None:
    assert room_name(0) == "lt-0"
    assert room_name(12, prefix="load-") == "load-12"
    assert room_index("lt-12") == 12
    assert room_index("general") is None
    assert room_index("lt-") is None
    assert room_index("lt-\u0663") is None  # ARABIC-INDIC DIGIT THREE
