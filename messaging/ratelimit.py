"""Token buckets for sends on a socket: `rate` sends a second, bursts up to `burst`."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.updated = self.clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


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
    buckets: OrderedDict[str, TokenBucket] = field(default_factory=OrderedDict)

    def take(self, key: str) -> bool:
        now = self.clock()
        refill = self.burst / self.rate if self.rate > 0 else math.inf
        while self.buckets:
            oldest = next(iter(self.buckets.values()))
            if now - oldest.updated < refill and len(self.buckets) < self.limit:
                break
            self.buckets.popitem(last=False)
        bucket = self.buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(rate=self.rate, burst=self.burst, clock=self.clock)
        self.buckets[key] = bucket
        return bucket.take()
