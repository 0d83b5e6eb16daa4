"""Account state sync through the Python client's adapter of the sync machine, against the
live server (docs/protocol.md sections 22.8 and 23): contacts follow the account to its other
devices, and after a device is removed, or logs itself out, and the key is rotated, that
device's copy of the old key plus a full copy of the server's log reveals nothing written
after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client.http import HttpTransport
from client.sync import SyncDriver
from protocol.accountstate import AccountState
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import SyncState
from protocol.exceptions import DecryptionFailed, SyncEntryForged, SyncKeyUnknown
from protocol.syncentry import SyncKey, decode_entry, open_record, sync_subkeys
from protocol.synclog import apply_entries
from tests.support.actors import CompanionActor, PrimaryActor, link, now_ms, person
from tests.support.devices import Device, companion_messenger, primary_messenger
from tests.support.server import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def driver(transport: Any, account: str, device: str) -> SyncDriver:
    return SyncDriver(transport, SyncState(account_id=account, device_id=device), clock=now_ms)


def contacts(d: SyncDriver) -> set[str]:
    return {index[0] for index in d.state.account.collection("contacts")}


def deliver_key(run: Any, *receivers: SyncDriver, sender: str) -> None:
    """What the pairwise sessions carry (content type 7), handed to each receiver's machine."""
    assert run.shares, "no sync key was sent"
    for receiver in receivers:
        receiver.key_received(sender, run.shares[-1])


def contact(name: str) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    return ("contacts", (name,), {"account_key": "A" * 43, "added_at": now_ms()})


def assert_unreadable_after(
    entries: list[tuple[int, bytes]], state: AccountState, keys: tuple[SyncKey, ...], secret: bytes
) -> None:
    """A removed device's copy of the old keys and state, against a full copy of the log."""
    assert entries
    with pytest.raises(SyncKeyUnknown):
        apply_entries(state, entries, keys=keys)
    old_subkeys = [sync_subkeys(k) for k in keys]
    for _, blob in entries:
        entry = decode_entry(blob)
        assert all(entry.key_id != k.key_id for k in keys)
        for record in entry.records:
            for subkeys in old_subkeys:
                with pytest.raises((SyncEntryForged, DecryptionFailed)):
                    open_record(subkeys, record)
        assert secret not in blob


def test_contacts_follow_the_account_and_a_removed_device_learns_nothing_after_rotation(
    primary: PrimaryActor, live_app: LiveServer
):
    account = primary.username
    laptop_actor = link(primary, CompanionActor(HttpTransport(live_app.url)), name="Laptop")
    tablet_actor = link(primary, CompanionActor(HttpTransport(live_app.url)), name="Tablet")
    phone = driver(primary.transport, account, primary.device_id)
    laptop = driver(laptop_actor.transport, account, laptop_actor.device_id)
    tablet = driver(tablet_actor.transport, account, tablet_actor.device_id)

    # The primary links: the account's first key, shared with both companions.
    deliver_key(phone.share_key(), laptop, tablet, sender=primary.device_id)
    phone.mutate(contact("bob"))
    for device in (laptop, tablet):
        device.fetch()
        assert contacts(device) == {"bob"}
    # a removal from a companion reaches the primary as a tombstone
    laptop.mutate(("contacts", ("bob",), None))
    phone.fetch()
    assert contacts(phone) == set()
    phone.mutate(contact("bob"))
    laptop.fetch()
    tablet.fetch()
    old_keys = tablet.state.keys
    tablet_state = tablet.state.account

    # The primary removes the tablet, then rotates: the new key goes to the laptop only.
    primary.revoke(tablet_actor.device_id)
    deliver_key(phone.rotate(), laptop, sender=primary.device_id)
    phone.mutate(contact("carol"))
    laptop.fetch()
    assert contacts(laptop) == {"bob", "carol"}
    assert laptop.state.refused is None

    # The tablet holds the old key and a full copy of the server's log: nothing after.
    status, log = primary.transport.get("/api/state?after=0")
    assert status == 200
    entries = [(e["version"], b64u_decode(e["blob"])) for e in log["entries"]]
    assert log["version"] == phone.state.account.version
    assert_unreadable_after(entries, tablet_state, old_keys, b"carol")


async def until(holds: Callable[[], bool], what: str, *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not holds():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)


def synced_contacts(device: Device) -> set[str]:
    return contacts(device.messenger.sync)


async def test_a_companion_that_logs_itself_out_cannot_read_what_is_written_after(
    live_app: LiveServer, tmp_path: Path
):
    """Nobody removes it from a devices page: the remaining devices see their own list name
    it as logged out (suspended), re-key on their own, and settle on one new key."""
    alice = person(live_app, "alice")
    laptop = Device(companion_messenger(alice, tmp_path, name="Laptop"))
    tablet = Device(companion_messenger(alice, tmp_path, name="Tablet"))
    phone = Device(primary_messenger(alice, tmp_path))
    for device in (laptop, tablet, phone):
        await device.connect()
    assert phone.connection is not None
    await phone.connection.share_sync_key()
    await until(lambda: bool(laptop.messenger.sync.state.keys), "the laptop holds the key")
    await until(lambda: bool(tablet.messenger.sync.state.keys), "the tablet holds the key")
    phone.messenger.sync.mutate(contact("bob"))
    await until(lambda: synced_contacts(tablet) == {"bob"}, "bob reaches the tablet")
    old_keys, tablet_state = tablet.messenger.sync.state.keys, tablet.messenger.sync.state.account

    status, answer = tablet.messenger.transport.post(f"/api/devices/{tablet.device_id}/revoke", {})
    assert status == 200, answer
    first = old_keys[-1]

    def rekeyed() -> bool:
        held = [d.messenger.sync.state for d in (phone, laptop)]
        return all(s.newest_key != first and s.refused is None for s in held) and (
            held[0].newest_key == held[1].newest_key
        )

    await until(rekeyed, "the phone and the laptop share a new key")
    # one rotation: the device whose rotation lost (or that saw the other's first) took the
    # winner's key instead of rotating again
    assert len(phone.messenger.sync.state.keys) == len(laptop.messenger.sync.state.keys) == 2

    laptop.messenger.sync.mutate(contact("carol"))
    phone.messenger.sync.fetch()
    assert synced_contacts(phone) == {"bob", "carol"}
    status, log = alice.transport.get("/api/state?after=0")
    assert status == 200
    entries = [(e["version"], b64u_decode(e["blob"])) for e in log["entries"]]
    assert log["version"] == phone.messenger.sync.state.account.version
    assert_unreadable_after(entries, tablet_state, old_keys, b"carol")
    for device in (phone, laptop):
        await device.close()


def test_a_page_holding_a_large_snapshot_is_read_whole(live_app: LiveServer):
    """A page of the log may be one snapshot of up to 8 MiB (section 19.3), far over the 1 MiB
    the client reads of any other answer: the transport reads it whole."""
    alice = person(live_app, "alice")
    blob = b64u_encode(bytes(3 * 1024 * 1024))  # the server never looks inside
    status, answer = alice.transport.post(
        "/api/state", {"version": 1, "kind": "snapshot", "blob": blob}
    )
    assert status == 201, answer
    status, page = alice.transport.get("/api/state?after=0")
    assert status == 200, page
    assert [(e["version"], e["kind"], len(e["blob"])) for e in page["entries"]] == [
        (1, "snapshot", len(blob))
    ]
