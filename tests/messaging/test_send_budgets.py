"""The per-device send budgets of a process (web/ratelimit.TokenBuckets): kept across
a device's connections, and forgotten only once forgetting changes nothing."""

from __future__ import annotations

from web.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budgets(*, rate: float = 1.0, burst: int = 3, limit: int = 100_000) -> tuple:
    clock = Clock()
    return TokenBuckets(rate=rate, burst=burst, clock=clock, limit=limit), clock


def test_a_spent_burst_stays_spent_until_it_refills():
    buckets, clock = budgets(rate=1.0, burst=3)
    assert [buckets.take("laptop") for _ in range(4)] == [True, True, True, False]
    clock.now += 2.5  # as after a reconnect: the same budget, two tokens back
    assert [buckets.take("laptop") for _ in range(3)] == [True, True, False]


def test_a_bucket_idle_long_enough_to_refill_is_dropped_and_a_new_one_is_the_same():
    buckets, clock = budgets(rate=1.0, burst=3)
    for _ in range(3):
        buckets.take("laptop")
    clock.now += 2.9  # not yet full again: kept
    buckets.take("phone")
    assert set(buckets.buckets) == {"laptop", "phone"}
    clock.now += 0.1  # laptop full again (3 s idle): dropped on the next take
    buckets.take("phone")
    assert set(buckets.buckets) == {"phone"}
    assert [buckets.take("laptop") for _ in range(4)] == [True, True, True, False]


def test_the_map_holds_only_devices_that_sent_within_the_refill_time():
    buckets, clock = budgets(rate=10.0, burst=20)  # refills in 2 s
    for n in range(1000):
        buckets.take(f"device-{n}")
        clock.now += 0.25
    assert len(buckets.buckets) == 8  # the last 2 s of senders


def test_the_map_never_holds_more_than_its_limit():
    buckets, _ = budgets(rate=1.0, burst=3, limit=50)
    for n in range(200):
        buckets.take(f"device-{n}")
    assert len(buckets.buckets) == 50
    assert "device-199" in buckets.buckets and "device-0" not in buckets.buckets
