"""No message lost to a broken session (issue 12, docs/protocol.md section 24), in real
browsers: a device that lost its session with a contact, or whose storage was restored from
an older copy, asks the contact's device to send again and shows the messages without the
person doing anything; a message the sender no longer holds ends in a clear "could not be
decrypted" line with a way to ask again; and two tabs with a reload in the middle of the
deliveries lose or corrupt nothing."""

from __future__ import annotations

import json
import time

from playwright.sync_api import Page, expect

from protocol.encoding import b64u_decode, b64u_encode
from tests.support.browser import DESKTOP, PHONE
from tests.support.rewriting import PageSocket
from tests.support.web import (
    SLOW,
    add_contact,
    bubble,
    collect_errors,
    expect_status,
    message_texts,
    new_primary,
    new_username,
    open_chats,
    send,
)

# Within seconds, without the person doing anything: the first ask goes at once (24.2).
RECOVERED = 10_000

OPEN_DB = """const openDb = (name, upgrade) => new Promise((ok, fail) => {
  const r = indexedDB.open(name, upgrade ? 1 : undefined);
  if (upgrade) r.onupgradeneeded = () => r.result.createObjectStore("dump");
  r.onsuccess = () => ok(r.result);
  r.onerror = () => fail(r.error);
});
const done = (t) => new Promise((ok, fail) => { t.oncomplete = ok; t.onerror = () => fail(t.error); });"""

# A copy of the device's whole IndexedDB, taken in one read transaction (a consistent state).
COPY_STORAGE = f"""async () => {{
  {OPEN_DB}
  const db = await openDb("parley");
  const names = [...db.objectStoreNames];
  const t = db.transaction(names, "readonly");
  const dump = {{}};
  for (const name of names) {{
    const s = t.objectStore(name);
    const keys = s.getAllKeys();
    const values = s.getAll();
    values.onsuccess = () => {{
      dump[name] = {{ inline: s.keyPath !== null, keys: keys.result, values: values.result }};
    }};
  }}
  await done(t);
  db.close();
  const copy = await openDb("parley-copy", true);
  const w = copy.transaction("dump", "readwrite");
  w.objectStore("dump").put(dump, "dump");
  await done(w);
  copy.close();
}}"""

# Put the copy back, store by store, as a restored browser profile would.
RESTORE_STORAGE = f"""async () => {{
  {OPEN_DB}
  const copy = await openDb("parley-copy", true);
  const r = copy.transaction("dump").objectStore("dump").get("dump");
  const dump = await new Promise((ok) => {{ r.onsuccess = () => ok(r.result); }});
  copy.close();
  const db = await openDb("parley");
  const t = db.transaction(Object.keys(dump), "readwrite");
  for (const [name, {{ inline, keys, values }}] of Object.entries(dump)) {{
    const s = t.objectStore(name);
    s.clear();
    values.forEach((value, i) => (inline ? s.put(value) : s.put(value, keys[i])));
  }}
  await done(t);
  db.close();
}}"""

CLEAR = f"""async ([store, key]) => {{
  {OPEN_DB}
  const db = await openDb("parley");
  const t = db.transaction(store, "readwrite");
  key === null ? t.objectStore(store).clear() : t.objectStore(store).delete(key);
  await done(t);
  db.close();
}}"""

# Every state a retry line of the conversation went through, in order, without repeats.
RECORD_RETRY_LINES = """() => {
  window.retryStates = [];
  const list = document.getElementById("message-list");
  const record = () => {
    for (const node of list.querySelectorAll("[data-retry]")) {
      if (window.retryStates.at(-1) !== node.dataset.state) window.retryStates.push(node.dataset.state);
    }
  };
  new MutationObserver(record).observe(list, { childList: true, subtree: true });
}"""


def eventually(page: Page, check, timeout_ms: int = RECOVERED):
    """Wait until `check()` is true, letting the page's handlers run meanwhile."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(100)


def device_id(page: Page) -> str:
    return page.evaluate("async () => (await (await fetch('/api/me')).json()).device.device_id")


def partial_sends(page: Page) -> list[dict]:
    """Every one-device send (a retry request or a resend, 24.4) on the sockets this page
    opens from now on."""
    sent: list[dict] = []

    def on_socket(ws) -> None:
        def on_frame(payload) -> None:
            if isinstance(payload, str) and '"partial"' in payload:
                sent.append(json.loads(payload))

        ws.on("framesent", on_frame)

    page.on("websocket", on_socket)
    return sent


class HeldDeliveries(PageSocket):
    """The device socket of a page, through a relay that can hold what one sender sends and
    let it through later, as it was or with every ciphertext's last byte flipped (corrupted
    on the way)."""

    def __init__(self, page: Page, sender: str) -> None:
        super().__init__(page)
        self.sender = sender
        self.holding = False
        self.held: list[str] = []

    def keep(self, message) -> bool:
        if not self.holding or not isinstance(message, str) or '"deliver"' not in message:
            return False
        envelopes = json.loads(message).get("envelopes", [])
        if any(e.get("sender") == self.sender for e in envelopes):
            self.held.append(message)
            return True
        return False

    def release(self, *, corrupted: bool = False) -> None:
        self.holding = False
        assert self.held
        for message in self.held:
            frame = json.loads(message)
            for envelope in frame["envelopes"] if corrupted else []:
                data = bytearray(b64u_decode(envelope["ciphertext"]))
                data[-1] ^= 0x01
                envelope["ciphertext"] = b64u_encode(bytes(data))
            self.inject(frame)
        self.held.clear()


def test_a_device_that_lost_its_session_or_was_restored_from_an_old_copy_shows_the_next_messages(
    new_device, screenshot
):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(viewport=DESKTOP), alice_name)
    bob_context = new_device(viewport=PHONE)
    bob, _ = new_primary(bob_context, bob_name)
    asks, resends = partial_sends(bob), partial_sends(alice)
    open_chats(alice)
    add_contact(alice, bob_name)
    open_chats(bob)
    add_contact(bob, alice_name)
    alice_errors = collect_errors(alice)
    alice_device = device_id(alice)
    send(alice, "Hello Bob")
    expect(bubble(bob, "Hello Bob")).to_be_visible(timeout=SLOW)
    send(bob, "Hello Alice")
    expect(bubble(alice, "Hello Alice")).to_be_visible(timeout=SLOW)

    # Bob's browser loses its session with Alice's device (storage cleared for that contact).
    bob.evaluate(CLEAR, ["sessions", alice_device])
    send(alice, "After the lost session")
    expect(bubble(bob, "After the lost session")).to_be_visible(timeout=RECOVERED)
    expect(bob.locator("#message-list [data-retry]")).to_have_count(0)
    # Asked of Alice's device alone, and answered to Bob's alone (her receipts in the old
    # session are asked for too)
    eventually(bob, lambda: asks and resends)
    assert all(set(a["targets"]) == {alice_device} for a in asks)
    assert all(len(r["targets"]) == 1 for r in resends)
    expect_status(alice, "After the lost session", "read")

    # A copy of Bob's storage, then ten messages back and forth (each side's ratchet moves
    # on), then Bob's browser restored from the copy: its sessions are ten messages behind.
    bob.evaluate(COPY_STORAGE)
    for n in range(5):
        send(alice, f"Alice {n}")
        expect(bubble(bob, f"Alice {n}")).to_be_visible(timeout=SLOW)
        send(bob, f"Bob {n}")
        expect(bubble(alice, f"Bob {n}")).to_be_visible(timeout=SLOW)
    expect_status(bob, "Bob 4", "read")
    bob.close()
    restorer = bob_context.new_page()
    restorer.goto("/api/me")  # a page of the origin that runs no Parley code
    restorer.evaluate(RESTORE_STORAGE)
    restorer.close()
    bob = bob_context.new_page()
    bob_errors = collect_errors(bob)
    held = HeldDeliveries(bob, alice_name)
    asks = partial_sends(bob)
    open_chats(bob, f"/chats/{alice_name}")
    expect(bubble(bob, "After the lost session")).to_be_visible()
    assert "Alice 0" not in message_texts(bob)  # what came after the copy is gone here

    send(alice, "After the restore")
    expect(bubble(bob, "After the restore")).to_be_visible(timeout=RECOVERED)
    eventually(bob, lambda: asks)
    send(bob, "Back in step")
    expect(bubble(alice, "Back in step")).to_be_visible(timeout=SLOW)
    expect_status(alice, "After the restore", "read")
    expect_status(bob, "Back in step", "read")  # Alice's last receipt came: she sends nothing now

    # A message whose sender no longer holds it (its resend cache cleared) and that was
    # corrupted on the way: the sender answers "not held", and the line says so at once,
    # with a way to ask again; no endless wait.
    held.holding = True
    send(alice, "Lost for good")
    eventually(bob, lambda: held.held)
    alice.evaluate(CLEAR, ["resendCache", None])  # encrypted and sent, and no longer held
    held.release(corrupted=True)
    alice_display = alice_name.capitalize()
    failed = bob.locator('#message-list .message-retry[data-state="failed"]')
    expect(failed).to_have_count(1, timeout=RECOVERED)
    expect(failed).to_contain_text(f"This message from {alice_display} could not be decrypted")
    ask_again = bob.get_by_role("button", name=f"Ask {alice_display} again for this message")
    expect(ask_again).to_be_visible()
    screenshot(bob, "retry-failed-390")
    bob.evaluate(RECORD_RETRY_LINES)
    # Asked again from the keyboard: the line waits (Alice's answer held on the way), then
    # says again that she no longer has it.
    asked = len(asks)
    held.holding = True
    ask_again.focus()
    bob.keyboard.press("Enter")
    waiting = bob.locator('#message-list .message-retry[data-state="waiting"]')
    expect(waiting).to_contain_text(f"Waiting for this message from {alice_display}")
    eventually(bob, lambda: len(asks) > asked and held.held)
    screenshot(bob, "retry-waiting-390")
    held.release()
    expect(failed).to_have_count(1, timeout=RECOVERED)
    assert bob.evaluate("window.retryStates")[-2:] == ["waiting", "failed"]
    assert "Lost for good" not in message_texts(bob)
    bob.set_viewport_size(DESKTOP)
    screenshot(bob, "retry-failed-1440")
    assert alice_errors == [] and bob_errors == []


PUT_RETRY = f"""async (record) => {{
  {OPEN_DB}
  const db = await openDb("parley");
  const t = db.transaction("retries", "readwrite");
  t.objectStore("retries").put(record, `${{record.sender_device}}/${{record.envelope_id}}`);
  await done(t);
  db.close();
}}"""


def test_two_tabs_and_a_reload_during_the_deliveries_lose_and_corrupt_nothing(
    new_device, screenshot
):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(viewport=DESKTOP), alice_name)
    bob_context = new_device(viewport=DESKTOP)
    first_tab, _ = new_primary(bob_context, bob_name)
    open_chats(first_tab)
    add_contact(first_tab, alice_name)  # the leader: it holds the socket and decrypts
    second_tab = bob_context.new_page()
    second_tab.goto(f"/chats/{alice_name}")  # follows, and leads once the first goes
    expect(second_tab.locator("#conversation")).to_be_visible()
    open_chats(alice)
    add_contact(alice, bob_name)
    asks = [partial_sends(first_tab), partial_sends(second_tab)]
    second_tab.evaluate(RECORD_RETRY_LINES)

    texts = [f"Burst {n}" for n in range(12)]
    for text in texts:
        send(alice, text)
        if text == "Burst 3":
            # the leader goes away while it decrypts and stores what keeps coming
            expect(bubble(second_tab, "Burst 0")).to_be_visible(timeout=SLOW)
            first_tab.reload()
    for tab in (second_tab, first_tab):
        expect(tab.locator("#message-list .message")).to_have_count(len(texts), timeout=SLOW)
        assert message_texts(tab) == texts
    time.sleep(1)  # a redelivery handled twice would show by now
    assert message_texts(second_tab) == texts
    # Nothing failed to decrypt, so nothing was asked for again: no session was corrupted.
    assert second_tab.evaluate("window.retryStates") == [] and asks == [[], []]
    send(second_tab, "All here")
    expect(bubble(alice, "All here")).to_be_visible(timeout=SLOW)
    expect_status(alice, texts[-1], "read")

    # A message from one of Bob's own devices that could not be decrypted has no
    # conversation to stand in: it is a notice above the list, with a way to ask again.
    second_tab.evaluate(
        PUT_RETRY,
        {
            "sender": bob_name,
            "sender_device": "own-laptop",
            "envelope_id": "e1",
            "sent_at": int(time.time() * 1000),
            "count": 5,
            "asked_at": int(time.time() * 1000),
            "state": "failed",
        },
    )
    second_tab.goto("/chats")
    notice = second_tab.locator('#own-retries [data-state="failed"]')
    expect(notice).to_contain_text("A message from one of your other devices")
    expect(
        second_tab.get_by_role("button", name="Ask your other device again for this message")
    ).to_be_visible()
    screenshot(second_tab, "retry-own-device-1440")
    second_tab.set_viewport_size(PHONE)
    screenshot(second_tab, "retry-own-device-390")
