"""A server that tampers with the account's state log, against the Python client (issue #11,
docs/protocol.md sections 23.7 and 23.8): a dropped patch, a replayed old one, reordered
patches, a forked log (met in the log, or told by another own device's checkpoint over the
pairwise sessions), a withheld newest entry and a stale snapshot served to a new device. Each
is detected, said in plain words (the SyncWarning the CLI and `listen` print, and the CLI's
own line), and the stored sync state is left as it was.

The server here is the live one; what it answers this device's reads is rewritten on the way
(tests/support/rewriting.py). The other branch of a fork is an entry an own device wrote and
the server kept from the others: built with the account's sync key, as that device would."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client.events import SyncCheckpointOwed, SyncKeyOwed, SyncWarning, describe
from client.messenger import ContactChanged, Event, Messenger
from client.store import Store
from client.sync import run_events
from tests.client.test_cli import run_cli
from tests.support.actors import PrimaryActor, now_ms, person
from tests.support.devices import Device, companion_messenger, primary_messenger
from tests.support.rewriting import RewritingTransport, other_branch, substitute_entry

pytestmark = pytest.mark.django_db(transaction=True)

STATE_READS = r"/api/state\?after=\d+"
REFUSED = "Account sync: refused the server's copy of your account's state, kept the last good one"


def contact(name: str) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    return ("contacts", (name,), {"account_key": "A" * 43, "added_at": now_ms(), "nickname": ""})


def deliver(events: list[Event], receiver: Messenger, *, sender: Messenger) -> list[Event]:
    """What the pairwise sessions carry between own devices: each key (type 7) and checkpoint
    (type 8) owed in `events`, handed to `receiver`'s machine as its engine does for an own
    listed device."""
    told: list[Event] = []
    device = sender.device.device_id
    for event in events:
        if isinstance(event, SyncKeyOwed):
            told += run_events(
                receiver.sync.key_received(device, event.body), me=receiver.account_id
            )
        elif isinstance(event, SyncCheckpointOwed):
            run = receiver.sync.checkpoint_received(device, event.body)
            told += run_events(run, me=receiver.account_id)
    return told


def warnings(events: list[Any], *, me: str) -> list[str]:
    return [str(describe(e, me=me)) for e in events if isinstance(e, SyncWarning)]


def stored(messenger: Messenger) -> tuple[int, set[str]]:
    """The version and contacts of the sync state in the device's store (what a restart reads)."""
    state = messenger.store.sync_state()
    assert state is not None
    return state.account.version, {index[0] for index in state.account.collection("contacts")}


def elsewhere(messenger: Messenger, *, removes: str) -> str:
    """The next entry on another branch than the one `messenger` holds: `removes` removed."""
    return other_branch(messenger.sync.state, removes=("contacts", removes), now=now_ms())


@dataclass
class Account:
    alice: PrimaryActor
    phone: Messenger
    laptop: Messenger


@pytest.fixture
def account(live_app, tmp_path: Path) -> Account:
    """Alice's phone and laptop, both at version 2 of her log (the first key's snapshot, bob)."""
    alice = person(live_app, "alice")
    phone, laptop = primary_messenger(alice, tmp_path), companion_messenger(alice, tmp_path)
    deliver(phone.share_sync_key(), laptop, sender=phone)
    run_events(phone.sync.mutate(contact("bob")), me=alice.username)
    laptop.sync_fetch()
    assert stored(laptop) == (2, {"bob"})
    return Account(alice, phone, laptop)


@pytest.mark.parametrize(
    "misbehaviour, expected",
    [
        ("dropped", "the server left out a change: expected version 3, got version 4"),
        (
            "replayed",
            "the server replayed an old change: version 2 again, this device is at version 2",
        ),
        ("reordered", "the server reordered the changes: version 4 came before version 3"),
        (
            "forked",
            "the server forked the log: the change at version 4 follows another version 3 than "
            "this device's",
        ),
        (
            "withheld",
            "the server serves a stale state: an own device is at version 4, the log ends at "
            "version 2",
        ),
    ],
)
def test_a_tampered_log_is_refused_said_in_plain_words_and_the_stored_state_kept(
    account: Account, misbehaviour: str, expected: str
):
    phone, laptop, me = account.phone, account.laptop, account.alice.username
    old = phone.transport.get("/api/state?after=0")[1]["entries"]
    other = elsewhere(laptop, removes="bob")

    def tamper(body: dict[str, Any]) -> dict[str, Any]:
        entries = body["entries"]
        if misbehaviour == "dropped":
            body["entries"] = [e for e in entries if e["version"] != 3]
        elif misbehaviour == "replayed":
            body["entries"] = [old[-1], *entries]
        elif misbehaviour == "reordered":
            body["entries"] = entries[::-1]
        elif misbehaviour == "forked":
            # version 3 from another branch; version 4 follows the phone's version 3
            body = substitute_entry(3, other)(body)
        else:  # the newest entries withheld: the log alone looks complete
            body["entries"], body["version"] = [], 2
        return body

    server = RewritingTransport(laptop.transport)
    server.rewrite("GET", STATE_READS, tamper)
    laptop.transport = server
    owed = run_events(phone.sync.mutate(contact("carol")), me=me)
    owed += run_events(phone.sync.mutate(contact("dave")), me=me)
    assert stored(phone) == (4, {"bob", "carol", "dave"})

    events = laptop.sync_fetch(4)  # the doorbell
    if misbehaviour == "withheld":
        assert warnings(events, me=me) == []  # nothing in the log itself gives it away
        # the phone's checkpoints (23.8) say where it is; the laptop reads, and refuses
        events = deliver(owed, laptop, sender=phone)
    told = warnings(events, me=me)
    assert told and all(line.startswith(REFUSED) for line in told)
    assert told[-1] == f"{REFUSED} ({expected})"
    assert server.rules[0].hits
    assert stored(laptop) == (2, {"bob"})
    assert list(laptop.contacts()) == ["bob"]
    assert laptop.sync.state.refused is not None and laptop.sync.state.pending == ()

    # An honest server again: the next read passes, and the refusal goes.
    laptop.transport = server.inner
    assert warnings(laptop.sync_fetch(), me=me) == []
    assert stored(laptop) == (4, {"bob", "carol", "dave"})
    assert laptop.sync.state.refused is None


@pytest.mark.parametrize("rotated", [False, True], ids=["first key", "after a rotation"])
def test_a_stale_snapshot_served_to_a_newly_linked_device_is_refused(
    account: Account, tmp_path: Path, rotated: bool
):
    phone, me = account.phone, account.alice.username
    run_events(phone.sync.mutate(contact("carol")), me=me)  # version 3
    old = phone.transport.get("/api/state?after=0")[1]["entries"]
    if rotated:  # as after a device is removed: the state again under a new key, at version 4
        phone.sync.rotate()
    tablet = companion_messenger(account.alice, tmp_path, name="Tablet")

    def stale(body: dict[str, Any]) -> dict[str, Any]:
        # the log as it was at version 1: the first key's empty snapshot
        body["entries"], body["version"] = old[:1], 1
        return body

    server = RewritingTransport(tablet.transport)
    server.rewrite("GET", STATE_READS, stale)
    tablet.transport = server
    # the phone links the tablet and sends it the key (with its checkpoint, 23.2)
    told = warnings(deliver(phone.share_sync_key(), tablet, sender=phone), me=me)
    expected = (
        "the server serves a stale state: the newest sync key is in force from version 4, the "
        "log it served holds version 1"
        if rotated
        else "the server serves a stale state: an own device is at version 3, the log ends at "
        "version 1"
    )
    assert told == [f"{REFUSED} ({expected})"]
    assert stored(tablet) == (0, set())
    assert not tablet.sync_key_awaited  # it holds the key: the server is at fault, and says so

    tablet.transport = server.inner
    assert warnings(tablet.sync_fetch(), me=me) == []
    assert stored(tablet) == (4 if rotated else 3, {"bob", "carol"})


async def holds_key(device: Device, *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not device.messenger.sync.state.keys:
        assert time.monotonic() < deadline, f"no sync key reached {device.device_id}"
        await asyncio.sleep(0.05)


async def test_a_fork_is_told_by_the_other_devices_checkpoint_over_the_sessions(
    live_app, tmp_path: Path
):
    """Two own devices shown two branches: each one's checkpoint (type 8, sent over the
    pairwise sessions after its write or read) tells the other, which refuses and says so; the
    CLI, run afterwards, still refuses and prints why."""
    alice = person(live_app, "alice")
    me = alice.username
    laptop = await Device(companion_messenger(alice, tmp_path)).connect()
    phone = await Device(primary_messenger(alice, tmp_path)).connect()
    await phone.connection.share_sync_key()
    await holds_key(laptop)
    await phone.connection.emit(run_events(phone.messenger.sync.mutate(contact("bob")), me=me))
    [added] = await laptop.wait_for(ContactChanged)
    assert added == ContactChanged("bob", True)

    # From now on the server shows the laptop another version 3 than the phone's.
    server = RewritingTransport(laptop.messenger.transport)
    server.rewrite(
        "GET", STATE_READS, substitute_entry(3, elsewhere(laptop.messenger, removes="bob"))
    )
    laptop.messenger.transport = server
    # The phone writes version 3 (carol); the server holds its checkpoint back for now.
    held = run_events(phone.messenger.sync.mutate(contact("carol")), me=me)
    assert len([e for e in held if isinstance(e, SyncCheckpointOwed)]) == 1
    # The laptop reads the other branch on the doorbell, and says where it is now.
    removed = (await laptop.wait_for(ContactChanged, 2))[1]
    assert removed == ContactChanged("bob", False)
    [warning] = await phone.wait_for(SyncWarning)
    forked = "the server forked the log: another own device has a different change at version 3"
    assert describe(warning, me=me) == f"{REFUSED} ({forked})"
    assert stored(phone.messenger) == (3, {"bob", "carol"})

    # The phone's checkpoint reaches the laptop at last: it refuses too.
    await phone.connection.emit(held)
    [warning] = await laptop.wait_for(SyncWarning)
    assert describe(warning, me=me) == f"{REFUSED} ({forked})"
    assert stored(laptop.messenger) == (3, set())

    # The refusal stands across runs: the CLI reads the log again, refuses, and says why.
    await phone.close()
    await laptop.close()
    phone_store = phone.messenger.store.path
    phone.messenger.store.close()
    laptop.messenger.store.close()
    done = await asyncio.to_thread(run_cli, "contacts", "list", "--store", str(phone_store))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"{REFUSED} ({forked})" in lines
    assert f"Refused the server's copy of your account's state: {forked}" in lines
    assert lines[-2:] == [line for line in lines if line.startswith(("bob", "carol"))]
    with Store.open(phone_store) as store:
        state = store.sync_state()
        assert state is not None and state.account.version == 3
