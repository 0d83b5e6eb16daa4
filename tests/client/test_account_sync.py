"""Account state sync through the Python client's adapter of the sync machine, against the
live server (docs/protocol.md sections 22.8 and 23): contacts follow the account to its other
devices, and after a device is removed and the key rotated, that device's copy of the old key
plus a full copy of the server's log reveals nothing written after."""

from __future__ import annotations

from typing import Any

import pytest

from client.http import HttpTransport
from client.sync import SyncDriver
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import SyncState
from protocol.exceptions import DecryptionFailed, SyncEntryForged, SyncKeyUnknown
from protocol.syncentry import decode_entry, open_record, sync_subkeys
from protocol.synclog import apply_entries
from tests.support.actors import CompanionActor, PrimaryActor, link, now_ms, person
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
    assert entries and log["version"] == phone.state.account.version
    with pytest.raises(SyncKeyUnknown):
        apply_entries(tablet_state, entries, keys=old_keys)
    old_subkeys = [sync_subkeys(k) for k in old_keys]
    for _, blob in entries:
        entry = decode_entry(blob)
        assert all(entry.key_id != k.key_id for k in old_keys)
        for record in entry.records:
            for subkeys in old_subkeys:
                with pytest.raises((SyncEntryForged, DecryptionFailed)):
                    open_record(subkeys, record)
        assert b"carol" not in blob


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
