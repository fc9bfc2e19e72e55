"""The conformance gate's vocabulary, pure: cases, verdicts, results (docs/conformance.md).

Modelled on Autobahn|Testsuite (numbered cases, OK / NON-STRICT / INFORMATIONAL / FAILED /
UNIMPLEMENTED), h2spec (spec-section numbering, strict mode, JUnit) and Matrix's
Complement (black-box, any server, a per-server list of expected failures).
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .harness import Harness


class Verdict(enum.StrEnum):
    PASS = "PASS"  # the server did what the section requires
    NON_STRICT = "NON-STRICT"  # it works, but deviates from a SHOULD
    FAIL = "FAIL"  # it broke a MUST
    UNSUPPORTED = "UNSUPPORTED"  # the target declares it lacks the feature the case needs
    INFO = "INFO"  # an observation with no pass/fail meaning
    XFAIL = "XFAIL"  # failed, as the target file expected
    XPASS = "XPASS"  # passed although the target file expected a failure
    ERROR = "ERROR"  # the case itself could not run (the target vanished, a bug)
    CRASHED = "CRASHED"  # after the case the server no longer served: "server crashed"

    @property
    def unexpected(self) -> bool:
        """Does this verdict make the gate fail (without --strict)?"""
        return self in (Verdict.FAIL, Verdict.XPASS, Verdict.ERROR, Verdict.CRASHED)


class Feature(enum.StrEnum):
    """What a server under test may or may not implement (a target file lists them)."""

    AUTH = "auth"  # token checks at the upgrade (401/403)
    ROOMS = "rooms"  # join/leave and room isolation
    ACKS = "acks"  # ack with seq
    DEDUPE = "dedupe"  # replayed ids acked again, not delivered twice
    HISTORY = "history"  # history requests and join since
    PING = "ping"  # app-level ping -> pong to the sender only
    PRESENCE = "presence"  # presence and typing events
    LIMITS = "limits"  # size, text length, rate limits with the documented answers
    ERRORS = "errors"  # error frames for malformed input
    HEARTBEAT = "heartbeat"  # server WebSocket pings, idle timeout
    SEED_DIALECT = "seed-dialect"  # typeless ChatMessage frames are chat messages


ALL_FEATURES: frozenset[Feature] = frozenset(Feature)


@attrs.frozen(kw_only=True)
class Exchange:
    """One line of a case's transcript: what went out or came in, and when."""

    at_ms: float
    actor: str
    direction: str  # "->" sent, "<-" received, "!!" event (close, refusal, timeout)
    data: str


class CaseFailure(Exception):
    """Raised by a case: the server broke a MUST. `expected` says what the section wants."""

    def __init__(self, reason: str, *, expected: str = "", verdict: Verdict = Verdict.FAIL):
        super().__init__(reason)
        self.reason = reason
        self.expected = expected
        self.verdict = verdict


class TargetGone(Exception):
    """The server could not be reached at all during a case: ERROR, not FAIL (it may have
    crashed; the liveness of the target is not what the case checks)."""


class NonStrict(CaseFailure):
    """The server deviates from a SHOULD: the case passes unless --strict."""

    def __init__(self, reason: str, *, expected: str = "") -> None:
        super().__init__(reason, expected=expected, verdict=Verdict.NON_STRICT)


CaseBody = Callable[["Harness"], Awaitable[str | None]]  # returns an INFO note, or None


@attrs.frozen(kw_only=True)
class Case:
    """A numbered conformance case: `id` like "3.2", citing docs/protocol.md `section`."""

    id: str
    title: str
    section: str  # e.g. "§4.1"
    features: frozenset[Feature]
    body: CaseBody = attrs.field(eq=False, repr=False)
    description: str = ""
    timeout_s: float = 10.0
    info: bool = False  # the case reports an observation (INFO), never FAIL

    @property
    def sort_key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.id.split("."))


@attrs.frozen(kw_only=True)
class CaseResult:
    id: str
    title: str
    section: str
    verdict: Verdict
    reason: str = ""
    expected: str = ""
    duration_ms: float = 0.0
    transcript: tuple[Exchange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "section": self.section,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "expected": self.expected,
            "duration_ms": round(self.duration_ms, 3),
            "transcript": [attrs.asdict(e) for e in self.transcript],
        }


def select(cases: Iterable[Case], patterns: Sequence[str]) -> list[Case]:
    """Cases whose id matches any pattern ("3.*", "5.2"); all of them for no patterns.

    Raises:
        ValueError: a pattern matches no case (a typo should not select nothing silently).
    """
    ordered = sorted(cases, key=lambda c: c.sort_key)
    if not patterns:
        return ordered
    chosen: list[Case] = []
    for pattern in patterns:
        hits = [c for c in ordered if fnmatch.fnmatchcase(c.id, pattern.strip())]
        if not hits:
            raise ValueError(f"no case matches {pattern!r} (see loadtool conform --list)")
        chosen += [c for c in hits if c not in chosen]
    return sorted(chosen, key=lambda c: c.sort_key)
