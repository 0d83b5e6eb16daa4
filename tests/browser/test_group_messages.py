"""A group message reaching the web app, which runs no group machine yet (docs/protocol.md
25.9): the person is told once, in the sender's conversation, that a group message came; the
envelopes are acked, not asked for again; and the sender key that rode along over the pairwise
session keeps that session in step, so the sender's next text shows."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.support.actors import person
from tests.support.browser import PHONE
from tests.support.devices import primary_messenger
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    bubble,
    collect_errors,
    new_primary,
    new_username,
    open_chats,
)
from tests.support.wire import send_envelopes, send_frames


def test_a_group_message_is_told_once_and_the_pairwise_session_stays_in_step(
    new_device, live_app: LiveServer, tmp_path: Path, screenshot
):
    alice_name = new_username("alice")
    alice, _ = new_primary(new_device(viewport=PHONE), alice_name)
    bob = person(live_app, "bob")
    bob_messenger = primary_messenger(bob, tmp_path)
    open_chats(alice)
    add_contact(alice, bob.username)
    errors = collect_errors(alice)

    # bob's terminal creates a group with alice and writes to it twice
    group_id, _ = bob_messenger.group_create("Trip", [alice_name])
    first, _ = bob_messenger.prepare_group_send(group_id, "hello group")
    assert first.keys  # alice's browser gets bob's sender key over their pairwise session
    bob_messenger.group_send_answered(first, {"type": "accepted", "id": first.send_id})
    second, _ = bob_messenger.prepare_group_send(group_id, "hello again")
    cookie = bob.transport.cookie_header()
    send_frames(live_app.ws_url, live_app.url, cookie, [first.frame, second.frame])

    notices = alice.locator("#message-list .message-notice", has_text="sent you a group message")
    expect(notices).to_have_count(1, timeout=SLOW)
    expect(notices).to_contain_text("cannot show groups yet")
    # the session the sender key came over is in step: bob's next pairwise text decrypts
    text = bob_messenger.prepare_send(alice_name, "did you get it?")
    send_envelopes(
        live_app.ws_url, live_app.url, cookie, alice_name, [(text.envelope_id, text.targets)]
    )
    expect(bubble(alice, "did you get it?")).to_be_visible(timeout=SLOW)
    expect(alice.locator("#message-list", has_text="Waiting for this message")).to_have_count(0)
    expect(notices).to_have_count(1)
    screenshot(alice, "group-message-notice-390")
    alice.set_viewport_size({"width": 1440, "height": 900})
    screenshot(alice, "group-message-notice-1440")
    assert errors == []
