"""The recorder (loadtool.results.recorder): one call per event feeds ledger and series.

The point checked here is the fast path: a delivery's latency is recorded once, into the
ledger's histogram, and the time series takes each second's share from it
(`TimeSeries.track`). Its rows must be exactly those of a series that recorded every
delivery itself (`TimeSeries.delivered`, the plain path): counts, percentiles and the
encoded histograms, whatever the spacing of the deliveries in time.
"""

from __future__ import annotations

from typing import Final

from hypothesis import given, settings
from hypothesis import strategies as st

from loadtool.results.ledger import Expect, Ledger, Receipt
from loadtool.results.recorder import Recorder
from loadtool.results.timeseries import TimeSeries

T0: Final = 1_700_000_000 * 10**9
S: Final = 10**9
MS: Final = 10**6
CLIENTS: Final = 3

# (recipient, sender, seq, latency ms, ns since the previous receipt): seqs repeat and skip,
# so duplicates and out-of-order receipts occur; steps span 0 to ~3.5 s (empty seconds).
receipts = st.lists(
    st.tuples(
        st.integers(0, CLIENTS - 1),
        st.integers(0, CLIENTS - 1),
        st.integers(1, 6),
        st.integers(0, 3000),
        st.integers(0, 7).map(lambda k: k * S // 2),
    ),
    max_size=60,
)


def new_ledger() -> Ledger:
    ledger = Ledger(CLIENTS, [[0]] * CLIENTS, Expect.MEMBERS)
    for client in range(CLIENTS):
        ledger.connected(client, T0)
        ledger.member_since(client, 0, T0)
    return ledger


def feed(
    recorder: Recorder, plain: TimeSeries, events: list[tuple[int, int, int, int, int]]
) -> None:
    now = T0 - S  # the first events fall before the series' start: second 0
    for recipient, sender, seq, latency_ms, step in events:
        now += step + 1
        intended = now - latency_ms * MS
        receipt = recorder.received(recipient, sender, seq, 0, intended, now)
        if receipt is Receipt.NEW or receipt is Receipt.OUT_OF_ORDER:
            plain.delivered(now, now - intended)


@settings(deadline=None)
@given(receipts)
def test_tracked_series_equals_the_plain_one(events: list[tuple[int, int, int, int, int]]) -> None:
    recorder = Recorder(ledger=new_ledger(), series=TimeSeries(T0))
    plain = TimeSeries(T0)
    feed(recorder, plain, events)
    rows = recorder.series.export()
    assert rows == plain.export()
    assert sum(row["delivered"] for row in rows) == recorder.delivered_count
    assert recorder.delivered_count == recorder.ledger.latency.count
    assert recorder.series.export() == rows  # exporting takes nothing twice


def test_a_series_replaced_mid_run_starts_from_the_ledger_as_it_is() -> None:
    """The swarm replaces the recorder's series when the load starts (`--start-at`):
    deliveries before the replacement stay in the ledger and out of the new series."""
    recorder = Recorder(ledger=new_ledger(), series=TimeSeries(T0))
    recorder.received(0, 1, 1, 0, T0 - 5 * MS, T0)
    recorder.series = TimeSeries(T0 + S)
    plain = TimeSeries(T0 + S)
    feed(recorder, plain, [(0, 1, 2, 7, 2 * S), (1, 1, 2, 9, 0), (1, 1, 2, 9, 0)])
    assert recorder.series.export() == plain.export()
    assert [row["delivered"] for row in plain.export()] == [2]
    assert recorder.ledger.latency.count == 3
