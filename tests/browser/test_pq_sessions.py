"""Version-2 sessions in the web app (docs/protocol.md section 27): a browser publishes its KEM
prekeys (a last-resort one and 25 one-time ones) when it opens, two browsers then talk in
version-2 sessions, the one-time KEM prekey the first message named is deleted from the
receiving browser's keys, and a Python device gets its messages in a version-2 session too."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from client.messenger import TextMessage
from tests.support.actors import person
from tests.support.browser import DESKTOP, PHONE
from tests.support.devices import primary_messenger
from tests.support.rewriting import rewrite_json
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    bubble,
    collect_errors,
    expect_status,
    new_primary,
    new_username,
    open_chats,
    send,
)
from tests.support.wire import receive_envelopes

BROWSER_KEM_POOL = 25  # static/js/app/device.js KEM_PREKEYS

# Runs in the page: this browser's keys and its session record with one device.
OWN_STATE = """async (deviceId) => {
  const store = await import("/static/js/app/store.js");
  const me = await store.getSelf();
  const record = deviceId ? await store.read("sessions", deviceId) : null;
  return { keys: me.keys, session: record ? record.current : null };
}"""


def kem_pool(live_app: LiveServer, device_id: str) -> tuple[int, int | None]:
    with sqlite3.connect(live_app.db_path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM devices_kemprekey WHERE device_id = ?", [device_id]
        ).fetchone()
        last = db.execute(
            "SELECT key_id FROM devices_lastresortkemprekey WHERE device_id = ?", [device_id]
        ).fetchone()
    return count, None if last is None else last[0]


def wait_for_kem_pool(live_app: LiveServer, device_id: str) -> int:
    deadline = time.monotonic() + 15
    while (pool := kem_pool(live_app, device_id))[0] != BROWSER_KEM_POOL or pool[1] is None:
        assert time.monotonic() < deadline, f"KEM pool is {pool}"
        time.sleep(0.1)
    assert pool[1] is not None
    return pool[1]


def device_id(page: Any) -> str:
    return page.evaluate("async () => (await (await fetch('/api/me')).json()).device.device_id")


def test_two_browsers_talk_in_version_2_sessions(new_device, live_app: LiveServer):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(viewport=PHONE), alice_name)
    bob, _ = new_primary(new_device(viewport=DESKTOP), bob_name)
    errors = collect_errors(alice) + collect_errors(bob)
    for page in (alice, bob):
        open_chats(page)
    alice_id, bob_id = device_id(alice), device_id(bob)
    last_resort = wait_for_kem_pool(live_app, bob_id)
    wait_for_kem_pool(live_app, alice_id)
    held = bob.evaluate(OWN_STATE, None)["keys"]
    assert held["version"] == 2 and held["last_resort_kem_prekey"]["id"] == last_resort
    assert len(held["kem_prekeys"]) == BROWSER_KEM_POOL

    add_contact(alice, bob_name)
    send(alice, "Safe from tomorrow's computers")
    add_contact(bob, alice_name)
    expect(bubble(bob, "Safe from tomorrow's computers")).to_be_visible(timeout=SLOW)
    send(bob, "And from today's")
    expect(bubble(alice, "And from today's")).to_be_visible(timeout=SLOW)

    bobs = bob.evaluate(OWN_STATE, alice_id)
    alices = alice.evaluate(OWN_STATE, bob_id)
    assert bobs["session"]["version"] == 2 and bobs["session"]["role"] == "responder"
    assert alices["session"]["version"] == 2 and alices["session"]["role"] == "initiator"
    assert len(bobs["keys"]["kem_prekeys"]) == BROWSER_KEM_POOL - 1  # the one used is gone
    assert kem_pool(live_app, bob_id) == (BROWSER_KEM_POOL - 1, last_resort)
    assert errors == []


def test_a_browser_and_a_python_device_talk_in_a_version_2_session(
    new_device, live_app: LiveServer, tmp_path: Path
):
    alice_name = new_username("alice")
    alice, _ = new_primary(new_device(viewport=DESKTOP), alice_name)
    errors = collect_errors(alice)
    open_chats(alice)
    wait_for_kem_pool(live_app, device_id(alice))
    bob = person(live_app, "bob")
    bob_messenger = primary_messenger(bob, tmp_path)
    bob_messenger.refill_prekeys()  # what its connection does on connect

    add_contact(alice, bob.username)
    send(alice, "Hello, Python")
    cookie = bob.transport.cookie_header()
    texts = [
        event
        for envelope in receive_envelopes(live_app.ws_url, live_app.url, cookie, 1)
        for event in bob_messenger.receive(envelope)
        if isinstance(event, TextMessage)
    ]
    assert [t.text for t in texts] == ["Hello, Python"]
    session = bob_messenger.store.session(device_id(alice))
    assert session is not None and session.version == 2
    assert errors == []


def test_a_bundle_stripped_of_its_kem_prekey_is_refused_and_nothing_is_sent(
    new_device, live_app: LiveServer, screenshot
):
    """A server that takes the KEM prekey out of a bundle, to have the page start a session a
    quantum computer could later open, gets a failed message that says why (27.5)."""
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(viewport=DESKTOP), alice_name)
    new_primary(new_device(viewport=DESKTOP), bob_name)
    open_chats(alice)
    add_contact(alice, bob_name)
    errors = collect_errors(alice)

    def strip(body: dict[str, Any]) -> dict[str, Any]:
        for bundle in body["bundles"]:
            bundle["kem_prekey"] = None
        return body

    hits = rewrite_json(alice, f"**/api/accounts/{bob_name}/bundles", "POST", strip)
    send(alice, "Not without a quantum-safe key")
    expect_status(alice, "Not without a quantum-safe key", "failed")
    reason = bubble(alice, "Not without a quantum-safe key").locator(".message-reason")
    expect(reason).to_contain_text(
        f"the server left out the post-quantum key of a device of {bob_name}"
    )
    screenshot(alice, "conversation-downgraded-bundle-1440")
    alice.set_viewport_size({"width": 390, "height": 844})
    screenshot(alice, "conversation-downgraded-bundle-390")
    assert hits
    assert not [e for e in errors if "quantum-safe" in e]
