from __future__ import annotations

from dataclasses import replace

import pytest

from protocol.exceptions import (
    InvalidSignature,
    MalformedMessage,
    ReplayDetected,
    UnknownPrekey,
    UnknownSession,
    UntrustedIdentity,
)
from protocol.inbound import accept_prekey_message
from protocol.keys import (
    DeviceKeys,
    PrekeyBundle,
    make_prekey_bundle,
    signed_prekey_bytes,
    verify_prekey_bundle,
)
from protocol.ratchet import Session
from protocol.x3dh import initiate, respond
from tests.protocol.protocol_builders import accept, make_device, start_session


@pytest.mark.parametrize("use_one_time_prekey", [True, False])
def test_both_sides_derive_the_same_secret_and_associated_data(use_one_time_prekey):
    alice, bob = make_device("alice"), make_device("bob")
    opk = bob.keys.one_time_prekeys[0] if use_one_time_prekey else None
    ours = initiate(
        identity=alice.keys.identity, bundle=make_prekey_bundle("b", bob.keys, opk), rng=alice.rng
    )
    assert ours.base_key is not None
    theirs = respond(
        identity=bob.keys.identity,
        signed_prekey=bob.keys.signed_prekey.key,
        one_time_prekey=None if opk is None else opk.key,
        initiator_identity_key=alice.keys.identity.public,
        base_key=ours.base_key.public,
    )
    assert ours.shared_secret == theirs.shared_secret
    assert (
        ours.associated_data
        == theirs.associated_data
        == alice.keys.identity.public + bob.keys.identity.public
    )
    assert len(ours.dh_outputs) == (4 if use_one_time_prekey else 3)


def test_replayed_prekey_message_with_used_base_key_is_refused():
    alice, bob = make_device("alice"), make_device("bob")
    message = start_session(alice, bob).encrypt(b"once", alice.rng)
    accept(bob, alice, message)
    with pytest.raises(ReplayDetected):
        accept(bob, alice, message)


def test_replay_with_flipped_top_bit_of_base_key_is_refused():
    alice, bob = make_device("alice"), make_device("bob")
    message = start_session(alice, bob).encrypt(b"once", alice.rng)
    accept(bob, alice, message)
    twisted = bytearray(message)
    twisted[2 + 32 + 31] ^= 0x80  # top bit of EK_A: same X25519 value, different bytes
    with pytest.raises(MalformedMessage):
        accept(bob, alice, bytes(twisted))


def test_prekey_message_from_key_not_in_signed_list_is_refused():
    alice, bob, mallory = make_device("alice"), make_device("bob"), make_device("mallory")
    message = start_session(mallory, bob).encrypt(b"I am alice", mallory.rng)
    with pytest.raises(UntrustedIdentity):
        accept(bob, alice, message)


def test_substituted_bundle_identity_is_refused():
    alice, bob, mallory = make_device("alice"), make_device("bob"), make_device("mallory")
    bundle = make_prekey_bundle("bob", mallory.keys)
    with pytest.raises(UntrustedIdentity):
        Session.initiate(
            identity=alice.keys.identity,
            bundle=bundle,
            listed_identity_key=bob.keys.identity.public,
            rng=alice.rng,
        )


def test_substituted_signed_prekey_is_refused():
    bob, mallory = make_device("bob"), make_device("mallory")
    bundle = replace(
        make_prekey_bundle("bob", bob.keys), signed_prekey=mallory.keys.signed_prekey.key.public
    )
    with pytest.raises(InvalidSignature):
        verify_prekey_bundle(bundle, listed_identity_key=bob.keys.identity.public)


def test_unknown_one_time_prekey_is_refused_and_nothing_consumed():
    alice, bob = make_device("alice"), make_device("bob")
    message = start_session(alice, bob).encrypt(b"x", alice.rng)
    with pytest.raises(UnknownPrekey):
        accept_prekey_message(
            message,
            identity=bob.keys.identity,
            signed_prekeys={1: bob.keys.signed_prekey.key},
            one_time_prekeys={},
            sender_identity_key=alice.keys.identity.public,
            used_base_keys=set(),
            rng=bob.rng,
        )


def test_bundle_json_round_trip():
    bob = make_device("bob")
    bundle = make_prekey_bundle("bob", bob.keys, bob.keys.one_time_prekeys[1])
    assert type(bundle).from_dict(bundle.to_dict()) == bundle


def test_prekey_message_for_another_base_key_is_not_for_this_session():
    alice, bob = make_device("alice"), make_device("bob")
    session, _ = accept(bob, alice, start_session(alice, bob).encrypt(b"first", alice.rng))
    restart = start_session(alice, bob, use_one_time_prekey=False).encrypt(b"restart", alice.rng)
    with pytest.raises(UnknownSession):
        session.decrypt(restart, bob.rng)
    assert accept(bob, alice, restart)[1] == b"restart"


def test_ratchet_message_cannot_start_a_session():
    alice, bob = make_device("alice"), make_device("bob")
    a = start_session(alice, bob)
    b, _ = accept(bob, alice, a.encrypt(b"1", alice.rng))
    a.decrypt(b.encrypt(b"2", bob.rng), alice.rng)
    with pytest.raises(UnknownSession):
        accept(make_device("carol"), alice, a.encrypt(b"3", alice.rng))


def _spk(data, **changes):
    return {**data, "signed_prekey": {**data["signed_prekey"], **changes}}


def _otk(data, **changes):
    keys = [dict(k) for k in data["one_time_prekeys"]]
    keys[0].update(changes)
    return {**data, "one_time_prekeys": keys}


@pytest.mark.parametrize(
    "change",
    [
        lambda d: {**d, "version": True},
        lambda d: {**d, "version": "1"},
        lambda d: _spk(d, id="1"),
        lambda d: _spk(d, id=-1),
        lambda d: _spk(d, id=2**32),
        lambda d: _spk(d, id=1.0),
        lambda d: _otk(d, id=True),
        lambda d: _otk(d, id=None),
        lambda d: {**d, "one_time_prekeys": "abc"},
        lambda d: {**d, "signed_prekey": None},
        lambda d: [d],
        lambda d: None,
    ],
)
def test_device_keys_json_needs_exact_integers(change):
    keys = make_device("keys json").keys
    assert DeviceKeys.from_dict(keys.to_dict()) == keys
    with pytest.raises(MalformedMessage):
        DeviceKeys.from_dict(change(keys.to_dict()))


@pytest.mark.parametrize("prekey_id", [-1, 2**32, True, "7"], ids=repr)
def test_signed_prekey_ids_outside_u32_are_malformed(prekey_id):
    bob = make_device("bob")
    with pytest.raises(MalformedMessage):
        signed_prekey_bytes(prekey_id, bob.keys.signed_prekey.key.public)
    bundle = replace(make_prekey_bundle("bob", bob.keys), signed_prekey_id=prekey_id)
    with pytest.raises(MalformedMessage):
        verify_prekey_bundle(bundle, listed_identity_key=bob.keys.identity.public)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: {**d, "signed_prekey": {**d["signed_prekey"], "id": True}},
        lambda d: {**d, "one_time_prekey": {**d["one_time_prekey"], "id": 2**32}},
        lambda d: {**d, "device_id": None},
        lambda d: {**d, "one_time_prekey": "none"},
        lambda d: "bundle",
    ],
)
def test_bundle_json_with_bad_fields_is_malformed(change):
    bob = make_device("bob")
    data = make_prekey_bundle("bob", bob.keys, bob.keys.one_time_prekeys[0]).to_dict()
    with pytest.raises(MalformedMessage):
        PrekeyBundle.from_dict(change(data))
