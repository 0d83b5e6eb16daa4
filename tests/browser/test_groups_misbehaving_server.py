"""Groups in the browser against a misbehaving server (docs/protocol.md 25.3, 25.8): the
server adds a member with an entry it forged or replayed, hides a removal, shows the
browser a chain forked from the other members', delivers a message from a device that is
not a member, replays a sender-key message. Each is refused and told on the group's page;
nothing of it is accepted. bob (the admin), carol and mallory are Python devices."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from client.events import GroupEvent, GroupText
from protocol.encoding import b64u_decode, b64u_encode
from protocol.groups import EntryKind, sign_entry
from protocol.keys import generate_identity
from protocol.rng import system_rng
from protocol.senderkeys import encrypt_group, new_sender_key
from tests.support.actors import PrimaryActor, person
from tests.support.browser import PHONE
from tests.support.devices import Device, DeviceThread, primary_messenger
from tests.support.rewriting import (
    GROUP_ENTRIES,
    PageSocket,
    entry_appended,
    entry_replaced,
    other_rename,
    rewrite_json,
)
from tests.support.server import LiveServer
from tests.support.web import SLOW, new_primary, new_username

ENTRIES = re.compile(f".*{GROUP_ENTRIES}$")


@dataclass
class Trio:
    page: Page
    group_id: str
    people: dict[str, PrimaryActor]
    devices: dict[str, Device]

    def notice(self, text: str):
        return self.page.locator("#group-message-list .message-notice", has_text=text)

    def text(self, text: str):
        return self.page.locator("#group-message-list .message", has_text=text)


def trio(
    new_device,
    live_app: LiveServer,
    devices: DeviceThread,
    tmp_path: Path,
    before: Callable[[Page], Any] = lambda page: None,
) -> Trio:
    """alice's browser in a group bob's phone created with her and carol; mallory outside.
    `before` sets the page's routes before it reads the group."""
    alice_name = new_username("alice")
    page, _ = new_primary(new_device(viewport=PHONE), alice_name)
    before(page)
    people = {n: person(live_app, n) for n in ("bob", "carol", "mallory")}
    connected = {
        n: devices.connect(lambda a=a: primary_messenger(a, tmp_path)) for n, a in people.items()
    }
    group_id, _ = devices.call(
        connected["bob"].messenger.group_create, "Trip", [alice_name, people["carol"].username]
    )
    devices.run(connected["carol"].wait_for(GroupEvent))
    page.goto(f"/groups/{group_id}")
    expect(page.locator("#group-title")).to_have_text("Trip", timeout=SLOW)
    return Trio(page, group_id, people, connected)


def member_rows(world: Trio):
    world.page.locator("#group-members-button").click()
    return world.page.locator("#group-member-list .member")


@pytest.mark.parametrize("forgery", ["forged", "replayed"])
def test_a_member_the_server_adds_is_refused_and_gets_nothing(
    new_device, live_app, device_thread, tmp_path, forgery
):
    devices = device_thread
    world = trio(new_device, live_app, devices, tmp_path)
    bob, mallory = world.devices["bob"], world.people["mallory"]
    wire: list[bytes] = []
    rewrite_json(world.page, ENTRIES, "GET", entry_appended(wire))

    def rename_then_forge() -> bytes:
        # a real change rings alice's browser; the server serves a member after it
        bob.messenger.group_change(world.group_id, "rename", name="Trip 2027")
        record = bob.messenger.store.group_record(world.group_id)
        if forgery == "forged":  # "bob adds mallory", signed by a key no list of bob's holds
            return sign_entry(
                group_id=b64u_decode(world.group_id),
                seq=record.chain.seq + 1,
                previous=record.chain.head,
                kind=EntryKind.ADD,
                actor=world.people["bob"].username,
                identity=generate_identity(system_rng),
                timestamp=0,
                accounts=[mallory.username],
            )
        # a genuine entry of another group bob made, which has mallory in it
        other, _ = bob.messenger.group_create("Other", [mallory.username])
        [entry] = bob.messenger.transport.get(f"/api/groups/{other}/entries?after=-1")[1]["entries"]
        return b64u_decode(entry["entry"])

    wire.append(devices.call(rename_then_forge))
    expected = (
        "a change in it is signed by a key that is none of its author's devices"
        if forgery == "forged"
        else "a change in it does not follow on from the group's history"
    )
    told = f"The server's copy of this group's membership was refused: {expected}."
    expect(world.notice(told)).to_be_visible(timeout=SLOW)
    # a page of the log is verified all or nothing: not even the real rename before it
    expect(world.page.locator("#group-title")).to_have_text("Trip")
    rows = member_rows(world)
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text=mallory.username)).to_have_count(0)

    box = world.page.get_by_label("Message", exact=True)
    box.fill("who is here?")
    box.press("Enter")
    expect(world.text("who is here?").locator(".message-status")).to_have_attribute(
        "data-status", "sent", timeout=SLOW
    )
    devices.run(world.devices["carol"].wait_for(GroupText, within=20))
    devices.run(world.devices["mallory"].connection.caught_up())
    assert devices.call(world.devices["mallory"].of, GroupText) == []


def test_a_removal_the_server_hides_stops_the_browser_sending(
    new_device, live_app, device_thread, tmp_path, screenshot
):
    devices = device_thread
    world = trio(new_device, live_app, devices, tmp_path)
    bob, carol = world.devices["bob"], world.people["carol"]

    def before_the_removal(body: dict[str, Any]) -> dict[str, Any]:
        return {"head": 0, "entries": [e for e in body["entries"] if e["seq"] < 1], "more": False}

    rewrite_json(world.page, ENTRIES, "GET", before_the_removal)
    devices.call(bob.messenger.group_change, world.group_id, "remove", [carol.username])
    devices.run(bob.connection.send_group_text(world.group_id, "carol is out"))  # names head 1

    banner = world.page.locator("#group-banner")
    expect(banner).to_contain_text("keeping back a change", timeout=SLOW)
    expect(world.notice("keeping back a change")).to_have_count(1)
    expect(world.text("carol is out")).to_have_count(0)  # held until the entry comes
    expect(world.page.get_by_label("Message", exact=True)).to_be_disabled()
    expect(member_rows(world).filter(has_text=carol.username)).to_have_count(1)  # no guess
    screenshot(world.page, "group-withheld-390")


def test_a_chain_forked_from_the_other_members_is_refused_and_the_browser_stops(
    new_device, live_app, device_thread, tmp_path
):
    devices = device_thread
    world = trio(new_device, live_app, devices, tmp_path)
    bob, carol = world.devices["bob"], world.devices["carol"]
    record = devices.call(bob.messenger.store.group_record, world.group_id)
    # a second entry at seq 1 that bob's phone signed too, which the server shows alice only
    bob_name = world.people["bob"].username
    other = other_rename(world.group_id, record.chain, bob_name, bob.messenger.device.keys.identity)
    rewrite_json(world.page, ENTRIES, "GET", entry_replaced(1, other))
    devices.call(bob.messenger.group_change, world.group_id, "rename", name="Trip 2027")
    expect(world.page.locator("#group-title")).to_have_text("Not the trip", timeout=SLOW)
    devices.run(carol.wait_for(GroupEvent, 2))
    devices.run(carol.connection.send_group_text(world.group_id, "from the real chain"))
    expect(world.page.locator("#group-banner")).to_contain_text("different versions", timeout=SLOW)
    expect(world.notice("different versions")).to_have_count(1)
    expect(world.text("from the real chain")).to_have_count(0)
    expect(world.page.get_by_label("Message", exact=True)).to_be_disabled()


def test_a_non_members_message_and_a_replayed_message_are_refused_in_the_browser(
    new_device, live_app, device_thread, tmp_path, screenshot
):
    devices = device_thread
    sockets: list[PageSocket] = []
    world = trio(
        new_device,
        live_app,
        devices,
        tmp_path,
        before=lambda page: sockets.append(PageSocket(page)),
    )
    [socket] = sockets
    bob, mallory = world.devices["bob"], world.devices["mallory"]
    devices.run(bob.connection.send_group_text(world.group_id, "hello"))
    expect(world.text("hello")).to_be_visible(timeout=SLOW)
    [genuine] = [e for e in socket.delivered if "group" in e]

    # the server replays bob's message under a new queue position
    socket.inject({"type": "deliver", "v": 1, "envelopes": [{**genuine, "seq": 10**9}]})
    expect(
        world.notice("refused: it is a copy of a message this device already read")
    ).to_have_count(1, timeout=SLOW)

    # and delivers a message of mallory's device, under a sender key of her own
    record = devices.call(bob.messenger.store.group_record, world.group_id)
    key = new_sender_key(
        system_rng,
        group_id=b64u_decode(world.group_id),
        sender=world.people["mallory"].username,
        device=mallory.device_id,
    )
    _, message = encrypt_group(
        key, b"x" * 64, head_seq=record.chain.seq, head_hash=record.chain.head, rng=system_rng
    )
    forged = {
        **{k: v for k, v in genuine.items() if k != "ciphertext"},
        "seq": 10**9 + 1,
        "id": "mallory-1",
        "sender": world.people["mallory"].username,
        "sender_device": mallory.device_id,
        "group": b64u_encode(message),
    }
    socket.inject({"type": "deliver", "v": 1, "envelopes": [forged]})
    expect(world.notice("refused: its sender is not a member of the group")).to_have_count(
        1, timeout=SLOW
    )
    expect(world.page.locator("#group-message-list .message")).to_have_count(1)  # "hello" only
    screenshot(world.page, "group-refusals-390")
