"""The Python client as an adapter of the device engine (docs/protocol.md section 22): the
rules decided there hold for this client, over the live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.events import ReceiptOwed
from client.messenger import LIST_MAX_AGE_MS, Messenger, Refused, TextMessage
from client.store import now_ms
from protocol.content import ContentType
from protocol.rng import system_rng
from tests.client.test_messaging_refusals import delivered, person, rewritten
from tests.support.devices import primary_messenger, stamped_content


@pytest.fixture
def pair(live_app, tmp_path: Path) -> tuple[Messenger, Messenger]:
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    return primary_messenger(alice, tmp_path), primary_messenger(bob, tmp_path)


def test_a_contact_list_served_again_unchanged_is_fresh_for_five_more_minutes(pair):
    alice, bob = pair
    alice.prepare_send(bob.account_id, "first")
    fetches = rewritten(alice).rewrite(
        "GET", rf"/api/accounts/{bob.account_id}/device-list", lambda body: body
    )
    start = now_ms()
    alice.clock = lambda: start + LIST_MAX_AGE_MS + 1
    alice.prepare_send(bob.account_id, "after five minutes")  # stale: fetched, unchanged
    assert fetches.hits == 1
    alice.clock = lambda: start + LIST_MAX_AGE_MS + 2
    alice.prepare_send(bob.account_id, "a moment later")  # checked a moment ago: cached
    assert fetches.hits == 1


def test_a_device_list_notice_from_a_contact_is_refused_and_fetches_nothing(pair):
    alice, bob = pair
    alice_id = alice.device.device_id
    alice.add_contact(bob.account_id)
    opening = bob.prepare_send(alice.account_id, "hi")
    assert [type(e) for e in alice.receive(delivered(bob, opening.targets, alice_id))] == [
        TextMessage,
        ReceiptOwed,  # the engine's delivery receipt to a contact (in the synced contacts)
    ]
    fetches = rewritten(alice).rewrite(
        "GET", rf"/api/accounts/{bob.account_id}/device-list", lambda body: body
    )
    own = bob.store.device_list(bob.account_id)
    notice = stamped_content(
        bob, ContentType.DEVICE_LIST_NOTICE, {"device_list": own.device_list.to_dict()}
    )
    forged = bob.store.session(alice_id).encrypt(notice, system_rng)
    [refused] = alice.receive(delivered(bob, {alice_id: forged}, alice_id))
    assert isinstance(refused, Refused)
    assert "device list notice" in refused.reason
    assert "not one of your own devices" in refused.reason
    assert fetches.hits == 0
