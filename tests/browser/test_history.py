"""History for a newly linked device (DESIGN section 7, docs/protocol.md section 12): the
primary seals its last 90 days as one secretstream, uploads it, and sends the key through the
pairwise session; the new device downloads, checks and imports it — or refuses it visibly."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from tests.support.actors import person
from tests.support.browser import DESKTOP, PHONE
from tests.support.devices import primary_messenger
from tests.support.rewriting import unless_closed
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    approve,
    collect_errors,
    expect_status,
    message_texts,
    new_primary,
    new_username,
    open_approval,
    open_chats,
    send,
    show_link_code,
    wait_linked,
)
from tests.support.wire import send_frames

HISTORY_MESSAGES = 50
# On a slow network: 33 long messages (about 150 KB sealed) at 10 KB/s, about 15 s each way.
SLOW_MESSAGES = 33
SLOW_BYTES_PER_SECOND = 10_000


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
        with unless_closed():
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


def throttle_history(page: Page, bytes_per_second: int) -> None:
    """A slow network for this page's history upload and download, both ways (Chromium's own
    throttling, over CDP); pages and scripts still load at full speed."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditionsByRule",
        {
            "offline": False,
            "matchedNetworkConditions": [
                {
                    "urlPattern": "*://*:*/api/history*",
                    "latency": 0,
                    "downloadThroughput": bytes_per_second,
                    "uploadThroughput": bytes_per_second,
                }
            ],
        },
    )


def in_flight(what: str) -> re.Pattern[str]:
    """Part way: between 1 and 32 of the 33 messages, with the time left."""
    some = r"([1-9]|[12][0-9]|3[0-2])"
    return re.compile(rf"{re.escape(what)}: {some} of {SLOW_MESSAGES} messages · about \d+ s left")


def test_on_a_slow_network_both_devices_count_the_messages_and_the_time_left(
    new_device, screenshot
):
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    bob_name = new_username("bob")
    new_primary(new_device(viewport=PHONE), bob_name)
    open_chats(alice)
    add_contact(alice, bob_name)
    filler = " ".join(["a longer message, so that the bundle takes a while on a slow line"] * 68)
    for i in range(SLOW_MESSAGES):
        send(alice, f"Message {i:02d}: {filler}")
    expect(alice.locator('#message-list .message-status[data-status="sent"]')).to_have_count(
        SLOW_MESSAGES, timeout=SLOW
    )

    laptop = new_device(viewport=PHONE).new_page()
    throttle_history(alice, SLOW_BYTES_PER_SECOND)
    throttle_history(laptop, SLOW_BYTES_PER_SECOND)
    link_with_history(alice, laptop, "Laptop")

    sending = alice.locator("#history-progress")
    expect(sending).to_have_text(
        in_flight("Sending your message history (encrypted)"), timeout=SLOW
    )
    for viewport in (DESKTOP, PHONE):
        alice.set_viewport_size(viewport)
        screenshot(alice, f"history-sending-slow-{viewport['width']}")
    receiving = laptop.locator("#history-progress")
    expect(receiving).to_have_text(in_flight("Receiving your message history"), timeout=30_000)
    for viewport in (PHONE, DESKTOP):
        laptop.set_viewport_size(viewport)
        screenshot(laptop, f"history-receiving-slow-{viewport['width']}")

    expect(sending).to_contain_text(f"({SLOW_MESSAGES} messages) was sent", timeout=30_000)
    expect(receiving).to_contain_text(
        f"Your message history arrived: {SLOW_MESSAGES} messages.", timeout=30_000
    )


def test_a_companion_linked_later_gets_its_groups_texts_in_the_history(
    new_device, live_app: LiveServer, tmp_path: Path, screenshot
):
    """The texts of the account's groups ride in the history too (section 22.7): the laptop,
    which holds no sender key of what was sent before it, shows them once it reads the log."""
    alice_name = new_username("alice")
    phone, _ = new_primary(new_device(viewport=PHONE), alice_name)
    open_chats(phone)
    bob = person(live_app, "bob")
    bob_messenger = primary_messenger(bob, tmp_path)
    group_id, _ = bob_messenger.group_create("Trip", [alice_name])
    first, _ = bob_messenger.prepare_group_send(group_id, "before the laptop")
    bob_messenger.group_send_answered(first, {"type": "accepted", "id": first.send_id})
    send_frames(live_app.ws_url, live_app.url, bob.transport.cookie_header(), [first.frame])
    phone.goto(f"/groups/{group_id}")
    expect(
        phone.locator("#group-message-list .message", has_text="before the laptop")
    ).to_be_visible(timeout=SLOW)
    box = phone.get_by_label("Message", exact=True)
    box.fill("me too")
    box.press("Enter")
    mine = phone.locator("#group-message-list .message", has_text="me too")
    expect(mine.locator(".message-status")).to_have_attribute("data-status", "sent", timeout=SLOW)

    laptop = new_device(viewport=DESKTOP).new_page()
    link_with_history(phone, laptop, "Laptop")
    receiving = laptop.get_by_role("progressbar", name="Receiving message history")
    expect(receiving).to_have_attribute("aria-valuenow", "100", timeout=SLOW)
    expect(laptop.locator("#history-progress")).to_contain_text("arrived: 2 messages", timeout=SLOW)
    laptop.goto(f"/groups/{group_id}")
    lines = laptop.locator("#group-message-list .message")
    expect(lines).to_have_count(2, timeout=SLOW)
    expect(lines.nth(0)).to_contain_text("before the laptop")
    expect(lines.nth(0).locator(".message-author")).to_be_visible()
    expect(lines.nth(1)).to_contain_text("me too")
    expect(lines.nth(1)).to_have_class(re.compile(r"\bout\b"))
    screenshot(laptop, "group-history-1440")
