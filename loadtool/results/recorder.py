"""One call per event feeds both owners of a run's numbers: the ledger and the time series.

The ledger keeps the exact accounting (loss, duplicates, order, latency histograms); the
time series keeps the per-second view for reports. A delivery's latency is recorded once,
into the ledger's histogram; the time series takes each second's share from it
(`TimeSeries.track`), which halves the histogram work per delivery (docs/performance.md).
"""

from __future__ import annotations

import attrs

from .ledger import Ledger, Receipt
from .timeseries import TimeSeries


@attrs.define(eq=False)
class Recorder:
    ledger: Ledger
    series: TimeSeries
    sent_count: int = 0
    delivered_count: int = 0
    connected_now: int = 0
    _ever_connected: set[int] = attrs.field(factory=set)

    def member_since(self, client: int, room: int, now_ns: int) -> None:
        self.ledger.member_since(client, room, now_ns)

    def member_until(self, client: int, room: int, now_ns: int) -> None:
        self.ledger.member_until(client, room, now_ns)

    def connected(self, client: int, now_ns: int) -> None:
        self.ledger.connected(client, now_ns)
        self.series.add("connects", now_ns)
        if client in self._ever_connected:
            self.series.add("reconnects", now_ns)
        else:
            self._ever_connected.add(client)
        self.connected_now += 1
        self.series.gauge("connected", now_ns, self.connected_now)

    def disconnected(self, client: int, now_ns: int) -> None:
        self.ledger.disconnected(client, now_ns)
        self.series.add("disconnects", now_ns)
        self.connected_now -= 1
        self.series.gauge("connected", now_ns, self.connected_now)

    def sent(self, sender: int, seq: int, room: int, intended_ns: int) -> None:
        self.ledger.sent(sender, seq, room, intended_ns)
        self.series.add("sent", intended_ns)
        self.sent_count += 1

    def received(
        self, recipient: int, sender: int, seq: int, room: int, intended_ns: int, now_ns: int
    ) -> Receipt:
        series = self.series
        if now_ns >= series.track_until_ns:  # a new second: close the last one's latencies
            series.track(now_ns, self.ledger.latency)
        receipt = self.ledger.received(recipient, sender, seq, room, intended_ns, now_ns)
        if receipt is Receipt.NEW or receipt is Receipt.OUT_OF_ORDER:
            self.delivered_count += 1
        return receipt

    def acked(self, sender: int, seq: int, intended_ns: int, now_ns: int) -> None:
        if self.ledger.acked(sender, seq, intended_ns, now_ns):
            self.series.add("acks", now_ns)

    def error(self, now_ns: int) -> None:
        self.series.add("errors", now_ns)
