"""Live progress: one rewritten line on a terminal, a plain line now and then elsewhere.

In CI (not a TTY) the output stays short and parseable: one `progress` line every
`PLAIN_INTERVAL_S`, no control characters.
"""

from __future__ import annotations

import sys
from typing import Final, Protocol, TextIO

import attrs

TTY_INTERVAL_S: Final = 1.0
PLAIN_INTERVAL_S: Final = 10.0


@attrs.frozen(kw_only=True)
class ProgressSample:
    elapsed_s: float
    total_s: float
    connected: int
    clients: int
    sent_per_s: float
    delivered_per_s: float
    p50_ms: float | None  # latency so far
    p99_ms: float | None
    errors: int

    def render(self) -> str:
        lat = (
            f"p50 {self.p50_ms:.1f} ms p99 {self.p99_ms:.1f} ms"
            if self.p50_ms is not None and self.p99_ms is not None
            else "p50 - p99 -"
        )
        return (
            f"{self.elapsed_s:5.0f}/{self.total_s:.0f}s  connected {self.connected}/"
            f"{self.clients}  sent {self.sent_per_s:,.0f}/s  delivered "
            f"{self.delivered_per_s:,.0f}/s  {lat}  errors {self.errors}"
        )


class Progress(Protocol):
    @property
    def interval_s(self) -> float: ...

    def update(self, sample: ProgressSample) -> None: ...

    def close(self) -> None: ...


@attrs.define
class TerminalProgress:
    stream: TextIO = attrs.field(factory=lambda: sys.stderr)
    interval_s: float = TTY_INTERVAL_S
    _width: int = 0

    def update(self, sample: ProgressSample) -> None:
        line = sample.render()
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self._width:
            self.stream.write("\n")
            self.stream.flush()


@attrs.define
class PlainProgress:
    stream: TextIO = attrs.field(factory=lambda: sys.stderr)
    interval_s: float = PLAIN_INTERVAL_S

    def update(self, sample: ProgressSample) -> None:
        self.stream.write("progress " + sample.render() + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


def for_stream(stream: TextIO, *, quiet: bool = False) -> Progress | None:
    """The right progress display for `stream` (None when quiet)."""
    if quiet:
        return None
    return TerminalProgress(stream) if stream.isatty() else PlainProgress(stream)
