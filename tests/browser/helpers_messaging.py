"""Browser steps of the messenger: what a person does in /chats."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers_accounts import SLOW


def open_chats(page: Page, path: str = "/chats") -> None:
    """Open the messenger and wait until this tab's device socket is up."""
    page.goto(path)
    expect(page.locator("#chats-title")).to_have_text("Chats")
    expect(page.locator("html")).to_have_attribute("data-device-socket", "open", timeout=SLOW)


def add_contact(page: Page, username: str) -> None:
    """Add a contact from the sidebar form; lands in the conversation with them."""
    page.get_by_label("Add a contact by username").fill(username)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#conversation-title")).to_have_text(username, timeout=SLOW)


def open_conversation(page: Page, peer: str) -> None:
    page.locator(f'#conversation-list [data-peer="{peer}"] a').click()
    expect(page.locator("#conversation-title")).to_have_text(peer)


def send(page: Page, text: str) -> None:
    """Type a message and press Enter, as a person would."""
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")


def bubble(page: Page, text: str) -> Locator:
    return page.locator("#message-list .message", has_text=re.compile(f"^{re.escape(text)}"))


def expect_status(page: Page, text: str, status: str, timeout: int = SLOW) -> None:
    expect(bubble(page, text).locator(".message-status")).to_have_attribute(
        "data-status", status, timeout=timeout
    )


def message_texts(page: Page) -> list[str]:
    return page.locator("#message-list .message .message-text").all_inner_texts()


def unread_badge(page: Page, peer: str) -> Locator:
    return page.locator(f'#conversation-list [data-peer="{peer}"] .unread')
