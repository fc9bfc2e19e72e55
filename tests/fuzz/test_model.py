"""The fuzzer's oracle (loadtool.fuzz.model): plans and checks, without sockets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from loadtool.conform.model import ALL_FEATURES, Feature
from loadtool.fuzz import model as m
from loadtool.fuzz import strategies as s
from loadtool.fuzz.model import WireFrame

HOME = "fuzz-1"
USER = "fuzz-u"


def text(obj: dict[str, Any]) -> WireFrame:
    return WireFrame.text(orjson.dumps(obj).decode())


def ctx(features: frozenset[Feature] = ALL_FEATURES) -> m.Context:
    welcome = {"type": "welcome", "userId": USER, "rooms": [HOME], "limits": {}}
    return m.Context.from_welcome(features, welcome)


def check(frames: list[WireFrame], received: list[dict[str, Any]], close: int | None = None):
    plans = m.plan(frames, ctx())
    return m.check_answers(plans, received, close_code=close, user=USER, strict=True)


def ack(mid: str, seq: int, room: str = HOME, duplicate: bool = False) -> dict[str, Any]:
    return {"type": "ack", "id": mid, "room": room, "seq": seq, "duplicate": duplicate}


def delivery(mid: str, seq: int, text_: str = "hi", room: str = HOME) -> dict[str, Any]:
    return {"type": "message", "id": mid, "room": room, "senderId": USER, "text": text_,
            "sentAt": "2026-11-29T10:00:00.000Z", "seq": seq}  # fmt: skip


MSG = text({"type": "message", "id": "m1", "room": HOME, "text": "hi"})


def test_a_message_needs_its_ack_and_its_delivery() -> None:
    assert check([MSG], [ack("m1", 3), delivery("m1", 3)])[0] is None
    problem, _ = check([MSG], [ack("m1", 3)])
    assert problem is not None
    assert "delivery of 'm1'" in problem
    problem, _ = check([MSG], [ack("m1", 3), delivery("m1", 4)])
    assert problem is not None
    assert "ack seq 3" in problem


def test_replays_membership_and_length_follow_the_model() -> None:
    other = text({"type": "message", "id": "m2", "room": "elsewhere", "text": "hi"})
    replay = text({"type": "message", "id": "m1", "room": HOME, "text": "other text"})
    long = text({"type": "message", "id": "m3", "room": HOME, "text": "x" * 4097})
    received = [
        ack("m1", 1),
        delivery("m1", 1),
        {"type": "error", "code": "not_member", "message": "", "id": "m2", "room": "elsewhere"},
        ack("m1", 1, duplicate=True),
        {"type": "error", "code": "too_long", "message": "", "id": "m3", "room": HOME},
    ]
    assert check([MSG, other, replay, long], received)[0] is None


def test_an_invalid_frame_needs_an_error_or_a_documented_close() -> None:
    junk = WireFrame.text("{")
    assert check([junk], [{"type": "error", "code": "bad_json", "message": "x"}])[0] is None
    assert check([junk], [], close=1002)[0] is None
    problem, _ = check([junk], [])
    assert problem is not None
    assert "silence" in problem
    problem, _ = check([junk], [], close=1011)
    assert problem is not None
    assert "1011" in problem
    problem, _ = check([junk], [], close=1006)
    assert problem is not None
    assert "without a close frame" in problem


def test_a_close_needs_a_culprit_and_excuses_only_what_follows_it() -> None:
    not_utf8 = WireFrame.text(b"\xff")
    assert check([not_utf8, MSG], [], close=1007)[0] is None
    problem, _ = check([MSG], [], close=1007)
    assert problem is not None
    assert "no frame called for it" in problem
    ping = text({"type": "ping", "ts": 1})
    problem, _ = check([ping, not_utf8], [], close=1007)
    assert problem is not None
    assert "frame #0" in problem
    assert "pong" in problem


def test_an_oversize_frame_must_be_closed() -> None:
    big = WireFrame.text('{"type":"ping","pad":"' + "p" * 70_000 + '"}')
    plans = m.plan([big], ctx())
    assert plans[0].category == "invalid"
    assert "1009" in plans[0].why
    problem, _ = check([big], [{"type": "pong"}])
    assert problem is not None
    assert "did not close" in problem
    assert check([big], [], close=1009)[0] is None


def test_typing_gets_nothing_back_and_extra_frames_fail() -> None:
    typing = text({"type": "typing", "room": HOME})
    assert check([typing], [])[0] is None
    problem, _ = check([typing], [{"type": "pong"}])
    assert problem is not None
    assert "no frame asked for" in problem
    # Other users' traffic is not an answer to the sender.
    others = [{"type": "presence", "room": HOME, "userId": "x", "status": "joined"},
              {**delivery("z", 9), "senderId": "someone"}]  # fmt: skip
    assert check([typing], others)[0] is None


def test_features_a_target_lacks_are_not_required() -> None:
    only_seed = frozenset({Feature.SEED_DIALECT})
    plans = m.plan([WireFrame.binary(b"x"), text({"type": "ping"})], ctx(only_seed))
    assert [q.category for q in plans] == ["free", "free"]
    seed_msg = text({"id": "1", "room": HOME, "senderId": "a", "text": "t",
                     "sentAt": "2026-11-29T10:00:00.000Z"})  # fmt: skip
    plans = m.plan([seed_msg], ctx(only_seed))
    assert plans[0].category == "valid"
    echo = orjson.loads(seed_msg.data)
    problem, _ = m.check_answers(plans, [echo], close_code=None, user=None, strict=False)
    assert problem is None


def test_the_observer_must_see_every_acked_message_intact_once_in_order() -> None:
    plans = m.plan([MSG], ctx())
    _, outcome = check([MSG], [ack("m1", 5), delivery("m1", 5)])

    def observe(frames: list[dict[str, Any]]) -> str | None:
        return m.check_observer(plans, outcome, frames, room=HOME, joined_seq=4, user=USER,
                                features=ALL_FEATURES)  # fmt: skip

    assert observe([delivery("m1", 5)]) is None
    assert "never received" in (observe([]) or "")
    assert "twice" in (observe([delivery("m1", 5), delivery("m1", 5)]) or "")
    assert "corrupted" in (observe([delivery("m1", 5, text_="HI")]) or "")
    assert "seq 6 but the ack said 5" in (observe([delivery("m1", 6)]) or "")
    # A seq skipped by the server shows as a gap after the observer's joined.seq.
    _, skipped = check([MSG], [ack("m1", 6), delivery("m1", 6)])
    gap = m.check_observer(plans, skipped, [delivery("m1", 6)], room=HOME, joined_seq=4,
                           user=USER, features=ALL_FEATURES)  # fmt: skip
    assert gap is not None
    assert "received seqs [6], not [5]" in gap


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(s.wire_frames(home_room=HOME))
def test_wire_frames_survive_the_reproducer_round_trip(frame: WireFrame) -> None:
    item = orjson.loads(orjson.dumps(frame.to_json()))
    assert WireFrame.from_json(item) == frame
    assert len(repr(frame)) < 1000  # Hypothesis prints it


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(s.frame_sequences(home_room=HOME))
def test_every_sequence_gets_a_plan_per_frame(frames: list[WireFrame]) -> None:
    assert 1 <= len(frames) <= 5
    plans = m.plan(frames, ctx())
    assert [q.index for q in plans] == list(range(len(frames)))


@pytest.mark.parametrize("delta", [-1, 0, 1, 1000])
def test_boundary_sizes_are_exact(delta: int) -> None:
    # The padded frame is exactly limit + delta bytes (the example is built, not drawn).
    obj = {"type": "message", "id": "big", "room": HOME, "text": "x" * 10, "pad": ""}
    obj["pad"] = "p" * (s.DEFAULT_MAX_MESSAGE_BYTES + delta - len(orjson.dumps(obj)))
    assert len(orjson.dumps(obj)) == s.DEFAULT_MAX_MESSAGE_BYTES + delta
