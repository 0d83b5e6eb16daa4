"""Protocol cost in Python: per-message encrypt+decrypt, X3DH session setup, fan-out to 9.

Run alone: .venv/bin/python bench/protocol_bench.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.fanout import encrypt_for_devices  # noqa: E402
from protocol.inbound import accept_prekey_message  # noqa: E402
from protocol.keys import generate_device_keys, make_prekey_bundle  # noqa: E402
from protocol.ratchet import Session  # noqa: E402
from protocol.rng import system_rng  # noqa: E402

MESSAGE = b"x" * 256  # a typical short encoded content (padded text)


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median, p95) in microseconds."""
    for _ in range(min(50, runs)):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def new_pair() -> tuple[Session, Session]:
    alice = generate_device_keys(system_rng)
    bob = generate_device_keys(system_rng, one_time_prekey_ids=[1])
    a = Session.initiate(
        identity=alice.identity,
        bundle=make_prekey_bundle("bob", bob, bob.one_time_prekeys[0]),
        listed_identity_key=bob.identity.public,
        rng=system_rng,
    )
    b = accept_prekey_message(
        a.encrypt(b"hello", system_rng),
        identity=bob.identity,
        signed_prekeys={bob.signed_prekey.id: bob.signed_prekey.key},
        one_time_prekeys={1: bob.one_time_prekeys[0].key},
        sender_identity_key=alice.identity.public,
        used_base_keys=set(),
        rng=system_rng,
    ).session
    a.decrypt(b.encrypt(b"hi", system_rng), system_rng)
    return a, b


def bench_message() -> Callable[[], object]:
    a, b = new_pair()
    return lambda: b.decrypt(a.encrypt(MESSAGE, system_rng), system_rng)


def bench_setup() -> Callable[[], object]:
    alice = generate_device_keys(system_rng)
    bob = generate_device_keys(system_rng, one_time_prekey_ids=[1])
    bundle = make_prekey_bundle("bob", bob, bob.one_time_prekeys[0])

    def setup() -> object:
        a = Session.initiate(
            identity=alice.identity,
            bundle=bundle,
            listed_identity_key=bob.identity.public,
            rng=system_rng,
        )
        return accept_prekey_message(
            a.encrypt(MESSAGE, system_rng),
            identity=bob.identity,
            signed_prekeys={bob.signed_prekey.id: bob.signed_prekey.key},
            one_time_prekeys={1: bob.one_time_prekeys[0].key},
            sender_identity_key=alice.identity.public,
            used_base_keys=set(),
            rng=system_rng,
        )

    return setup


def bench_fanout() -> Callable[[], object]:
    sessions = {f"dev-{i}": new_pair()[0] for i in range(9)}
    return lambda: encrypt_for_devices(MESSAGE, sessions, system_rng)


def main() -> None:
    rows = [
        ("encrypt+decrypt one message (same chain)", bench_message(), 5000),
        ("X3DH setup: initiate + first message + accept", bench_setup(), 1000),
        ("fan-out one message to 9 devices (encrypt)", bench_fanout(), 2000),
    ]
    print(f"{'operation':48} {'median µs':>10} {'p95 µs':>10} {'runs':>6}")
    for name, fn, runs in rows:
        median, p95 = measure(fn, runs)
        print(f"{name:48} {median:10.1f} {p95:10.1f} {runs:6d}")


if __name__ == "__main__":
    main()
