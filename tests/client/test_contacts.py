"""`python -m client contacts`: the account's contacts follow it to every device through the
synced state (docs/protocol.md section 22.8), against the live server over real HTTP and
WebSocket. The approving device sends the sync key over the pairwise session (type 7), a
contact added on the primary reaches a listening companion on `state_changed`, and a removal
on the companion reaches the primary."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from client.contacts import NO_SYNC_KEY
from client.events import ContactChanged, describe
from client.messenger import Messenger
from client.store import Store
from protocol.encoding import b64u_encode
from tests.client.test_cli import run_cli
from tests.support.actors import person
from tests.support.devices import Device, companion_messenger, primary_messenger, primary_store
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def contacts(*args: str, store: Path) -> tuple[int, str, str]:
    done = run_cli("contacts", *args, "--store", str(store))
    return done.returncode, done.stdout, done.stderr


async def holds_key(device: Device, *, within: float = 10.0) -> None:
    """Wait until the device's sync machine holds the account's key (nothing to show)."""
    deadline = time.monotonic() + within
    while not device.messenger.sync.state.keys:
        assert time.monotonic() < deadline, f"no sync key reached {device.device_id}"
        await asyncio.sleep(0.05)


async def test_a_contact_added_on_the_primary_is_listed_on_a_companion_and_removed_back(
    live_app, tmp_path
):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    laptop = await Device(companion_messenger(alice, tmp_path)).connect()
    phone = await Device(primary_messenger(alice, tmp_path)).connect()
    # the approving device sends the account's key over the pairwise session (type 7)
    await phone.connection.share_sync_key()
    await holds_key(laptop)
    await phone.close()
    phone_store = phone.messenger.store.path
    phone.messenger.store.close()

    code, out, err = await asyncio.to_thread(contacts, "add", bob.username, store=phone_store)
    assert (code, err) == (0, "")
    assert f"{bob.username} is in your contacts" in out

    # the listening companion reads the log on the doorbell and says so in one line
    [added] = await laptop.wait_for(ContactChanged)
    assert added == ContactChanged(bob.username, True)
    assert describe(added, me=alice.username) == (
        f"Contacts: {bob.username} was added on another of your devices"
    )
    listed = laptop.messenger.contacts()
    assert list(listed) == [bob.username]
    assert listed[bob.username]["account_key"] == b64u_encode(bob.keys.identity.public)
    assert listed[bob.username]["nickname"] == ""
    await laptop.close()
    laptop_store = laptop.messenger.store.path
    laptop.messenger.store.close()
    code, out, _ = await asyncio.to_thread(contacts, "list", store=laptop_store)
    assert code == 0 and out.splitlines()[0].startswith(f"Test User ({bob.username}) (added ")

    # a removal on the companion reaches the primary, listening again
    phone = await Device(Messenger(Store.open(phone_store), alice.transport)).connect()
    code, out, err = await asyncio.to_thread(contacts, "remove", bob.username, store=laptop_store)
    assert (code, err) == (0, "")
    [removed] = await phone.wait_for(ContactChanged)
    assert removed == ContactChanged(bob.username, False)
    assert describe(removed, me=alice.username) == (
        f"Contacts: {bob.username} was removed on another of your devices"
    )
    assert phone.messenger.contacts() == {}
    await phone.close()
    phone.messenger.store.close()
    code, out, _ = await asyncio.to_thread(contacts, "list", store=phone_store)
    assert code == 0 and out.startswith("No contacts yet")


async def test_a_companion_without_the_sync_key_refuses_to_write_and_reads_all_once_it_comes(
    live_app, tmp_path
):
    alice, bob, carol = (person(live_app, n) for n in ("alice", "bob", "carol"))
    laptop = companion_messenger(alice, tmp_path)
    laptop_store = laptop.store.path
    laptop.store.close()
    phone = primary_messenger(alice, tmp_path)
    phone.add_contact(bob.username)  # the account's first key, not sent to the laptop yet
    assert phone.sync_pending == 0 and list(phone.contacts()) == [bob.username]

    code, out, err = await asyncio.to_thread(contacts, "add", carol.username, store=laptop_store)
    assert code == 1 and out == ""
    assert err == f"Error: {NO_SYNC_KEY}\n"
    code, out, _ = await asyncio.to_thread(contacts, "list", store=laptop_store)
    assert code == 0 and out.splitlines()[0] == NO_SYNC_KEY
    with Store.open(laptop_store) as store:
        state = store.sync_state()
        assert state is not None and state.pending == () and state.keys == ()

    # the key comes over the pairwise session; the laptop reads the whole state on connect
    sharing = await Device(phone).connect()
    await sharing.connection.share_sync_key()
    await sharing.close()
    listening = await Device(Messenger(Store.open(laptop_store), laptop.transport)).connect()
    [added] = await listening.wait_for(ContactChanged)
    assert added == ContactChanged(bob.username, True)
    await listening.close()
    listening.messenger.store.close()
    code, out, err = await asyncio.to_thread(contacts, "add", carol.username, store=laptop_store)
    assert (code, err) == (0, "")
    phone.sync_fetch()
    assert list(phone.contacts()) == [bob.username, carol.username]


async def test_adding_an_unknown_username_is_a_clear_error_and_changes_nothing(live_app, tmp_path):
    alice = person(live_app, "alice")
    phone = primary_messenger(alice, tmp_path)
    phone_store = phone.store.path
    phone.store.close()
    code, out, err = await asyncio.to_thread(contacts, "add", "nosuchperson", store=phone_store)
    assert code == 1 and out == ""
    assert err == "Error: There is no Parley account named 'nosuchperson'.\n"
    code, out, err = await asyncio.to_thread(contacts, "remove", "nosuchperson", store=phone_store)
    assert code == 1 and err == "Error: 'nosuchperson' is not in your contacts.\n"
    code, out, err = await asyncio.to_thread(contacts, "add", store=phone_store)
    assert code == 1 and "Give the username" in err
    with Store.open(phone_store) as store:
        state = store.sync_state()
        assert state is not None and state.pending == () and state.account.version == 0


def test_contacts_of_a_device_whose_server_is_unreachable_is_a_clear_error(primary, tmp_path):
    unreachable = f"http://127.0.0.1:{free_port()}"
    store = primary_store(primary, tmp_path / "phone.sqlite3")
    device = store.device()
    assert device is not None
    store.close()
    moved = Store.open(tmp_path / "moved.sqlite3")  # the same device, its server gone
    moved.save_device(replace(device, server=unreachable))
    moved.close()
    code, out, err = contacts("list", store=tmp_path / "moved.sqlite3")
    assert code == 1 and out == ""
    assert err.startswith(f"Error: Cannot reach {unreachable}")
