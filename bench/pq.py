"""Version-2 sessions against version 1, in Python (docs/protocol.md section 27): session
setup, a message in one chain, a reply that turns the ratchet, a KEM exchange (its offer, its
answer and the step into the answering chain), the 9-device fan-out, and the sizes of bundles
and first messages and the average bytes a message over a conversation.

Run alone: .venv/bin/python bench/pq.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.protocol_bench import measure  # noqa: E402
from protocol.fanout import encrypt_for_devices  # noqa: E402
from protocol.inbound import accept_prekey_message  # noqa: E402
from protocol.keys import (  # noqa: E402
    DeviceKeys,
    generate_device_keys,
    generate_kem_prekey,
    make_prekey_bundle,
)
from protocol.message import decode_message  # noqa: E402
from protocol.pqratchet import KEM_INTERVAL  # noqa: E402
from protocol.ratchet import Session  # noqa: E402
from protocol.rng import system_rng  # noqa: E402

MESSAGE = b"x" * 256  # a typical short encoded content (padded text)


def bob_keys(version: int) -> tuple[DeviceKeys, object]:
    bob = generate_device_keys(system_rng, one_time_prekey_ids=[1])
    kem = generate_kem_prekey(bob.identity, 9, system_rng) if version == 2 else None
    return bob, make_prekey_bundle("bob", bob, bob.one_time_prekeys[0], kem), kem


def setup(version: int) -> Callable[[], tuple[Session, Session, bytes]]:
    alice = generate_device_keys(system_rng)
    bob, bundle, kem = bob_keys(version)

    def run() -> tuple[Session, Session, bytes]:
        a = Session.initiate(
            identity=alice.identity,
            bundle=bundle,
            listed_identity_key=bob.identity.public,
            rng=system_rng,
        )
        first = a.encrypt(MESSAGE, system_rng)
        b = accept_prekey_message(
            first,
            identity=bob.identity,
            signed_prekeys={bob.signed_prekey.id: bob.signed_prekey.key},
            one_time_prekeys={1: bob.one_time_prekeys[0].key},
            kem_prekeys={} if kem is None else {9: kem},
            sender_identity_key=alice.identity.public,
            used_base_keys=set(),
            rng=system_rng,
        ).session
        return a, b, first

    return run


def pair(version: int) -> tuple[Session, Session]:
    a, b, _ = setup(version)()
    a.decrypt(b.encrypt(b"hi", system_rng), system_rng)
    return a, b


def kem_exchange() -> tuple[float, float]:
    """The three ratchet steps of one exchange, timed together: the offerer's step that makes
    the offer (a key pair from a seed), the answerer's step with the encapsulation, and the
    offerer's step with the decapsulation (each also a plain DH step, the row above)."""
    samples = []
    for _ in range(60):
        a, b = pair(2)
        assert a.kem and b.kem
        # run until Alice's next chain will carry an offer
        while True:
            b.decrypt(a.encrypt(MESSAGE, system_rng), system_rng)
            reply = b.encrypt(MESSAGE, system_rng)
            start = time.perf_counter_ns()
            a.decrypt(reply, system_rng)
            if a.kem.offer is not None:  # this step made the offer
                offer_ns = time.perf_counter_ns() - start
                break
        wire = a.encrypt(MESSAGE, system_rng)
        start = time.perf_counter_ns()
        b.decrypt(wire, system_rng)  # Bob's step answers
        answer_ns = time.perf_counter_ns() - start
        reply = b.encrypt(MESSAGE, system_rng)
        assert decode_message(reply).header.kem_answer is not None  # type: ignore[union-attr]
        start = time.perf_counter_ns()
        a.decrypt(reply, system_rng)  # Alice's step takes the answer
        taken_ns = time.perf_counter_ns() - start
        samples.append((offer_ns + answer_ns + taken_ns) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def turning(version: int) -> Callable[[], object]:
    a, b = pair(version)
    state = {"a": a, "b": b}

    def run() -> object:
        state["b"].decrypt(state["a"].encrypt(MESSAGE, system_rng), system_rng)
        state["a"], state["b"] = state["b"], state["a"]
        return None

    return run


def fan_out(version: int) -> Callable[[], object]:
    sessions = {f"dev-{i}": pair(version)[0] for i in range(9)}
    return lambda: encrypt_for_devices(MESSAGE, sessions, system_rng)


def average_bytes(version: int, messages: int = 20 * KEM_INTERVAL) -> float:
    """Replies taking turns, one message each: the mean wire size of a 256-byte content."""
    a, b = pair(version)
    sizes = []
    for _ in range(messages // 2):
        wire = a.encrypt(MESSAGE, system_rng)
        sizes.append(len(wire))
        b.decrypt(wire, system_rng)
        wire = b.encrypt(MESSAGE, system_rng)
        sizes.append(len(wire))
        a.decrypt(wire, system_rng)
    return sum(sizes) / len(sizes)


def main() -> None:
    rows = []
    for version in (1, 2):
        make = setup(version)
        rows.append(
            (
                f"v{version} session setup: initiate + first message + accept",
                *measure(make, 300),
                300,
            )
        )
        a, b = pair(version)
        rows.append(
            (
                f"v{version} encrypt + decrypt, one message (same chain)",
                *measure(
                    lambda a=a, b=b: b.decrypt(a.encrypt(MESSAGE, system_rng), system_rng), 3000
                ),
                3000,
            )
        )
        rows.append(
            (
                f"v{version} encrypt + decrypt with a DH ratchet step",
                *measure(turning(version), 2000),
                2000,
            )
        )
        rows.append(
            (
                f"v{version} fan-out of one message to 9 devices",
                *measure(fan_out(version), 1000),
                1000,
            )
        )
    rows.append(("v2 one KEM exchange (three ratchet steps, timed together)", *kem_exchange(), 60))
    print(f"{'operation':66} {'median µs':>10} {'p95 µs':>10} {'runs':>6}")
    for name, median, p95, runs in rows:
        print(f"{name:66} {median:10.1f} {p95:10.1f} {runs:6}")
    sizes = {}
    for version in (1, 2):
        _, bundle, _ = bob_keys(version)
        _, _, first = setup(version)()
        sizes[f"v{version}"] = {
            "bundle_json_bytes": len(json.dumps(bundle.to_dict(), separators=(",", ":"))),
            "first_message_bytes": len(first),
            "average_message_bytes": round(average_bytes(version), 1),
        }
    print(
        f"\nsizes, a {len(MESSAGE)}-byte content, replies taking turns over {20 * KEM_INTERVAL} messages:"
    )
    for version, figures in sizes.items():
        print(f"  {version}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
