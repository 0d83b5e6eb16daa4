"""The device socket's delivery rules (messaging/window.py), without sockets or a database:
a queue is a list of positions, and `drain` does what the consumer does with the window."""

from __future__ import annotations

from messaging.window import DeliveryWindow, Probe


def window(*, size: int = 5, batch: int = 2, now: float = 0.0) -> DeliveryWindow:
    return DeliveryWindow(size=size, batch=batch, last_progress=now)


def drain(w: DeliveryWindow, queue: list[int], *, restart: bool = False) -> list[list[int]]:
    """The consumer's drain: read after the cursor until the window is full or a read comes
    back empty; return the deliver frames sent."""
    w.expect_more()
    if restart:
        w.restart()
    sent = []
    while (read := w.next_read()) is not None:
        rows = [seq for seq in queue if seq > read.after_seq][: read.limit]
        if not w.record_read(read, rows):
            break
        sent.append(rows)
    return sent


def test_a_drain_sends_the_queue_in_order_in_batches():
    w = window()
    assert drain(w, [1, 2, 3]) == [[1, 2], [3]]
    assert (w.cursor, w.inflight, w.more) == (3, {1, 2, 3}, False)


def test_a_full_window_stops_reading():
    w = window(size=5, batch=2)
    assert drain(w, list(range(1, 10))) == [[1, 2], [3, 4], [5]]  # the last read fills it
    assert w.next_read() is None
    assert w.more  # every read was full: rows may be waiting


def test_acks_free_room_and_ask_for_a_drain_while_rows_may_wait():
    w = window(size=5, batch=2)
    queue = list(range(1, 10))
    drain(w, queue)
    assert w.ack([1, 2], now=1.0)
    read = w.next_read()
    assert (read.after_seq, read.limit) == (5, 2)
    assert drain(w, queue) == [[6, 7]]


def test_acks_ask_for_no_drain_once_caught_up():
    w = window()
    drain(w, [1, 2, 3])
    assert not w.ack([1, 2, 3], now=1.0)
    assert w.inflight == set()


def test_a_short_read_clears_more_but_a_full_one_does_not():
    w = window(batch=2)
    read = w.next_read()
    w.record_read(read, [1, 2])
    assert w.more
    w.record_read(w.next_read(), [3])
    assert not w.more


def test_an_empty_read_ends_the_drain():
    w = window()
    assert not w.record_read(w.next_read(), [])
    assert not w.more and w.cursor == 0


def test_a_short_read_keeps_more_when_a_doorbell_rang_during_it():
    """The doorbell's rows may have been committed after the read looked: read again."""
    w = window(batch=2)
    read = w.next_read()
    assert not w.doorbell([7])  # rang while the read was out: not caught up yet
    w.record_read(read, [1])
    assert w.more


def test_a_doorbell_is_forwarded_as_is_when_caught_up_with_room():
    w = window(size=5)
    drain(w, [1, 2])
    assert w.doorbell([3, 4])
    assert (w.cursor, w.inflight) == (4, {1, 2, 3, 4})
    assert w.rung == 0


def test_a_doorbell_before_the_socket_caught_up_asks_for_a_drain():
    w = window()
    assert w.more  # nothing read yet
    assert not w.doorbell([1])
    assert (w.cursor, w.inflight, w.rung) == (0, set(), 1)


def test_a_doorbell_with_rows_at_or_below_the_cursor_asks_for_a_drain():
    w = window()
    drain(w, [1, 2, 3])
    assert not w.doorbell([3, 4])
    assert w.cursor == 3 and 4 not in w.inflight


def test_a_doorbell_that_would_overfill_the_window_asks_for_a_drain():
    w = window(size=5)
    drain(w, [1, 2, 3])
    assert not w.doorbell([4, 5, 6])
    assert drain(w, [1, 2, 3, 4, 5, 6]) == [[4, 5]]
    assert w.inflight == {1, 2, 3, 4, 5} and w.more


def test_an_empty_doorbell_asks_for_a_drain():
    w = window()
    drain(w, [])
    assert not w.doorbell([])


def test_a_lost_doorbell_below_the_cursor_makes_the_nudge_restart():
    w = window(size=5)
    drain(w, [])
    # The doorbell of 1 was lost; the one of 2 was forwarded and moved the cursor past 1.
    assert w.doorbell([2])
    assert w.probe_below() == Probe(upto_seq=2, limit=6)
    assert w.skipped([1, 2])
    assert drain(w, [1, 2], restart=True) == [[1, 2]]
    assert not w.skipped([1, 2])


def test_rows_below_the_cursor_all_in_flight_are_not_skipped():
    w = window()
    drain(w, [1, 2, 3])
    assert not w.skipped([1, 2, 3])
    assert not w.skipped([])


def test_in_flight_rows_unacked_for_repush_seconds_are_stalled():
    w = window(now=100.0)
    drain(w, [1, 2])
    assert not w.stalled(now=109.9, repush_seconds=10)
    assert w.stalled(now=110.0, repush_seconds=10)
    assert drain(w, [1, 2], restart=True) == [[1, 2]]  # the nudge sends them again
    w.progressed(now=110.0)
    assert not w.stalled(now=115.0, repush_seconds=10)


def test_an_ack_is_progress_and_nothing_in_flight_never_stalls():
    w = window(now=0.0)
    drain(w, [1, 2])
    w.ack([1], now=8.0)
    assert not w.stalled(now=12.0, repush_seconds=10)
    w.ack([2], now=9.0)
    assert not w.stalled(now=1000.0, repush_seconds=10)


def test_a_restart_sends_every_unacked_row_again_from_the_head():
    w = window(size=5, batch=5)
    drain(w, [1, 2, 3])
    w.ack([2], now=1.0)
    assert drain(w, [1, 3], restart=True) == [[1, 3]]
    assert (w.cursor, w.inflight) == (3, {1, 3})
