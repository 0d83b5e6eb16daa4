"""System notifications of new messages and the unread count in the title (issue #11).

Chromium's real Notification API is used: the permission is granted to the context and every
notification is constructed by the real constructor. An init script wraps (does not replace)
`window.Notification` to record what each constructed notification says (title, body, tag),
its `close()` calls, and every `Notification.requestPermission` call (kept in sessionStorage, so
the record survives the tab's navigations).

**Hidden pages are emulated.** Headless Chromium reports every page as visible whatever is
done to it: a second tab in front of it (`bring_to_front`, `Target.createTarget` and
`activateTarget` in the same window, `window.open`), `Browser.setWindowBounds` minimized (also
without Playwright's `--disable-backgrounding-occluded-windows`), `Page.setWebLifecycleState`
and `Emulation.setFocusEmulationEnabled` all leave `document.visibilityState` "visible" and
fire no `visibilitychange` (tried on Chromium 156). So the init script overrides
`document.visibilityState` (and `document.hidden`) on Document.prototype and a test flips it
with `window.parleyTest.setHidden(...)`, which dispatches `visibilitychange` as the browser
would.
"""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.support.browser import DESKTOP, PHONE, add_virtual_authenticator
from tests.support.web import (
    SLOW,
    add_contact,
    collect_errors,
    expect_conversation,
    link_companion,
    new_username,
    open_chats,
    open_conversation,
    send,
    sign_up,
)

RECORD_NOTIFICATIONS = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true,
    get() { return hidden ? "hidden" : "visible"; },
  });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return hidden; } });
  // What was shown survives the tab's navigations (a click may open another page).
  const saved = JSON.parse(sessionStorage.getItem("parleyTest") ?? '{"shown": [], "permissionRequests": 0}');
  const test = (window.parleyTest = { ...saved, objects: [] });
  const save = () => sessionStorage.setItem("parleyTest", JSON.stringify({ shown: test.shown, permissionRequests: test.permissionRequests }));
  test.setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  const Real = window.Notification;
  if (!Real) return;
  class Recorded extends Real {
    constructor(title, options = {}) {
      super(title, options);
      const entry = { title, body: options.body ?? "", tag: options.tag ?? "", closed: false };
      test.shown.push(entry);
      test.objects.push(this);
      save();
      const close = this.close.bind(this);
      this.close = () => {
        entry.closed = true;
        save();
        close();
      };
    }
    static get permission() { return Real.permission; }
    static requestPermission(...args) {
      test.permissionRequests += 1;
      save();
      return Real.requestPermission(...args);
    }
  }
  window.Notification = Recorded;
})();
"""


def device(new_device, *, viewport=DESKTOP, granted: bool = True) -> BrowserContext:
    context = new_device(viewport=viewport)
    context.add_init_script(RECORD_NOTIFICATIONS)
    if granted:
        context.grant_permissions(["notifications"])
    return context


def person(context: BrowserContext, username: str, display_name: str) -> Page:
    page = context.new_page()
    page.goto("/")
    add_virtual_authenticator(page)
    sign_up(page, username, display_name)
    return page


def shown(page: Page) -> list[dict]:
    return page.evaluate("window.parleyTest.shown")


def wait_shown(page: Page, count: int) -> list[dict]:
    page.wait_for_function(
        "(n) => window.parleyTest.shown.length >= n", arg=count, polling=50, timeout=SLOW
    )
    return shown(page)


def set_hidden(page: Page, hidden: bool) -> None:
    page.evaluate("(h) => window.parleyTest.setHidden(h)", hidden)


def two_people(new_device, **bob_options):
    """Alice ("Alice Liddell") and Bob, contacts of each other; Bob's browser records
    notifications."""
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice = person(new_device(viewport=DESKTOP), alice_name, "Alice Liddell")
    bob = person(device(new_device, **bob_options), bob_name, "Bob")
    open_chats(alice)
    add_contact(alice, bob_name)
    open_chats(bob)
    add_contact(bob, alice_name)
    return alice, alice_name, bob, bob_name


def test_a_hidden_page_shows_who_wrote_without_the_text_and_reading_closes_it(
    new_device, screenshot
):
    alice, alice_name, bob, bob_name = two_people(new_device, viewport=PHONE)
    errors = collect_errors(bob)
    bob.get_by_role("link", name="← Chats").click()
    expect(bob.locator("#notifications-state")).to_have_text(re.compile("^Notifications are on"))
    expect(bob.get_by_role("button", name="Turn on notifications")).to_be_hidden()
    expect(bob).to_have_title("Chats · Parley")
    screenshot(bob, "notifications-on-390")

    set_hidden(bob, True)
    send(alice, "The secret is 4711")
    first = wait_shown(bob, 1)
    assert first == [
        {
            "title": "Alice Liddell",
            "body": "New message",
            "tag": f"chat:{alice_name}",
            "closed": False,
        }
    ]
    expect(bob).to_have_title("(1) Chats · Parley")

    # The next message replaces it: one notification per conversation.
    send(alice, "And another secret")
    second = wait_shown(bob, 2)
    assert [n["closed"] for n in second] == [True, False]
    assert second[1] == {
        "title": "Alice Liddell",
        "body": "2 new messages",
        "tag": f"chat:{alice_name}",
        "closed": False,
    }
    expect(bob).to_have_title("(2) Chats · Parley")

    # Back on the page, the list alone reads nothing; opening the conversation does.
    set_hidden(bob, False)
    assert shown(bob)[1]["closed"] is False
    open_conversation(bob, alice_name)
    bob.wait_for_function("() => window.parleyTest.shown[1]?.closed", polling=50, timeout=SLOW)
    expect(bob).to_have_title("Alice Liddell · Parley")
    assert len(shown(bob)) == 2
    assert errors == []


def test_with_previews_on_the_notification_shows_the_text_and_a_click_opens_the_chat(
    new_device,
):
    alice, alice_name, bob, bob_name = two_people(new_device)
    preview = bob.get_by_label("Show message text in notifications")
    expect(preview).not_to_be_checked()
    preview.check()
    bob.reload()
    expect(preview).to_be_checked(timeout=SLOW)
    # A click opens the conversation from any page.
    bob.goto("/devices")
    expect(bob.locator("html")).to_have_attribute("data-device-socket", "open", timeout=SLOW)
    set_hidden(bob, True)
    send(alice, "Lunch at one?")
    assert wait_shown(bob, 1)[0]["body"] == "Lunch at one?"
    expect(bob).to_have_title(re.compile(r"^\(1\) "))

    set_hidden(bob, False)
    bob.evaluate("window.parleyTest.objects[0].dispatchEvent(new Event('click'))")
    expect(bob).to_have_url(re.compile(f"/chats/{alice_name}$"), timeout=SLOW)
    expect_conversation(bob, alice_name, timeout=SLOW)
    bob.wait_for_function("() => window.parleyTest.shown[0]?.closed", polling=50, timeout=SLOW)
    expect(bob).to_have_title("Alice Liddell · Parley")


def test_permission_is_asked_only_from_the_button(new_device, screenshot):
    alice_name = new_username("alice")
    context = device(new_device, granted=False)
    page = person(context, alice_name, "Alice")
    open_chats(page)
    state = page.locator("#notifications-state")
    expect(state).to_have_text("Notifications are off.")
    button = page.get_by_role("button", name="Turn on notifications")
    expect(button).to_be_visible()
    screenshot(page, "notifications-off-1440")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-device-socket", "open", timeout=SLOW)
    page.goto("/devices")
    expect(page.locator("#device-list .device")).to_have_count(1, timeout=SLOW)
    assert page.evaluate("window.parleyTest.permissionRequests") == 0

    # The person presses the button (keyboard reachable): the browser is asked once.
    # Headless Chromium answers a prompt with "denied", as a person blocking it would.
    open_chats(page)
    button.focus()
    page.keyboard.press("Enter")
    expect(state).to_have_text(
        "Notifications are blocked by the browser."
        " Allow them for this site in the browser's settings."
    )
    expect(button).to_be_hidden()
    assert page.evaluate("window.parleyTest.permissionRequests") == 1
    screenshot(page, "notifications-blocked-1440")
    # Allowed later in the browser's settings: the page follows.
    context.grant_permissions(["notifications"])
    expect(state).to_have_text(re.compile("^Notifications are on"))


def test_only_the_leader_tab_notifies_and_every_tab_counts_unread(new_device):
    alice, alice_name, bob, bob_name = two_people(new_device, viewport=PHONE)
    second = bob.context.new_page()
    second.goto("/devices")
    expect(second.locator("#device-list .device")).to_have_count(1, timeout=SLOW)
    bob.get_by_role("link", name="← Chats").click()
    for tab in (bob, second):
        set_hidden(tab, True)
    send(alice, "Two tabs, one device")
    expect(bob).to_have_title("(1) Chats · Parley", timeout=SLOW)
    expect(second).to_have_title("(1) Your devices · Parley", timeout=SLOW)
    leader = (
        bob if bob.evaluate("document.documentElement.dataset.deviceSocket") == "open" else second
    )
    assert len(wait_shown(leader, 1)) == 1
    assert len(shown(bob)) + len(shown(second)) == 1

    # Read in the other tab: the leader's notification closes, every title clears.
    set_hidden(bob, False)
    open_conversation(bob, alice_name)
    leader.wait_for_function("() => window.parleyTest.shown[0]?.closed", polling=50, timeout=SLOW)
    expect(second).to_have_title("Your devices · Parley", timeout=SLOW)


def test_reading_on_another_own_device_closes_the_notification_and_clears_the_count(
    new_device,
):
    alice, alice_name, bob, bob_name = two_people(new_device)
    laptop = new_device(viewport=DESKTOP).new_page()
    bob.goto("/devices")
    link_companion(bob, laptop, "Laptop")
    # Until contacts follow the account, the laptop adds Alice itself (read receipts and
    # their transcripts to own devices go only to contacts).
    open_chats(laptop)
    add_contact(laptop, alice_name)
    open_chats(laptop)
    open_chats(bob)
    set_hidden(bob, True)
    send(alice, "Read me anywhere")
    assert len(wait_shown(bob, 1)) == 1
    expect(bob).to_have_title("(1) Chats · Parley")

    open_conversation(laptop, alice_name)
    expect(laptop.locator("#message-list .message")).to_have_count(1, timeout=SLOW)
    bob.wait_for_function("() => window.parleyTest.shown[0]?.closed", polling=50, timeout=SLOW)
    expect(bob).to_have_title("Chats · Parley")
