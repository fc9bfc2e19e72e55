"""Delivery accounting, sans-IO: the one owner of sent / delivered / lost / duplicate counts.

Design (docs/results.md has the user-facing definitions):

- A message is (sender, seq), seq from 1 per sender; it goes to one room and carries its
  intended send time `t` (run clock, ns). Its *expected recipients* are the members of
  that room (the static `rooms_of` membership) whose *span* for the room contains `t`:
  in `Expect.MEMBERS` mode a span runs from `member_since` to `member_until` (reconnects
  do not interrupt it); in `Expect.CONNECTED` mode a span is a connection interval
  [connected, disconnected), the same for every room of the client. Spans still open at
  the end are closed at `end_ns`.
- Receipts are classified per (recipient, sender) with a high-water mark: `high[sender]`
  is the highest seq seen, and only when a gap opens below it does a `_Gap` record which
  seqs between the lowest missing one and the mark did arrive (a bit set in a Python int).
  In-order delivery, the common case, allocates nothing and costs one array read/write.
- Loss is counted without remembering receipts: lost = expected - received_expected,
  where `received_expected` counts the first receipt of each message by a recipient whose
  span contains the message's `t`. That test is decided at receipt time for any
  `t < now_ns`: a span containing such a `t` has already started, and if it is still
  open it will end at or after `now_ns > t`. Receipts with `t >= now_ns` (only possible
  with clock skew between machines) are kept and decided when the state is taken.
- Everything a recipient contributes (its spans, its receipts) is decided by the ledger
  that owns the recipient; everything a sender contributes (its sends, acks) by the
  ledger that owns the sender. The expected count is the only cross term:
  sum over spans [s, e) of room r of #{sends to r with s <= t < e}, which is
  sum(bisect(times_r, e)) - sum(bisect(times_r, s)). So a `LedgerState` holds per room
  the sorted send times and the sorted span starts and ends, plus plain counters and the
  histograms; states merge by concatenation and addition, and a merged state gives
  exactly the counters of one ledger that saw everything (tests/results/test_ledger.py
  checks this with Hypothesis).

Memory: per recipient one array('q') indexed by sender (8 bytes x clients, allocated on
its first receipt), plus gaps while they last; per send 8 bytes (its intended time).
"""

from __future__ import annotations

import base64
import binascii
import enum
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate, pairwise
from typing import Any, Final

import attrs

from .histogram import LatencyHistogram


class Expect(enum.StrEnum):
    """Who is expected to receive a message (docs/results.md "Expected deliveries")."""

    MEMBERS = "members"  # protocol v1 with re-sync: every member, reconnects included
    CONNECTED = "connected"  # seed dialect, no history: members connected at the intended time


class Receipt(enum.Enum):
    """How `Ledger.received` classified one receipt."""

    NEW = "new"  # first receipt, no higher seq from that sender seen before
    DUPLICATE = "duplicate"  # this recipient already had this (sender, seq)
    OUT_OF_ORDER = "out_of_order"  # first receipt, but a higher seq from that sender came first
    LEAKED = "leaked"  # the recipient is not a member of the message's room


COUNTERS: Final = (
    "sent",
    "delivered",
    "received_expected",
    "duplicates",
    "out_of_order",
    "leaked",
    "acks",
    "acks_duplicate",
    "connects",
    "reconnects",
)
HISTOGRAMS: Final = ("latency", "ack_latency", "reconnect")

_NEW: Final = Receipt.NEW
_DUPLICATE: Final = Receipt.DUPLICATE
_OUT_OF_ORDER: Final = Receipt.OUT_OF_ORDER
_LEAKED: Final = Receipt.LEAKED


class LedgerStateError(ValueError):
    """An exported ledger state is malformed; `key` is the dotted path of the bad field."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class _Gap:
    """Seqs base..high of one (recipient, sender): bit i of `seen` is seq base + i."""

    __slots__ = ("base", "seen")

    def __init__(self, base: int, seen: int) -> None:
        self.base = base
        self.seen = seen


def _track(high: array[int], gaps: dict[int, _Gap], key: int, seq: int) -> Receipt:
    """Classify `seq` for `key` against its high-water mark and gap, and record it."""
    top = high[key]
    if seq > top:
        gap = gaps.get(key)
        if gap is not None:
            gap.seen |= 1 << (seq - gap.base)
        elif seq != top + 1:
            gaps[key] = _Gap(top + 1, 1 << (seq - top - 1))
        high[key] = seq
        return _NEW
    gap = gaps.get(key)
    if gap is None or seq < gap.base:
        return _DUPLICATE
    bit = 1 << (seq - gap.base)
    if gap.seen & bit:
        return _DUPLICATE
    seen = gap.seen | bit
    if bit == 1:  # the lowest missing seq arrived: drop the run of arrived seqs above it
        run = ((seen + 1) & ~seen).bit_length() - 1
        seen >>= run
        gap.base += run
        if gap.base > top:
            del gaps[key]
            return _OUT_OF_ORDER
    gap.seen = seen
    return _OUT_OF_ORDER


class _Client:
    """Everything the ledger keeps about one client (as recipient and as member)."""

    __slots__ = (
        "connects",
        "down_since",
        "ends",
        "gaps",
        "high",
        "online",
        "open",
        "pending",
        "rooms",
        "starts",
    )

    def __init__(self, rooms: frozenset[int]) -> None:
        self.rooms = rooms
        self.high: array[int] | None = None  # highest seq received, indexed by sender
        self.gaps: dict[int, _Gap] = {}  # sender -> seqs missing below its high mark
        self.open: dict[int, int] = {}  # room -> start of the open span
        self.starts: dict[int, list[int]] = {}  # room -> starts of closed spans, ascending
        self.ends: dict[int, list[int]] = {}  # room -> their ends
        self.pending: list[tuple[int, int]] = []  # (room, intended_ns) with t >= now at receipt
        self.connects = 0
        self.online = False
        self.down_since: int | None = None

    def covered(self, room: int, t: int, end_ns: int | None) -> bool:
        """Whether a span of `room` contains `t` (open spans end at `end_ns`; None: never)."""
        start = self.open.get(room)
        if start is not None and start <= t and (end_ns is None or t < max(start, end_ns)):
            return True
        starts = self.starts.get(room)
        if not starts:
            return False
        i = bisect_right(starts, t) - 1
        return i >= 0 and t < self.ends[room][i]

    def open_span(self, room: int, now_ns: int) -> None:
        if room not in self.open:
            self.open[room] = now_ns

    def close_span(self, room: int, now_ns: int) -> None:
        start = self.open.pop(room, None)
        if start is not None:
            self.starts.setdefault(room, []).append(start)
            self.ends.setdefault(room, []).append(max(start, now_ns))


@attrs.frozen(kw_only=True)
class LedgerSummary:
    """The delivery counters of a run (or of a merge of shards) and its histograms.

    lost = expected_deliveries - received_expected (never below 0); see docs/results.md.
    The histograms are copies: changing them does not change the ledger.
    """

    sent: int
    delivered: int
    expected_deliveries: int
    received_expected: int
    lost: int
    duplicates: int
    out_of_order: int
    leaked: int
    acks: int
    acks_duplicate: int
    connects: int
    reconnects: int
    latency: LatencyHistogram
    ack_latency: LatencyHistogram
    reconnect: LatencyHistogram

    def counters(self) -> dict[str, int]:
        """The integer counters by name (results.json `totals` takes its keys from here)."""
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "expected_deliveries": self.expected_deliveries,
            "received_expected": self.received_expected,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "leaked": self.leaked,
            "acks": self.acks,
            "acks_duplicate": self.acks_duplicate,
            "connects": self.connects,
            "reconnects": self.reconnects,
        }


def _sorted_array(values: Iterable[int]) -> array[int]:
    return array("q", sorted(values))


def _pack(values: array[int]) -> str:
    """Sorted int64s as base64(zlib(little-endian int64 deltas)); "" when empty."""
    if not values:
        return ""
    deltas = array("q", [values[0]])
    deltas.extend(b - a for a, b in pairwise(values))
    if sys.byteorder == "big":
        deltas.byteswap()
    return base64.b64encode(zlib.compress(deltas.tobytes(), 6)).decode("ascii")


def _unpack(text: object, key: str) -> array[int]:
    if not isinstance(text, str):
        raise LedgerStateError(key, f"expected a packed integer string, found {text!r}")
    if not text:
        return array("q")
    try:
        raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    except (binascii.Error, zlib.error, UnicodeEncodeError) as exc:
        raise LedgerStateError(key, f"not base64 zlib-packed integers ({exc})") from exc
    if len(raw) % 8:
        raise LedgerStateError(key, "packed integers are not a whole number of int64s")
    deltas = array("q")
    deltas.frombytes(raw)
    if sys.byteorder == "big":
        deltas.byteswap()
    if any(d < 0 for d in deltas[1:]):
        raise LedgerStateError(key, "packed integers are not sorted")
    return array("q", accumulate(deltas))


def _int(data: Mapping[str, Any], name: str, key: str) -> int:
    if name not in data:
        raise LedgerStateError(f"{key}{name}", "missing")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LedgerStateError(f"{key}{name}", f"expected an integer >= 0, found {value!r}")
    return value


def _mapping(data: Mapping[str, Any], name: str, key: str) -> Mapping[str, Any]:
    if name not in data:
        raise LedgerStateError(f"{key}{name}", "missing")
    value = data[name]
    if not isinstance(value, Mapping):
        raise LedgerStateError(f"{key}{name}", f"expected an object, found {value!r}")
    return value


def _room_key(text: str, key: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise LedgerStateError(key, f"room keys are room indexes, found {text!r}")
    return int(text)


@attrs.frozen(kw_only=True)
class LedgerState:
    """Everything needed to merge ledgers exactly; plain data, never mutated once built.

    `sent_times[room]`: intended send times of the messages sent to `room`, ascending.
    `span_starts[room]` / `span_ends[room]`: the spans of its members, each list ascending
    (a multiset: only the sums matter). `counts`: the additive counters of `COUNTERS`.
    """

    expect: Expect
    clients: int
    counts: dict[str, int]
    sent_times: dict[int, array[int]]
    span_starts: dict[int, array[int]]
    span_ends: dict[int, array[int]]
    latency: LatencyHistogram
    ack_latency: LatencyHistogram
    reconnect: LatencyHistogram

    @classmethod
    def merge(cls, states: Iterable[LedgerState]) -> LedgerState:
        """The state one ledger would have had if it had seen every part's events.

        Raises:
            ValueError: no states, or states of different modes or client counts.
        """
        parts = list(states)
        if not parts:
            raise ValueError("no ledger states to merge")
        first = parts[0]
        for part in parts[1:]:
            if part.expect != first.expect or part.clients != first.clients:
                raise ValueError(
                    "cannot merge ledger states of different runs: "
                    f"expect={first.expect}/{part.expect}, clients={first.clients}/{part.clients}"
                )
        hists = {name: LatencyHistogram() for name in HISTOGRAMS}
        for part in parts:
            for name in HISTOGRAMS:
                hists[name].merge(part.histogram(name))
        return cls(
            expect=first.expect,
            clients=first.clients,
            counts={name: sum(part.counts[name] for part in parts) for name in COUNTERS},
            sent_times=_merge_arrays(part.sent_times for part in parts),
            span_starts=_merge_arrays(part.span_starts for part in parts),
            span_ends=_merge_arrays(part.span_ends for part in parts),
            latency=hists["latency"],
            ack_latency=hists["ack_latency"],
            reconnect=hists["reconnect"],
        )

    def histogram(self, name: str) -> LatencyHistogram:
        """One of `HISTOGRAMS` by name.

        Raises:
            KeyError: an unknown name.
        """
        if name not in HISTOGRAMS:
            raise KeyError(name)
        hist: LatencyHistogram = getattr(self, name)
        return hist

    def expected_deliveries(self) -> int:
        total = 0
        for room, starts in self.span_starts.items():
            times = self.sent_times.get(room)
            if times:
                total += sum(bisect_left(times, e) for e in self.span_ends[room])
                total -= sum(bisect_left(times, s) for s in starts)
        return total

    def summary(self) -> LedgerSummary:
        expected = self.expected_deliveries()
        c = self.counts
        return LedgerSummary(
            sent=c["sent"],
            delivered=c["delivered"],
            expected_deliveries=expected,
            received_expected=c["received_expected"],
            lost=max(0, expected - c["received_expected"]),
            duplicates=c["duplicates"],
            out_of_order=c["out_of_order"],
            leaked=c["leaked"],
            acks=c["acks"],
            acks_duplicate=c["acks_duplicate"],
            connects=c["connects"],
            reconnects=c["reconnects"],
            latency=self.latency.copy(),
            ack_latency=self.ack_latency.copy(),
            reconnect=self.reconnect.copy(),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (results.json `ledger`; the format is in docs/results.md)."""
        return {
            "expect": str(self.expect),
            "clients": self.clients,
            "counters": dict(self.counts),
            "sent": {str(room): _pack(times) for room, times in sorted(self.sent_times.items())},
            "spans": {
                str(room): {"starts": _pack(starts), "ends": _pack(self.span_ends[room])}
                for room, starts in sorted(self.span_starts.items())
            },
            "histograms": {
                name: {
                    "hist": self.histogram(name).encode(),
                    "clamped": self.histogram(name).clamped,
                }
                for name in HISTOGRAMS
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerState:
        """The state `to_dict` wrote.

        Raises:
            LedgerStateError: naming the dotted key that is missing or wrong.
        """
        if not isinstance(data, Mapping):
            raise LedgerStateError("ledger", f"expected an object, found {data!r}")
        expect_text = data.get("expect")
        if expect_text not in {str(e) for e in Expect}:
            raise LedgerStateError(
                "expect", f"expected one of {', '.join(map(str, Expect))}, found {expect_text!r}"
            )
        clients = _int(data, "clients", "")
        counters = _mapping(data, "counters", "")
        counts = {name: _int(counters, name, "counters.") for name in COUNTERS}
        sent = {
            _room_key(room, f"sent.{room}"): _unpack(text, f"sent.{room}")
            for room, text in _mapping(data, "sent", "").items()
        }
        starts: dict[int, array[int]] = {}
        ends: dict[int, array[int]] = {}
        for room, spans in _mapping(data, "spans", "").items():
            index = _room_key(room, f"spans.{room}")
            if not isinstance(spans, Mapping):
                raise LedgerStateError(f"spans.{room}", f"expected an object, found {spans!r}")
            for name, target in (("starts", starts), ("ends", ends)):
                if name not in spans:
                    raise LedgerStateError(f"spans.{room}.{name}", "missing")
                target[index] = _unpack(spans[name], f"spans.{room}.{name}")
            if len(starts[index]) != len(ends[index]):
                raise LedgerStateError(f"spans.{room}", "starts and ends differ in length")
        histograms = _mapping(data, "histograms", "")
        hists: dict[str, LatencyHistogram] = {}
        for name in HISTOGRAMS:
            entry = _mapping(histograms, name, "histograms.")
            text = entry.get("hist")
            if not isinstance(text, str):
                raise LedgerStateError(
                    f"histograms.{name}.hist", f"expected a string, found {text!r}"
                )
            clamped = _int(entry, "clamped", f"histograms.{name}.")
            try:
                hists[name] = LatencyHistogram.decode(text, clamped=clamped)
            except ValueError as exc:
                raise LedgerStateError(f"histograms.{name}.hist", str(exc)) from exc
        return cls(
            expect=Expect(expect_text),
            clients=clients,
            counts=counts,
            sent_times=sent,
            span_starts=starts,
            span_ends=ends,
            latency=hists["latency"],
            ack_latency=hists["ack_latency"],
            reconnect=hists["reconnect"],
        )


def _merge_arrays(parts: Iterable[Mapping[int, array[int]]]) -> dict[int, array[int]]:
    rooms: dict[int, list[array[int]]] = {}
    for part in parts:
        for room, values in part.items():
            rooms.setdefault(room, []).append(values)
    return {
        room: chunks[0] if len(chunks) == 1 else _sorted_array(v for c in chunks for v in c)
        for room, chunks in sorted(rooms.items())
    }


def merge_states(states: Iterable[LedgerState | Mapping[str, Any]]) -> LedgerSummary:
    """The summary of the merged states (exported dicts are read with `LedgerState.from_dict`).

    Raises:
        LedgerStateError: a dict is malformed.
        ValueError: no states, or states of different runs.
    """
    parts = [s if isinstance(s, LedgerState) else LedgerState.from_dict(s) for s in states]
    return LedgerState.merge(parts).summary()


class Ledger:
    """Delivery accounting for the clients of one process (or all of them).

    Clients are numbered 0..clients-1 on every shard; `rooms_of[client]` lists the rooms
    the client is a member of. A shard calls the sender-side methods (`sent`, `acked`) for
    its own senders and the recipient-side ones (`received`, `connected`, ...) for its own
    recipients; any split merges exactly (`LedgerState.merge`). All `now_ns` values are
    run-clock nanoseconds and must not go backwards within one ledger. Not thread-safe;
    nothing here blocks or reads a clock.
    """

    def __init__(self, clients: int, rooms_of: Sequence[Sequence[int]], expect: Expect) -> None:
        """
        Raises:
            ValueError: `rooms_of` does not have one entry per client, or a room is negative.
        """
        if clients < 0 or len(rooms_of) != clients:
            raise ValueError(f"rooms_of has {len(rooms_of)} entries for {clients} clients")
        for client, rooms in enumerate(rooms_of):
            if any(room < 0 for room in rooms):
                raise ValueError(f"client {client} has a negative room index: {list(rooms)}")
        self._expect = Expect(expect)
        self._by_connection = self._expect is Expect.CONNECTED
        self._n = clients
        self._clients = [_Client(frozenset(rooms)) for rooms in rooms_of]
        self._zeros = bytes(8 * clients)
        self._sent_times: dict[int, array[int]] = {}
        self._ack_high: array[int] = array("q", self._zeros)
        self._ack_gaps: dict[int, _Gap] = {}
        self._latency = LatencyHistogram()
        self._ack_latency = LatencyHistogram()
        self._reconnect = LatencyHistogram()
        self._sent = 0
        self._delivered = 0
        self._received_expected = 0
        self._duplicates = 0
        self._out_of_order = 0
        self._leaked = 0
        self._acks = 0
        self._acks_duplicate = 0
        self._connects = 0
        self._reconnects = 0

    @property
    def expect(self) -> Expect:
        return self._expect

    @property
    def latency(self) -> LatencyHistogram:
        """The delivery latency histogram so far (live: read it, do not record into it)."""
        return self._latency

    @property
    def clients(self) -> int:
        return self._n

    def _member(self, client: int, room: int) -> _Client:
        state = self._clients[client]
        if room not in state.rooms:
            raise ValueError(f"client {client} is not a member of room {room}")
        return state

    def member_since(self, client: int, room: int, now_ns: int) -> None:
        """`client` joined `room` (MEMBERS mode; a no-op in CONNECTED mode).

        Only the first call of a span counts: a re-join after a reconnect is ignored.

        Raises:
            ValueError: `room` is not in `rooms_of[client]`.
        """
        state = self._member(client, room)
        if not self._by_connection:
            state.open_span(room, now_ns)

    def member_until(self, client: int, room: int, now_ns: int) -> None:
        """`client` left `room` for good (MEMBERS mode; a no-op in CONNECTED mode).

        Raises:
            ValueError: `room` is not in `rooms_of[client]`.
        """
        state = self._member(client, room)
        if not self._by_connection:
            state.close_span(room, now_ns)

    def new_identity(self, client: int) -> None:
        """The slot `client` now belongs to a new user (open model: an arrival reuses the
        index of one that left): its next connect is a first connect, not a reconnect.
        Receipt tracking carries on, since the swarm keeps sequence numbers running per
        index."""
        state = self._clients[client]
        state.connects = 0
        state.down_since = None

    def connected(self, client: int, now_ns: int) -> None:
        """`client`'s connection opened (counts connects and, after the first, reconnects).

        The time since the previous `disconnected` goes into the reconnect histogram. In
        CONNECTED mode this opens a span in each of the client's rooms.
        """
        state = self._clients[client]
        state.connects += 1
        self._connects += 1
        if state.connects > 1:
            self._reconnects += 1
        if state.down_since is not None:
            self._reconnect.record_ns(now_ns - state.down_since)
            state.down_since = None
        state.online = True
        if self._by_connection:
            for room in state.rooms:
                state.open_span(room, now_ns)

    def disconnected(self, client: int, now_ns: int) -> None:
        """`client`'s connection closed (ignored when it was not connected)."""
        state = self._clients[client]
        if not state.online:
            return
        state.online = False
        state.down_since = now_ns
        if self._by_connection:
            for room in state.rooms:
                state.close_span(room, now_ns)

    def sent(self, sender: int, seq: int, room: int, intended_ns: int) -> None:
        """Message (sender, seq) to `room` was written to a socket for the first time.

        Call it once per message: replays from an outbox must not call it again.
        """
        self._sent += 1
        times = self._sent_times.get(room)
        if times is None:
            times = self._sent_times[room] = array("q")
        times.append(intended_ns)

    def received(
        self, recipient: int, sender: int, seq: int, room: int, intended_ns: int, now_ns: int
    ) -> Receipt:
        """Account for one `message` frame that reached `recipient` at `now_ns`.

        NEW and OUT_OF_ORDER count as delivered and record now_ns - intended_ns as
        latency; DUPLICATE and LEAKED only count themselves.
        """
        state = self._clients[recipient]
        if room not in state.rooms:
            self._leaked += 1
            return _LEAKED
        high = state.high
        if high is None:
            high = state.high = array("q", self._zeros)
        if seq == high[sender] + 1 and sender not in state.gaps:
            high[sender] = seq
            receipt = _NEW
        else:
            receipt = _track(high, state.gaps, sender, seq)
            if receipt is _DUPLICATE:
                self._duplicates += 1
                return receipt
            if receipt is _OUT_OF_ORDER:
                self._out_of_order += 1
        self._delivered += 1
        self._latency.record_ns(now_ns - intended_ns)
        if intended_ns < now_ns:
            start = state.open.get(room)
            if (start is not None and intended_ns >= start) or (
                state.starts and state.covered(room, intended_ns, None)
            ):
                self._received_expected += 1
        else:
            state.pending.append((room, intended_ns))
        return receipt

    def acked(self, sender: int, seq: int, intended_ns: int, now_ns: int) -> bool:
        """The server acked (sender, seq); True for its first ack, False for a duplicate ack.

        First acks count in `acks` and record now_ns - intended_ns as ack latency.
        """
        if _track(self._ack_high, self._ack_gaps, sender, seq) is _DUPLICATE:
            self._acks_duplicate += 1
            return False
        self._acks += 1
        self._ack_latency.record_ns(now_ns - intended_ns)
        return True

    def state(self, end_ns: int) -> LedgerState:
        """A snapshot for merging; spans still open end at `end_ns` (>= every now_ns given)."""
        received_expected = self._received_expected
        starts: dict[int, list[int]] = {}
        ends: dict[int, list[int]] = {}
        for client in self._clients:
            for room, t in client.pending:
                if client.covered(room, t, end_ns):
                    received_expected += 1
            for room, room_starts in client.starts.items():
                starts.setdefault(room, []).extend(room_starts)
                ends.setdefault(room, []).extend(client.ends[room])
            for room, start in client.open.items():
                starts.setdefault(room, []).append(start)
                ends.setdefault(room, []).append(max(start, end_ns))
        counts = {
            "sent": self._sent,
            "delivered": self._delivered,
            "received_expected": received_expected,
            "duplicates": self._duplicates,
            "out_of_order": self._out_of_order,
            "leaked": self._leaked,
            "acks": self._acks,
            "acks_duplicate": self._acks_duplicate,
            "connects": self._connects,
            "reconnects": self._reconnects,
        }
        return LedgerState(
            expect=self._expect,
            clients=self._n,
            counts=counts,
            sent_times={
                room: _sorted_array(times) for room, times in sorted(self._sent_times.items())
            },
            span_starts={room: _sorted_array(v) for room, v in sorted(starts.items())},
            span_ends={room: _sorted_array(v) for room, v in sorted(ends.items())},
            latency=self._latency.copy(),
            ack_latency=self._ack_latency.copy(),
            reconnect=self._reconnect.copy(),
        )

    def export(self, end_ns: int) -> dict[str, Any]:
        """`state(end_ns)` in its JSON-safe form (results.json `ledger`)."""
        return self.state(end_ns).to_dict()

    def summary(self, end_ns: int) -> LedgerSummary:
        """The counters and histograms so far; spans still open end at `end_ns`."""
        return self.state(end_ns).summary()
