"""Browser steps shared by the tests in tests/browser/: what a person does on Parley's pages
(sign up, link a companion, message in /chats), and a few plain requests from a page."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from playwright.sync_api import Error, Locator, Page, Route, expect

from tests.support.browser import VirtualAuthenticator, add_virtual_authenticator

SLOW = 15_000
DEVICES_URL = re.compile(r"/devices$")


def wait_until(
    page: Page, expression: str, arg: Any = None, *, timeout: int = SLOW, polling: int = 100
) -> Any:
    """Evaluate the function `expression` (async or not) in `page` until it returns a truthy
    value, for at most `timeout` ms; that value. Not `page.wait_for_function`: it does not
    await a promise its predicate returns (it returns at once, with the promise's value even
    when that is false), so it cannot wait on IndexedDB or a fetch. A navigation during a
    poll (the execution context destroyed) is polled again."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            value = page.evaluate(expression, arg)
        except Error as error:
            if "context was destroyed" not in str(error) and "navigat" not in str(error):
                raise
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} ms: {expression}")
        page.wait_for_timeout(polling)


def new_username(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def collect_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of `page` (CSP violations show up here).

    Chromium also logs every 4xx answer as an error; refusals the page shows are expected."""
    errors: list[str] = []

    def console(msg) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


class HeldScripts:
    """Holds every request for the page's scripts until `release()`: the page as a slow phone
    network shows it, its HTML there and its module scripts not yet arrived."""

    def __init__(self, page: Page) -> None:
        self.held: list[Route] = []
        self.released = False
        page.route("**/static/js/**", self._hold)

    def _hold(self, route: Route) -> None:
        if self.released:
            route.continue_()
        else:
            self.held.append(route)

    def release(self) -> None:
        self.released = True
        for route in self.held:
            route.continue_()
        self.held.clear()


def navigations(page: Page) -> list[str]:
    """Every URL `page` navigates to from now on, in order (form submissions included)."""
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url) if r.is_navigation_request() else None)
    return urls


def sign_up(page: Page, username: str, display_name: str | None = None) -> None:
    """Create an account on `page` (which needs a virtual authenticator) and land on /devices."""
    page.goto("/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Display name").fill(display_name or username.capitalize())
    page.get_by_role("button", name="Create account with fingerprint or face").click()
    expect(page).to_have_url(DEVICES_URL, timeout=SLOW)
    expect(page.locator("#device-list .device")).to_have_count(1, timeout=SLOW)


def new_primary(context, username: str | None = None) -> tuple[Page, VirtualAuthenticator]:
    """A page of `context` with a passkey authenticator, signed up as a new account."""
    page = context.new_page()
    auth = add_virtual_authenticator(page)
    sign_up(page, username or new_username())
    return page, auth


def show_link_code(companion: Page) -> str:
    """Open /link on the new browser; return the URL its QR code encodes."""
    companion.goto("/link")
    qr = companion.locator("#link-qr")
    expect(qr).to_have_attribute("data-url", re.compile(r"/link/approve#v1\."), timeout=SLOW)
    url = qr.get_attribute("data-url")
    assert url
    return url


def open_approval(primary: Page, url: str) -> None:
    """The primary opens the QR's URL and sees the anti-phishing approval page."""
    primary.goto(url)
    expect(primary.get_by_role("heading", name="Link a new device?")).to_be_visible(timeout=SLOW)


def approve(primary: Page, name: str) -> None:
    primary.get_by_label("Name for this device").fill(name)
    primary.get_by_role("button", name="Approve with fingerprint or face").click()


def wait_linked(primary: Page, companion: Page, name: str) -> None:
    expect(primary.locator("#approve-done-text")).to_contain_text(
        f"{name} is now linked", timeout=SLOW
    )
    expect(companion).to_have_url(DEVICES_URL, timeout=SLOW)
    expect(companion.locator("#device-list .device").first).to_be_visible(timeout=SLOW)


def check_code(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def link_companion(primary: Page, companion: Page, name: str = "Laptop") -> None:
    """Link `companion` to the primary's account by opening its QR URL on the primary."""
    url = show_link_code(companion)
    open_approval(primary, url)
    approve(primary, name)
    wait_linked(primary, companion, name)


def indexeddb_names(page: Page) -> list[str]:
    return page.evaluate("async () => (await indexedDB.databases()).map((d) => d.name)")


def fetch_json(page: Page, path: str):
    """The JSON answer of a plain GET from the page (as the server sent it, unless routed)."""
    return page.evaluate("async (p) => (await fetch(p)).json()", path)


def api_status(page: Page, path: str) -> int:
    """The HTTP status of a plain GET from the page (no automatic sign-in retry)."""
    return page.evaluate("async (p) => (await fetch(p)).status", path)


def api_post(page: Page, path: str, body: dict) -> tuple[int, dict]:
    """A plain JSON POST from the page with its CSRF token: (status, answer)."""
    return tuple(
        page.evaluate(
            """async ([p, body]) => {
                const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
                const response = await fetch(p, {
                    method: "POST",
                    headers: {"Content-Type": "application/json",
                              "X-CSRFToken": csrf ? csrf.slice("csrftoken=".length) : ""},
                    body: JSON.stringify(body),
                });
                return [response.status, await response.json()];
            }""",
            [path, body],
        )
    )


def new_device_notice(page: Page, name: str) -> Locator:
    """The "New device ‹name› linked at … Not you? Remove it" notice about `name`."""
    return page.locator(".new-device-notice").filter(has_text=f"New device {name} linked")


# ---- the messenger (/chats)


def open_chats(page: Page, path: str = "/chats") -> None:
    """Open the messenger and wait until this tab's device socket is up."""
    page.goto(path)
    expect(page.locator("#chats-title")).to_have_text("Chats")
    expect(page.locator("html")).to_have_attribute("data-device-socket", "open", timeout=SLOW)


def expect_conversation(page: Page, peer: str, timeout: int = 5_000) -> None:
    """The conversation with `peer` is open (its heading shows their name, then "@peer")."""
    conversation = page.locator("#conversation")
    expect(conversation).to_be_visible(timeout=timeout)
    expect(conversation).to_have_attribute("data-peer", peer, timeout=timeout)


def add_contact(page: Page, username: str) -> None:
    """Add a contact from the sidebar form; lands in the conversation with them."""
    page.get_by_label("Add a contact by username").fill(username)
    page.get_by_role("button", name="Add", exact=True).click()
    expect_conversation(page, username, timeout=SLOW)


def open_conversation(page: Page, peer: str) -> None:
    page.locator(f'#conversation-list [data-peer="{peer}"] a').click()
    expect_conversation(page, peer)


def send(page: Page, text: str) -> None:
    """Type a message and press Enter, as a person would."""
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")


def bubble(page: Page, text: str) -> Locator:
    """The message whose text is `text`, or whose first line is (its text element only: a
    bubble's text also holds its time, and "Burst 1" at 11:05 PM read as "Burst 111:05")."""
    exact = page.locator(".message-text", has_text=re.compile(rf"^{re.escape(text)}(\s|$)"))
    return page.locator("#message-list .message", has=exact)


def expect_status(page: Page, text: str, status: str, timeout: int = SLOW) -> None:
    expect(bubble(page, text).locator(".message-status")).to_have_attribute(
        "data-status", status, timeout=timeout
    )


def message_texts(page: Page) -> list[str]:
    return page.locator("#message-list .message .message-text").all_inner_texts()


def unread_badge(page: Page, peer: str) -> Locator:
    return page.locator(f'#conversation-list [data-peer="{peer}"] .unread')
