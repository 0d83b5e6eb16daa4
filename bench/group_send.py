"""A message to a group of 100 members × 5 devices, in Python (docs/protocol.md 25.8, 25.9): the
sending device's group machine (targets from 500 verified-list devices, the sender key's
distribution check, the encryption, the record's JSON form the adapter stores), a member's
decryption, and what the server stores per message against the pairwise fan-out.

Run: .venv/bin/python bench/group_send.py     (node bench/group_send.mjs is the mirror)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.protocol_bench import new_pair  # noqa: E402
from protocol.content import Content, ContentType, encode_content  # noqa: E402
from protocol.engine import (  # noqa: E402
    GroupKeyReceived,
    GroupMessageReceived,
    GroupRecord,
    GroupSend,
    GroupSendAnswered,
    GroupSendWanted,
    handle_group,
)
from protocol.groups import EntryKind, sign_entry, verify_chain  # noqa: E402
from protocol.keys import IdentityKeyPair  # noqa: E402
from protocol.rng import TestRng, system_rng  # noqa: E402
from protocol.senderkeys import distribution_body  # noqa: E402

MEMBERS, DEVICES = 100, 5
TEXT = "x" * 200  # a short text: one 256-byte padded content
GROUP_ID = TestRng(b"\x07" * 32)(16)
SEED = bytes(32)  # an answer draws nothing


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median, p95) in milliseconds, after a warm-up."""
    for _ in range(min(20, runs)):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def accounts() -> list[str]:
    return [f"m{n:03d}" for n in range(MEMBERS)]


def setup() -> tuple[GroupRecord, dict[str, dict[str, bytes]]]:
    """The first member's second device holding a verified chain of 100 members, and the
    lists of their 500 devices (random identity keys: sending checks membership, not keys)."""
    creator = IdentityKeyPair.from_seed(b"\x01" * 32)
    lists = {a: {f"{a}-d{d}": system_rng(32) for d in range(DEVICES)} for a in accounts()}
    lists["m000"]["m000-d0"] = creator.public
    wire = sign_entry(
        group_id=GROUP_ID,
        seq=0,
        previous=bytes(32),
        kind=EntryKind.CREATE,
        actor="m000",
        identity=creator,
        timestamp=0,
        accounts=accounts(),
        name="bench",
    )
    chain = verify_chain([wire], device_lists={"m000": [creator.public]})
    return GroupRecord("m000", "m000-d1", GROUP_ID, chain=chain), lists


def plaintext() -> bytes:
    return encode_content(Content(ContentType.TEXT, bytes(16), 0, 1, bytes(32), {"text": TEXT}))


def main() -> None:
    record, lists = setup()
    body = plaintext()
    state = {"record": record, "n": 0}

    def send() -> GroupSend:
        state["n"] += 1
        event = GroupSendWanted(f"s{state['n']}", body, lists, 0, system_rng(32))
        state["record"], effects = handle_group(state["record"], event)
        [planned] = [e for e in effects if isinstance(e, GroupSend)]
        accepted = GroupSendAnswered({"type": "accepted", "id": planned.send_id}, lists, 0, SEED)
        state["record"], _ = handle_group(state["record"], accepted)  # the server's answer
        return planned

    started = time.perf_counter_ns()
    first = send()
    first_ms = (time.perf_counter_ns() - started) / 1e6
    steady = measure(send, 200)
    stored = json.dumps(state["record"].to_dict())
    store_ms = measure(lambda: json.dumps(state["record"].to_dict()), 50)
    load_ms = measure(lambda: GroupRecord.from_dict(json.loads(stored)), 50)

    # the same send to every device as pairwise fan-out: one ratchet encryption each
    session = new_pair()[0]
    pairwise = measure(lambda: session.encrypt(body, system_rng), 2000)

    # a member's device decrypting (its record holds the sender's distribution)
    member = GroupRecord("m001", "m001-d0", GROUP_ID, chain=record.chain)
    sending, chain = state["record"].sending, record.chain
    assert sending is not None and chain is not None
    distribution = distribution_body(sending, head_seq=chain.seq, head_hash=chain.head)
    member, _ = handle_group(
        member, GroupKeyReceived("m000", "m000-d1", dict(distribution), lists, 0)
    )
    messages = [send().message for _ in range(400)]
    holder = {"record": member, "i": 0}

    def receive() -> None:
        event = GroupMessageReceived(messages[holder["i"]], lists, 0)
        holder["i"] += 1
        holder["record"], _ = handle_group(holder["record"], event)

    decrypt = measure(receive, 300)

    message_bytes = len(first.message)
    pairwise_bytes = len(session.encrypt(body, system_rng))
    targets = len(first.targets)
    print(f"group of {MEMBERS} members x {DEVICES} devices: {targets} target devices")
    print(f"{'operation':58} {'median ms':>10} {'p95 ms':>9}")
    print(f"{'first send: new sender key, 499 distributions planned':58} {first_ms:10.2f} {'':>9}")
    print(
        f"{'send, no new device (targets, key check, encrypt, accepted)':58} {steady[0]:10.2f} {steady[1]:9.2f}"
    )
    print(
        f"{'  the record to JSON (what the adapter stores)':58} {store_ms[0]:10.2f} {store_ms[1]:9.2f}"
    )
    print(f"{'  the record from JSON':58} {load_ms[0]:10.2f} {load_ms[1]:9.2f}")
    print(f"{'a member decrypts one message':58} {decrypt[0]:10.3f} {decrypt[1]:9.3f}")
    print(
        f"{'pairwise instead: 499 ratchet encryptions (estimate)':58} "
        f"{pairwise[0] * targets:10.2f} {pairwise[1] * targets:9.2f}"
    )
    print(f"record JSON: {len(stored):,} bytes")
    print(
        f"stored per message: {message_bytes} B of ciphertext once (group message) and "
        f"{targets} queue rows without one; pairwise: {targets} x {pairwise_bytes} B = "
        f"{targets * pairwise_bytes:,} B"
    )


if __name__ == "__main__":
    main()
