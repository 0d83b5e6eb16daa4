"""Fixed-window rate limits over Django's cache (per process by default; shared through
Redis when REDIS_URL is set, so every node counts together)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from config.errors import RateLimited


def check(scope: str, identity: str, *, now: float | None = None) -> None:
    """Count one request of `identity` in `scope`; refuse beyond the limit set in
    PARLEY_RATE_LIMITS (`{scope: (requests, seconds)}`)."""
    limit, window = settings.PARLEY_RATE_LIMITS[scope]
    moment = time.time() if now is None else now
    slot = int(moment // window)
    key = f"parley:rl:{scope}:{identity}:{slot}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr: count this one as the first
        cache.set(key, 1, timeout=window + 1)
        count = 1
    if count > limit:
        retry_after = int(((slot + 1) * window - moment) * 1000)
        raise RateLimited(
            f"Too many attempts; try again in {max(1, retry_after // 1000)} s.",
            data={"retry_after_ms": retry_after},
        )


def client_address(request) -> str:
    """The peer address Daphne saw (behind a proxy, run Daphne with --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") or "unknown"
