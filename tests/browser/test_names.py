"""Names a person reads (issue #11): a contact's display name with the username as secondary
text, whole at 390 px; a nickname of one's own; a distinct default name per device, renamed
from any own device; notices in plain words."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.browser import DESKTOP, PHONE, add_virtual_authenticator
from tests.support.web import (
    DEVICES_URL,
    SLOW,
    add_contact,
    bubble,
    collect_errors,
    expect_conversation,
    link_companion,
    new_username,
    open_approval,
    open_chats,
    send,
    show_link_code,
    sign_up,
)

LONG_NAME = "Alexandrina Bartholomew-Featherstonehaugh"


def primary_named(context, username: str, display_name: str) -> Page:
    page = context.new_page()
    add_virtual_authenticator(page)
    sign_up(page, username, display_name)
    return page


def whole(page: Page, selector: str) -> bool:
    """Nothing of the element's text is cut off (no ellipsis, no hidden overflow)."""
    return page.locator(selector).evaluate(
        "(e) => e.scrollWidth <= e.clientWidth && getComputedStyle(e).textOverflow !== 'ellipsis'"
    )


def test_a_contacts_display_name_shows_whole_with_the_username_and_a_nickname_replaces_it(
    new_device, screenshot
):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice = primary_named(new_device(viewport=PHONE), alice_name, LONG_NAME)
    bob = primary_named(new_device(viewport=DESKTOP), bob_name, "Bob Marley")
    errors = collect_errors(bob)
    open_chats(alice)
    add_contact(alice, bob_name)
    open_chats(bob)
    add_contact(bob, alice_name)
    send(bob, "Hello from Bob")

    # Alice's phone: the conversation header names Bob, with "@bob…" under it.
    expect(bubble(alice, "Hello from Bob")).to_be_visible(timeout=SLOW)
    expect(alice.locator("#conversation-title .person-name")).to_have_text("Bob Marley")
    expect(alice.locator("#conversation-title .person-username")).to_have_text(f"@{bob_name}")
    expect(alice).to_have_title("Bob Marley · Parley")
    screenshot(alice, "names-conversation-390")

    # Bob's desktop and phone: Alice's long name is whole in the list and in the header.
    item = bob.locator(f'#conversation-list [data-peer="{alice_name}"]')
    expect(item.locator(".person-name")).to_have_text(LONG_NAME)
    expect(item.locator(".person-username")).to_have_text(f"@{alice_name}")
    expect(bob.locator("#conversation-title .person-name")).to_have_text(LONG_NAME)
    screenshot(bob, "names-conversation-1440")
    bob.set_viewport_size(PHONE)
    assert whole(bob, "#conversation-title")
    screenshot(bob, "names-conversation-long-390")
    bob.get_by_role("link", name="← Chats").click()
    expect(item.locator(".person-name")).to_have_text(LONG_NAME)
    assert whole(bob, f'#conversation-list [data-peer="{alice_name}"] .conversation-name')
    screenshot(bob, "names-chat-list-390")
    bob.set_viewport_size(DESKTOP)
    screenshot(bob, "names-chat-list-1440")

    # A nickname is Bob's own: shown instead of her display name, the username still under it.
    bob.goto(f"/chats/{alice_name}/contact")
    expect(bob.locator("#contact-display-name")).to_have_text(LONG_NAME)
    expect(bob.locator("#contact-username")).to_have_text(f"@{alice_name}")
    bob.get_by_label("Nickname").fill("Mum")
    bob.get_by_role("button", name="Save").click()
    expect(bob.locator("#nickname-message")).to_have_text(
        "Nickname saved. Only your devices see it."
    )
    expect(bob.locator("#contact-title .person-name")).to_have_text("Mum")
    expect(item.locator(".person-name")).to_have_text("Mum")
    expect(item.locator(".person-username")).to_have_text(f"@{alice_name}")
    screenshot(bob, "names-contact-1440")
    bob.set_viewport_size(PHONE)
    screenshot(bob, "names-contact-390")
    bob.get_by_role("link", name="← Conversation").click()
    expect_conversation(bob, alice_name)
    expect(bob.locator("#conversation-title .person-name")).to_have_text("Mum")
    # ...and stays after a reload (it lives in the contact record).
    bob.reload()
    expect(bob.locator("#conversation-title .person-name")).to_have_text("Mum", timeout=SLOW)

    # Emptying it brings her display name back.
    bob.goto(f"/chats/{alice_name}/contact")
    bob.get_by_label("Nickname").fill("")
    bob.get_by_role("button", name="Save").click()
    expect(bob.locator("#nickname-message")).to_have_text("Nickname removed.")
    expect(bob.locator("#contact-title .person-name")).to_have_text(LONG_NAME)
    assert errors == []


def test_a_device_linked_under_the_default_name_gets_its_own_and_any_device_renames_any(
    new_device, screenshot
):
    primary_context = new_device(viewport=DESKTOP)
    primary = primary_named(primary_context, new_username(), "Alice")
    default = primary.locator("#device-list .device .device-name").inner_text()
    assert re.fullmatch(r"\S+ on \S+", default)  # "Chromium on Linux"
    errors = collect_errors(primary)

    # The primary approves with the name the new browser proposed: the same as its own.
    laptop = new_device(viewport=PHONE).new_page()
    url = show_link_code(laptop)
    open_approval(primary, url)
    expect(primary.get_by_label("Name for this device")).to_have_value(default)
    primary.get_by_role("button", name="Approve with fingerprint or face").click()
    expect(primary.locator("#approve-done-text")).to_contain_text(
        f"{default} 2 is now linked", timeout=SLOW
    )
    expect(laptop).to_have_url(DEVICES_URL, timeout=SLOW)
    names = laptop.locator("#device-list .device .device-name")
    expect(names).to_have_text([default, f"{default} 2"], timeout=SLOW)

    # The laptop renames the primary; the primary's open devices page shows it at once.
    primary.goto("/devices")
    expect(primary.locator("#device-list .device")).to_have_count(2, timeout=SLOW)
    laptop.get_by_role("button", name=f"Rename {default}", exact=True).click()
    field = laptop.get_by_label(f"New name for {default}")
    expect(field).to_be_focused()
    field.fill("Desk")
    screenshot(laptop, "devices-rename-390")
    laptop.get_by_role("button", name="Save", exact=True).click()
    expect(laptop.locator("#devices-message")).to_have_text(
        f"Your device “{default}” is now called “Desk”."
    )
    expect(primary.locator("#device-list .device .device-name")).to_have_text(
        ["Desk", f"{default} 2"], timeout=SLOW
    )
    expect(primary.locator("#devices-message")).to_have_text("This device is now called “Desk”.")

    # A name another device has is refused in the form; nothing changes.
    primary.get_by_role("button", name=f"Rename {default} 2").click()
    primary.get_by_label(f"New name for {default} 2").fill("desk")
    primary.get_by_role("button", name="Save", exact=True).click()
    refusal = primary.locator(".device-rename .notice")
    expect(refusal).to_have_text(
        "Another of your devices is already called “desk”. Choose another name."
    )
    screenshot(primary, "devices-rename-refused-1440")
    primary.get_by_role("button", name="Cancel").click()
    expect(primary.locator("#device-list .device .device-name")).to_have_text(
        ["Desk", f"{default} 2"]
    )
    # The own device's name in the chats sidebar is the renamed one.
    open_chats(primary)
    expect(primary.locator("#chats-account")).to_have_text("Alice · Desk")
    for page, width in ((primary, 1440), (laptop, 390)):
        page.goto("/devices")
        expect(page.locator("#device-list .device")).to_have_count(2, timeout=SLOW)
        screenshot(page, f"devices-names-{width}")
    assert errors == []


READ_TWO_DAYS_AGO = """(username) => new Promise((resolve, reject) => {
    const open = indexedDB.open("parley");
    open.onsuccess = () => {
        const contacts = open.result.transaction("contacts", "readwrite").objectStore("contacts");
        const get = contacts.get(username);
        get.onsuccess = () => {
            const put = contacts.put({...get.result, displayNameAt: Date.now() - 2 * 86400000});
            put.onsuccess = () => resolve(true);
            put.onerror = () => reject(put.error);
        };
    };
})"""


def test_the_accounts_display_name_set_on_a_companion_reaches_its_devices_and_contacts(
    new_device, screenshot
):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice = primary_named(new_device(viewport=PHONE), alice_name, "Alice")
    bob = primary_named(new_device(viewport=DESKTOP), bob_name, "Bob")
    open_chats(bob)
    add_contact(bob, alice_name)
    row = bob.locator(f'#conversation-list [data-peer="{alice_name}"] .person-name')
    expect(row).to_have_text("Alice")
    laptop = new_device(viewport=DESKTOP).new_page()
    link_companion(alice, laptop, "Laptop")
    alice.goto("/devices")
    expect(alice.get_by_label("Display name")).to_have_value("Alice", timeout=SLOW)

    # On the laptop: "Your name" on the devices page; a blank name is refused in words.
    laptop.get_by_label("Display name").fill("   ")
    laptop.get_by_role("button", name="Save name").click()
    expect(laptop.locator("#account-name-message")).to_have_text(
        "Type the name your contacts should see."
    )
    laptop.get_by_label("Display name").fill("  Alice Liddell ")
    laptop.get_by_role("button", name="Save name").click()
    expect(laptop.locator("#account-name-message")).to_have_text(
        "Your contacts now see you as “Alice Liddell”."
    )
    expect(laptop.locator("#devices-account")).to_have_text(f"Alice Liddell (@{alice_name})")
    screenshot(laptop, "account-name-1440")

    # The phone learns it at once from the server (account_renamed), on every page.
    expect(alice.locator("#devices-account")).to_have_text(
        f"Alice Liddell (@{alice_name})", timeout=SLOW
    )
    expect(alice.get_by_label("Display name")).to_have_value("Alice Liddell")
    screenshot(alice, "account-name-390")
    open_chats(alice)
    expect(alice.locator("#chats-account")).to_contain_text("Alice Liddell")

    # Bob's device reads a contact's display name again once it is a day old.
    bob.reload()
    expect(row).to_have_text("Alice", timeout=SLOW)
    bob.evaluate(READ_TWO_DAYS_AGO, alice_name)
    bob.reload()
    expect(row).to_have_text("Alice Liddell", timeout=SLOW)
