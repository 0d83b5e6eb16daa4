"""A group of three people on six devices (docs/protocol.md 25), two of them browsers: alice
creates it on her phone, writes to it from her laptop while the phone is closed, removes a
member and adds another from the laptop. bob and carol are on Python phones and laptops.
Every member device and every own device gets each message; carol, removed, holding her
keys and the stored envelope, reads nothing sent after; dave, added later in his browser,
sees nothing from before."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from client.events import GroupEvent, GroupText
from protocol.encoding import b64u_decode
from protocol.exceptions import SenderKeyUnknown
from protocol.senderkeys import decrypt_group
from tests.support.actors import person
from tests.support.browser import DESKTOP, PHONE
from tests.support.devices import Device, DeviceThread, companion_messenger, primary_messenger
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    collect_errors,
    fetch_json,
    link_companion,
    new_primary,
    new_username,
    open_chats,
)


def open_group(page: Page, group_id: str) -> None:
    page.goto(f"/groups/{group_id}")
    expect(page.locator("html")).to_have_attribute("data-device-socket", "open", timeout=SLOW)


def group_text(page: Page, text: str):
    return page.locator("#group-message-list .message", has_text=text)


def send_to_group(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")
    status = group_text(page, text).locator(".message-status")
    expect(status).to_have_attribute("data-status", "sent", timeout=SLOW)


def members(page: Page) -> None:
    """Open the members panel."""
    button = page.locator("#group-members-button")
    if button.get_attribute("aria-expanded") != "true":
        button.click()


def texts(devices: DeviceThread, device: Device) -> list[tuple[str, str]]:
    return devices.call(lambda: [(e.sender, e.text) for e in device.of(GroupText)])


def wait_text(devices: DeviceThread, device: Device, count: int) -> list[tuple[str, str]]:
    devices.run(device.wait_for(GroupText, count, within=20))
    return texts(devices, device)


def test_three_people_on_six_devices_with_a_removal_and_a_later_member(
    new_device, live_app: LiveServer, tmp_path: Path, device_thread: DeviceThread, screenshot
):
    devices = device_thread
    alice_name = new_username("alice")
    phone_context = new_device(viewport=PHONE)
    phone, _ = new_primary(phone_context, alice_name)
    laptop = new_device(viewport=DESKTOP).new_page()
    link_companion(phone, laptop, "Laptop")
    bob, carol = person(live_app, "bob"), person(live_app, "carol")
    bob_phone = devices.connect(lambda: primary_messenger(bob, tmp_path), rewrite=lambda f: f)
    bob_laptop = devices.connect(lambda: companion_messenger(bob, tmp_path))
    carol_phone = devices.connect(lambda: primary_messenger(carol, tmp_path))
    carol_laptop = devices.connect(lambda: companion_messenger(carol, tmp_path))
    others = [bob_phone, bob_laptop, carol_phone, carol_laptop]

    # alice's phone makes the group of her contacts; every device of theirs reads the log
    for contact in (bob, carol):
        open_chats(phone)
        add_contact(phone, contact.username)
    phone.goto("/groups")
    phone.locator("#new-group summary").click()
    phone.get_by_label("Group name").fill("Trip")
    phone.get_by_label(re.compile(bob.username)).check()
    phone.get_by_label(re.compile(carol.username)).check()
    phone.get_by_role("button", name="Create group").click()
    expect(phone).to_have_url(re.compile(r"/groups/[A-Za-z0-9_-]{22}$"), timeout=SLOW)
    group_id = phone.url.rsplit("/", 1)[1]
    expect(phone.locator("#group-title")).to_have_text("Trip")
    for device in others:
        devices.run(device.wait_for(GroupEvent, within=20))

    # the phone is closed; the laptop writes, and every member device and own device gets it
    phone.close()
    open_group(laptop, group_id)
    errors = collect_errors(laptop)
    expect(laptop.locator("#group-title")).to_have_text("Trip", timeout=SLOW)
    send_to_group(laptop, "from the laptop")
    for device in others:
        assert wait_text(devices, device, 1) == [(alice_name, "from the laptop")]
    receipts = group_text(laptop, "from the laptop").locator(".message-receipts")
    expect(receipts).to_have_text("Delivered to 2 of 2", timeout=SLOW)  # people, not devices
    devices.run(bob_phone.connection.send_group_text(group_id, "hi from bob"))
    expect(group_text(laptop, "hi from bob").locator(".message-author")).to_be_visible(timeout=SLOW)
    assert wait_text(devices, bob_laptop, 2)[-1] == (bob.username, "hi from bob")
    assert wait_text(devices, carol_laptop, 2)[-1] == (bob.username, "hi from bob")

    # the laptop removes carol: what it sends next is under a key her devices never got
    [laptop_device] = [
        d["device_id"] for d in fetch_json(laptop, "/api/devices")["devices"] if d["this_device"]
    ]
    carol_chains = devices.call(
        lambda: carol_phone.messenger.store.group_record(group_id).receiving[laptop_device]
    )
    members(laptop)
    carol_row = laptop.locator(f'#group-member-list [data-member="{carol.username}"]')
    carol_row.get_by_role("button", name=re.compile("^Remove")).click()
    expect(laptop.locator("#group-members-message")).to_contain_text("was removed", timeout=SLOW)
    expect(laptop.locator("#group-member-list .member")).to_have_count(2)
    for device in (carol_phone, carol_laptop):
        devices.run(device.wait_for(GroupEvent, 2, within=20))  # told they are out
    send_to_group(laptop, "carol is out")
    assert wait_text(devices, bob_phone, 2)[-1] == (alice_name, "carol is out")
    assert wait_text(devices, bob_laptop, 3)[-1] == (alice_name, "carol is out")
    [stored] = devices.call(
        lambda: [
            e
            for e in bob_phone.connection.delivered
            if e.get("group") and e["sender_device"] == laptop_device
        ][-1:]
    )
    for chain in carol_chains:
        with pytest.raises(SenderKeyUnknown):
            decrypt_group(chain, b64u_decode(stored["group"]))
    for device in (carol_phone, carol_laptop):
        devices.run(device.connection.caught_up())
        assert (alice_name, "carol is out") not in texts(devices, device)

    # dave, added later from the laptop, sees the group but nothing sent before he joined
    dave_name = new_username("dave")
    dave, _ = new_primary(new_device(viewport=PHONE), dave_name)
    open_chats(laptop)
    add_contact(laptop, dave_name)
    open_group(laptop, group_id)
    members(laptop)
    laptop.get_by_label("Add a member").select_option(dave_name)
    laptop.get_by_role("button", name="Add", exact=True).click()
    added = f"{dave_name} was added"
    expect(laptop.locator("#group-members-message")).to_contain_text(added, timeout=SLOW)
    members(laptop)
    send_to_group(laptop, "welcome dave")
    open_group(dave, group_id)
    expect(group_text(dave, "welcome dave")).to_be_visible(timeout=SLOW)
    receipts = group_text(laptop, "welcome dave").locator(".message-receipts")
    expect(receipts).to_have_text("Delivered to 2 of 2 · Read by 1", timeout=SLOW)  # dave read it
    for before in ("from the laptop", "hi from bob", "carol is out"):
        expect(group_text(dave, before)).to_have_count(0)
    assert wait_text(devices, bob_phone, 3)[-1] == (alice_name, "welcome dave")

    # alice's phone, opened again, has the whole conversation as an own device
    phone = phone_context.new_page()
    phone.goto("/groups")
    item = phone.locator(f'#group-list [data-group="{group_id}"]')
    expect(item).to_contain_text("welcome dave", timeout=SLOW)
    expect(item.locator(".unread")).to_have_count(0)  # bob's text was read on the laptop (23)
    open_group(phone, group_id)
    for text in ("from the laptop", "hi from bob", "carol is out", "welcome dave"):
        expect(group_text(phone, text)).to_be_visible(timeout=SLOW)
    expect(group_text(phone, "from the laptop").locator(".message-author")).to_have_count(0)
    notices = phone.locator("#group-message-list .message-notice")
    expect(notices.filter(has_text="removed")).to_have_count(1)
    expect(notices.filter(has_text="refused")).to_have_count(0)  # a redelivery is no replay
    screenshot(phone, "group-phone-after-390")
    screenshot(laptop, "group-laptop-1440")
    screenshot(dave, "group-later-member-390")
    assert errors == []
