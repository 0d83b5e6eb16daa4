"""The browser messenger (issue 5): contacts, fan-out to every device of both accounts,
real-time delivery with sent → delivered → read, a device list that changes under a sender,
safety numbers, and a misbehaving server that replays an envelope."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE
from tests.support.web import (
    SLOW,
    add_contact,
    bubble,
    collect_errors,
    expect_status,
    link_companion,
    message_texts,
    new_primary,
    new_username,
    open_chats,
    open_conversation,
    send,
    unread_badge,
)

# Every status the (only) outgoing message shows, in order, without repeats.
RECORD_STATUSES = """() => {
  window.statusesSeen = [];
  const list = document.getElementById("message-list");
  const record = () => {
    for (const node of list.querySelectorAll(".message.out .message-status")) {
      const status = node.dataset.status;
      if (window.statusesSeen.at(-1) !== status) window.statusesSeen.push(status);
    }
  };
  new MutationObserver(record).observe(list, { childList: true, subtree: true, attributes: true });
}"""


def test_companion_and_contact_talk_in_real_time_and_the_closed_primary_catches_up(
    new_device, screenshot
):
    started = time.monotonic()
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice_context = new_device(viewport=DESKTOP)
    alice_primary, _ = new_primary(alice_context, alice_name)
    laptop = new_device(viewport=DESKTOP).new_page()
    link_companion(alice_primary, laptop, "Laptop")
    bob, _ = new_primary(new_device(viewport=PHONE), bob_name)
    laptop_errors, bob_errors = collect_errors(laptop), collect_errors(bob)
    # Alice's primary goes away (its context, and with it its IndexedDB, stays).
    alice_primary.close()

    open_chats(bob)
    add_contact(bob, alice_name)
    bob.get_by_role("link", name="← Chats").click()
    open_chats(laptop)
    add_contact(laptop, bob_name)
    screenshot(laptop, "chats-empty-conversation-1440")

    laptop.evaluate(RECORD_STATUSES)
    send(laptop, "Hi Bob, this is my laptop")
    expect(bubble(laptop, "Hi Bob, this is my laptop")).to_be_visible()
    # Bob's list shows it at once (unread); his device sent a delivery receipt.
    expect(unread_badge(bob, alice_name)).to_have_text("1", timeout=SLOW)
    expect(bob.locator(f'[data-peer="{alice_name}"] .conversation-preview')).to_have_text(
        "Hi Bob, this is my laptop"
    )
    expect_status(laptop, "Hi Bob, this is my laptop", "delivered")
    screenshot(bob, "chats-list-unread-390")

    # Bob opens the conversation: a read receipt; he answers.
    open_conversation(bob, alice_name)
    expect(bubble(bob, "Hi Bob, this is my laptop")).to_be_visible()
    expect_status(laptop, "Hi Bob, this is my laptop", "read")
    assert laptop.evaluate("window.statusesSeen") == ["sending", "sent", "delivered", "read"]
    send(bob, "Hello Alice!\nTwo lines.")
    expect(bubble(laptop, "Hello Alice!")).to_be_visible(timeout=SLOW)
    expect(bubble(laptop, "Hello Alice!").locator(".message-text")).to_have_text(
        "Hello Alice!\nTwo lines."
    )
    expect_status(bob, "Hello Alice!", "read")
    screenshot(bob, "conversation-390")
    screenshot(laptop, "conversation-1440")

    # Alice's primary, opened later, catches up from its queue: both messages, in order, once.
    primary = alice_context.new_page()
    open_chats(primary, f"/chats/{bob_name}")
    expect(primary.locator("#message-list .message")).to_have_count(2, timeout=SLOW)
    assert message_texts(primary) == ["Hi Bob, this is my laptop", "Hello Alice!\nTwo lines."]
    expect_status(primary, "Hi Bob, this is my laptop", "read")
    time.sleep(1)
    expect(primary.locator("#message-list .message")).to_have_count(2)
    assert laptop_errors == [] and bob_errors == []
    print(f"core promise: {time.monotonic() - started:.1f} s")


def _two_contacts(new_device, *, alice_viewport=DESKTOP, bob_viewport=PHONE):
    """Alice and Bob, each a primary in its own context, with each other as contacts."""
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(viewport=alice_viewport), alice_name)
    bob, bob_auth = new_primary(new_device(viewport=bob_viewport), bob_name)
    open_chats(alice)
    add_contact(alice, bob_name)
    open_chats(bob)
    add_contact(bob, alice_name)
    return alice, alice_name, bob, bob_name


def test_a_device_bob_links_gets_alices_next_message_and_alice_sees_the_list_change(
    new_device, screenshot
):
    alice, alice_name, bob, bob_name = _two_contacts(new_device)
    errors = collect_errors(alice)
    send(alice, "Before your new device")
    expect(bubble(bob, "Before your new device")).to_be_visible(timeout=SLOW)

    tablet = new_device(viewport=DESKTOP).new_page()
    link_companion(bob, tablet, "Tablet")
    # Alice's device still holds Bob's list v1: the server refuses the send with
    # mismatched_devices, her device fetches and verifies v2, and retries.
    send(alice, "After your new device")
    expect_status(alice, "After your new device", "delivered")
    # In plain words, with Bob's display name: no list versions, no device ids.
    notice = alice.locator("#message-list .message-notice", has_text="added a device")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text(
        f"{bob_name.capitalize()} added a device. Your messages now go to their 2 devices."
    )
    assert "version" not in notice.inner_text()
    screenshot(alice, "conversation-device-notice-1440")

    open_chats(tablet, f"/chats/{alice_name}")
    expect(bubble(tablet, "After your new device")).to_be_visible(timeout=SLOW)
    assert message_texts(tablet) == ["After your new device"]
    assert errors == []


def test_both_sides_show_the_same_sixty_digit_safety_number(new_device, screenshot):
    alice, alice_name, bob, bob_name = _two_contacts(new_device)
    alice.get_by_role("link", name="Safety number").click()
    bob.get_by_role("link", name="Safety number").click()
    numbers = []
    for page in (alice, bob):
        groups = page.locator("#safety-number .safety-group")
        expect(groups).to_have_count(12)
        texts = groups.all_inner_texts()
        assert all(len(g) == 5 and g.isdigit() for g in texts)
        numbers.append("".join(texts))
        expect(page.get_by_role("img", name="QR code of the safety number")).to_be_visible()
    assert numbers[0] == numbers[1] and len(numbers[0]) == 60
    screenshot(alice, "safety-number-1440")
    screenshot(bob, "safety-number-390")


def test_a_replayed_envelope_is_shown_once(new_device):
    """A misbehaving server delivers the same envelope again (before and after the ack)."""
    alice, alice_name, bob, bob_name = _two_contacts(new_device)
    captured: list[str] = []
    routes = []

    def relay(ws):
        server = ws.connect_to_server()
        routes.append(ws)

        def from_server(message):
            ws.send(message)
            if isinstance(message, str) and '"deliver"' in message and alice_name in message:
                captured.append(message)
                ws.send(message)  # replayed at once, before the ack

        server.on_message(from_server)
        ws.on_message(lambda message: server.send(message))

    bob.route_web_socket(lambda url: url.endswith("/ws/device/"), relay)
    open_chats(bob, f"/chats/{alice_name}")
    send(alice, "Only once, please")
    expect(bubble(bob, "Only once, please")).to_be_visible(timeout=SLOW)
    assert captured
    routes[-1].send(captured[0])  # and again later, after it was acked
    send(alice, "A second one")
    expect(bubble(bob, "A second one")).to_be_visible(timeout=SLOW)
    routes[-1].send(captured[0])
    time.sleep(1)
    assert message_texts(bob) == ["Only once, please", "A second one"]
    expect_status(alice, "A second one", "read")


def test_two_tabs_of_one_browser_are_one_device_with_one_socket(new_device, live_app):
    """DESIGN §7: several tabs of one browser are one device; one leader tab owns the socket."""
    import sqlite3

    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(viewport=DESKTOP), alice_name)
    bob_context = new_device(viewport=DESKTOP)
    first_tab, _ = new_primary(bob_context, bob_name)
    open_chats(first_tab)
    add_contact(first_tab, alice_name)  # receipts go only to contacts
    second_tab = bob_context.new_page()
    second_tab.goto("/chats")
    expect(second_tab.locator("#chats-title")).to_have_text("Chats")
    open_chats(alice)
    add_contact(alice, bob_name)
    send(alice, "One device, two tabs")
    expect_status(alice, "One device, two tabs", "read")  # Bob has the conversation open
    for tab in (first_tab, second_tab):
        expect(tab.locator(f'[data-peer="{alice_name}"] .conversation-preview')).to_have_text(
            "One device, two tabs", timeout=SLOW
        )
    sockets = [
        t.evaluate("document.documentElement.dataset.deviceSocket") for t in (first_tab, second_tab)
    ]
    assert sorted(sockets) == ["connecting", "open"]  # one leader holds the socket, one follows
    bob_device = first_tab.evaluate(
        "async () => (await (await fetch('/api/me')).json()).device.device_id"
    )
    with sqlite3.connect(live_app.db_path) as db:
        open_sockets = db.execute(
            "SELECT count(*) FROM devices_devicesocket WHERE device_id = ?", [bob_device]
        ).fetchone()[0]
    assert open_sockets == 1
