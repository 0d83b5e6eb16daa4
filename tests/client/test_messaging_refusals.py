"""The misbehaving server against the messaging client (DESIGN §7): what a server could
substitute, inject, replay or relay is refused by the client, visibly. Key-directory
answers are rewritten in flight (tests.support.rewriting); envelopes are handed to the
client's receive function as a server would deliver them."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from client.events import MessageWaiting, UnsupportedMessage
from client.messenger import (
    LIST_MAX_AGE_MS,
    Duplicate,
    ListWarning,
    Messenger,
    Refused,
    SecurityCodeChanged,
    TextMessage,
    describe,
)
from client.store import now_ms
from protocol import devicelist as dl
from protocol.content import ContentType
from protocol.encoding import b64u_encode
from protocol.exceptions import (
    InvalidSignature,
    ReplayDetected,
    StaleDeviceList,
    UntrustedIdentity,
)
from protocol.keys import X25519KeyPair, generate_identity
from protocol.rng import system_rng
from tests.support.actors import ok, person
from tests.support.devices import companion_messenger, primary_messenger, stamped_content
from tests.support.rewriting import RewritingTransport


def delivered(sender: Messenger, targets: dict[str, bytes], device_id: str) -> dict[str, Any]:
    """The `deliver` entry a server would hand `device_id` for one of `sender`'s sends."""
    return {
        "seq": 1,
        "id": secrets.token_urlsafe(8),
        "sender": sender.account_id,
        "sender_device": sender.device.device_id,
        "ciphertext": b64u_encode(targets[device_id]),
        "sent_at": now_ms(),
    }


@pytest.fixture
def pair(live_app, tmp_path: Path) -> tuple[Messenger, Messenger]:
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    return primary_messenger(alice, tmp_path), primary_messenger(bob, tmp_path)


def rewritten(messenger: Messenger) -> RewritingTransport:
    server = RewritingTransport(messenger.transport)
    messenger.transport = server
    return server


def test_a_replayed_envelope_is_shown_once(pair):
    alice, bob = pair
    bob_id = bob.device.device_id
    first = alice.prepare_send(bob.account_id, "first")
    second = alice.prepare_send(bob.account_id, "second")
    shown = []
    for outgoing in (first, first, second, second, first):
        shown += bob.receive(delivered(alice, outgoing.targets, bob_id))
    assert [e.text for e in shown if isinstance(e, TextMessage)] == ["first", "second"]
    replays = [e for e in shown if isinstance(e, Refused)]
    assert len(replays) == 3 and all(isinstance(e.error, ReplayDetected) for e in replays)
    # a resend encrypted again (new ciphertext, same message id) is a silent duplicate
    again = alice.retry(first, {})
    [duplicate] = bob.receive(delivered(alice, again.targets, bob_id))
    assert isinstance(duplicate, Duplicate)


def test_a_replayed_prekey_message_is_refused_while_its_session_is_held_and_asked_for_once_gone(
    pair,
):
    """A replay never shows the message twice: refused by the session that holds its base key;
    once that session is gone (storage cleared) it may be a lost session, so it is asked for
    again (docs/protocol.md 10.1, 24), and the answer would be a duplicate."""
    alice, bob = pair
    bob_id, alice_id = bob.device.device_id, alice.device.device_id
    opening = delivered(alice, alice.prepare_send(bob.account_id, "hi").targets, bob_id)
    # alice is not in bob's contacts: no delivery receipt (the engine's rule, section 22.6)
    assert [type(e) for e in bob.receive(opening)] == [TextMessage]
    [refused] = bob.receive(opening)
    assert isinstance(refused, Refused) and isinstance(refused.error, ReplayDetected)
    bob.store.delete_session(alice_id)
    again = bob.receive(opening)
    assert not any(isinstance(e, TextMessage) for e in again)
    [waiting] = [e for e in again if isinstance(e, MessageWaiting)]
    assert (waiting.sender, waiting.envelope_id) == (alice.account_id, opening["id"])


def test_a_sent_transcript_relayed_from_a_contacts_device_is_refused_visibly(pair):
    alice, bob = pair
    alice_id = alice.device.device_id
    # a session both ways, as after any exchange
    bob.receive(
        delivered(alice, alice.prepare_send(bob.account_id, "hi").targets, bob.device.device_id)
    )
    inner = stamped_content(bob, ContentType.TEXT, {"text": "you said you would pay"})
    transcript = stamped_content(
        bob, ContentType.SENT_TRANSCRIPT, {"recipient": "carol", "content": b64u_encode(inner)}
    )
    forged = bob.store.session(alice_id).encrypt(transcript, system_rng)
    [refused] = alice.receive(delivered(bob, {alice_id: forged}, alice_id))
    assert isinstance(refused, Refused)
    line = describe(refused, me=alice.account_id)
    assert line.startswith(f"Refused a message from {bob.account_id}")
    assert "not one of your own devices" in line


def _substitute_identity(body: dict[str, Any]) -> dict[str, Any]:
    for bundle in body["bundles"]:
        bundle["identity_key"] = b64u_encode(generate_identity(system_rng).public)
    return body


def _substitute_signed_prekey(body: dict[str, Any]) -> dict[str, Any]:
    for bundle in body["bundles"]:
        bundle["signed_prekey"]["public_key"] = b64u_encode(
            X25519KeyPair.generate(system_rng).public
        )
    return body


@pytest.mark.parametrize(
    "substitute, error",
    [(_substitute_identity, UntrustedIdentity), (_substitute_signed_prekey, InvalidSignature)],
)
def test_a_substituted_prekey_bundle_is_refused_and_nothing_is_sent(pair, substitute, error):
    alice, bob = pair
    rule = rewritten(alice).rewrite("POST", rf"/api/accounts/{bob.account_id}/bundles", substitute)
    with pytest.raises(error):
        alice.prepare_send(bob.account_id, "hi")
    assert rule.hits == 1
    assert alice.store.session(bob.device.device_id) is None


def test_a_device_injected_into_a_contacts_list_is_refused(pair):
    alice, bob = pair
    alice.refresh_list(bob.account_id)
    intruder = generate_identity(system_rng)

    def inject(body: dict[str, Any]) -> dict[str, Any]:
        listed = dl.DeviceList.from_dict(body["device_list"])
        entry = dl.DeviceEntry(
            device_id="zz-intruder",
            identity_key=intruder.public,
            added_at=now_ms(),
            device_signature=dl.sign_device(
                intruder, account_id=listed.account_id, account_key=listed.account_key
            ),
        )
        body["device_list"]["devices"].append(
            dl.DeviceList(listed.account_id, listed.account_key, 1, 1, (entry,)).to_dict()[
                "devices"
            ][0]
        )
        body["device_list"]["version"] += 1
        return body

    rewritten(alice).rewrite("GET", rf"/api/accounts/{bob.account_id}/device-list", inject)
    alice.clock = lambda: now_ms() + LIST_MAX_AGE_MS + 1  # the cached list is due a refetch
    with pytest.raises(InvalidSignature):
        alice.prepare_send(bob.account_id, "hi")
    assert alice.store.known_devices(bob.account_id).keys() == {bob.device.device_id}


def test_a_stale_but_validly_signed_list_is_refused(live_app, tmp_path):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    alice_messenger = primary_messenger(alice, tmp_path)
    version_one = ok(bob.transport.get(f"/api/accounts/{bob.username}/device-list"))
    companion_messenger(bob, tmp_path)  # bob's list is now version 2
    assert alice_messenger.refresh_list(bob.username).version == 2
    rewritten(alice_messenger).rewrite(
        "GET", rf"/api/accounts/{bob.username}/device-list", lambda body: version_one
    )
    with pytest.raises(StaleDeviceList):
        alice_messenger.refresh_list(bob.username)
    assert alice_messenger.store.device_list(bob.username).version == 2


def test_a_contacts_new_account_key_is_a_security_code_change_and_nothing_is_sent(pair):
    alice, bob = pair
    alice.prepare_send(bob.account_id, "hi")  # bob's account key is pinned now
    impostor = generate_identity(system_rng)

    def resign(body: dict[str, Any]) -> dict[str, Any]:
        listed = dl.DeviceList.from_dict(body["device_list"])
        forged = dl.sign_device_list(
            impostor,
            account_id=listed.account_id,
            version=listed.version + 1,
            timestamp=now_ms(),
            devices=[dl.DeviceEntry("impostor-phone", impostor.public, now_ms())],
        )
        return {"device_list": forged.to_dict(), "suspended": []}

    rewritten(alice).rewrite("GET", rf"/api/accounts/{bob.account_id}/device-list", resign)
    alice.clock = lambda: now_ms() + LIST_MAX_AGE_MS + 1
    with pytest.raises(SecurityCodeChanged, match="security code changed"):
        alice.prepare_send(bob.account_id, "are you there?")


def test_an_envelope_from_a_device_outside_the_signed_list_is_dropped_and_reported(pair):
    alice, bob = pair
    outgoing = alice.prepare_send(bob.account_id, "hi")
    envelope = delivered(alice, outgoing.targets, bob.device.device_id)
    envelope["sender_device"] = "not-a-listed-device"
    [refused] = bob.receive(envelope)
    assert isinstance(refused, Refused)
    assert "not in" in refused.reason and "signed device list" in refused.reason


def test_a_withheld_newer_device_list_is_flagged(live_app, tmp_path):
    """A content names its sender's list version 2 while the server keeps serving version 1."""
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    alice_messenger = primary_messenger(alice, tmp_path)
    bob_messenger = primary_messenger(bob, tmp_path)
    version_one = ok(bob.transport.get(f"/api/accounts/{bob.username}/device-list"))
    assert alice_messenger.refresh_list(bob.username).version == 1
    companion_messenger(bob, tmp_path)  # bob's list is now version 2
    assert bob_messenger.refresh_list(bob.username).version == 2
    server = rewritten(alice_messenger)
    rule = server.rewrite(
        "GET", rf"/api/accounts/{bob.username}/device-list", lambda body: version_one
    )
    outgoing = bob_messenger.prepare_send(alice.username, "signed under list 2")
    events = alice_messenger.receive(
        delivered(bob_messenger, outgoing.targets, alice_messenger.device.device_id)
    )
    [warning] = [e for e in events if isinstance(e, ListWarning)]
    assert warning.account_id == bob.username
    assert "list version 2" in warning.message and "serves version 1" in warning.message
    assert describe(warning, me=alice.username).startswith(f"Warning about {bob.username}")
    assert rule.hits >= 1
    assert alice_messenger.store.device_list(bob.username).version == 1


def test_a_content_of_a_newer_type_is_kept_as_an_unsupported_message(pair):
    """A contact on a newer Parley sends a type this version does not know: it is shown,
    not dropped and not refused (DESIGN section 8)."""
    alice, bob = pair
    bob_id = bob.device.device_id
    bob.receive(delivered(alice, alice.prepare_send(bob.account_id, "hi").targets, bob_id))
    alice.receive(
        delivered(bob, bob.prepare_send(alice.account_id, "hello").targets, alice.device.device_id)
    )
    # the same layout as a typing indicator, with a type from the future
    newer = stamped_content(alice, ContentType.TYPING, {"state": "started"}, type_byte=42)
    session = alice.store.session(bob_id)
    [event] = bob.receive(delivered(alice, {bob_id: session.encrypt(newer, system_rng)}, bob_id))
    assert isinstance(event, UnsupportedMessage)
    assert (event.sender, event.content_type) == (alice.account_id, 42)
    line = describe(event, me=bob.account_id)
    assert f"{alice.account_id} sent a message this version of Parley cannot show" in line
