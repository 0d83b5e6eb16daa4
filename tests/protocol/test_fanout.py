from __future__ import annotations

import pytest

from protocol.exceptions import DecryptionFailed, MalformedMessage, UnknownSession
from protocol.fanout import encrypt_for_devices
from tests.protocol.protocol_builders import accept, make_device, start_session


def test_fan_out_to_nine_devices_each_decryptable_only_by_its_device():
    sender = make_device("fanout sender")
    receivers = {f"dev-{i}": make_device(f"fanout receiver {i}") for i in range(9)}
    ours, theirs = {}, {}
    for device_id, device in receivers.items():
        ours[device_id] = start_session(sender, device)
        theirs[device_id], _ = accept(device, sender, ours[device_id].encrypt(b"setup", sender.rng))
        ours[device_id].decrypt(theirs[device_id].encrypt(b"ack", device.rng), sender.rng)

    ciphertexts = encrypt_for_devices(b"one message", ours, sender.rng)

    assert list(ciphertexts) == sorted(receivers)
    assert len(set(ciphertexts.values())) == 9
    for device_id, device in receivers.items():
        assert theirs[device_id].decrypt(ciphertexts[device_id], device.rng) == b"one message"
        for other_id, other in receivers.items():
            if other_id != device_id:
                with pytest.raises((DecryptionFailed, UnknownSession)):
                    theirs[other_id].decrypt(ciphertexts[device_id], other.rng)


@pytest.mark.parametrize("bad_id", ["dev-\ud800", "\udfff"], ids=repr)
def test_a_device_id_without_utf8_form_is_malformed_and_nothing_is_encrypted(bad_id):
    sender, receiver = make_device("fanout bad sender"), make_device("fanout bad receiver")
    session = start_session(sender, receiver)
    before = session.to_dict()
    with pytest.raises(MalformedMessage):
        encrypt_for_devices(b"x", {bad_id: session, "dev-ok": session}, sender.rng)
    assert session.to_dict() == before
