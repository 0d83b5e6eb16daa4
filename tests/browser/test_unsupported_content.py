"""A content of a type this version does not know (a contact on a newer Parley) is kept and
shown as an unsupported message, never dropped (DESIGN section 8, docs/protocol.md section
10), in the conversation and in the chat list."""

from __future__ import annotations

import secrets
from pathlib import Path

from playwright.sync_api import expect

from protocol.content import ContentType
from protocol.rng import system_rng
from tests.support.actors import person
from tests.support.browser import PHONE
from tests.support.devices import primary_messenger, stamped_content
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    collect_errors,
    new_primary,
    new_username,
    open_chats,
)
from tests.support.wire import send_envelopes


def test_a_message_of_a_newer_content_type_is_shown_as_unsupported(
    new_device, live_app: LiveServer, tmp_path: Path, screenshot
):
    alice_name = new_username("alice")
    alice, _ = new_primary(new_device(viewport=PHONE), alice_name)
    bob = person(live_app, "bob")
    bob_messenger = primary_messenger(bob, tmp_path)
    open_chats(alice)
    add_contact(alice, bob.username)
    errors = collect_errors(alice)

    # Bob's newer Parley sends a text, then a content of a type 1.0 does not know (42).
    text = bob_messenger.prepare_send(alice_name, "Before the new feature")
    [alice_device] = text.recipient_devices
    session = bob_messenger.store.session(alice_device)
    newer = stamped_content(bob_messenger, ContentType.TYPING, {"state": "started"}, type_byte=42)
    sends = [
        (text.envelope_id, text.targets),
        (secrets.token_urlsafe(16), {alice_device: session.encrypt(newer, system_rng)}),
    ]
    send_envelopes(live_app.ws_url, live_app.url, bob.transport.cookie_header(), alice_name, sends)

    unsupported = alice.locator('#message-list .message[data-kind="unsupported"]')
    expect(unsupported).to_have_count(1, timeout=SLOW)
    expect(unsupported).to_contain_text("cannot show. Update Parley to see it.")
    expect(
        alice.locator("#message-list .message", has_text="Before the new feature")
    ).to_be_visible()
    screenshot(alice, "unsupported-message-390")
    alice.set_viewport_size({"width": 1440, "height": 900})
    screenshot(alice, "unsupported-message-1440")
    assert errors == []
