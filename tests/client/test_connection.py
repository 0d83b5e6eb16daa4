"""The client's device socket: it signs back in with the identity key when the server no
longer knows its session, and reconnects (with `fetch`) after the connection drops, showing
each message once."""

from __future__ import annotations

import asyncio

from client.connection import Connected
from client.events import DevicesChanged
from client.messenger import Refused, TextMessage
from tests.support.actors import person
from tests.support.devices import Device, companion_messenger, primary_messenger


async def test_a_device_whose_session_expired_signs_in_with_its_key_and_connects(
    live_app, tmp_path
):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    bob_phone = Device(primary_messenger(bob, tmp_path))
    bob_phone.messenger.transport.cookies.clear()  # as if the Django session had expired
    await bob_phone.connect()
    assert bob_phone.messenger.transport.cookie("sessionid")  # a new session, by signature
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect()
    await alice_phone.connection.send_text(bob.username, "still there?")
    [message] = await bob_phone.wait_for(TextMessage)
    assert message.text == "still there?"
    await alice_phone.close()
    await bob_phone.close()


async def test_a_dropped_socket_reconnects_and_shows_each_message_once(live_app, tmp_path):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect()
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect(backoff_start=0.05)
    await alice_phone.connection.send_text(bob.username, "one")
    await bob_phone.wait_for(TextMessage)
    bob_phone.connection.socket.transport.abort()  # the network drops, no closing handshake
    await bob_phone.wait_for(Connected, 2)
    assert bob_phone.of(Connected)[1].reconnect
    await alice_phone.connection.send_text(bob.username, "two")
    await bob_phone.wait_for(TextMessage, 2)
    await alice_phone.connection.send_text(bob.username, "three")
    await bob_phone.wait_for(TextMessage, 3)
    assert [m.text for m in bob_phone.of(TextMessage)] == ["one", "two", "three"]
    assert bob_phone.of(Refused) == []  # nothing redelivered was decrypted twice
    await alice_phone.close()
    await bob_phone.close()


async def test_a_listening_device_verifies_its_own_new_list_when_a_device_is_linked(
    live_app, tmp_path
):
    """The server's `devices_changed` goes through the device engine (section 22.4): the
    newer own list is fetched, verified and stored, and the person is told."""
    alice = person(live_app, "alice")
    phone = await Device(primary_messenger(alice, tmp_path)).connect()
    before = phone.messenger.store.device_list(alice.username)
    assert before is not None
    laptop = await asyncio.to_thread(companion_messenger, alice, tmp_path)
    [changed] = await phone.wait_for(DevicesChanged)
    assert changed.account_id == alice.username and changed.version > before.version
    stored = phone.messenger.store.device_list(alice.username)
    assert stored is not None and stored.version == changed.version
    assert stored.device_list.entry(laptop.device.device_id) is not None
    await phone.close()
