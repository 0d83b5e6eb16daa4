"""Two device rules the Python and browser clients used to disagree on, now decided once in the
device engine (docs/protocol.md section 22.4), seen in a real browser: a contact's cached list
older than five minutes is fetched again before a send, and a device-list notice from a
contact is refused and fetches nothing."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from playwright.sync_api import Page, Request, expect

from protocol.content import ContentType
from protocol.rng import system_rng
from tests.support.actors import person
from tests.support.devices import primary_messenger, stamped_content
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    collect_errors,
    expect_status,
    new_primary,
    new_username,
    open_chats,
    send,
)
from tests.support.wire import send_envelopes

BACKDATE = """async ({account, ageMs}) => {
  const db = await new Promise((ok, fail) => {
    const r = indexedDB.open("parley");
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
  await new Promise((ok, fail) => {
    const t = db.transaction("lists", "readwrite");
    const s = t.objectStore("lists");
    const g = s.get(account);
    g.onsuccess = () => s.put({...g.result, checkedAt: Date.now() - ageMs}, account);
    t.oncomplete = ok;
    t.onerror = () => fail(t.error);
  });
  db.close();
}"""


def list_fetches(page: Page, account: str) -> list[str]:
    """Every GET of `account`'s device list this page makes from now on."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "GET" and request.url.endswith(f"/api/accounts/{account}/device-list"):
            seen.append(request.url)

    page.on("request", on_request)
    return seen


def test_a_contacts_list_cached_over_five_minutes_is_fetched_again_before_a_send(new_device):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(), alice_name)
    bob, _ = new_primary(new_device(), bob_name)
    open_chats(alice)
    add_contact(alice, bob_name)
    open_chats(bob)
    add_contact(bob, alice_name)
    errors = collect_errors(alice)
    fetches = list_fetches(alice, bob_name)

    send(alice, "While the list is fresh")
    expect_status(alice, "While the list is fresh", "read")
    assert fetches == []  # a list checked moments ago is used from the cache

    alice.evaluate(BACKDATE, {"account": bob_name, "ageMs": 5 * 60 * 1000 + 1000})
    send(alice, "After five minutes")
    expect_status(alice, "After five minutes", "read")
    assert len(fetches) == 1  # fetched and verified again before encrypting
    assert errors == []


def test_a_device_list_notice_from_a_contact_is_refused_and_fetches_nothing(
    new_device, live_app: LiveServer, tmp_path: Path
):
    alice_name = new_username("alice")
    alice, _ = new_primary(new_device(), alice_name)
    bob = person(live_app, "bob")
    bob_messenger = primary_messenger(bob, tmp_path)
    open_chats(alice)
    add_contact(alice, bob.username)
    fetches = list_fetches(alice, bob.username)

    # Bob's device (honestly listed, stamped with the list Alice holds) sends a text, then a
    # content only Alice's own devices may send, on the same session.
    text = bob_messenger.prepare_send(alice_name, "And a real message")
    [alice_device] = text.recipient_devices
    session = bob_messenger.store.session(alice_device)
    own = bob_messenger.store.device_list(bob.username)
    notice = stamped_content(
        bob_messenger, ContentType.DEVICE_LIST_NOTICE, {"device_list": own.device_list.to_dict()}
    )
    sends = [
        (text.envelope_id, text.targets),
        (secrets.token_urlsafe(16), {alice_device: session.encrypt(notice, system_rng)}),
    ]

    send_envelopes(live_app.ws_url, live_app.url, bob.transport.cookie_header(), alice_name, sends)

    warning = alice.locator(
        "#message-list .message-notice", has_text="only your own devices may send"
    )
    expect(warning).to_have_count(1, timeout=SLOW)
    expect(alice.locator("#message-list .message", has_text="And a real message")).to_be_visible()
    time.sleep(1)  # a follow-up fetch would have been made by now
    assert fetches == []
