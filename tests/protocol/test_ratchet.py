from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import b64u_encode, enc_str
from protocol.exceptions import (
    DecryptionFailed,
    MalformedMessage,
    ProtocolError,
    ReplayDetected,
    TooManySkippedMessages,
    UnknownSession,
)
from protocol.message import Header, RatchetMessage
from protocol.primitives import aead_encrypt, blake2b
from protocol.ratchet import Session
from protocol.ratchetkeys import MAX_SKIP, MAX_SKIPPED_TOTAL, kdf_ck
from tests.protocol.protocol_builders import accept, established_pair, make_device, start_session


def test_conversation_both_ways_after_prekey_phase():
    alice, a, bob, b = established_pair()
    for i in range(3):
        assert b.decrypt(a.encrypt(f"a{i}".encode(), alice.rng), bob.rng) == f"a{i}".encode()
        assert a.decrypt(b.encrypt(f"b{i}".encode(), bob.rng), alice.rng) == f"b{i}".encode()


def test_initiator_sends_prekey_messages_until_it_hears_back():
    alice, bob = make_device("alice"), make_device("bob")
    a = start_session(alice, bob)
    first, second = a.encrypt(b"1", alice.rng), a.encrypt(b"2", alice.rng)
    assert first[1] == second[1] == 1
    b, plaintext = accept(bob, alice, second)
    assert plaintext == b"2"
    assert b.decrypt(first, bob.rng) == b"1"
    a.decrypt(b.encrypt(b"reply", bob.rng), alice.rng)
    assert a.encrypt(b"3", alice.rng)[1] == 2


def test_responder_cannot_send_before_receiving():
    bob = make_device("bob")
    alice = make_device("alice")
    b, _ = accept(bob, alice, start_session(alice, bob).encrypt(b"x", alice.rng))
    fresh = Session.from_dict({**b.to_dict(), "send_chain_key": None})
    with pytest.raises(UnknownSession):
        fresh.encrypt(b"x", bob.rng)


def test_forward_secrecy_used_message_key_is_gone_from_later_state():
    alice, a, bob, b = established_pair()
    message = a.encrypt(b"secret", alice.rng)
    chain_key_before = b.recv_chain_key
    used_key, _ = kdf_ck(chain_key_before)
    assert b.decrypt(message, bob.rng) == b"secret"
    state = b.to_dict()
    serialized = repr(state)
    assert b64u_encode(used_key) not in serialized
    assert b64u_encode(chain_key_before) not in serialized
    restored = Session.from_dict(state)
    with pytest.raises(ReplayDetected):
        restored.decrypt(message, bob.rng)


def test_forward_secrecy_skipped_key_is_deleted_after_use():
    alice, a, bob, b = established_pair()
    late = a.encrypt(b"late", alice.rng)
    b.decrypt(a.encrypt(b"early", alice.rng), bob.rng)
    assert len(b.skipped) == 1
    assert b.decrypt(late, bob.rng) == b"late"
    assert len(b.skipped) == 0
    with pytest.raises(ReplayDetected):
        Session.from_dict(b.to_dict()).decrypt(late, bob.rng)


def test_post_compromise_stolen_state_cannot_decrypt_after_both_ratchet():
    alice, a, bob, b = established_pair()
    stolen = Session.from_dict(b.to_dict())
    # Alice ratchets when she hears from Bob; Bob ratchets when he hears back.
    a.decrypt(b.encrypt(b"ping", bob.rng), alice.rng)
    b.decrypt(a.encrypt(b"pong", alice.rng), bob.rng)
    a.decrypt(b.encrypt(b"ping2", bob.rng), alice.rng)
    after = a.encrypt(b"after recovery", alice.rng)
    assert b.decrypt(copy.copy(after), bob.rng) == b"after recovery"
    with pytest.raises(DecryptionFailed):
        stolen.decrypt(after, make_device("attacker").rng)


def test_out_of_order_within_one_chain_and_across_ratchet_steps():
    alice, a, bob, b = established_pair()
    first_chain = [a.encrypt(f"x{i}".encode(), alice.rng) for i in range(5)]
    b.decrypt(first_chain[4], bob.rng)
    a.decrypt(b.encrypt(b"turn", bob.rng), alice.rng)
    second_chain = [a.encrypt(f"y{i}".encode(), alice.rng) for i in range(3)]
    order = [(second_chain, 2), (first_chain, 1), (second_chain, 0), (first_chain, 3)]
    order += [(first_chain, 0), (second_chain, 1), (first_chain, 2)]
    for chain, i in order:
        expected = ("x" if chain is first_chain else "y") + str(i)
        assert b.decrypt(chain[i], bob.rng) == expected.encode()
    assert len(b.skipped) == 0


def test_skipping_exactly_max_skip_is_accepted():
    alice, a, bob, b = established_pair()
    for _ in range(MAX_SKIP):
        a.encrypt(b"lost", alice.rng)
    assert b.decrypt(a.encrypt(b"arrives", alice.rng), bob.rng) == b"arrives"
    assert len(b.skipped) == MAX_SKIP


def test_message_beyond_skip_bound_is_refused_and_state_unchanged():
    alice, a, bob, b = established_pair()
    for _ in range(MAX_SKIP + 1):
        a.encrypt(b"lost", alice.rng)
    before = b.to_dict()
    with pytest.raises(TooManySkippedMessages):
        b.decrypt(a.encrypt(b"too far", alice.rng), bob.rng)
    assert b.to_dict() == before


def test_skip_bound_applies_to_previous_chain_length_too():
    alice, a, bob, b = established_pair()
    for _ in range(MAX_SKIP + 1):
        a.encrypt(b"lost", alice.rng)
    # Alice ratchets (pn = MAX_SKIP + 1 + ...) before Bob saw any of her chain.
    a.decrypt(b.encrypt(b"turn", bob.rng), alice.rng)
    with pytest.raises(TooManySkippedMessages):
        b.decrypt(a.encrypt(b"new chain", alice.rng), bob.rng)


def test_stored_skipped_keys_are_capped_oldest_dropped():
    alice, a, bob, b = established_pair()
    oldest = None
    for step in range(3):
        batch = [a.encrypt(b"m", alice.rng) for _ in range(MAX_SKIP)]
        oldest = oldest or batch[0]
        b.decrypt(a.encrypt(b"last", alice.rng), bob.rng)
        a.decrypt(b.encrypt(f"turn {step}".encode(), bob.rng), alice.rng)
    assert len(b.skipped) == MAX_SKIPPED_TOTAL
    with pytest.raises(ReplayDetected):
        b.decrypt(oldest, bob.rng)


def test_replayed_ratchet_message_is_refused():
    alice, a, bob, b = established_pair()
    message = a.encrypt(b"once", alice.rng)
    assert b.decrypt(message, bob.rng) == b"once"
    with pytest.raises(ReplayDetected):
        b.decrypt(message, bob.rng)


def test_replay_from_an_earlier_chain_is_refused():
    alice, a, bob, b = established_pair()
    old = a.encrypt(b"old chain", alice.rng)
    b.decrypt(old, bob.rng)
    a.decrypt(b.encrypt(b"turn", bob.rng), alice.rng)
    b.decrypt(a.encrypt(b"new chain", alice.rng), bob.rng)
    with pytest.raises(ReplayDetected):
        b.decrypt(old, bob.rng)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_every_flipped_bit_of_a_ratchet_message_is_refused_without_state_change():
    alice, a, bob, b = established_pair()
    message = a.encrypt(b"short", alice.rng)
    before = b.to_dict()
    for bit in range(len(message) * 8):
        with pytest.raises(ProtocolError):
            b.decrypt(_flip(message, bit), bob.rng)
        assert b.to_dict() == before, f"state changed after flipping bit {bit}"
    assert b.decrypt(message, bob.rng) == b"short"


def test_every_flipped_bit_of_a_prekey_message_is_refused():
    alice, bob = make_device("alice"), make_device("bob")
    message = start_session(alice, bob).encrypt(b"first", alice.rng)
    for bit in range(len(message) * 8):
        with pytest.raises(ProtocolError):
            accept(bob, alice, _flip(message, bit))
    assert bob.used_base_keys == set()
    assert accept(bob, alice, message)[1] == b"first"


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_truncations_and_extensions_are_refused(data):
    alice, a, bob, b = established_pair("hypothesis")
    message = a.encrypt(b"payload", alice.rng)
    cut = data.draw(st.integers(min_value=0, max_value=len(message) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=8))
    for mutated in (message[:cut], message + extra):
        with pytest.raises(ProtocolError):
            b.decrypt(mutated, bob.rng)


def test_unknown_version_is_malformed():
    alice, a, bob, b = established_pair()
    message = a.encrypt(b"x", alice.rng)
    with pytest.raises(MalformedMessage):
        b.decrypt(b"\x02" + message[1:], bob.rng)


def test_session_restored_from_serialization_continues_both_ways():
    alice, a, bob, b = established_pair()
    pending = a.encrypt(b"in flight", alice.rng)
    skipped_source = a.encrypt(b"skipped", alice.rng)
    b.decrypt(a.encrypt(b"ahead", alice.rng), bob.rng)
    a2, b2 = Session.from_dict(a.to_dict()), Session.from_dict(b.to_dict())
    assert a2.to_dict() == a.to_dict() and b2.to_dict() == b.to_dict()
    assert b2.decrypt(skipped_source, bob.rng) == b"skipped"
    assert b2.decrypt(pending, bob.rng) == b"in flight"
    assert a2.decrypt(b2.encrypt(b"from restored bob", bob.rng), alice.rng) == b"from restored bob"
    assert (
        b2.decrypt(a2.encrypt(b"from restored alice", alice.rng), bob.rng) == b"from restored alice"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"role": "observer"},
        {"root_key": "short"},
        {"dh_self_public": b64u_encode(bytes(32))},
    ],
)
def test_corrupt_serialized_session_is_refused(change):
    _, a, _, _ = established_pair()
    with pytest.raises(MalformedMessage):
        Session.from_dict({**a.to_dict(), **change})


def _with_skipped(data, **changes):
    skipped = [{"dh": data["dh_self_public"], "n": 0, "key": data["root_key"], **changes}]
    return {**data, "skipped": skipped}


def _with_pending(data, **changes):
    pending = {
        "ephemeral_key": data["base_key"],
        "signed_prekey_id": 1,
        "one_time_prekey_id": None,
        **changes,
    }
    return {**data, "pending_prekey": pending}


@pytest.mark.parametrize(
    "change",
    [
        lambda d: {**d, "send_n": "3"},
        lambda d: {**d, "recv_n": True},
        lambda d: {**d, "prev_n": 3.7},
        lambda d: {**d, "prev_n": 3.0},
        lambda d: {**d, "send_n": -1},
        lambda d: {**d, "send_n": 2**53},
        lambda d: {**d, "recv_n": None},
        lambda d: {**d, "version": True},
        lambda d: {**d, "version": 1.0},
        lambda d: {**d, "skipped": ""},
        lambda d: {**d, "skipped": {}},
        lambda d: {**d, "previous_dh_remote": ""},
        lambda d: _with_skipped(d, n="0"),
        lambda d: _with_skipped(d, n=False),
        lambda d: _with_skipped(d, n=-1),
        lambda d: _with_pending(d, signed_prekey_id="1"),
        lambda d: _with_pending(d, signed_prekey_id=2**32),
        lambda d: _with_pending(d, one_time_prekey_id=1.5),
        lambda d: _with_pending(d, one_time_prekey_id=True),
        lambda d: {**d, "pending_prekey": "none"},
        lambda d: {**d, "pending_prekey": []},
        lambda d: [d],
        lambda d: None,
    ],
)
def test_serialized_session_needs_exact_json_integers(change):
    _, a, _, _ = established_pair()
    with pytest.raises(MalformedMessage):
        Session.from_dict(change(a.to_dict()))


def test_serialized_session_with_valid_integers_and_pending_prekey_round_trips():
    _, a, _, _ = established_pair()
    data = _with_pending(_with_skipped(a.to_dict(), n=2**53 - 1), one_time_prekey_id=2**32 - 1)
    assert Session.from_dict(data).to_dict() == data


@pytest.mark.parametrize("field", ["send_n", "prev_n"])
def test_counter_beyond_u32_refuses_to_encrypt_and_leaves_the_session_unchanged(field):
    alice, a, _, _ = established_pair()
    session = Session.from_dict({**a.to_dict(), field: 2**32})
    before = session.to_dict()
    with pytest.raises(MalformedMessage):
        session.encrypt(b"x", alice.rng)
    assert session.to_dict() == before


def _forged_for_initiator(n: int, pn: int, key: bytes | None):
    """A ratchet message to Alice before any reply, claiming Bob's signed prekey as its
    ratchet key: everything in it is public (keys from the bundle and the identity keys)."""
    alice, bob = make_device("forge alice"), make_device("forge bob")
    session = start_session(alice, bob)
    header = Header(dh=bob.keys.signed_prekey.key.public, pn=pn, n=n)
    if key is None:  # the key an unkeyed chain would give: anyone can compute it
        key = blake2b(enc_str("Parley v1 chain") + b"\x01", size=32)
    ad = alice.keys.identity.public + bob.keys.identity.public + header.encode()
    nonce = bytes(24)
    ciphertext = aead_encrypt(key, nonce, b"forged by mallory", ad)
    return alice, session, RatchetMessage(header=header, nonce=nonce, ciphertext=ciphertext)


@pytest.mark.parametrize(
    "n, pn, key",
    [(0, 0, None), (3, 0, None), (0, 7, None), (0, 0, bytes(32)), (2, 1, b"\xff" * 32)],
)
def test_message_on_the_initiators_unused_chain_is_refused_not_forged(n, pn, key):
    alice, session, message = _forged_for_initiator(n, pn, key)
    before = session.to_dict()
    with pytest.raises(DecryptionFailed):
        session.decrypt(message.encode(), alice.rng)
    assert session.to_dict() == before and session.pending_prekey is not None


def test_receiving_chain_without_remote_ratchet_key_is_a_malformed_session():
    _, a, _, _ = established_pair()
    with pytest.raises(MalformedMessage):
        Session.from_dict({**a.to_dict(), "dh_remote": None})
