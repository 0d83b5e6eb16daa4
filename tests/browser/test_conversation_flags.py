"""A conversation pinned, archived or muted, an account blocked and the notification-previews
setting follow the account to its other devices (issue #11, docs/protocol.md 22.8); a muted or
archived conversation raises no notification, and a blocked account's messages are shown on
no own device and answered with no receipt (the engine's rule, 22.6)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.test_notifications import device, person, set_hidden, shown, wait_shown
from tests.support.browser import DESKTOP, PHONE
from tests.support.web import (
    SLOW,
    add_contact,
    bubble,
    collect_errors,
    expect_status,
    link_companion,
    new_username,
    open_chats,
    send,
    wait_until,
)


def row(page: Page, peer: str, where: str = "#conversation-list"):
    return page.locator(f'{where} [data-peer="{peer}"]')


def flag(page: Page, peer: str, action: str) -> None:
    """Open the conversation with `peer` and choose `action` from its "More" menu."""
    page.goto(f"/chats/{peer}")
    expect(page.locator("#conversation")).to_have_attribute("data-peer", peer, timeout=SLOW)
    page.get_by_role("button", name="More").click()
    page.get_by_role("button", name=action, exact=True).click()
    expect(page.locator("#chat-menu")).to_be_hidden()


STORED = """async ([store, key]) => new Promise((resolve, reject) => {
    const open = indexedDB.open("parley");
    open.onsuccess = () => {
        const get = open.result.transaction(store).objectStore(store).get(key);
        get.onsuccess = () => resolve(get.result ?? null);
        get.onerror = () => reject(get.error);
    };
})"""


def stored(page: Page, store: str, key: str):
    """The record under `key` in this browser's IndexedDB object store `store`, or None."""
    return page.evaluate(STORED, [store, key])


def wait_handled(page: Page, sender: Page, sender_name: str, text: str) -> str:
    """Wait until `page`'s device has handled (decrypted, judged, acked) the message `text`
    that `sender` sent: its de-duplication key is stored, in the same transaction as anything
    the engine made of it. Returns the key of its message record."""
    message_id = bubble(sender, text).get_attribute("data-id")
    device_id = stored(sender, "device", "self")["deviceId"]
    wait_until(
        page,
        f"async () => (await ({STORED})(['seen', {f'{device_id}/{message_id}'!r}])) !== null",
    )
    return f"{sender_name}:{message_id}"


def expect_answered(page: Page, text: str) -> None:
    """The sender's ticks: a receipt came back for `text` (delivered, or read already)."""
    status = bubble(page, text).locator(".message-status")
    expect(status).to_have_attribute("data-status", re.compile("^(delivered|read)$"), timeout=SLOW)


def write_to(page: Page, peer: str, text: str) -> None:
    open_chats(page)
    add_contact(page, peer)
    send(page, text)


def test_pin_archive_mute_and_previews_follow_the_account(new_device, screenshot):
    alice_name = new_username("alice")
    alice = person(device(new_device, viewport=DESKTOP), alice_name, "Alice")
    friends = {name: new_username(name) for name in ("bob", "carol", "dave")}
    pages = {
        name: person(new_device(), username, name.capitalize())
        for name, username in friends.items()
    }
    bob, carol, dave = friends["bob"], friends["carol"], friends["dave"]
    laptop = new_device(viewport=PHONE).new_page()
    errors = collect_errors(laptop)
    link_companion(alice, laptop, "Laptop")
    open_chats(laptop)
    open_chats(alice)
    for name in (bob, carol, dave):
        add_contact(alice, name)

    flag(alice, bob, "Pin chat")
    flag(alice, carol, "Mute notifications")
    flag(alice, dave, "Archive chat")
    expect(alice.get_by_role("button", name="More")).to_be_focused()
    alice.get_by_label("Show message text in notifications").check()

    # On the companion: bob first (pinned, though the oldest), carol muted, dave archived.
    expect(row(laptop, dave, "#archived-list")).to_have_count(1, timeout=SLOW)
    expect(laptop.locator("#conversation-list > li").first).to_have_attribute(
        "data-peer", bob, timeout=SLOW
    )
    expect(row(laptop, bob).get_by_title("Pinned")).to_be_visible()
    expect(row(laptop, carol).get_by_title("Muted")).to_be_visible(timeout=SLOW)
    expect(row(laptop, dave)).to_have_count(0)
    expect(laptop.locator("#archived summary")).to_contain_text("Archived (1)")
    expect(row(laptop, dave, "#archived-list")).to_be_hidden()
    laptop.locator("#archived summary").click()
    expect(row(laptop, dave, "#archived-list")).to_be_visible()
    expect(laptop.get_by_label("Show message text in notifications")).to_be_checked(timeout=SLOW)

    # Messages come in while alice's list is hidden: the archived chat stays archived, and
    # only bob's (neither muted nor archived) raises a notification, with its text now.
    open_chats(alice)
    set_hidden(alice, True)
    write_to(pages["carol"], alice_name, "quiet please")
    write_to(pages["dave"], alice_name, "from the archive")
    expect(row(alice, carol).locator(".unread")).to_have_text("1", timeout=SLOW)
    expect(row(alice, dave, "#archived-list").locator(".unread")).to_have_text("1", timeout=SLOW)
    write_to(pages["bob"], alice_name, "ping")
    wait_shown(alice, 1)
    expect(row(alice, bob).locator(".unread")).to_have_text("1", timeout=SLOW)
    assert [(n["title"], n["body"]) for n in shown(alice)] == [("Bob", "ping")]
    expect(row(alice, dave)).to_have_count(0)
    expect(alice.locator("#archived-unread")).to_have_text("· 1 unread")
    set_hidden(alice, False)
    alice.locator("#archived summary").click()
    expect(row(alice, dave, "#archived-list")).to_be_visible()
    screenshot(alice, "flags-list-1440")
    laptop.goto("/chats")
    laptop.locator("#archived summary").click()
    expect(row(laptop, dave, "#archived-list")).to_be_visible(timeout=SLOW)
    screenshot(laptop, "flags-list-390")
    laptop.goto(f"/chats/{bob}")
    laptop.get_by_role("button", name="More").click()
    expect(laptop.get_by_role("button", name="Unpin chat")).to_be_visible()
    screenshot(laptop, "flags-menu-390")
    laptop.keyboard.press("Escape")

    # Undone on the companion, undone on the primary.
    flag(laptop, dave, "Unarchive chat")
    expect(row(alice, dave)).to_have_count(1, timeout=SLOW)
    expect(alice.locator("#archived")).to_be_hidden()

    # Writing in a pinned, muted chat keeps it pinned and muted.
    for peer in (bob, carol):
        open_chats(alice, f"/chats/{peer}")
        send(alice, "still where you were")
        expect_status(alice, "still where you were", "sent")
    open_chats(alice)
    expect(row(alice, bob).get_by_title("Pinned")).to_be_visible()
    expect(row(alice, carol).get_by_title("Muted")).to_be_visible()
    assert not errors


def test_a_blocked_account_is_shown_on_no_own_device_and_gets_no_receipt(new_device, screenshot):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice = person(new_device(viewport=DESKTOP), alice_name, "Alice")
    bob = person(new_device(), bob_name, "Bob")
    laptop = new_device(viewport=PHONE).new_page()
    errors = collect_errors(laptop)
    link_companion(alice, laptop, "Laptop")
    open_chats(alice)
    add_contact(alice, bob_name)
    write_to(bob, alice_name, "before")
    expect_answered(bob, "before")

    flag(alice, bob_name, "Block Bob")
    bar = alice.locator("#blocked-bar")
    expect(bar).to_contain_text("You blocked Bob.")
    expect(alice.locator("#composer")).to_be_hidden()
    open_chats(laptop, f"/chats/{bob_name}")
    expect(laptop.locator("#blocked-bar")).to_contain_text("You blocked Bob.", timeout=SLOW)
    expect(laptop.locator("#composer")).to_be_hidden()
    screenshot(alice, "blocked-composer-1440")
    screenshot(laptop, "blocked-composer-390")

    send(bob, "are you there?")
    for page in (alice, laptop):
        assert stored(page, "messages", wait_handled(page, bob, bob_name, "are you there?")) is None
    expect_status(bob, "are you there?", "sent")

    # Unblocked, the next message shows on both devices and is answered; the one sent while
    # blocked stays unseen and unanswered.
    alice.get_by_role("button", name="Unblock", exact=True).click()
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()
    expect(laptop.locator("#composer")).to_be_visible(timeout=SLOW)
    send(bob, "after")
    for page in (alice, laptop):
        expect(bubble(page, "after")).to_be_visible(timeout=SLOW)
        expect(bubble(page, "are you there?")).to_have_count(0)
        expect(bubble(page, "before")).to_be_visible()
    expect_answered(bob, "after")
    expect_status(bob, "are you there?", "sent")
    assert not errors
