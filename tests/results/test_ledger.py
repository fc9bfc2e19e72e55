"""The delivery ledger (loadtool.results.ledger): every counter on hand-built delivery logs,
both Expect modes, export/import of its state, and exact merging across shards checked
with Hypothesis against one ledger that saw everything and against a brute-force model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtool.results.ledger import (
    COUNTERS,
    Expect,
    Ledger,
    LedgerState,
    LedgerStateError,
    LedgerSummary,
    Receipt,
    merge_states,
)

MS = 1_000_000  # ns
END = 10_000 * MS


def one_room(clients: int, expect: Expect = Expect.MEMBERS) -> Ledger:
    return Ledger(clients, [[0]] * clients, expect)


def joined(ledger: Ledger, clients: Sequence[int], now_ns: int = 0) -> None:
    """Connect `clients` and make them members of all their rooms (either mode)."""
    for client in clients:
        ledger.connected(client, now_ns)
        for room in ledger._clients[client].rooms:
            ledger.member_since(client, room, now_ns)


def test_in_order_deliveries_are_new_and_delivered() -> None:
    ledger = one_room(2)
    joined(ledger, [0, 1])
    for seq in (1, 2, 3):
        ledger.sent(0, seq, 0, seq * MS)
        for recipient in (0, 1):
            assert ledger.received(recipient, 0, seq, 0, seq * MS, seq * MS + 5 * MS) is Receipt.NEW
    s = ledger.summary(END)
    assert (s.sent, s.delivered, s.expected_deliveries, s.received_expected) == (3, 6, 6, 6)
    assert (s.lost, s.duplicates, s.out_of_order, s.leaked) == (0, 0, 0, 0)
    assert s.latency.count == 6
    assert s.latency.percentile_ms(50) == pytest.approx(5.0, abs=0.01)


def test_a_member_that_never_gets_a_message_counts_it_lost() -> None:
    ledger = one_room(3)
    joined(ledger, [0, 1, 2])
    ledger.sent(0, 1, 0, MS)
    ledger.sent(0, 2, 0, 2 * MS)
    for recipient in (0, 1, 2):
        ledger.received(recipient, 0, 1, 0, MS, 3 * MS)
    ledger.received(0, 0, 2, 0, 2 * MS, 3 * MS)  # recipients 1 and 2 never get seq 2
    s = ledger.summary(END)
    assert (s.expected_deliveries, s.delivered, s.lost) == (6, 4, 2)


def test_a_second_copy_is_a_duplicate_and_not_delivered_again() -> None:
    ledger = one_room(2)
    joined(ledger, [0, 1])
    ledger.sent(0, 1, 0, MS)
    assert ledger.received(1, 0, 1, 0, MS, 2 * MS) is Receipt.NEW
    assert ledger.received(1, 0, 1, 0, MS, 3 * MS) is Receipt.DUPLICATE
    assert ledger.received(1, 0, 1, 0, MS, 4 * MS) is Receipt.DUPLICATE
    s = ledger.summary(END)
    assert (s.delivered, s.duplicates, s.latency.count) == (1, 2, 1)
    assert (s.expected_deliveries, s.received_expected, s.lost) == (2, 1, 1)  # 0 never got it


def test_out_of_order_is_new_but_below_the_high_mark() -> None:
    ledger = one_room(2)
    joined(ledger, [0, 1])
    for seq in (1, 2, 3, 4):
        ledger.sent(0, seq, 0, seq * MS)
    got = [ledger.received(1, 0, seq, 0, seq * MS, 9 * MS) for seq in (1, 3, 2, 4, 2, 3, 1)]
    assert got == [
        Receipt.NEW,
        Receipt.NEW,  # 2 is missing, but 3 is the highest so far: new
        Receipt.OUT_OF_ORDER,  # 3 came first
        Receipt.NEW,
        Receipt.DUPLICATE,
        Receipt.DUPLICATE,
        Receipt.DUPLICATE,
    ]
    assert ledger._clients[1].gaps == {}  # the gap closed once 2 arrived
    s = ledger.summary(END)
    assert (s.delivered, s.out_of_order, s.duplicates) == (4, 1, 3)


def test_gaps_from_other_senders_do_not_mix() -> None:
    ledger = one_room(3)
    joined(ledger, [0, 1, 2])
    assert ledger.received(2, 0, 5, 0, MS, 2 * MS) is Receipt.NEW
    assert ledger.received(2, 1, 1, 0, MS, 2 * MS) is Receipt.NEW
    assert ledger.received(2, 1, 2, 0, MS, 2 * MS) is Receipt.NEW
    assert ledger.received(2, 0, 3, 0, MS, 2 * MS) is Receipt.OUT_OF_ORDER
    assert ledger.received(2, 0, 5, 0, MS, 2 * MS) is Receipt.DUPLICATE
    assert ledger.received(2, 0, 1, 0, MS, 2 * MS) is Receipt.OUT_OF_ORDER
    assert ledger.received(2, 1, 1, 0, MS, 2 * MS) is Receipt.DUPLICATE
    assert list(ledger._clients[2].gaps) == [0]  # seqs 2 and 4 of sender 0 still missing


def test_a_message_to_a_room_the_recipient_is_not_in_is_leaked() -> None:
    ledger = Ledger(2, [[0], [1]], Expect.MEMBERS)
    joined(ledger, [0, 1])
    ledger.sent(0, 1, 0, MS)
    assert ledger.received(0, 0, 1, 0, MS, 2 * MS) is Receipt.NEW
    assert ledger.received(1, 0, 1, 0, MS, 2 * MS) is Receipt.LEAKED
    assert ledger.received(1, 0, 1, 0, MS, 3 * MS) is Receipt.LEAKED  # every copy counts
    s = ledger.summary(END)
    assert (s.delivered, s.leaked, s.expected_deliveries, s.lost) == (1, 2, 1, 0)
    assert s.latency.count == 1  # leaks record no latency


def test_members_mode_expects_members_whose_membership_spans_the_intended_time() -> None:
    ledger = Ledger(4, [[0], [0], [0], [0]], Expect.MEMBERS)
    ledger.connected(0, 0)
    ledger.member_since(0, 0, 0)  # sender, member all along
    ledger.connected(1, 0)
    ledger.member_since(1, 0, 0)
    ledger.disconnected(1, 15 * MS)  # offline during the message: still expected (re-sync)
    ledger.connected(2, 30 * MS)
    ledger.member_since(2, 0, 30 * MS)  # joined after the message: not expected
    ledger.connected(3, 0)
    ledger.member_since(3, 0, 0)
    ledger.member_until(3, 0, 10 * MS)  # left before the message: not expected
    ledger.sent(0, 1, 0, 20 * MS)
    ledger.received(0, 0, 1, 0, 20 * MS, 21 * MS)
    ledger.received(2, 0, 1, 0, 20 * MS, 31 * MS)  # history page: delivered, not expected
    s = ledger.summary(END)
    assert (s.expected_deliveries, s.received_expected, s.lost) == (2, 1, 1)  # client 1 lost it
    assert s.delivered == 2


def test_members_mode_rejoin_after_a_reconnect_keeps_one_span() -> None:
    ledger = one_room(2)
    joined(ledger, [0, 1])
    ledger.disconnected(1, 5 * MS)
    ledger.connected(1, 8 * MS)
    ledger.member_since(1, 0, 8 * MS)  # the re-join after reconnect: the span goes on
    ledger.sent(0, 1, 0, 6 * MS)
    ledger.received(1, 0, 1, 0, 6 * MS, 9 * MS)  # replayed through re-sync
    s = ledger.summary(END)
    assert (s.expected_deliveries, s.received_expected, s.lost) == (2, 1, 1)
    assert list(ledger.state(END).span_starts[0]) == [0, 0]


def test_connected_mode_does_not_expect_a_member_disconnected_during_the_message() -> None:
    ledger = one_room(3, Expect.CONNECTED)
    joined(ledger, [0, 1, 2])
    ledger.disconnected(1, 10 * MS)
    ledger.sent(0, 1, 0, 15 * MS)  # client 1 is away
    ledger.connected(1, 20 * MS)
    ledger.sent(0, 2, 0, 25 * MS)
    for recipient in (0, 2):
        ledger.received(recipient, 0, 1, 0, 15 * MS, 16 * MS)
    for recipient in (0, 1, 2):
        ledger.received(recipient, 0, 2, 0, 25 * MS, 26 * MS)
    s = ledger.summary(END)
    assert (s.expected_deliveries, s.received_expected, s.lost) == (5, 5, 0)
    assert (s.connects, s.reconnects) == (4, 1)


def test_connected_mode_receipt_outside_a_connection_is_delivered_not_expected() -> None:
    ledger = one_room(2, Expect.CONNECTED)
    joined(ledger, [0, 1])
    ledger.disconnected(1, 10 * MS)
    ledger.sent(0, 1, 0, 12 * MS)
    ledger.connected(1, 20 * MS)
    assert ledger.received(1, 0, 1, 0, 12 * MS, 21 * MS) is Receipt.NEW  # arrived anyway
    s = ledger.summary(END)
    assert (s.delivered, s.expected_deliveries, s.received_expected, s.lost) == (1, 1, 0, 1)


def test_connected_mode_spans_end_at_end_ns_and_members_mode_ignores_connections() -> None:
    for expect, expected in ((Expect.CONNECTED, 1), (Expect.MEMBERS, 0)):
        ledger = one_room(1, expect)
        ledger.connected(0, 0)  # never member_since: only counts in CONNECTED mode
        ledger.sent(0, 1, 0, 5 * MS)
        ledger.sent(0, 2, 0, 50 * MS)  # after end_ns: outside the span in both modes
        assert ledger.summary(20 * MS).expected_deliveries == expected


def test_a_future_intended_time_is_decided_against_the_final_spans() -> None:
    # Cross-machine skew: the message claims an intended time after its receipt.
    ledger = one_room(2, Expect.CONNECTED)
    joined(ledger, [0, 1])
    ledger.sent(0, 1, 0, 40 * MS)
    ledger.sent(0, 2, 0, 60 * MS)
    ledger.received(1, 0, 1, 0, 40 * MS, 30 * MS)  # 10 ms "in the future"
    ledger.received(1, 0, 2, 0, 60 * MS, 35 * MS)
    ledger.disconnected(1, 50 * MS)  # so seq 2 (t = 60 ms) was not expected of client 1
    s = ledger.summary(END)
    assert (s.expected_deliveries, s.received_expected, s.lost) == (3, 1, 2)
    assert s.latency.clamped == 2  # negative latencies are recorded as 1 us and counted


def test_receipts_of_unsent_messages_never_make_loss_negative() -> None:
    ledger = one_room(2)
    joined(ledger, [0, 1])
    ledger.received(1, 0, 1, 0, MS, 2 * MS)  # sender crashed between write and sent()
    s = ledger.summary(END)
    assert (s.sent, s.delivered, s.expected_deliveries, s.received_expected, s.lost) == (
        0,
        1,
        0,
        1,
        0,
    )


def test_connects_reconnects_and_reconnect_times() -> None:
    ledger = one_room(2)
    ledger.connected(0, 0)
    ledger.disconnected(0, 100 * MS)
    ledger.disconnected(0, 150 * MS)  # not connected: ignored
    ledger.connected(0, 600 * MS)  # 500 ms down
    ledger.disconnected(0, 700 * MS)
    ledger.connected(0, 900 * MS)  # 200 ms down
    ledger.connected(1, 0)
    s = ledger.summary(END)
    assert (s.connects, s.reconnects) == (4, 2)
    assert s.reconnect.count == 2
    assert s.reconnect.max_ms == pytest.approx(500.0, rel=1e-3)
    assert s.reconnect.percentiles_ms([0.0])[0] == pytest.approx(200.0, rel=1e-3)


def test_acks_and_duplicate_acks() -> None:
    ledger = one_room(2)
    assert ledger.acked(0, 1, 0, 3 * MS) is True
    assert ledger.acked(0, 3, 0, 4 * MS) is True
    assert ledger.acked(0, 1, 0, 9 * MS) is False
    assert ledger.acked(0, 2, 0, 5 * MS) is True
    assert ledger.acked(1, 1, 0, 2 * MS) is True
    assert ledger.acked(0, 2, 0, 5 * MS) is False
    s = ledger.summary(END)
    assert (s.acks, s.acks_duplicate, s.ack_latency.count) == (4, 2, 4)
    assert s.ack_latency.max_ms == pytest.approx(5.0, rel=1e-3)


def test_membership_must_be_one_of_the_clients_rooms() -> None:
    ledger = Ledger(2, [[0], [1]], Expect.MEMBERS)
    with pytest.raises(ValueError, match="client 0 is not a member of room 1"):
        ledger.member_since(0, 1, 0)
    with pytest.raises(ValueError, match="2 entries for 3 clients"):
        Ledger(3, [[0], [0]], Expect.MEMBERS)


def test_state_round_trips_through_json() -> None:
    ledger = Ledger(3, [[0], [0, 1], [1]], Expect.MEMBERS)
    joined(ledger, [0, 1, 2])
    for seq in range(1, 6):
        ledger.sent(1, seq, seq % 2, seq * MS)
        ledger.received(0, 1, seq, seq % 2, seq * MS, seq * MS + 2 * MS)
        ledger.acked(1, seq, seq * MS, seq * MS + MS)
    state = ledger.state(END)
    data = orjson.loads(orjson.dumps(state.to_dict()))
    again = LedgerState.from_dict(data)
    assert again == state
    assert again.to_dict() == state.to_dict()
    assert set(data["counters"]) == set(COUNTERS)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d.pop("expect"), "expect"),
        (lambda d: d["counters"].pop("sent"), "counters.sent"),
        (lambda d: d["counters"].update(delivered=-1), "counters.delivered"),
        (lambda d: d["sent"].update({"0": "!!"}), "sent.0"),
        (lambda d: d["sent"].update({"x": ""}), "sent.x"),
        (lambda d: d["spans"]["0"].pop("ends"), "spans.0.ends"),
        (lambda d: d["histograms"]["latency"].update(hist="nope"), "histograms.latency.hist"),
        (lambda d: d["histograms"].pop("reconnect"), "histograms.reconnect"),
    ],
)
def test_from_dict_names_the_bad_key(mutate: Any, key: str) -> None:
    ledger = one_room(2)
    joined(ledger, [0, 1])
    ledger.sent(0, 1, 0, MS)
    data = orjson.loads(orjson.dumps(ledger.export(END)))
    mutate(data)
    with pytest.raises(LedgerStateError) as info:
        LedgerState.from_dict(data)
    assert info.value.key == key


def test_states_of_different_runs_do_not_merge() -> None:
    members = one_room(2).state(END)
    connected = one_room(2, Expect.CONNECTED).state(END)
    with pytest.raises(ValueError, match="different runs"):
        LedgerState.merge([members, connected])
    with pytest.raises(ValueError, match="no ledger states"):
        merge_states([])


# --- merging: Hypothesis ------------------------------------------------------------------


@attrs.frozen
class Log:
    clients: int
    rooms_of: list[list[int]]
    expect: Expect
    events: list[tuple[Any, ...]]  # (kind, now_ns, args...)
    end_ns: int
    shard_of: list[int]
    shards: int


# Deliveries and sends first: the interesting counters need many of them.
KINDS = ("deliver",) * 5 + ("send",) * 2 + ("connect", "disconnect", "join", "leave", "ack")


@st.composite
def delivery_logs(draw: st.DrawFn, *, max_clients: int = 6, max_steps: int = 80) -> Log:
    """A random run: connections, memberships, sends, and deliveries with duplicates,
    reordering, leaks (to non-members), losses (never delivered) and skew (intended time
    after the receipt), plus a split of the clients over 1-4 shards."""
    clients = draw(st.integers(1, max_clients))
    rooms = draw(st.integers(1, 3))
    rooms_of = [
        sorted(draw(st.sets(st.integers(0, rooms - 1), max_size=rooms))) for _ in range(clients)
    ]
    expect = draw(st.sampled_from([Expect.MEMBERS, Expect.CONNECTED]))
    client = st.integers(0, clients - 1)
    now = 0
    seqs = [0] * clients
    sent: list[tuple[int, int, int, int]] = []  # (sender, seq, room, intended)
    events: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(0, max_steps))):
        now += draw(st.integers(0, 3))
        kind = draw(st.sampled_from(KINDS))
        if kind == "send":
            sender = draw(client)
            seqs[sender] += 1
            room = draw(st.sampled_from(rooms_of[sender] or [0]) | st.integers(0, rooms - 1))
            intended = max(0, now + draw(st.integers(-3, 5)))
            sent.append((sender, seqs[sender], room, intended))
            events.append(("send", now, sender, seqs[sender], room, intended))
        elif kind in ("deliver", "ack") and sent:
            sender, seq, room, intended = draw(st.sampled_from(sent))
            if kind == "ack":
                events.append(("ack", now, sender, seq, intended))
            else:
                members = [c for c in range(clients) if room in rooms_of[c]]
                recipient = draw(st.sampled_from(members) | client if members else client)
                events.append(("deliver", now, recipient, sender, seq, room, intended))
        elif kind in ("connect", "disconnect"):
            events.append((kind, now, draw(client)))
        elif kind in ("join", "leave"):
            who = draw(client)
            if rooms_of[who]:
                events.append((kind, now, who, draw(st.sampled_from(rooms_of[who]))))
    shards = draw(st.integers(1, 4))
    shard_of = [draw(st.integers(0, shards - 1)) for _ in range(clients)]
    return Log(clients, rooms_of, expect, events, now + draw(st.integers(0, 3)), shard_of, shards)


def owner(event: tuple[Any, ...]) -> int:
    """The client whose shard sees `event`: the recipient of a delivery, else the actor."""
    return int(event[2])


def feed(ledger: Ledger, event: tuple[Any, ...]) -> None:
    kind, now, *args = event
    if kind == "send":
        ledger.sent(*args)
    elif kind == "deliver":
        recipient, sender, seq, room, intended = args
        ledger.received(recipient, sender, seq, room, intended, now)
    elif kind == "ack":
        sender, seq, intended = args
        ledger.acked(sender, seq, intended, now)
    elif kind == "connect":
        ledger.connected(args[0], now)
    elif kind == "disconnect":
        ledger.disconnected(args[0], now)
    elif kind == "join":
        ledger.member_since(args[0], args[1], now)
    else:
        ledger.member_until(args[0], args[1], now)


def model(log: Log) -> dict[str, int]:
    """The counters, computed the slow and obvious way from the whole log."""
    spans: dict[tuple[int, int], list[list[int]]] = {}  # (client, room) -> [[start, end]]
    online = [False] * log.clients
    connects = [0] * log.clients

    def open_(c: int, room: int, now: int) -> None:
        runs = spans.setdefault((c, room), [])
        if not runs or runs[-1][1] != -1:
            runs.append([now, -1])

    def close(c: int, room: int, now: int) -> None:
        runs = spans.get((c, room))
        if runs and runs[-1][1] == -1:
            runs[-1][1] = now

    seen: dict[tuple[int, int], set[int]] = {}
    counts = dict.fromkeys(COUNTERS, 0)
    receipts: set[tuple[int, int, int]] = set()
    acked: set[tuple[int, int]] = set()
    messages: list[tuple[int, int, int, int]] = []
    for event in log.events:
        kind, now, *args = event
        if kind == "send":
            counts["sent"] += 1
            sender, seq, room, t = args
            messages.append((sender, seq, room, t))
        elif kind == "deliver":
            recipient, sender, seq, room, _ = args
            if room not in log.rooms_of[recipient]:
                counts["leaked"] += 1
                continue
            got = seen.setdefault((recipient, sender), set())
            if seq in got:
                counts["duplicates"] += 1
                continue
            if got and max(got) > seq:
                counts["out_of_order"] += 1
            got.add(seq)
            counts["delivered"] += 1
            receipts.add((recipient, sender, seq))
        elif kind == "ack":
            key = (args[0], args[1])
            counts["acks_duplicate" if key in acked else "acks"] += 1
            acked.add(key)
        elif kind == "connect":
            c = args[0]
            connects[c] += 1
            online[c] = True
            if log.expect is Expect.CONNECTED:
                for room in log.rooms_of[c]:
                    open_(c, room, now)
        elif kind == "disconnect":
            c = args[0]
            if online[c] and log.expect is Expect.CONNECTED:
                for room in log.rooms_of[c]:
                    close(c, room, now)
            online[c] = False
        elif log.expect is Expect.MEMBERS:
            (open_ if kind == "join" else close)(args[0], args[1], now)

    def covered(c: int, room: int, t: int) -> bool:
        return any(
            s <= t < (max(s, log.end_ns) if e == -1 else e) for s, e in spans.get((c, room), [])
        )

    expected = {
        (c, sender, seq)
        for sender, seq, room, t in messages
        for c in range(log.clients)
        if room in log.rooms_of[c] and covered(c, room, t)
    }
    counts["expected_deliveries"] = len(expected)
    counts["received_expected"] = len(expected & receipts)
    counts["lost"] = len(expected - receipts)
    counts["connects"] = sum(connects)
    counts["reconnects"] = sum(max(0, n - 1) for n in connects)
    return counts


def run(log: Log) -> tuple[Ledger, list[Ledger]]:
    single = Ledger(log.clients, log.rooms_of, log.expect)
    shards = [Ledger(log.clients, log.rooms_of, log.expect) for _ in range(log.shards)]
    for event in log.events:
        feed(single, event)
        feed(shards[log.shard_of[owner(event)]], event)
    return single, shards


merge_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@merge_settings
@given(delivery_logs())
def test_split_ledgers_merge_to_the_single_ledger(log: Log) -> None:
    single, shards = run(log)
    expected: LedgerSummary = single.summary(log.end_ns)
    exports = [orjson.loads(orjson.dumps(shard.export(log.end_ns))) for shard in shards]
    assert merge_states(exports) == expected
    merged_state = LedgerState.merge([shard.state(log.end_ns) for shard in shards])
    assert merged_state.to_dict() == single.export(log.end_ns)


@merge_settings
@given(delivery_logs())
def test_ledger_counters_match_a_brute_force_model(log: Log) -> None:
    single, _ = run(log)
    s = single.summary(log.end_ns)
    counters = s.counters()
    assert counters == model(log)
    assert s.latency.count == s.delivered
    assert s.ack_latency.count == s.acks
