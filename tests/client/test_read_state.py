"""The Python client's read state, names and contacts follow the account (docs/protocol.md
section 22.8), against the live server over real HTTP and WebSocket: a conversation read on
one device is read on the other (the position only moves forward, one read receipt from
the device that read it, none when the synced setting is off), contacts and senders are
shown by nickname or display name with the username beside it, own devices by the names
the server has, and a contact another own device added gets receipts and is pinned to the
key that device verified."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from client.events import ReceiptOwed, ReceiptReceived, TextMessage
from client.http import HttpTransport
from client.messenger import Messenger, SecurityCodeChanged
from client.sending import SendRefused
from client.store import Store
from protocol.encoding import b64u_encode
from tests.client.test_cli import run_cli
from tests.client.test_contacts import holds_key
from tests.support.actors import PrimaryActor, ok, person
from tests.support.devices import Device, companion_messenger, primary_messenger

pytestmark = pytest.mark.django_db(transaction=True)


async def cli(*args: str, store: Path) -> list[str]:
    done = await asyncio.to_thread(run_cli, *args, "--store", str(store))
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout.splitlines()


def opened(path: Path, live_app, *, primary: PrimaryActor | None = None) -> Messenger:
    """The device of a store, with the server session it kept (a primary's is its actor's)."""
    store = Store.open(path)
    if primary is not None:
        return Messenger(store, primary.transport)
    transport = HttpTransport(live_app.url)
    transport.import_cookies(store.server_cookies())
    return Messenger(store, transport)


async def receipts(device: Device, kind: str, *, within: float = 10.0) -> list[ReceiptReceived]:
    """Wait until a receipt of `kind` came; all of that kind so far."""
    deadline = time.monotonic() + within
    while not [r for r in device.of(ReceiptReceived) if r.kind == kind]:
        assert time.monotonic() < deadline, f"no {kind} receipt: {device.events}"
        await device.wait_for(ReceiptReceived, len(device.of(ReceiptReceived)) + 1, within=within)
    return [r for r in device.of(ReceiptReceived) if r.kind == kind]


async def alice_with_two_devices(
    alice: PrimaryActor, bob: PrimaryActor, tmp_path: Path
) -> tuple[Path, Path]:
    """Alice's phone adds bob and sends the account's sync key to her laptop; both stores
    are closed for the command line."""
    laptop = await Device(companion_messenger(alice, tmp_path)).connect()
    phone = await Device(primary_messenger(alice, tmp_path)).connect()
    phone.messenger.add_contact(bob.username)
    await phone.connection.share_sync_key()
    await holds_key(laptop)
    # the laptop's answer to the key (its checkpoint, 23.8) goes out as it closes; the phone
    # takes and acks it before it closes, so the command line is not shown it again
    await laptop.close()
    await phone.connection.caught_up()
    await phone.close()
    phone.messenger.store.close()
    laptop.messenger.store.close()
    return phone.messenger.store.path, laptop.messenger.store.path


async def test_a_conversation_read_on_one_device_is_read_on_the_other(live_app, tmp_path):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    phone_store, laptop_store = await alice_with_two_devices(alice, bob, tmp_path)
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    bob_phone.messenger.add_contact(alice.username)
    for text in ("one", "two"):
        await bob_phone.connection.send_text(alice.username, text)
    bob_shown = f"Test User ({bob.username})"  # the display name bob chose, then the username

    lines = await cli("chats", store=laptop_store)
    assert lines[0] == f"{bob_shown} · 2 unread"
    assert lines[1].endswith("] Test User: two")

    # read on the phone: shown, marked, a read receipt to bob (the setting is on by default)
    lines = await cli("read", bob.username, store=phone_store)
    assert lines[0] == f"Conversation with {bob_shown}"
    assert [line[0] for line in lines[1:3]] == ["*", "*"]
    assert lines[1].endswith("] Test User: one") and lines[2].endswith("] Test User: two")
    assert lines[3] == "(2 new messages, marked *; now read on each of your devices)"
    [receipt] = await receipts(bob_phone, "read")
    assert receipt.sender_device == alice.device_id and len(receipt.message_ids) == 2

    # the laptop follows: nothing unread, nothing to mark, no receipt, no position written
    lines = await cli("chats", store=laptop_store)
    assert lines[0] == bob_shown
    lines = await cli("read", bob.username, store=laptop_store)
    assert len(lines) == 3 and not any(line.startswith("*") for line in lines)
    laptop = opened(laptop_store, live_app)
    laptop.sync_fetch()
    version = laptop.sync.state.account.version
    assert laptop.unread(bob.username) == []
    assert laptop.read_conversation(bob.username) == []  # never back, nothing to send
    assert laptop.sync.state.account.version == version
    laptop.store.close()

    # with read receipts turned off on the phone, the laptop reads without telling bob
    phone = opened(phone_store, live_app, primary=alice)
    phone.sync_fetch()
    phone.sync.mutate(("settings", ("read_receipts",), {"on": False}))
    phone.store.close()
    third = await bob_phone.connection.send_text(alice.username, "three")
    laptop = opened(laptop_store, live_app)
    connected = await Device(laptop).connect()
    assert connected.connection is not None
    await connected.connection.caught_up()
    await connected.close()
    assert laptop.unread(bob.username) == [b64u_encode(third.message_id)]
    events = laptop.read_conversation(bob.username)
    assert not [e for e in events if isinstance(e, ReceiptOwed)]
    laptop.store.close()
    lines = await cli("chats", store=phone_store)
    assert lines[0] == bob_shown and lines[1].endswith("] Test User: three")
    assert [r.sender_device for r in await receipts(bob_phone, "read")] == [alice.device_id]
    await bob_phone.close()


async def test_names_follow_the_account_and_own_devices_show_by_the_servers_names(
    live_app, tmp_path
):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    phone_store, laptop_store = await alice_with_two_devices(alice, bob, tmp_path)

    lines = await cli("contacts", "list", store=laptop_store)
    assert lines[0].startswith(f"Test User ({bob.username}) (added ")
    # a nickname given on the phone comes first on the laptop
    phone = opened(phone_store, live_app, primary=alice)
    phone.sync_fetch()
    value = {**phone.contacts()[bob.username], "nickname": "Bobby"}
    phone.sync.mutate(("contacts", (bob.username,), value))
    laptop_id = next(d["device_id"] for d in phone.own_devices() if not d["this_device"])
    phone.store.close()
    lines = await cli("contacts", "list", store=laptop_store)
    assert lines[0].startswith(f"Bobby ({bob.username}) (added ")

    # the laptop renamed from the phone: the laptop shows its devices by the server's names
    ok(alice.transport.post(f"/api/devices/{laptop_id}/rename", {"name": "Work laptop"}))
    lines = await cli("status", store=laptop_store)
    assert "  Phone (primary)" in lines
    assert "  Work laptop (this device)" in lines


async def test_a_contact_synced_from_another_device_gets_receipts_and_its_key_pinned(
    live_app, tmp_path
):
    alice, bob, carol = (person(live_app, n) for n in ("alice", "bob", "carol"))
    phone_store, laptop_store = await alice_with_two_devices(alice, bob, tmp_path)
    # the phone also holds carol, under a key that is not hers (what a device that verified
    # someone else would have written): the laptop must not trust carol's served list
    phone = opened(phone_store, live_app, primary=alice)
    phone.sync_fetch()
    wrong = {"account_key": b64u_encode(bob.keys.identity.public), "added_at": 1, "nickname": ""}
    phone.sync.mutate(("contacts", (carol.username,), wrong))
    phone.store.close()

    laptop = await Device(opened(laptop_store, live_app)).connect()
    assert laptop.messenger.store.device_list(bob.username) is None  # never fetched here
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    sent = await bob_phone.connection.send_text(alice.username, "hi")
    [message] = await laptop.wait_for(TextMessage)
    assert message.message_id == sent.message_id
    # bob is a contact on the laptop (synced in): its delivery receipt goes to him
    [receipt] = await receipts(bob_phone, "delivered")
    assert receipt.sender_device == laptop.device_id
    listed = laptop.messenger.store.device_list(bob.username)
    assert listed is not None and listed.device_list.account_key == bob.keys.identity.public

    with pytest.raises(SecurityCodeChanged):
        laptop.messenger.prepare_send(carol.username, "hello carol")
    assert laptop.messenger.store.device_list(carol.username) is None
    await laptop.close()
    await bob_phone.close()


async def test_an_account_blocked_on_another_device_is_dropped_here_until_unblocked(
    live_app, tmp_path
):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    phone_store, laptop_store = await alice_with_two_devices(alice, bob, tmp_path)
    phone = opened(phone_store, live_app, primary=alice)
    phone.sync_fetch()
    phone.sync.mutate(("blocked", (bob.username,), {"on": True}))
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    bob_phone.messenger.add_contact(alice.username)
    await bob_phone.connection.send_text(alice.username, "let me in")

    # the laptop reads the block from the synced state: bob's text is handled and dropped
    laptop = await Device(opened(laptop_store, live_app)).connect()
    assert laptop.connection is not None
    await laptop.connection.caught_up()
    assert laptop.of(TextMessage) == []
    assert laptop.messenger.unread(bob.username) == []
    with pytest.raises(SendRefused, match="You blocked") as refused:
        laptop.messenger.prepare_send(bob.username, "no")
    assert refused.value.code == "blocked"

    # unblocked on the phone: bob's next text shows on the laptop, with a delivery receipt
    phone.sync_fetch()
    phone.sync.mutate(("blocked", (bob.username,), {"on": False}))
    version = phone.sync.state.account.version
    phone.store.close()
    deadline = time.monotonic() + 10  # the laptop reads it on the state_changed doorbell
    while laptop.messenger.sync.state.account.version < version:
        assert time.monotonic() < deadline, "the laptop never read the unblock"
        await asyncio.sleep(0.05)
    sent = await bob_phone.connection.send_text(alice.username, "again")
    [message] = await laptop.wait_for(TextMessage)
    assert message.message_id == sent.message_id
    assert laptop.device_id in {r.sender_device for r in await receipts(bob_phone, "delivered")}
    await laptop.close()
    await bob_phone.close()
