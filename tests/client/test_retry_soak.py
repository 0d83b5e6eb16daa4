"""Soak (docs/protocol.md section 24): 1,000 messages between two accounts of three devices
each, a random 5 % of the envelopes the server delivers corrupted on the way (one byte of the
AEAD tag flipped, tests.support.rewriting.corrupt_deliveries), and every message ends
decrypted on every target device: the recipient's three, and the sender's two others as sent
transcripts. Prints the counts. The devices' clock runs ten times fast, so an ask that is
itself lost is asked again after one second instead of ten (the engine's schedule, 24.2).

A retry request or an answer without content that is itself corrupted cannot be had again
(a resend never carries a retry request, 24.1, and an answer without content is not cached):
its envelope ends as a "could not be decrypted" line on the device that asked, with no
message behind it. The soak counts those lines; the messages all arrive."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.events import MessageUndecryptable, SentTranscript, TextMessage
from client.messenger import Messenger
from client.store import now_ms
from tests.support.actors import person
from tests.support.devices import Device, companion_messenger, primary_messenger
from tests.support.rewriting import corrupt_deliveries

MESSAGES = int(os.environ.get("SOAK_MESSAGES", 1000))  # fewer for a quick look
CORRUPTED = 0.05
WINDOW = 25  # sends in flight at once
SPEED = 10  # the devices' clock against the wall's
QUIET_SECONDS = 60  # the longest wait for the next send accepted or message decrypted


def account(live_app, name: str, directory: Path) -> list[Messenger]:
    primary = person(live_app, name)
    companions = [companion_messenger(primary, directory, name=f"Laptop {n}") for n in (1, 2)]
    return [primary_messenger(primary, directory), *companions]


@pytest.fixture
def stores() -> Iterator[Path]:
    """The six stores in memory-backed files where the machine has them (/dev/shm): the
    soak measures the protocol, not the disk's fsync."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as directory:
        yield Path(directory)


async def test_a_thousand_messages_with_five_percent_corrupted_all_end_decrypted(live_app, stores):
    alice, bob = account(live_app, "alice", stores), account(live_app, "bob", stores)
    started = now_ms()
    for messenger in alice + bob:
        messenger.clock = lambda: started + (now_ms() - started) * SPEED
    rng = random.Random(12)
    corrupted: list[str] = []
    devices = [
        await Device(m).connect(
            rewrite=corrupt_deliveries(CORRUPTED, rng, log=corrupted), retry_every=0.2
        )
        for m in alice + bob
    ]
    try:
        await soak(devices, alice, bob, corrupted)
    finally:  # a failure leaves no socket task running into the loop's teardown
        for device in devices:
            await device.close()


async def soak(
    devices: list[Device], alice: list[Messenger], bob: list[Messenger], corrupted: list[str]
) -> None:
    expected: dict[str, set[bytes]] = {d.device_id: set() for d in devices}
    clock = time.monotonic()

    in_flight = []
    for n in range(MESSAGES):
        sender = devices[n % len(devices)]
        me = sender.messenger.account_id
        peer = bob[0].account_id if me == alice[0].account_id else alice[0].account_id
        outgoing = sender.messenger.prepare_send(peer, f"message {n}")
        in_flight.append(await sender.connection.submit(outgoing))
        for target in devices:
            if target is not sender and target.messenger.account_id in (me, peer):
                expected[target.device_id].add(outgoing.message_id)
        if len(in_flight) >= WINDOW:
            await asyncio.wait_for(asyncio.gather(*in_flight), QUIET_SECONDS)
            in_flight = []
    await asyncio.wait_for(asyncio.gather(*in_flight), QUIET_SECONDS)

    def missing() -> int:
        return sum(
            len(
                expected[d.device_id]
                - {e.message_id for e in d.of(TextMessage) + d.of(SentTranscript)}
            )
            for d in devices
        )

    # until everything is decrypted, or nothing more is for QUIET_SECONDS (a loaded machine
    # is slow, not wrong: a fixed deadline failed under the whole suite's load)
    left, quiet_since = missing(), time.monotonic()
    while left and time.monotonic() - quiet_since < QUIET_SECONDS:
        for device in devices:
            device.arrived.clear()
        waiting = [asyncio.create_task(d.arrived.wait()) for d in devices]
        await asyncio.wait(waiting, timeout=1, return_when=asyncio.FIRST_COMPLETED)
        for task in waiting:
            task.cancel()
        if missing() < left:
            left, quiet_since = missing(), time.monotonic()
    elapsed = time.monotonic() - clock
    delivered = sum(len(d.connection.delivered) for d in devices)
    asks = sum(
        1
        for d in devices
        for f in d.connection.sent
        if f.get("type") == "send" and f.get("partial")
    )
    targets = sum(len(ids) for ids in expected.values())
    lines = sum(len(d.of(MessageUndecryptable)) for d in devices)
    print(
        f"\nsoak: {MESSAGES} messages to {targets} target devices, {delivered} envelopes "
        f"delivered, {len(corrupted)} corrupted, {asks} retry requests and resends; "
        f"{targets - missing()} of {targets} decrypted in {elapsed:.0f} s; "
        f"{lines} 'could not be decrypted' lines (for asks and answers lost themselves)"
    )
    assert missing() == 0
