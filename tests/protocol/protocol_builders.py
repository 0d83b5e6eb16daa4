"""Small builders for protocol tests: devices with keys, and established session pairs."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.inbound import accept_prekey_message
from protocol.keys import DeviceKeys, generate_device_keys, make_prekey_bundle
from protocol.primitives import hash32
from protocol.ratchet import Session
from protocol.rng import TestRng


def rng_for(name: str) -> TestRng:
    return TestRng(hash32("Parley v1 test seed", name.encode("utf-8")))


@dataclass
class Device:
    name: str
    rng: TestRng
    keys: DeviceKeys
    used_base_keys: set[bytes] = field(default_factory=set)


def make_device(name: str, *, one_time_prekey_ids: tuple[int, ...] = (1, 2, 3)) -> Device:
    rng = rng_for(name)
    keys = generate_device_keys(rng, signed_prekey_id=1, one_time_prekey_ids=one_time_prekey_ids)
    return Device(name=name, rng=rng, keys=keys)


def start_session(alice: Device, bob: Device, *, use_one_time_prekey: bool = True) -> Session:
    opk = bob.keys.one_time_prekeys[0] if use_one_time_prekey else None
    bundle = make_prekey_bundle(bob.name, bob.keys, opk)
    return Session.initiate(
        identity=alice.keys.identity,
        bundle=bundle,
        listed_identity_key=bob.keys.identity.public,
        rng=alice.rng,
    )


def accept(bob: Device, alice: Device, message: bytes) -> tuple[Session, bytes]:
    inbound = accept_prekey_message(
        message,
        identity=bob.keys.identity,
        signed_prekeys={bob.keys.signed_prekey.id: bob.keys.signed_prekey.key},
        one_time_prekeys={k.id: k.key for k in bob.keys.one_time_prekeys},
        sender_identity_key=alice.keys.identity.public,
        used_base_keys=bob.used_base_keys,
        rng=bob.rng,
    )
    bob.used_base_keys.add(inbound.base_key)
    return inbound.session, inbound.plaintext


def established_pair(name: str = "pair") -> tuple[Device, Session, Device, Session]:
    """Alice and Bob after one message each way (both past the prekey phase)."""
    alice, bob = make_device(f"{name} alice"), make_device(f"{name} bob")
    alice_session = start_session(alice, bob)
    bob_session, _ = accept(bob, alice, alice_session.encrypt(b"hello", alice.rng))
    alice_session.decrypt(bob_session.encrypt(b"hi", bob.rng), alice.rng)
    return alice, alice_session, bob, bob_session
