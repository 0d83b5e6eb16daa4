"""Rate limits, one algorithm: the token bucket. A bucket holds at most `burst` tokens and
refills at `rate` tokens a second; each request takes one, and a request finding less than
one token is refused without taking any. A limit written "N requests / S seconds" is the
bucket with burst N and rate N/S: N at once from a full bucket, then one every S/N seconds,
so at most N + N·t/S requests pass in any t seconds.

Two stores hold the buckets. `check` keeps the HTTP limits (sign-in, sign-up, link, bundles)
in Django's cache: per process by default, shared through Redis when REDIS_URL is set, so
every node counts together. `TokenBuckets` keeps the socket send budgets in the process.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import BaseCache, cache
from django.http import HttpRequest

from web.errors import RateLimited


@dataclass(frozen=True)
class Bucket:
    """A bucket's tokens as of `updated` (seconds on the store's clock)."""

    tokens: float
    updated: float


def bucket_take(
    bucket: Bucket | None, *, rate: float, burst: int, now: float
) -> tuple[Bucket, bool]:
    """Refill `bucket` (None: a full one) up to `now` and take one token if there is one:
    the bucket after, and whether a token was taken. A clock that went back refills nothing."""
    if bucket is None:
        tokens = float(burst)
    else:
        tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.updated) * rate)
    if tokens >= 1:
        return Bucket(tokens=tokens - 1, updated=now), True
    return Bucket(tokens=tokens, updated=now), False


def bucket_wait(bucket: Bucket, *, rate: float) -> float:
    """Seconds until the bucket holds one token again."""
    return max(0.0, 1 - bucket.tokens) / rate if rate > 0 else math.inf


# ---------------------------------------------------------------- in the process


@dataclass
class TokenBuckets:
    """One token bucket per key (a device), kept across that key's connections so that
    reconnecting does not buy a fresh burst. A bucket left alone for `burst / rate` seconds
    has refilled, and a full bucket is the same as a new one: such buckets are dropped, so
    the map holds only keys that took a token within that time. Beyond `limit` keys the least
    recently used bucket goes even if not full: a bound on memory, whatever the load."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    limit: int = 100_000
    # Least recently used first: a take moves its bucket to the end.
    buckets: OrderedDict[str, Bucket] = field(default_factory=OrderedDict)

    def take(self, key: str) -> bool:
        now = self.clock()
        refill = self.burst / self.rate if self.rate > 0 else math.inf
        while self.buckets:
            oldest = next(iter(self.buckets.values()))
            if now - oldest.updated < refill and len(self.buckets) < self.limit:
                break
            self.buckets.popitem(last=False)
        bucket, taken = bucket_take(
            self.buckets.pop(key, None), rate=self.rate, burst=self.burst, now=now
        )
        self.buckets[key] = bucket
        return taken


# ---------------------------------------------------------------- in the cache

# How long one take may hold its bucket's lock; a holder that dies leaves it this long.
LOCK_SECONDS = 2
# How long a take waits for the lock before the request is refused as too many at once.
LOCK_WAIT_SECONDS = 1.0


@contextmanager
def _locked(store: BaseCache, key: str) -> Iterator[None]:
    """Hold the bucket's lock: an `add` (set if absent, atomic in Redis and in the local
    memory cache), so one take at a time reads and writes a bucket, on any node."""
    lock = f"lock:{key}"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.001
    while not store.add(lock, 1, timeout=LOCK_SECONDS):
        if time.monotonic() >= deadline:
            raise RateLimited(
                f"Too many attempts at once; try again in {LOCK_SECONDS} s.",
                data={"retry_after_ms": LOCK_SECONDS * 1000},
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
    try:
        yield
    finally:
        store.delete(lock)


def cache_take(
    store: BaseCache, key: str, *, rate: float, burst: int, now: float
) -> tuple[Bucket, bool]:
    """Take a token from the bucket stored under `key`. A bucket expires from the cache once
    it would have refilled (a missing bucket is a full one); a refused take writes nothing."""
    with _locked(store, key):
        stored = store.get(key)
        bucket, taken = bucket_take(
            Bucket(*stored) if stored is not None else None, rate=rate, burst=burst, now=now
        )
        if taken:
            refilled = (burst - bucket.tokens) / rate
            store.set(key, (bucket.tokens, bucket.updated), timeout=math.ceil(refilled) + 1)
    return bucket, taken


def check(
    scope: str, identity: str, *, now: float | None = None, store: BaseCache | None = None
) -> None:
    """Take one request of `identity` from its bucket in `scope`; refuse (429, with
    `retry_after_ms`) when the bucket is empty. The limits are PARLEY_RATE_LIMITS
    (`{scope: (requests, seconds)}`). Wall-clock time, since nodes share the buckets."""
    requests, seconds = settings.PARLEY_RATE_LIMITS[scope]
    rate = requests / seconds
    bucket, taken = cache_take(
        cache if store is None else store,
        f"parley:rl:{scope}:{identity}",
        rate=rate,
        burst=requests,
        now=time.time() if now is None else now,
    )
    if not taken:
        # Rounded to the microsecond first, so float noise never adds a millisecond.
        retry_after = math.ceil(round(bucket_wait(bucket, rate=rate) * 1000, 3))
        raise RateLimited(
            f"Too many attempts; try again in {max(1, math.ceil(retry_after / 1000))} s.",
            data={"retry_after_ms": retry_after},
        )


def client_address(request: HttpRequest) -> str:
    """The peer address Daphne saw (behind a proxy, run Daphne with --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") or "unknown"
