"""Groups in the web app (docs/protocol.md 25.8 and 25.9), against a Python member: a group
another account creates shows up in /groups with its membership told in plain words; its
messages show with their author; a reply typed in the browser is one `group_send` that the
other member's device decrypts, under the sender key the browser distributed over the
pairwise session. A file dropped in the group reaches the other member's device, which
fetches it. Made an admin, the browser renames the group, then leaves it, and the
other member's log says both."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from client.attachments import download_file
from client.events import GroupFile, GroupReceiptReceived, GroupText
from tests.support.actors import person
from tests.support.browser import PHONE
from tests.support.devices import primary_messenger
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    collect_errors,
    new_primary,
    new_username,
    open_chats,
)
from tests.support.wire import receive_envelopes, send_frames

PLAN = os.urandom(150_000)


def open_groups(page: Page) -> None:
    page.goto("/groups")
    expect(page.locator("#groups-title")).to_have_text("Groups")
    expect(page.locator("html")).to_have_attribute("data-device-socket", "open", timeout=SLOW)


def group_text(page: Page, text: str):
    return page.locator("#group-message-list .message", has_text=text)


def test_a_group_from_another_account_is_read_and_answered_in_the_browser(
    new_device, live_app: LiveServer, tmp_path: Path, screenshot
):
    alice_name = new_username("alice")
    alice, _ = new_primary(new_device(viewport=PHONE), alice_name)
    bob = person(live_app, "bob")
    bob_messenger = primary_messenger(bob, tmp_path)
    open_chats(alice)
    add_contact(alice, bob.username)
    open_groups(alice)
    errors = collect_errors(alice)
    expect(alice.locator("#group-empty")).to_be_visible()

    # bob's terminal creates a group with alice and writes to it
    group_id, _ = bob_messenger.group_create("Trip", [alice_name])
    first, _ = bob_messenger.prepare_group_send(group_id, "hello group")
    assert first.keys  # alice's browser gets bob's sender key over their pairwise session
    bob_messenger.group_send_answered(first, {"type": "accepted", "id": first.send_id})
    cookie = bob.transport.cookie_header()
    send_frames(live_app.ws_url, live_app.url, cookie, [first.frame])

    # the doorbell and the message bring the group to alice's list, told in plain words
    item = alice.locator(f'#group-list [data-group="{group_id}"]')
    expect(item).to_contain_text("Trip", timeout=SLOW)
    expect(item).to_contain_text("hello group", timeout=SLOW)
    expect(item.locator(".unread")).to_have_text("1")
    item.locator("a").click()
    expect(alice.locator("#group-title")).to_have_text("Trip")
    expect(
        alice.locator("#group-message-list .message-notice", has_text="created the group")
    ).to_have_count(1)
    received = group_text(alice, "hello group")
    expect(received.locator(".message-author")).to_be_visible()
    alice.get_by_role("button", name="Members (2)").click()
    expect(alice.locator("#group-member-list .member")).to_have_count(2)
    alice.get_by_role("button", name="Members (2)").click()

    # alice answers; bob's device decrypts it under the key alice's browser sent it
    box = alice.get_by_label("Message", exact=True)
    box.fill("see you there")
    box.press("Enter")
    expect(box).to_have_value("")
    reply = group_text(alice, "see you there")
    expect(reply.locator(".message-status")).to_have_attribute("data-status", "sent", timeout=SLOW)
    # and alice's browser told bob it got his message and that alice read it (25.10)
    texts: list[GroupText] = []
    receipts: list[GroupReceiptReceived] = []
    for _ in range(6):
        for envelope in receive_envelopes(live_app.ws_url, live_app.url, cookie, 1):
            for event in bob_messenger.receive(envelope):
                texts += [event] if isinstance(event, GroupText) else []
                receipts += [event] if isinstance(event, GroupReceiptReceived) else []
        if texts and {r.kind for r in receipts} == {"delivered", "read"}:
            break
    assert [(t.group_id, t.sender, t.text) for t in texts] == [
        (group_id, alice_name, "see you there")
    ]
    assert {(r.sender, r.kind) for r in receipts} == {
        (alice_name, "delivered"),
        (alice_name, "read"),
    }
    assert len({r.message_ids for r in receipts}) == 1  # both for "hello group"

    screenshot(alice, "group-conversation-390")
    alice.set_viewport_size({"width": 1440, "height": 900})
    expect(item.locator(".unread")).to_have_count(0)  # read when it was shown
    screenshot(alice, "group-conversation-1440")

    # a file alice drops in the group goes once, as a group message, and bob's device fetches it
    alice.locator("#group-composer-file").set_input_files(
        {"name": "plan.pdf", "mimeType": "application/pdf", "buffer": PLAN}
    )
    plan = alice.locator(
        "#group-message-list .message", has=alice.locator('[data-file="plan.pdf"]')
    )
    expect(plan.locator(".message-status")).to_have_attribute("data-status", "sent", timeout=SLOW)
    files: list[GroupFile] = []
    for _ in range(6):
        for envelope in receive_envelopes(live_app.ws_url, live_app.url, cookie, 1):
            files += [e for e in bob_messenger.receive(envelope) if isinstance(e, GroupFile)]
        if files:
            break
    [got] = files
    assert (got.group_id, got.sender, got.pointer.name) == (group_id, alice_name, "plan.pdf")
    saved = download_file(bob.transport, got.pointer, tmp_path / "bob")  # type: ignore[arg-type]
    assert saved.read_bytes() == PLAN
    screenshot(alice, "group-file-1440")

    # bob makes alice an admin: she can rename the group, and bob's device reads the new name
    bob_messenger.group_change(group_id, "promote", [alice_name])
    notices = alice.locator("#group-message-list .message-notice")
    expect(notices.filter(has_text="an admin")).to_have_count(1, timeout=SLOW)
    alice.get_by_role("button", name="Members (2)").click()
    alice.get_by_label("Rename the group").fill("Trip 2027")
    alice.get_by_role("button", name="Rename", exact=True).click()
    expect(alice.locator("#group-title")).to_have_text("Trip 2027", timeout=SLOW)
    expect(notices.filter(has_text="renamed the group to “Trip 2027”")).to_have_count(1)
    bob_messenger.group_fetch(group_id)
    assert bob_messenger.store.group_record(group_id).chain.name == "Trip 2027"

    # alice leaves: her page says she gets nothing more, and bob's log no longer has her
    alice.once("dialog", lambda dialog: dialog.accept())
    alice.get_by_role("button", name="Leave group").click()
    expect(alice.locator("#group-banner")).to_contain_text("no longer a member", timeout=SLOW)
    expect(alice.get_by_label("Message", exact=True)).to_be_hidden()
    bob_messenger.group_fetch(group_id)
    assert bob_messenger.store.group_record(group_id).chain.members == {bob.username}
    assert errors == []
