from __future__ import annotations

import pytest

from protocol.exceptions import DecryptionFailed, InvalidSignature, MalformedMessage
from protocol.keys import X25519KeyPair
from protocol.linking import (
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
