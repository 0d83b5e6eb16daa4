"""Groups against a misbehaving server, with Python devices on the live server (docs/protocol.md
25.3, 25.8): the server adds a member with an entry it forged or replayed, hides a removal,
shows two members different chains, delivers a message from a device that is not a member,
replays an old sender-key message. Each is refused and told; nothing of it is accepted."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from client.events import GroupEvent, GroupText
from client.groups import GroupRefused
from protocol.encoding import b64u_decode, b64u_encode
from protocol.groups import EntryKind, entry_hash, sign_entry
from protocol.keys import generate_identity
from protocol.rng import system_rng
from protocol.senderkeys import encrypt_group, new_sender_key
from tests.support.actors import person
from tests.support.devices import Device, primary_messenger
from tests.support.rewriting import (
    GROUP_ENTRIES,
    RewritingTransport,
    entry_appended,
    entry_replaced,
    other_rename,
)

SEQS = itertools.count(10**9)  # queue positions the server never gave


async def trio(live_app, tmp_path, *, rewrite_bob: bool = False) -> dict[str, Any]:
    """alice, bob and carol in a group alice's phone created; mallory outside it."""
    people = {n: person(live_app, n) for n in ("alice", "bob", "carol", "mallory")}
    devices = {}
    for name, actor in people.items():
        options = {"rewrite": lambda frame: frame} if name == "bob" and rewrite_bob else {}
        devices[name] = await Device(primary_messenger(actor, tmp_path)).connect(**options)
    members = [people["bob"].username, people["carol"].username]
    group_id, _ = devices["alice"].messenger.group_create("Trip", members)
    for name in ("bob", "carol"):
        await devices[name].wait_for(GroupEvent)
    return {"people": people, "devices": devices, "group": group_id}


def refusals(device: Device, code: str) -> list[dict[str, Any]]:
    return [e.data for e in device.of(GroupEvent) if e.code == code]


def members(device: Device, group_id: str) -> set[str]:
    record = device.messenger.store.group_record(group_id)
    assert record is not None and record.chain is not None
    return set(record.chain.members)


async def close(world: dict[str, Any]) -> None:
    for device in world["devices"].values():
        await device.close()


@pytest.mark.parametrize("forgery", ["forged", "replayed"])
async def test_a_member_the_server_adds_is_refused_and_gets_nothing(live_app, tmp_path, forgery):
    world = await trio(live_app, tmp_path)
    alice, bob = world["devices"]["alice"], world["devices"]["bob"]
    mallory = world["people"]["mallory"]
    group_id = world["group"]
    record = alice.messenger.store.group_record(group_id)
    assert record is not None and record.chain is not None
    if forgery == "forged":  # "alice adds mallory", signed by a key no list of alice's holds
        wire = sign_entry(
            group_id=b64u_decode(group_id),
            seq=1,
            previous=record.chain.head,
            kind=EntryKind.ADD,
            actor=world["people"]["alice"].username,
            identity=generate_identity(system_rng),
            timestamp=0,
            accounts=[mallory.username],
        )
        expected = "GroupSignerUnlisted"
    else:  # a genuine entry of another group alice created, which adds mallory
        other, _ = alice.messenger.group_create("Other", [mallory.username])
        [wire] = [
            b64u_decode(e["entry"])
            for e in alice.messenger.transport.get(f"/api/groups/{other}/entries?after=-1")[1][
                "entries"
            ]
        ]
        expected = "GroupChainBroken"
    server = RewritingTransport(bob.messenger.transport)
    server.rewrite("GET", GROUP_ENTRIES, entry_appended([wire]))
    bob.messenger.transport = server
    events = bob.messenger.group_fetch(group_id)
    [refused] = [e.data for e in events if isinstance(e, GroupEvent) and e.code == "group_refused"]
    assert refused["error"] == expected
    assert mallory.username not in members(bob, group_id)
    sent = await bob.connection.send_group_text(group_id, "who is here?")
    assert world["devices"]["mallory"].device_id not in sent.targets
    await world["devices"]["carol"].wait_for(GroupText)
    assert world["devices"]["mallory"].of(GroupText) == []
    await close(world)


async def test_a_removal_the_server_hides_is_noticed_and_the_device_stops_sending(
    live_app, tmp_path
):
    world = await trio(live_app, tmp_path)
    alice, bob, carol = (world["devices"][n] for n in ("alice", "bob", "carol"))
    group_id = world["group"]

    def before_the_removal(body: dict[str, Any]) -> dict[str, Any]:
        kept = [e for e in body["entries"] if e["seq"] < 1]
        return {"head": 0, "entries": kept, "more": False}

    server = RewritingTransport(bob.messenger.transport)
    server.rewrite("GET", GROUP_ENTRIES, before_the_removal)
    bob.messenger.transport = server
    alice.messenger.group_change(group_id, "remove", [world["people"]["carol"].username])
    await alice.connection.send_group_text(group_id, "carol is out")  # names head 1, signed
    await _until(bob, "group_withheld")
    assert refusals(bob, "group_withheld") == [{"wanted": 1, "served": 0}]
    assert world["people"]["carol"].username in members(bob, group_id)  # not changed by a guess
    assert bob.of(GroupText) == []  # held until the entry comes
    with pytest.raises(GroupRefused, match="withheld"):
        await bob.connection.send_group_text(group_id, "still there, carol?")
    await asyncio.sleep(0.3)
    assert carol.of(GroupText) == []
    await close(world)


async def _until(device: Device, code: str, count: int = 1, within: float = 10.0) -> None:
    """Wait until the device was told `code` `count` times."""
    deadline = asyncio.get_running_loop().time() + within
    while len(refusals(device, code)) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {code} on {device.device_id}: {device.events}")
        await asyncio.sleep(0.05)


async def test_two_members_shown_different_chains_refuse_each_others_messages(live_app, tmp_path):
    world = await trio(live_app, tmp_path)
    alice, bob, carol = (world["devices"][n] for n in ("alice", "bob", "carol"))
    group_id = world["group"]
    record = alice.messenger.store.group_record(group_id)
    assert record is not None and record.chain is not None
    # a second entry at seq 1 that alice's phone signed too, which the server shows bob only
    alice_name = world["people"]["alice"].username
    other = other_rename(group_id, record.chain, alice_name, alice.messenger.device.keys.identity)
    server = RewritingTransport(bob.messenger.transport)
    server.rewrite("GET", GROUP_ENTRIES, entry_replaced(1, other))
    bob.messenger.transport = server
    alice.messenger.group_change(group_id, "rename", name="Trip 2027")
    await _until(bob, "group_changed", 2)
    await _until(carol, "group_changed", 2)
    assert bob.messenger.store.group_record(group_id).chain.head == entry_hash(other)
    await carol.connection.send_group_text(group_id, "from the real chain")
    await _until(bob, "group_forked")
    assert refusals(bob, "group_forked") == [{"seq": 1}]
    [refused] = refusals(bob, "group_message_refused")
    assert refused["error"] == "GroupChainForked"
    assert bob.of(GroupText) == []
    with pytest.raises(GroupRefused, match="forked"):
        await bob.connection.send_group_text(group_id, "hello?")
    await close(world)


async def test_a_non_members_message_and_a_replayed_message_are_refused(live_app, tmp_path):
    world = await trio(live_app, tmp_path, rewrite_bob=True)
    alice, bob, mallory = (world["devices"][n] for n in ("alice", "bob", "mallory"))
    group_id = world["group"]
    await alice.connection.send_group_text(group_id, "hello")
    [text] = await bob.wait_for(GroupText)
    assert text.text == "hello"
    [genuine] = [e for e in bob.connection.delivered if "group" in e]

    # the server replays alice's message under a new queue position
    await bob.connection.inject({"type": "deliver", "envelopes": [{**genuine, "seq": next(SEQS)}]})
    [replayed] = refusals(bob, "group_message_refused")
    assert replayed["error"] == "ReplayDetected"

    # and delivers a message of mallory's device, signed with a key of her own
    record = alice.messenger.store.group_record(group_id)
    assert record is not None and record.chain is not None
    key = new_sender_key(
        system_rng,
        group_id=b64u_decode(group_id),
        sender=world["people"]["mallory"].username,
        device=mallory.device_id,
    )
    _, message = encrypt_group(
        key, b"x" * 64, head_seq=record.chain.seq, head_hash=record.chain.head, rng=system_rng
    )
    forged = {
        **genuine,
        "seq": next(SEQS),
        "id": "mallory-1",
        "sender": world["people"]["mallory"].username,
        "sender_device": mallory.device_id,
        "group": b64u_encode(message),
    }
    forged.pop("ciphertext", None)
    await bob.connection.inject({"type": "deliver", "envelopes": [forged]})
    [_, outsider] = refusals(bob, "group_message_refused")
    assert outsider == {
        "sender": world["people"]["mallory"].username,
        "sender_device": mallory.device_id,
        "error": "not_a_member",
    }
    assert [t.text for t in bob.of(GroupText)] == ["hello"]  # nothing more accepted
    await close(world)
