"""What a device socket delivers next, as a pure state machine: no sockets, no database, no
clock (time is passed in). The consumer performs the reads and sends it asks for.

The queue in the database is the truth; the socket keeps a cursor (the last queue position
sent) and the positions in flight (sent, not yet acked), at most `size` of them. Rows after
the cursor are read in order, `batch` at a time. A doorbell carries new rows: they are
forwarded as they are only when the socket is caught up, otherwise the queue is read. The
sweeper's nudge restarts from the queue head when deliveries stalled or rows were skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Read:
    """Read up to `limit` queued rows after `after_seq`; `rung` is the doorbell count when
    the read began, so a doorbell ringing during the read is not mistaken for silence."""

    after_seq: int
    limit: int
    rung: int


@dataclass(frozen=True)
class Probe:
    """Read the queued positions up to `upto_seq`, at most `limit` of them."""

    upto_seq: int
    limit: int


@dataclass
class DeliveryWindow:
    size: int
    batch: int
    last_progress: float
    cursor: int = 0
    inflight: set[int] = field(default_factory=set)
    # True while rows may be waiting after the cursor: the socket is not caught up.
    more: bool = True
    rung: int = 0

    def expect_more(self) -> None:
        """A drain is wanted: until a read comes back short, rows may be waiting."""
        self.more = True

    def restart(self) -> None:
        """Send everything unacked again, from the queue head (a `fetch`, a nudge)."""
        self.cursor, self.inflight = 0, set()

    def next_read(self) -> Read | None:
        """The next read of a drain, or None when the window is full."""
        room = self.size - len(self.inflight)
        if room <= 0:
            return None
        return Read(after_seq=self.cursor, limit=min(self.batch, room), rung=self.rung)

    def record_read(self, read: Read, seqs: Sequence[int]) -> bool:
        """Note the rows `read` returned, which the caller then sends; False (nothing to send,
        the drain ends) when it returned none. A short read means the socket is caught up,
        unless a doorbell rang during it: its rows may have been committed after the read."""
        if len(seqs) < read.limit and read.rung == self.rung:
            self.more = False
        if not seqs:
            return False
        self.cursor = seqs[-1]
        self.inflight.update(seqs)
        return True

    def doorbell(self, seqs: Sequence[int]) -> bool:
        """A doorbell with new rows: True if the caller forwards them as they are (caught up,
        nothing older unsent, room in the window); False if it must drain the queue instead."""
        if (
            seqs
            and not self.more
            and seqs[0] > self.cursor
            and len(self.inflight) + len(seqs) <= self.size
        ):
            self.cursor = seqs[-1]
            self.inflight.update(seqs)
            return True
        self.rung += 1
        return False

    def ack(self, seqs: Iterable[int], *, now: float) -> bool:
        """The device acked `seqs`; True if the caller should drain, because the last read
        may have left rows behind and the acks made room."""
        self.inflight.difference_update(seqs)
        self.last_progress = now
        return self.more

    def stalled(self, *, now: float, repush_seconds: float) -> bool:
        """Deliveries are in flight and nothing was acked for `repush_seconds`."""
        return bool(self.inflight) and now - self.last_progress >= repush_seconds

    def progressed(self, *, now: float) -> None:
        """A stall was answered by sending again: wait `repush_seconds` anew."""
        self.last_progress = now

    def probe_below(self) -> Probe:
        """What to read to find rows skipped below the cursor. In flight are at most `size`
        positions, so among `size + 1` queued ones one is surely not in flight."""
        return Probe(upto_seq=self.cursor, limit=self.size + 1)

    def skipped(self, queued: Iterable[int]) -> bool:
        """Whether a row queued below the cursor was never sent. A doorbell forwarded as is
        moves the cursor; if an earlier one was lost, its rows sit below it unsent."""
        return any(seq not in self.inflight for seq in queued)
