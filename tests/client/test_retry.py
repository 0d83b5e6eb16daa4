"""Retry requests, the resend cache and session repair in the Python client (docs/protocol.md
section 24), against the live server: a device whose session is behind, lost or never
matched gets the message again from the sender's cache, without the person doing anything;
what cannot be had ends in a clear line after bounded asks; and a session is saved with the
message it produced."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from client.messenger import Messenger, Refused, TextMessage
from tests.client.test_messaging_refusals import delivered
from tests.support.actors import person
from tests.support.devices import primary_messenger


@pytest.fixture
def pair(live_app, tmp_path: Path) -> tuple[Messenger, Messenger]:
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    return primary_messenger(alice, tmp_path), primary_messenger(bob, tmp_path)


def test_a_crash_while_keeping_a_message_leaves_it_to_be_decrypted_again(pair, monkeypatch):
    """The session, the seen id and the message commit together (24.5): a crash while the
    message is written (here the disk fails) keeps neither, and the redelivery shows it."""
    alice, bob = pair
    envelope = delivered(
        alice, alice.prepare_send(bob.account_id, "hello").targets, bob.device.device_id
    )

    def disk_fails(*args: object, **kwargs: object) -> bool:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(bob.store, "save_message", disk_fails)
        with pytest.raises(sqlite3.OperationalError):
            bob.receive(envelope)
    [shown] = bob.receive(envelope)  # the server redelivers what was not acked
    assert isinstance(shown, TextMessage) and shown.text == "hello"
    assert [m["text"] for m in bob.store.messages(alice.account_id)] == ["hello"]
    assert not [e for e in bob.receive(envelope) if not isinstance(e, Refused)]
