"""History for a newly linked device (DESIGN section 7, docs/protocol.md section 12): the
primary seals its last 90 days as one secretstream, uploads it, and sends the key through the
pairwise session; the new device downloads, checks and imports it — or refuses it visibly."""

from __future__ import annotations

import time

from playwright.sync_api import Route, expect

from tests.browser.helpers_accounts import (
    SLOW,
    approve,
    collect_errors,
    new_primary,
    new_username,
    open_approval,
    show_link_code,
    wait_linked,
)
from tests.browser.helpers_messaging import (
    add_contact,
    expect_status,
    message_texts,
    open_chats,
    send,
)
from tests.support.browser import DESKTOP, PHONE

HISTORY_MESSAGES = 50


def link_with_history(primary, companion, name: str) -> None:
    url = show_link_code(companion)
    open_approval(primary, url)
    primary.get_by_label("Send my message history to this device").check()
    approve(primary, name)
    wait_linked(primary, companion, name)


def test_a_companion_linked_after_fifty_messages_shows_them_after_history_sync(
    new_device, screenshot
):
    started = time.monotonic()
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    bob_name = new_username("bob")
    new_primary(new_device(viewport=PHONE), bob_name)
    open_chats(alice)
    add_contact(alice, bob_name)
    texts = [f"Message number {i:02d}" for i in range(HISTORY_MESSAGES)]
    for text in texts:
        send(alice, text)
    expect(alice.locator('#message-list .message-status[data-status="sent"]')).to_have_count(
        HISTORY_MESSAGES, timeout=SLOW
    )

    laptop = new_device(viewport=PHONE).new_page()
    errors = collect_errors(laptop)
    link_with_history(alice, laptop, "Laptop")
    # Both devices show the transfer's progress bar; it stays at 100 % when done.
    sending = alice.get_by_role("progressbar", name="Sending message history")
    expect(sending).to_be_visible(timeout=SLOW)
    expect(sending).to_have_attribute("aria-valuenow", "100", timeout=SLOW)
    expect(alice.locator("#history-progress")).to_contain_text(f"({HISTORY_MESSAGES} messages)")
    screenshot(alice, "history-sent-1440")
    receiving = laptop.get_by_role("progressbar", name="Receiving message history")
    expect(receiving).to_be_visible(timeout=SLOW)
    expect(receiving).to_have_attribute("aria-valuenow", "100", timeout=SLOW)
    expect(laptop.locator("#history-progress")).to_contain_text(
        f"{HISTORY_MESSAGES} messages", timeout=SLOW
    )
    screenshot(laptop, "history-received-390")

    laptop.get_by_role("link", name="Open your chats").click()
    expect(laptop.locator(f'#conversation-list [data-peer="{bob_name}"]')).to_contain_text(
        texts[-1]
    )
    open_chats(laptop, f"/chats/{bob_name}")
    expect(laptop.locator("#message-list .message")).to_have_count(HISTORY_MESSAGES)
    assert message_texts(laptop) == texts
    # The imported contact works: the new device can write to Bob straight away.
    send(laptop, "Hello from the new laptop")
    expect_status(laptop, "Hello from the new laptop", "sent")
    assert errors == []
    print(f"history: {time.monotonic() - started:.1f} s")


def test_a_tampered_history_blob_is_refused_visibly(new_device, screenshot):
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    laptop = new_device(viewport=DESKTOP).new_page()
    tampered: list[str] = []

    def flip_a_byte(route: Route) -> None:
        response = route.fetch()
        body = bytearray(response.body())
        body[len(body) // 2] ^= 0x01
        tampered.append(route.request.url)
        route.fulfill(response=response, body=bytes(body))

    # The server (or anyone on the way) hands the new device a modified blob.
    laptop.route("**/api/history/*", flip_a_byte)
    link_with_history(alice, laptop, "Laptop")
    alert = laptop.locator("#history-progress")
    expect(alert).to_have_attribute("role", "alert", timeout=SLOW)
    expect(alert).to_contain_text("Your message history was refused")
    expect(alert).to_contain_text("hash differs")
    assert tampered
    screenshot(laptop, "history-refused-1440")
    laptop.goto("/chats")
    expect(laptop.locator("#history-state")).to_contain_text("was refused")
    expect(laptop.locator("#conversation-list li")).to_have_count(0)
