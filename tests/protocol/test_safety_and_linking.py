from __future__ import annotations

import pytest

from protocol.exceptions import DecryptionFailed, InvalidKey, InvalidSignature, MalformedMessage
from protocol.keys import X25519KeyPair
from protocol.linking import (
    link_challenge,
    link_check_code,
    make_provisioning,
    open_provisioning,
    seal_provisioning,
    sign_in,
    sign_link_token,
    verify_link_token,
    verify_sign_in,
)
from protocol.safety import format_safety_number, safety_number, safety_qr_payload
from tests.protocol.protocol_builders import make_device

alice = make_device("safety alice").keys.identity
bob = make_device("safety bob").keys.identity
mallory = make_device("safety mallory").keys.identity


def test_safety_number_is_symmetric_60_digits_and_changes_with_a_key():
    number = safety_number("a", alice.public, "b", bob.public)
    assert number == safety_number("b", bob.public, "a", alice.public)
    assert len(number) == 60 and number.isdigit()
    assert number != safety_number("a", alice.public, "b", mallory.public)
    assert len(format_safety_number(number).split(" ")) == 12
    assert safety_qr_payload(number) == "PARLEY-SN1:" + number


def test_provisioning_opens_only_for_its_companion_key_and_link_id():
    rng = make_device("linking").rng
    ephemeral = X25519KeyPair.generate(rng)
    provisioning = make_provisioning(
        alice, account_id="acct-a", companion_identity_key=bob.public, link_id="L1"
    )
    sealed = seal_provisioning(provisioning, ephemeral.public)
    assert (
        open_provisioning(sealed, ephemeral=ephemeral, own_identity_key=bob.public, link_id="L1")
        == provisioning
    )
    with pytest.raises(InvalidSignature):
        open_provisioning(
            sealed, ephemeral=ephemeral, own_identity_key=mallory.public, link_id="L1"
        )
    with pytest.raises(MalformedMessage):
        open_provisioning(sealed, ephemeral=ephemeral, own_identity_key=bob.public, link_id="L2")
    with pytest.raises(DecryptionFailed):
        open_provisioning(
            sealed, ephemeral=X25519KeyPair.generate(rng), own_identity_key=bob.public, link_id="L1"
        )


def test_link_token_and_sign_in_signatures_bind_their_fields():
    nonce = bytes(range(32))
    token = sign_link_token(bob, nonce=nonce, link_id="L1")
    verify_link_token(token, identity_key=bob.public, nonce=nonce, link_id="L1")
    with pytest.raises(InvalidSignature):
        verify_link_token(token, identity_key=bob.public, nonce=nonce, link_id="L2")
    sig = sign_in(bob, origin="https://p.example", device_id="d1", nonce=nonce)
    verify_sign_in(
        sig, identity_key=bob.public, origin="https://p.example", device_id="d1", nonce=nonce
    )
    with pytest.raises(InvalidSignature):
        verify_sign_in(
            sig, identity_key=bob.public, origin="https://evil.example", device_id="d1", nonce=nonce
        )


def _sealed_for_bob():
    rng = make_device("linking sealed").rng
    ephemeral = X25519KeyPair.generate(rng)
    provisioning = make_provisioning(
        alice, account_id="acct-a", companion_identity_key=bob.public, link_id="L1"
    )
    return seal_provisioning(provisioning, ephemeral.public), ephemeral, rng


@pytest.mark.parametrize(
    "tamper",
    [
        lambda sealed, eph, rng: (sealed, X25519KeyPair.generate(rng)),  # another key
        lambda sealed, eph, rng: (sealed[:-1], eph),  # truncated
        lambda sealed, eph, rng: (sealed[:47], eph),  # shorter than a sealed box
        lambda sealed, eph, rng: (b"", eph),
        lambda sealed, eph, rng: (sealed + b"\x00", eph),
        lambda sealed, eph, rng: (bytes([sealed[0] ^ 1]) + sealed[1:], eph),  # its public key
        lambda sealed, eph, rng: (sealed[:60] + bytes([sealed[60] ^ 1]) + sealed[61:], eph),
        lambda sealed, eph, rng: (sealed[:-1] + bytes([sealed[-1] ^ 0x80]), eph),  # the tag
    ],
)
def test_a_provisioning_box_that_cannot_be_opened_is_decryption_failed(tamper):
    sealed, ephemeral, rng = _sealed_for_bob()
    data, key = tamper(sealed, ephemeral, rng)
    with pytest.raises(DecryptionFailed):
        open_provisioning(data, ephemeral=key, own_identity_key=bob.public, link_id="L1")


@pytest.mark.parametrize(
    "companion_key, ephemeral_key",
    [(bytes(31), bytes(32)), (bytes(32), bytes(33)), ("k" * 32, bytes(32)), (bytes(32), None)],
    ids=repr,
)
def test_link_check_code_and_challenge_refuse_keys_of_the_wrong_size(companion_key, ephemeral_key):
    with pytest.raises(InvalidKey):
        link_check_code(
            link_id="L1", companion_identity_key=companion_key, ephemeral_key=ephemeral_key
        )
    with pytest.raises(InvalidKey):
        link_challenge(
            server_nonce=bytes(32),
            link_id="L1",
            companion_identity_key=companion_key,
            ephemeral_key=ephemeral_key,
        )


@pytest.mark.parametrize("link_id", ["L\ud800", None, "x" * 65536], ids=repr)
def test_link_check_code_refuses_a_link_id_without_utf8_form(link_id):
    with pytest.raises(MalformedMessage):
        link_check_code(link_id=link_id, companion_identity_key=bob.public, ephemeral_key=bytes(32))
