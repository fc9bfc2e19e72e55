"""The fuzzer's oracle, pure: what a server must answer to a sequence of frames.

`WireFrame` is one WebSocket data message as the fuzzer sends it. `plan` walks a
sequence through a small model of one connection (its rooms, the ids it had accepted)
and says, frame by frame, what docs/protocol.md requires in answer; `check_answers`
and `check_observer` hold what arrived against that plan. No trio, no sockets: the
runner (`loadtool.fuzz.runner`) does the I/O.

What counts as valid is decided by the reference codec (`loadtool.protocol.decode`), so
the fuzzer cannot find a bug that the server's decoder shares with it; what it checks
is the behaviour: answers, their order-independent count, their contents, delivery to
another member, closes and liveness.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs
import orjson

from .. import protocol as p
from ..conform.model import Feature

Frame = dict[str, Any]

# Close codes docs/protocol.md §8.2 gives for a client's bad input (1003 is RFC 6455's
# for data a server cannot accept; v1 answers binary with an error, but may close).
# 1011 (internal error) is documented too, but it means the server failed: a finding.
INPUT_CLOSE_CODES: Final = frozenset({1002, 1003, 1007, 1008, 1009, 1013, 4000})
DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024  # bytes (§7.1), when welcome says nothing
DEFAULT_MAX_TEXT_CHARS: Final = 4096  # code points (§7.2)
_SHOWN_CHARS: Final = 160  # characters of a frame shown in a failure message

# Frame types a server sends a sender as answers; anything else (presence, typing of
# others, other users' messages) may arrive at any time and is not the sender's answer.
_ANSWER_TYPES: Final = frozenset({"ack", "joined", "left", "history", "pong", "error", "message"})


class FuzzAssertion(AssertionError):
    """The property failed for `frames` (what Hypothesis shrinks)."""

    def __init__(self, message: str, frames: Sequence[WireFrame] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.frames = tuple(frames)


@attrs.frozen(repr=False)
class WireFrame:
    """One WebSocket data message: `kind` text or binary, `data` the exact payload.

    A text payload may be invalid UTF-8 on purpose (a lone surrogate in a Python str is
    written as its CESU-8 bytes): the server must close with 1007.
    """

    kind: Literal["text", "binary"]
    data: bytes

    @classmethod
    def text(cls, value: str | bytes) -> WireFrame:
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        return cls("text", raw)

    @classmethod
    def binary(cls, value: bytes) -> WireFrame:
        return cls("binary", value)

    @property
    def as_text(self) -> str | None:
        """The payload as a str, or None (binary, or text that is not valid UTF-8)."""
        if self.kind != "text":
            return None
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def to_json(self) -> dict[str, str]:
        """The reproducer form: {"text": ...}, {"text_base64": ...} or {"binary_base64": ...}."""
        text = self.as_text
        if text is not None:
            return {"text": text}
        key = "text_base64" if self.kind == "text" else "binary_base64"
        return {key: base64.b64encode(self.data).decode()}

    @classmethod
    def from_json(cls, item: Mapping[str, str]) -> WireFrame:
        """Inverse of `to_json`. Raises ValueError for anything else."""
        if set(item) == {"text"}:
            return cls.text(item["text"])
        try:
            if set(item) == {"text_base64"}:
                return cls("text", base64.b64decode(item["text_base64"], validate=True))
            if set(item) == {"binary_base64"}:
                return cls("binary", base64.b64decode(item["binary_base64"], validate=True))
        except binascii.Error as exc:
            raise ValueError(f"bad base64 in {item!r}: {exc}") from None
        raise ValueError(f"expected text, text_base64 or binary_base64, got {sorted(item)}")

    def __repr__(self) -> str:
        # Bounded: Hypothesis prints the arguments of a failing example.
        return f"WireFrame.{self.kind}({self.short()})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis's printer (IPython's protocol); it would list attrs fields in full."""
        printer.text(repr(self))

    def short(self) -> str:
        """For humans: the text (cut) or the size of other payloads."""
        text = self.as_text
        if text is None:
            what = "binary" if self.kind == "binary" else "text, not UTF-8"
            return f"<{what}, {len(self.data)} bytes: {self.data[:24].hex()}...>"
        return _cut(text)


def _cut(text: str, limit: int = _SHOWN_CHARS) -> str:
    shown = text if len(text) <= limit else f"{text[: limit - 20]}...({len(text)} chars)"
    return repr(shown)


def frames_json(frames: Iterable[WireFrame]) -> str:
    """The exact frames as a JSON list, one per line (copy-pasteable)."""
    items = [orjson.dumps(f.to_json()).decode() for f in frames]
    return "[\n  " + ",\n  ".join(items) + "\n]" if items else "[]"


# --- the plan ------------------------------------------------------------------------


@attrs.frozen
class Expectation:
    """One frame the server must send: `what` for humans, `test` to recognise it."""

    what: str
    test: Callable[[Frame], bool] = attrs.field(eq=False)
    may_lag: bool = False  # acks and history pages MAY be overtaken (--db, §4.1, §5.1)


@attrs.frozen
class Accepted:
    """A chat message the server must store: its ack, then its deliveries."""

    index: int
    id: str
    room: str
    text: str
    sent_at: str | None


@attrs.frozen
class FramePlan:
    """What frame `index` is and what it must get back.

    `category`: "invalid" (an error frame, or a documented close), "valid" (exactly
    `expect`), or "free" (the target lacks the feature: no requirement).
    """

    index: int
    frame: WireFrame
    category: Literal["invalid", "valid", "free"]
    why: str
    expect: tuple[Expectation, ...] = ()
    accepted: Accepted | None = None
    typing_notice: tuple[str, bool] | None = None  # (room, typing) others must see


@attrs.frozen(kw_only=True)
class Context:
    """What the sender's connection started with (from its welcome, or defaults)."""

    features: frozenset[Feature]
    user: str | None  # welcome.userId: the senderId of our messages (None: unknown)
    rooms: frozenset[str]  # joined at connect
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS

    @classmethod
    def from_welcome(cls, features: frozenset[Feature], welcome: Frame | None) -> Context:
        if welcome is None:
            return cls(features=features, user=None, rooms=frozenset())
        limits = welcome.get("limits")
        limits = limits if isinstance(limits, dict) else {}

        def limit(name: str, default: int) -> int:
            value = limits.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return int(value)
            return default

        rooms = welcome.get("rooms")
        user = welcome.get("userId")
        return cls(
            features=features,
            user=user if isinstance(user, str) else None,
            rooms=frozenset(r for r in rooms if isinstance(r, str))
            if isinstance(rooms, list)
            else frozenset(),
            max_message_bytes=limit("maxMessageBytes", DEFAULT_MAX_MESSAGE_BYTES),
            max_text_chars=limit("maxTextChars", DEFAULT_MAX_TEXT_CHARS),
        )


def _is(kind: str, **fields: Any) -> Callable[[Frame], bool]:
    def test(frame: Frame) -> bool:
        return frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items())

    return test


def _error(code: str | None = None, **fields: Any) -> Expectation:
    if code is None:
        return Expectation("an error frame", _is("error"))
    return Expectation(f"error {code!r}", _is("error", code=code, **fields))


def plan(frames: Sequence[WireFrame], ctx: Context) -> tuple[FramePlan, ...]:
    """Walk `frames` through a model of one fresh connection; one plan per frame."""
    f = ctx.features
    members = set(ctx.rooms)
    accepted: dict[str, tuple[str, int]] = {}  # id -> (room, index of the accepting frame)
    out: list[FramePlan] = []
    for i, frame in enumerate(frames):

        def invalid(why: str, i: int = i, frame: WireFrame = frame) -> FramePlan:
            if Feature.ERRORS not in f:
                return FramePlan(i, frame, "free", f"{why} (target has no error frames)")
            return FramePlan(i, frame, "invalid", why, (_error(),))

        if frame.kind == "binary":
            out.append(invalid("a binary message (§3.1: error unsupported_data)"))
            continue
        if len(frame.data) > ctx.max_message_bytes and Feature.LIMITS in f:
            out.append(
                FramePlan(
                    i,
                    frame,
                    "invalid",
                    f"{len(frame.data)} bytes, over maxMessageBytes "
                    f"{ctx.max_message_bytes} (§7.1: close 1009)",
                )
            )
            continue
        text = frame.as_text
        if text is None:
            out.append(
                FramePlan(i, frame, "invalid", "text message that is not UTF-8 (§3.1: close 1007)")
            )
            continue
        try:
            decoded = p.decode(text)
        except p.ProtocolError as exc:
            out.append(invalid(f"refused by the codec: {exc.code.value} ({exc.message[:80]})"))
            continue
        out.append(_plan_valid(i, frame, decoded, ctx, members, accepted))
    return tuple(out)


def _plan_valid(
    i: int,
    frame: WireFrame,
    decoded: p.ClientFrame,
    ctx: Context,
    members: set[str],
    accepted: dict[str, tuple[str, int]],
) -> FramePlan:
    f = ctx.features
    free = FramePlan(i, frame, "free", f"a valid {decoded.TYPE!r} (feature not declared)")
    rooms = Feature.ROOMS in f
    match decoded:
        case p.SendMessage(id=mid, room=room, text=text, sent_at=sent_at):
            if Feature.ACKS not in f:
                if Feature.SEED_DIALECT in f and Feature.ROOMS not in f:
                    # A broadcast server relays it to everyone, the sender included (§12).
                    echo = Expectation(f"echo of its message {mid!r}", lambda m: m.get("id") == mid)
                    return FramePlan(i, frame, "valid", "a chat message", (echo,))
                return free
            if rooms and room not in members:
                why = f"a message to {room!r}, not joined (§4.1: error not_member)"
                return FramePlan(i, frame, "valid", why, (_error("not_member", id=mid),))
            if mid in accepted and Feature.DEDUPE in f:
                first_room, _ = accepted[mid]
                ack = Expectation(
                    f"a duplicate ack for {mid!r} naming {first_room!r}",
                    _is("ack", id=mid, room=first_room, duplicate=True),
                    may_lag=True,
                )
                return FramePlan(i, frame, "valid", f"a replay of {mid!r} (§4.3)", (ack,))
            if len(text) > ctx.max_text_chars and Feature.LIMITS in f:
                why = f"text of {len(text)} code points, over {ctx.max_text_chars} (§7.2)"
                return FramePlan(i, frame, "valid", why, (_error("too_long", id=mid),))
            accepted[mid] = (room, i)
            ack = Expectation(
                f"an ack for {mid!r} in {room!r}",
                lambda m: _is("ack", id=mid, room=room)(m) and not m.get("duplicate", False),
                may_lag=True,
            )
            expect = [ack]
            if rooms:
                expect.append(
                    Expectation(
                        f"the delivery of {mid!r} to its sender",
                        _delivery(mid, room, text, sent_at, ctx.user),
                        may_lag=True,
                    )
                )
            return FramePlan(
                i,
                frame,
                "valid",
                f"a chat message {mid!r} to {room!r}",
                tuple(expect),
                accepted=Accepted(index=i, id=mid, room=room, text=text, sent_at=sent_at),
            )
        case p.Join(room=room, since=since):
            if not rooms:
                return free
            members.add(room)
            expect = [Expectation(f"joined {room!r}", _is("joined", room=room))]
            if since is not None and Feature.HISTORY in f:
                expect.append(
                    Expectation(f"a history page of {room!r}", _is("history", room=room), True)
                )
            return FramePlan(i, frame, "valid", f"join {room!r} (§4.4)", tuple(expect))
        case p.Leave(room=room):
            if not rooms:
                return free
            if room not in members:
                why = f"leave {room!r}, not joined (§4.5)"
                return FramePlan(i, frame, "valid", why, (_error("not_member", room=room),))
            members.discard(room)
            expect_left = Expectation(f"left {room!r}", _is("left", room=room))
            return FramePlan(i, frame, "valid", f"leave {room!r} (§4.5)", (expect_left,))
        case p.HistoryRequest(room=room):
            if Feature.HISTORY not in f:
                return free
            page = Expectation(
                f"a history page of {room!r} (or an error)",
                lambda m: _is("history", room=room)(m) or _is("error")(m),
                may_lag=True,
            )
            return FramePlan(i, frame, "valid", f"a history request for {room!r} (§5.1)", (page,))
        case p.Ping(ts=ts):
            if Feature.PING not in f:
                return free
            pong = Expectation(f"a pong echoing ts={ts!r}", _pong(ts))
            return FramePlan(i, frame, "valid", "a ping (§6)", (pong,))
        case p.Typing(room=room, typing=typing):
            if not rooms or Feature.PRESENCE not in f:
                return free
            if room not in members:
                why = f"typing in {room!r}, not joined (§4.6)"
                return FramePlan(i, frame, "valid", why, (_error("not_member", room=room),))
            return FramePlan(
                i,
                frame,
                "valid",
                f"typing in {room!r} (§4.6: nothing back to the sender)",
                typing_notice=(room, typing),
            )


def _delivery(
    mid: str, room: str, text: str, sent_at: str | None, user: str | None
) -> Callable[[Frame], bool]:
    def test(m: Frame) -> bool:
        if not _is("message", id=mid, room=room)(m):
            return False
        if user is not None and m.get("senderId") != user:
            return False
        return m.get("text") == text and (sent_at is None or m.get("sentAt") == sent_at)

    return test


def _pong(ts: str | int | float | None) -> Callable[[Frame], bool]:
    def test(m: Frame) -> bool:
        if m.get("type") != "pong":
            return False
        got = m.get("ts")
        if ts is None or isinstance(ts, str):
            return got == ts
        return isinstance(got, int | float) and not isinstance(got, bool) and got == ts

    return test


# --- checking what arrived -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Outcome:
    """Which received frame answered which expectation (plan index, expectation index,
    frame), and the expectations nothing answered."""

    matched: tuple[tuple[int, int, Frame], ...]
    unmet: tuple[tuple[int, Expectation], ...] = ()
    cut: int | None = None  # closed for frame `cut`: later frames may not have been handled

    @property
    def only_lagging_unmet(self) -> bool:
        """Is everything still missing something that MAY come late (acks, pages)?"""
        return bool(self.unmet) and all(e.may_lag for _, e in self.unmet)

    def frame_for(self, plan_index: int, expectation: int = 0) -> Frame | None:
        for i, e, frame in self.matched:
            if i == plan_index and e == expectation:
                return frame
        return None


def _is_ours(frame: Frame, user: str | None) -> bool:
    """Is this received frame an answer to the sender (not traffic from others)?"""
    if "type" not in frame:
        return True  # a broadcast server's echo of a seed-dialect message (§12)
    kind = frame.get("type")
    if kind not in _ANSWER_TYPES:
        return False
    if kind == "message":
        return user is None or frame.get("senderId") == user
    return True


def check_answers(
    plans: Sequence[FramePlan],
    received: Sequence[Frame],
    *,
    close_code: int | None,
    user: str | None,
    strict: bool,
) -> tuple[str | None, Outcome]:
    """Hold `received` (the sender's frames after its welcome, marker answers removed)
    against `plans`. Returns (a failure message or None, what matched what).

    `close_code`: the server's close (1006: dropped), None while open. `strict`: frames
    nobody asked for are failures too (v1 servers).
    """
    pool = [(n, frame) for n, frame in enumerate(received) if _is_ours(frame, user)]
    used: set[int] = set()
    matched: list[tuple[int, int, Frame]] = []
    unmet: list[tuple[FramePlan, Expectation]] = []
    for plan_ in plans:
        for e, expectation in enumerate(plan_.expect):
            found = next((n for n, fr in pool if n not in used and expectation.test(fr)), None)
            if found is None:
                unmet.append((plan_, expectation))
            else:
                used.add(found)
                matched.append((plan_.index, e, received[found]))
    outcome = Outcome(matched=tuple(matched), unmet=tuple((q.index, e) for q, e in unmet))
    closed_ok = close_code in INPUT_CLOSE_CODES
    if close_code is not None and not closed_ok:
        if close_code == 1011:
            return f"the server failed: close 1011 (internal error){tail(received)}", outcome
        why = "dropped the connection without a close frame" if close_code == 1006 else ""
        why = why or f"closed with {close_code}, not a code §8.2 gives for bad input"
        return f"the server {why}{tail(received)}", outcome
    if close_code is not None:
        # A documented close for bad input ends the answers (§8.2): it must have a
        # culprit, an invalid frame that got no error; frames before it must have been
        # answered (but for acks and pages, which MAY lag behind).
        unanswered = {q.index for q, _ in unmet}
        culprits = [
            q for q in plans if q.category == "invalid" and (not q.expect or q.index in unanswered)
        ]
        if not culprits:
            return (
                f"the server closed with {close_code} although no frame called for it"
                f"{tail(received)}",
                outcome,
            )
        outcome = attrs.evolve(outcome, cut=culprits[0].index)
        early = [(q, e) for q, e in unmet if q.index < culprits[0].index and not e.may_lag]
        if early:
            plan_, expectation = early[0]
            return (
                f"frame #{plan_.index} ({plan_.why}) got no {expectation.what} before the "
                f"close ({close_code}){tail(received)}",
                outcome,
            )
        unmet = []
    if unmet:
        plan_, expectation = min(unmet, key=lambda pe: pe[0].index)
        if plan_.category == "invalid":
            return (
                f"frame #{plan_.index} ({plan_.why}) got neither an error frame nor a close: "
                f"silence (§3.1, §8){tail(received)}",
                outcome,
            )
        return (
            f"frame #{plan_.index} ({plan_.why}) got no {expectation.what}{tail(received)}",
            outcome,
        )
    invalid_unanswered = [
        q for q in plans if q.category == "invalid" and not q.expect and close_code is None
    ]
    if invalid_unanswered:  # an oversize frame must be closed (§7.1)
        q = invalid_unanswered[0]
        return f"frame #{q.index} ({q.why}) did not close the connection{tail(received)}", outcome
    seqs = _ack_seq_problems(plans, outcome)
    if seqs:
        return seqs + tail(received), outcome
    if strict and not any(q.category == "free" for q in plans):
        extra = [received[n] for n, _ in pool if n not in used]
        if extra:
            return (
                f"the server sent frames no frame asked for: "
                f"{'; '.join(_cut(_show(x), 120) for x in extra[:3])}{tail(received)}",
                outcome,
            )
    return None, outcome


def _ack_seq_problems(plans: Sequence[FramePlan], outcome: Outcome) -> str:
    """The sender's own copy of an accepted message carries the seq of its ack (§4.1)."""
    for plan_ in plans:
        if plan_.accepted is None or len(plan_.expect) < 2:
            continue
        ack = outcome.frame_for(plan_.index, 0)
        delivery = outcome.frame_for(plan_.index, 1)
        if ack is None or delivery is None:
            continue
        seq = ack.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return f"frame #{plan_.index}: the ack has no valid seq: {_show(ack)}"
        if delivery.get("seq") != seq:
            return (
                f"frame #{plan_.index}: ack seq {seq} but the sender's copy has seq "
                f"{delivery.get('seq')!r}"
            )
    return ""


def check_observer(
    plans: Sequence[FramePlan],
    outcome: Outcome,
    received: Sequence[Frame],
    *,
    room: str,
    joined_seq: int | None,
    user: str | None,
    features: frozenset[Feature],
) -> str | None:
    """Another member of `room` (the observer) must receive every message the sender got
    acked there, unchanged, once, in seq order from its `joined.seq` + 1 (§4.1), and
    nothing of the sender's from rooms it is not in; typing notices as sent (§4.6)."""
    # Messages acked to the sender must reach the observer; a message whose ack never
    # came (the connection closed first) may or may not have been stored (§4.2).
    wanted: dict[str, tuple[Accepted, int | None]] = {}
    maybe: dict[str, Accepted] = {}
    for plan_ in plans:
        acc = plan_.accepted
        if acc is None or acc.room != room:
            continue
        ack = outcome.frame_for(plan_.index, 0)
        if ack is None or (outcome.cut is not None and plan_.index >= outcome.cut):
            maybe[acc.id] = acc
            continue
        seq = ack.get("seq")
        wanted[acc.id] = (acc, seq if isinstance(seq, int) else None)
    seen: dict[str, Frame] = {}
    room_seqs: list[int] = []
    for frame in received:
        if frame.get("type") != "message":
            continue
        if frame.get("room") == room and isinstance(frame.get("seq"), int):
            room_seqs.append(frame["seq"])
        if user is None or frame.get("senderId") != user:
            continue
        mid = frame.get("id")
        if isinstance(mid, str) and mid in maybe and mid not in wanted:
            wanted[mid] = (maybe[mid], None)
        if not isinstance(mid, str) or mid not in wanted:
            return f"another member of {room!r} received a message it should not: {_show(frame)}"
        if mid in seen:
            return f"another member of {room!r} received {mid!r} twice: {_show(frame)}"
        seen[mid] = frame
        acc, seq = wanted[mid]
        problems = []
        if frame.get("room") != acc.room:
            problems.append(f"room {frame.get('room')!r}")
        if frame.get("text") != acc.text:
            problems.append("its text changed")
        if acc.sent_at is not None and frame.get("sentAt") != acc.sent_at:
            problems.append(f"sentAt {frame.get('sentAt')!r} instead of {acc.sent_at!r}")
        if seq is not None and frame.get("seq") != seq:
            problems.append(f"seq {frame.get('seq')!r} but the ack said {seq}")
        if problems:
            return (
                f"another member of {room!r} received frame #{acc.index}'s message "
                f"corrupted ({', '.join(problems)}): {_show(frame)}"
            )
    missing = [acc for acc, _ in wanted.values() if acc.id not in seen]
    if missing:
        acc = missing[0]
        return (
            f"another member of {room!r} never received frame #{acc.index}'s message "
            f"{acc.id!r}, which was acked"
        )
    if joined_seq is not None and room_seqs:
        expected = list(range(joined_seq + 1, joined_seq + 1 + len(room_seqs)))
        if room_seqs != expected:
            return (
                f"another member of {room!r} (joined at seq {joined_seq}) received seqs "
                f"{room_seqs[:10]}, not {expected[:10]} (§4.1: each once, in order, no gaps)"
            )
    if Feature.PRESENCE in features and user is not None:
        notices = [
            (fr.get("room"), fr.get("typing"))
            for fr in received
            if fr.get("type") == "typing" and fr.get("userId") == user
        ]
        cut = len(plans) if outcome.cut is None else outcome.cut
        sent = [
            q.typing_notice
            for q in plans
            if q.typing_notice and q.typing_notice[0] == room and q.index < cut
        ]
        unsure = [
            q.typing_notice
            for q in plans
            if q.typing_notice and q.typing_notice[0] == room and q.index >= cut
        ]
        got = sorted(map(repr, notices))
        required = sorted(map(repr, sent))
        if not _sub_multiset(required, got) or not _sub_multiset(
            got, sorted(map(repr, sent + unsure))
        ):
            return (
                f"another member of {room!r} received typing notices {notices} for "
                f"the typing frames {sent} (§4.6)"
            )
    return None


def _sub_multiset(small: Sequence[str], big: Sequence[str]) -> bool:
    rest = list(big)
    for item in small:
        if item not in rest:
            return False
        rest.remove(item)
    return True


def _show(frame: Frame) -> str:
    return orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS, default=repr).decode()


def tail(received: Sequence[Frame]) -> str:
    if not received:
        return "; nothing arrived"
    shown = "; ".join(_cut(_show(fr), 120) for fr in received[-4:])
    more = f" (last 4 of {len(received)})" if len(received) > 4 else ""
    return f"; arrived{more}: {shown}"


def describe(plans: Sequence[FramePlan]) -> str:
    """The example, one line per frame: index, what it is, the payload (cut)."""
    return (
        "\n".join(f"  #{q.index} [{q.category}] {q.why}: {q.frame.short()}" for q in plans)
        or "  (no frames)"
    )
