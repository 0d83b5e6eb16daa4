"""The one rate-limit algorithm (web/ratelimit.py): a token bucket with burst N refilled at
N/S a second, the same in both stores: Django's cache for the HTTP limits, shared by every
node through Redis, and the process's map for the socket send budgets."""

from __future__ import annotations

import threading

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from web import ratelimit
from web.errors import RateLimited
from web.ratelimit import TokenBuckets, cache_take, check


def passes(scope: str, identity: str, *, now: float, store=None) -> bool:
    try:
        check(scope, identity, now=now, store=store)
    except RateLimited:
        return False
    return True


@pytest.fixture
def sign_in_limit(settings):
    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "sign_in": (3, 60)}


def test_a_spent_limit_lets_one_more_in_each_s_over_n_seconds(sign_in_limit):
    t = 1_000_000.0
    assert [passes("sign_in", "198.51.100.1", now=t) for _ in range(4)] == [1, 1, 1, 0]
    assert not passes("sign_in", "198.51.100.1", now=t + 19.9)
    assert passes("sign_in", "198.51.100.1", now=t + 20)  # 3 per 60 s: one every 20 s
    assert not passes("sign_in", "198.51.100.1", now=t + 20)


def test_a_refusal_says_when_the_next_attempt_passes(sign_in_limit):
    t = 1_000_000.0
    for _ in range(3):
        check("sign_in", "198.51.100.1", now=t)
    with pytest.raises(RateLimited) as refused:
        check("sign_in", "198.51.100.1", now=t + 5)
    wait_ms = refused.value.data["retry_after_ms"]
    assert wait_ms == 15_000
    assert passes("sign_in", "198.51.100.1", now=t + 5 + wait_ms / 1000)


def test_no_double_burst_across_a_window_boundary(sign_in_limit):
    # A fixed window let 3 in just before a minute's end and 3 more just after it.
    end_of_minute = 60 * 16_667.0
    before = [passes("sign_in", "198.51.100.1", now=end_of_minute - 0.5) for _ in range(3)]
    after = [passes("sign_in", "198.51.100.1", now=end_of_minute + 0.5) for _ in range(3)]
    assert before == [True, True, True]
    assert after == [False, False, False]


def test_refused_attempts_take_nothing(sign_in_limit):
    t = 1_000_000.0
    for _ in range(3):
        check("sign_in", "198.51.100.1", now=t)
    for second in range(1, 20):  # hammering while refused does not push the next token away
        assert not passes("sign_in", "198.51.100.1", now=t + second)
    assert passes("sign_in", "198.51.100.1", now=t + 20)


def test_each_identity_has_its_own_bucket(sign_in_limit):
    t = 1_000_000.0
    for _ in range(3):
        check("sign_in", "198.51.100.1", now=t)
    assert passes("sign_in", "198.51.100.2", now=t)


def test_the_http_limit_and_the_send_budget_are_the_same_bucket():
    moments = [0, 0, 0, 0, 0.5, 1.0, 1.0, 1.5, 4.0, 4.0, 4.0, 4.0, 4.2, 9.0]
    clock_now = [0.0]
    budgets = TokenBuckets(rate=2.0, burst=3, clock=lambda: clock_now[0])
    in_process = []
    for moment in moments:
        clock_now[0] = 1000.0 + moment
        in_process.append(budgets.take("laptop"))
    store = LocMemCache("rate-limit-test", {})
    in_cache = [cache_take(store, "laptop", rate=2.0, burst=3, now=1000.0 + m)[1] for m in moments]
    assert in_cache == in_process
    assert in_process == [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1]


@pytest.fixture
def nodes(redis_server):
    """Two nodes' caches: separate clients of the one test Redis, as in a deployment."""
    caches = [RedisCache(redis_server.url, {"KEY_PREFIX": "ratelimit-test"}) for _ in range(2)]
    caches[0].clear()
    yield caches
    caches[0].clear()


def test_nodes_sharing_redis_count_together(sign_in_limit, nodes):
    a, b = nodes
    t = 1_000_000.0
    answers = [passes("sign_in", "198.51.100.1", now=t, store=node) for node in (a, b, a, b)]
    assert answers == [True, True, True, False]
    assert not passes("sign_in", "198.51.100.1", now=t, store=a)


def test_simultaneous_attempts_on_two_nodes_never_pass_beyond_the_burst(
    settings, nodes, monkeypatch
):
    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "sign_in": (10, 3600)}
    monkeypatch.setattr(ratelimit, "LOCK_WAIT_SECONDS", 30)  # a slow machine waits, no refusal
    start = threading.Barrier(16)
    admitted = []

    def attempt(store) -> None:
        start.wait()
        for _ in range(4):
            if passes("sign_in", "198.51.100.1", now=1_000_000.0, store=store):
                admitted.append(1)

    threads = [threading.Thread(target=attempt, args=(nodes[n % 2],)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 10


def test_a_lock_left_by_a_dead_node_refuses_and_changes_nothing(sign_in_limit, nodes, monkeypatch):
    a, b = nodes
    t = 1_000_000.0
    check("sign_in", "198.51.100.1", now=t, store=a)
    monkeypatch.setattr(ratelimit, "LOCK_WAIT_SECONDS", 0)
    a.add("lock:parley:rl:sign_in:198.51.100.1", 1, timeout=ratelimit.LOCK_SECONDS)
    with pytest.raises(RateLimited) as refused:
        check("sign_in", "198.51.100.1", now=t, store=b)
    assert refused.value.data["retry_after_ms"] == ratelimit.LOCK_SECONDS * 1000
    a.delete("lock:parley:rl:sign_in:198.51.100.1")  # as when its expiry comes
    assert [passes("sign_in", "198.51.100.1", now=t, store=b) for _ in range(3)] == [1, 1, 0]
