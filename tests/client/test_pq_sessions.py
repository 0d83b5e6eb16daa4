"""Version-2 sessions in the Python client (docs/protocol.md section 27): a device publishes
KEM prekeys when it connects (a device from before them too), messages between two accounts
go in version-2 sessions, a used one-time KEM prekey is deleted, and a pool the server drained
is refilled on `prekeys_low` (with the last-resort key in bundles meanwhile)."""

from __future__ import annotations

import asyncio

from client import api
from client.connection import PrekeysRefilled
from client.device import KEM_PREKEYS
from client.messenger import TextMessage
from tests.support.actors import person
from tests.support.devices import Device, companion_messenger, primary_messenger


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
