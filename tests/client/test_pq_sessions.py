"""Version-2 sessions in the Python client (docs/protocol.md section 27): a device publishes
KEM prekeys when it connects (a device from before them too), messages between two accounts
go in version-2 sessions, a used one-time KEM prekey is deleted, and a pool the server drained
is refilled on `prekeys_low` (with the last-resort key in bundles meanwhile); and no downgrade
(27.5): a bundle or a device list a server stripped of version 2 is refused, so is a version-1
start from a device that lists version 2, and a version-1 session is replaced once the device
lists version 2."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from typing import Any

import pytest

from client import api
from client.connection import PrekeysRefilled
from client.device import KEM_PREKEYS
from client.events import MessageWaiting
from client.messenger import TextMessage
from client.store import now_ms
from protocol import devicelist as dl
from protocol.content import ContentType
from protocol.encoding import b64u_encode
from protocol.exceptions import DowngradeRefused, InvalidSignature
from protocol.keys import PrekeyBundle
from protocol.ratchet import Session
from protocol.rng import system_rng
from tests.support.actors import ok, person
from tests.support.devices import Device, companion_messenger, primary_messenger, stamped_content
from tests.support.rewriting import RewritingTransport


async def test_devices_publish_kem_prekeys_and_talk_in_version_2_sessions(live_app, tmp_path):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect()
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    for device in (alice_phone, bob_phone):
        counts = api.get(device.messenger.transport, "/api/prekeys")
        store = device.messenger.store
        held = store.kem_prekeys(store.device().keys.identity)
        assert counts["kem_prekeys"] == KEM_PREKEYS
        assert (
            counts["last_resort_kem_prekey"] in held
            and held[counts["last_resort_kem_prekey"]].last_resort
        )
        assert len(held) == KEM_PREKEYS + 1
    await alice_phone.connection.send_text(bob.username, "after the quantum computer")
    [message] = await bob_phone.wait_for(TextMessage)
    assert message.text == "after the quantum computer"
    bob_store = bob_phone.messenger.store
    theirs = bob_store.session(alice_phone.device_id)
    assert theirs is not None and theirs.version == 2 and theirs.role == "responder"
    mine = alice_phone.messenger.store.session(bob_phone.device_id)
    assert mine is not None and mine.version == 2
    # the one-time KEM prekey the first message named is gone from Bob's store
    assert len(bob_store.kem_prekeys(bob_store.device().keys.identity)) == KEM_PREKEYS
    await bob_phone.connection.send_text(alice.username, "still private")
    [reply] = await alice_phone.wait_for(TextMessage)
    assert reply.text == "still private"
    await alice_phone.close()
    await bob_phone.close()


async def test_a_drained_kem_pool_falls_back_to_the_last_resort_key_and_is_refilled(
    live_app, tmp_path
):
    alice = person(live_app, "alice")
    phone = await Device(primary_messenger(alice, tmp_path)).connect()
    laptop = await asyncio.to_thread(companion_messenger, alice, tmp_path)
    store = phone.messenger.store
    last_resort = api.get(phone.messenger.transport, "/api/prekeys")["last_resort_kem_prekey"]
    # the account's own devices are not held to the fair share: the laptop drains the pool
    handed = []
    for _ in range(KEM_PREKEYS + 2):
        bundles = api.post(
            laptop.transport,
            f"/api/accounts/{alice.username}/bundles",
            {"device_ids": [phone.device_id]},
        )["bundles"]
        handed.append((bundles[0]["kem_prekey"]["id"], bundles[0]["kem_prekey"]["last_resort"]))
    assert [last for _, last in handed].count(False) <= KEM_PREKEYS
    assert handed[-1] == (last_resort, True)  # empty: the last-resort key
    # told prekeys_low (after each claim that left 5 or fewer), it refills back up
    for _ in range(100):
        counts = api.get(phone.messenger.transport, "/api/prekeys")
        if counts["kem_prekeys"] == KEM_PREKEYS:
            break
        await asyncio.sleep(0.05)
    assert counts["kem_prekeys"] == KEM_PREKEYS
    assert any(event.uploaded for event in phone.of(PrekeysRefilled))
    assert counts["last_resort_kem_prekey"] == last_resort
    fresh = api.post(
        laptop.transport,
        f"/api/accounts/{alice.username}/bundles",
        {"device_ids": [phone.device_id]},
    )["bundles"][0]["kem_prekey"]
    held = store.kem_prekeys(store.device().keys.identity)
    assert fresh["last_resort"] is False and fresh["id"] in held  # a new one, held privately
    await phone.close()


# ---------------------------------------------------------------- no downgrade (27.5)


def _strip_kem(body: dict[str, Any]) -> dict[str, Any]:
    for bundle in body["bundles"]:
        bundle["kem_prekey"] = None
    return body


def _strip_version_2(body: dict[str, Any]) -> dict[str, Any]:
    for entry in body["device_list"]["devices"]:
        entry.pop("protocols", None)
    return body


def test_a_bundle_stripped_of_its_kem_prekey_is_refused_and_nothing_is_sent(live_app, tmp_path):
    alice = primary_messenger(person(live_app, "alice"), tmp_path)
    bob = primary_messenger(person(live_app, "bob"), tmp_path)
    server = RewritingTransport(alice.transport)
    alice.transport = server
    rule = server.rewrite("POST", rf"/api/accounts/{bob.account_id}/bundles", _strip_kem)
    with pytest.raises(DowngradeRefused, match="no KEM prekey"):
        alice.prepare_send(bob.account_id, "hi")
    assert rule.hits == 1
    assert alice.store.session(bob.device.device_id) is None


def test_a_device_list_stripped_of_version_2_is_refused(live_app, tmp_path):
    alice = primary_messenger(person(live_app, "alice"), tmp_path)
    bob = primary_messenger(person(live_app, "bob"), tmp_path)
    server = RewritingTransport(alice.transport)
    alice.transport = server
    server.rewrite("GET", rf"/api/accounts/{bob.account_id}/device-list", _strip_version_2)
    with pytest.raises(InvalidSignature):  # the account signed the entry with its versions
        alice.prepare_send(bob.account_id, "hi")
    assert alice.store.device_list(bob.account_id) is None


def test_a_version_1_prekey_message_from_a_device_that_lists_version_2_is_refused(
    live_app, tmp_path
):
    alice = primary_messenger(person(live_app, "alice"), tmp_path)
    bob = primary_messenger(person(live_app, "bob"), tmp_path)
    alice.refresh_list(bob.account_id)
    bob.refresh_list(alice.account_id)
    # what a client that a server talked into version 1 would send: a session without KEM
    [raw] = api.post(alice.transport, f"/api/accounts/{bob.account_id}/bundles", {})["bundles"]
    stripped = PrekeyBundle.from_dict({**raw, "kem_prekey": None})
    session = Session.initiate(
        identity=alice.device.keys.identity,
        bundle=stripped,
        listed_identity_key=stripped.identity_key,
        rng=system_rng,
    )
    assert session.version == 1
    content = stamped_content(alice, ContentType.TEXT, {"text": "downgraded"})
    envelope = {
        "seq": 1,
        "id": secrets.token_urlsafe(8),
        "sender": alice.account_id,
        "sender_device": alice.device.device_id,
        "ciphertext": b64u_encode(session.encrypt(content, system_rng)),
        "sent_at": now_ms(),
    }
    events = bob.receive(envelope)
    assert not [e for e in events if isinstance(e, TextMessage)]
    [waiting] = [e for e in events if isinstance(e, MessageWaiting)]  # asked for again (24.2)
    assert waiting.envelope_id == envelope["id"]
    # nothing of it was accepted: the session Bob holds is the one his ask started
    held = bob.store.session(alice.device.device_id)
    assert held is not None and held.role == "initiator" and held.version == 2


def test_a_version_1_session_is_replaced_when_the_device_lists_version_2(live_app, tmp_path):
    """Bob's device was of a build before version 2; once its list says version 2 and it
    published KEM prekeys, Alice's next message starts a version-2 session, which Bob reads.
    A version-1 start still on the way is refused as a downgrade by Bob's new build, and
    asked for again: its resend goes in a version-2 session (24.1, 27.5)."""
    alice = primary_messenger(person(live_app, "alice"), tmp_path)
    bob_actor = person(live_app, "bob", version_2=False)
    bob = primary_messenger(bob_actor, tmp_path)
    before = alice.prepare_send(bob.account_id, "before")
    assert alice.store.session(bob.device.device_id).version == 1
    # Bob's build now speaks version 2: KEM prekeys published, its entry re-signed
    assert bob.refill_prekeys() > 0
    own = bob_actor.last_list.entry(bob.device.device_id)
    upgraded = bob_actor.signed_list(devices=[replace(own, protocols=dl.SPOKEN_PROTOCOLS)])
    ok(bob_actor.transport.post("/api/devices/list", {"device_list": upgraded.to_dict()}))
    alice.refresh_list(bob.account_id)
    after = alice.prepare_send(bob.account_id, "after")
    assert alice.store.session(bob.device.device_id).version == 2
    texts, waiting = [], []
    for outgoing in (before, after):
        entry = {
            "seq": 1,
            "id": outgoing.envelope_id,
            "sender": alice.account_id,
            "sender_device": alice.device.device_id,
            "ciphertext": b64u_encode(outgoing.targets[bob.device.device_id]),
            "sent_at": now_ms(),
        }
        events = bob.receive(entry)
        texts += [e.text for e in events if isinstance(e, TextMessage)]
        waiting += [e.envelope_id for e in events if isinstance(e, MessageWaiting)]
    assert texts == ["after"] and waiting == [before.envelope_id]
    assert bob.store.session(alice.device.device_id).version == 2
