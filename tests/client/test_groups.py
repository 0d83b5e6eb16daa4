"""Groups across Python devices on the live server (docs/protocol.md 25.8, 25.9): a group
created on a companion, its messages reaching every member device and every own device, a
removed member reading nothing sent after its removal (with the keys it holds and the
message the server stored), and a member added later reading nothing from before."""

from __future__ import annotations

import asyncio
import random

import pytest

from client.connection import DeviceConnection
from client.events import GroupEvent, GroupReceiptReceived, GroupText
from client.http import HttpTransport
from protocol.encoding import b64u_decode
from protocol.exceptions import ReplayDetected, SenderKeyUnknown
from protocol.senderkeys import decrypt_group
from tests.support.actors import person
from tests.support.devices import Device, companion_messenger, primary_messenger
from tests.support.rewriting import RewritingTransport, flip_byte


def texts(device: Device) -> list[tuple[str, str]]:
    return [(e.sender, e.text) for e in device.of(GroupText)]


def changes(device: Device) -> list[str]:
    return [e.data["kind"] for e in device.of(GroupEvent) if e.code == "group_changed"]


async def test_a_group_reaches_every_member_device_and_a_removal_locks_the_removed_out(
    live_app, tmp_path
):
    alice, bob, carol, dave = (person(live_app, n) for n in ("alice", "bob", "carol", "dave"))
    laptop = companion_messenger(alice, tmp_path)  # its store is used on this thread
    alice_laptop = await Device(laptop).connect()
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect()
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    carol_phone = await Device(primary_messenger(carol, tmp_path)).connect()
    dave_phone = await Device(primary_messenger(dave, tmp_path)).connect()

    group_id, _ = laptop.group_create("Trip", [bob.username, carol.username])
    for member in (alice_phone, bob_phone, carol_phone):
        await member.wait_for(GroupEvent)  # the doorbell: each reads and verifies the log
    assert changes(bob_phone) == ["create"]

    hello = await alice_laptop.connection.send_group_text(group_id, "hello all")
    assert set(hello.targets) == {
        alice_phone.device_id,
        bob_phone.device_id,
        carol_phone.device_id,
    }
    assert set(hello.keys) == set(hello.targets)  # the first message gives everyone the key
    for member in (alice_phone, bob_phone, carol_phone):
        await member.wait_for(GroupText)
        assert texts(member) == [(alice.username, "hello all")]

    # each member answers with a delivery receipt (people, not devices, are counted), and
    # bob reads it: a read receipt to every device of alice's (25.10)
    receipts = await alice_laptop.wait_for(GroupReceiptReceived, 2)
    assert {(r.sender, r.kind) for r in receipts} == {
        (bob.username, "delivered"),
        (carol.username, "delivered"),
    }
    [bob_text] = bob_phone.of(GroupText)
    read = bob_phone.messenger.group_read(group_id, alice.username, [bob_text.message_id])
    await bob_phone.connection.emit(read)
    [*_, by_bob] = await alice_laptop.wait_for(GroupReceiptReceived, 3)
    assert (by_bob.sender, by_bob.kind, by_bob.message_ids) == (
        bob.username,
        "read",
        (bob_text.message_id,),
    )

    second = await alice_laptop.connection.send_group_text(group_id, "second")
    assert second.keys == {}  # nobody new: the key is not sent again
    await bob_phone.wait_for(GroupText, 2)

    # dave joins: he gets the key as it is now, and reads nothing from before
    laptop.group_change(group_id, "add", [dave.username])
    await dave_phone.wait_for(GroupEvent, 2)
    welcome = await alice_laptop.connection.send_group_text(group_id, "welcome dave")
    assert set(welcome.keys) == {dave_phone.device_id}
    await dave_phone.wait_for(GroupText)
    assert texts(dave_phone) == [(alice.username, "welcome dave")]
    [dave_chain] = dave_phone.messenger.store.group_record(group_id).receiving[
        laptop.device.device_id
    ]
    with pytest.raises(ReplayDetected):
        decrypt_group(dave_chain, hello.message)  # the chain moves forward only

    # carol is removed: the next message is under a key she was never sent
    carol_chains = carol_phone.messenger.store.group_record(group_id).receiving
    laptop.group_change(group_id, "remove", [carol.username])
    await bob_phone.wait_for(GroupEvent, 3)
    after = await alice_laptop.connection.send_group_text(group_id, "carol is out")
    assert carol_phone.device_id not in after.targets
    assert set(after.keys) == set(after.targets)  # rotated: everyone left gets the new key
    await bob_phone.wait_for(GroupText, 4)
    assert texts(bob_phone)[-1] == (alice.username, "carol is out")
    [carol_chain] = carol_chains[laptop.device.device_id]
    with pytest.raises(SenderKeyUnknown):
        decrypt_group(carol_chain, after.message)
    await asyncio.sleep(0.3)
    assert (alice.username, "carol is out") not in texts(carol_phone)

    # the own phone got every message as a member device, and bob can answer the group
    await bob_phone.connection.send_group_text(group_id, "hi from bob")
    await alice_laptop.wait_for(GroupText)
    assert texts(alice_laptop) == [(bob.username, "hi from bob")]
    await alice_phone.wait_for(GroupText, 5)
    assert [t for _, t in texts(alice_phone)] == [
        "hello all",
        "second",
        "welcome dave",
        "carol is out",
        "hi from bob",
    ]
    assert b64u_decode(group_id)  # the id is the group's 16 bytes in base64url
    for device in (alice_laptop, alice_phone, bob_phone, carol_phone, dave_phone):
        await device.close()


async def test_a_key_a_device_could_not_decrypt_is_sent_again_and_its_messages_follow(
    live_app, tmp_path
):
    """The server damages the pairwise part that carried bob's copy of alice's sender key:
    bob cannot decrypt it and holds alice's message; he asks for the envelope again (24.1),
    alice's device resends the key from its resend cache, and the held message decrypts."""
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect(retry_every=0.05)
    damaged: list[str] = []

    def damage_the_first_key(frame: dict) -> dict:
        for envelope in frame.get("envelopes") or [] if frame.get("type") == "deliver" else []:
            if "group" in envelope and "ciphertext" in envelope and not damaged:
                envelope["ciphertext"] = flip_byte(envelope["ciphertext"], random.Random(1))
                damaged.append(envelope["id"])
        return frame

    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect(
        rewrite=damage_the_first_key, retry_every=0.05
    )
    group_id, _ = alice_phone.messenger.group_create("Pair", [bob.username])
    await bob_phone.wait_for(GroupEvent)
    sent = await alice_phone.connection.send_group_text(group_id, "can you read this?")
    [text] = await bob_phone.wait_for(GroupText, within=20)
    assert (text.sender, text.text) == (alice.username, "can you read this?")
    assert damaged == [sent.send_id]  # the first copy of the key was the one damaged
    await alice_phone.close()
    await bob_phone.close()


async def test_a_device_linked_later_learns_its_accounts_groups_when_it_connects(
    live_app, tmp_path
):
    """docs/protocol.md 19.4 "List": a new own device holds no record of the groups its
    account is in; on connecting it reads the server's list, and each log, and can write."""
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect()
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    group_id, _ = alice_phone.messenger.group_create("Before the laptop", [bob.username])
    await bob_phone.wait_for(GroupEvent)
    await alice_phone.close()
    laptop = await Device(companion_messenger(alice, tmp_path)).connect()
    [created] = await laptop.wait_for(GroupEvent)
    assert (created.group_id, created.code, created.data["kind"]) == (
        group_id,
        "group_changed",
        "create",
    )
    [record] = laptop.messenger.groups()
    assert record.chain is not None and record.chain.name == "Before the laptop"
    await laptop.connection.send_group_text(group_id, "from the new laptop")
    [text] = await bob_phone.wait_for(GroupText)
    assert (text.sender, text.sender_device, text.text) == (
        alice.username,
        laptop.device_id,
        "from the new laptop",
    )
    # on the next connect nothing moved: the list is read, no log
    await laptop.close()
    http = laptop.messenger.transport
    assert isinstance(http, HttpTransport)
    server = RewritingTransport(http)  # logs what the messenger asks for
    laptop.messenger.transport = server
    laptop.connection = DeviceConnection(laptop.messenger, http, on_event=laptop.events.append)
    await laptop.connection.start()
    await laptop.connection.caught_up()
    paths = [path for method, path, _ in server.log if method == "GET"]
    assert "/api/groups" in paths
    assert not [p for p in paths if p.startswith("/api/groups/")]
    await laptop.close()
    await bob_phone.close()
