"""Retry requests, the resend cache and session repair in the Python client (docs/protocol.md
section 24), against the live server: a device whose session is behind, lost or never
matched gets the message again from the sender's cache, without the person doing anything;
what cannot be had ends in a clear line after bounded asks; and a session is saved with the
message it produced."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from client.events import MessageUndecryptable, MessageWaiting
from client.messenger import Messenger, Refused, TextMessage, describe
from client.store import Store, now_ms
from protocol.engine import MAX_RETRIES, RESEND_CACHE_MS, retry_wait
from tests.client.test_cli import run_cli
from tests.client.test_messaging_refusals import delivered
from tests.support.actors import person
from tests.support.devices import Device, primary_messenger


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


async def connected(*messengers: Messenger, **options: object) -> list[Device]:
    return [await Device(m).connect(**options) for m in messengers]


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a store file (SQLite's backup), as a backup tool would take it."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


async def test_a_device_restored_from_a_copy_ten_messages_old_shows_the_next_messages(
    pair, tmp_path
):
    """The copy's ratchet is behind the sender's (both sides ratcheted since): the next
    message does not decrypt, the device asks, and the sender sends it again in a new
    session (24.1), without the person doing anything."""
    alice, bob = pair
    alice_phone, bob_phone = await connected(alice, bob)
    await alice_phone.connection.send_text(bob.account_id, "hi bob")
    await bob_phone.wait_for(TextMessage)
    await bob_phone.connection.send_text(alice.account_id, "hi alice")
    await alice_phone.wait_for(TextMessage)
    backup = tmp_path / "bob-backup.sqlite3"
    copy_store(bob.store.path, backup)
    for n in range(5):  # ten messages, both ways: the copy knows none of these ratchet keys
        await alice_phone.connection.send_text(bob.account_id, f"a{n}")
        await bob_phone.wait_for(TextMessage, 2 + n)
        await bob_phone.connection.send_text(alice.account_id, f"b{n}")
        await alice_phone.wait_for(TextMessage, 2 + n)
    await bob_phone.close()
    bob.store.close()
    copy_store(backup, bob.store.path)  # the device comes back from its backup
    restored = Messenger(Store.open(bob.store.path), bob.transport)
    [bob_again] = await connected(restored)

    await alice_phone.connection.send_text(bob.account_id, "are you back?")
    [waiting] = await bob_again.wait_for(MessageWaiting)
    assert waiting.sender == alice.account_id
    [back] = await bob_again.wait_for(TextMessage)
    await alice_phone.connection.send_text(bob.account_id, "and this one?")
    await bob_again.wait_for(TextMessage, 2)
    assert [m.text for m in bob_again.of(TextMessage)] == ["are you back?", "and this one?"]
    assert back.sender_device == alice.device.device_id
    assert bob_again.of(MessageUndecryptable) == [] and restored.store.retries() == {}
    assert [m["text"] for m in restored.store.messages(alice.account_id)][-2:] == [
        "are you back?",
        "and this one?",
    ]
    await alice_phone.close()
    await bob_again.close()


async def test_a_device_that_lost_its_session_recovers_on_the_contacts_next_message(pair):
    alice, bob = pair
    alice_phone, bob_phone = await connected(alice, bob)
    await alice_phone.connection.send_text(bob.account_id, "one")
    await bob_phone.wait_for(TextMessage)
    await bob_phone.connection.send_text(alice.account_id, "two")
    await alice_phone.wait_for(TextMessage)
    bob.store.delete_session(alice.device.device_id)  # storage cleared for that contact

    await alice_phone.connection.send_text(bob.account_id, "three")
    await bob_phone.wait_for(TextMessage, 2)
    await alice_phone.connection.send_text(bob.account_id, "four")
    await bob_phone.wait_for(TextMessage, 3)
    assert [m.text for m in bob_phone.of(TextMessage)] == ["one", "three", "four"]
    assert len(bob_phone.of(MessageWaiting)) == 1
    assert bob_phone.of(MessageUndecryptable) == [] and bob.store.retries() == {}
    await alice_phone.close()
    await bob_phone.close()


async def test_a_session_lost_before_the_sender_heard_back_is_asked_for_not_taken_for_a_replay(
    pair,
):
    """The sender has not heard back, so its next message is a prekey message again, with the
    base key this device used already: with the session gone that is a lost session, not a
    replay, and the message is asked for and comes."""
    alice, bob = pair
    alice_phone, bob_phone = await connected(alice, bob)
    await alice_phone.connection.send_text(bob.account_id, "one")
    await bob_phone.wait_for(TextMessage)
    bob.store.delete_session(alice.device.device_id)  # storage cleared for that contact

    await alice_phone.connection.send_text(bob.account_id, "two")
    await bob_phone.wait_for(TextMessage, 2)
    assert [m.text for m in bob_phone.of(TextMessage)] == ["one", "two"]
    assert len(bob_phone.of(MessageWaiting)) == 1 and bob.store.retries() == {}
    await alice_phone.close()
    await bob_phone.close()


async def test_a_message_the_sender_no_longer_holds_ends_as_could_not_be_decrypted(pair):
    """The sender's cache entry expired (older than RESEND_CACHE_MS): its answer says so,
    and the line turns into "could not be decrypted" at once, not after every ask."""
    alice, bob = pair
    alice_phone, bob_phone = await connected(alice, bob)
    await alice_phone.connection.send_text(bob.account_id, "one")
    await bob_phone.wait_for(TextMessage)
    await bob_phone.connection.send_text(alice.account_id, "two")
    await alice_phone.wait_for(TextMessage)
    await bob_phone.close()  # so that alice is offline before bob's ask can reach her
    bob.store.delete_session(alice.device.device_id)
    sent = await alice_phone.connection.send_text(bob.account_id, "three")
    await alice_phone.close()  # offline while its copy of "three" expires
    age_cache(alice, RESEND_CACHE_MS + 1)
    [bob_phone] = await connected(bob)
    [waiting] = await bob_phone.wait_for(MessageWaiting)
    [alice_phone] = await connected(alice)

    [failed] = await bob_phone.wait_for(MessageUndecryptable)
    assert (failed.sender, failed.sender_device) == (alice.account_id, alice.device.device_id)
    assert failed.envelope_id == waiting.envelope_id == sent.envelope_id
    line = describe(failed, me=bob.account_id)
    assert f"This message from {alice.account_id} could not be decrypted" in line
    [record] = bob.store.retries().values()
    assert record.state == "failed" and record.count == 1
    assert bob_phone.of(TextMessage) == []
    assert [m["text"] for m in bob.store.messages(alice.account_id)] == ["one", "two"]
    await alice_phone.close()
    await bob_phone.close()


async def test_a_sender_that_never_answers_is_asked_five_times_then_the_message_fails(pair):
    """The asks follow the engine's schedule (24.2, here on a clock the test moves on): at
    most MAX_RETRIES, then "could not be decrypted", and no more asks after it."""
    alice, bob = pair
    alice_phone, bob_phone = await connected(alice, bob)
    await alice_phone.connection.send_text(bob.account_id, "one")
    await bob_phone.wait_for(TextMessage)
    await bob_phone.connection.send_text(alice.account_id, "two")
    await alice_phone.wait_for(TextMessage)
    await bob_phone.close()
    bob.store.delete_session(alice.device.device_id)
    await alice_phone.connection.send_text(bob.account_id, "three")
    await alice_phone.close()  # and never back
    later = 0

    def clock() -> int:
        return now_ms() + later

    bob.clock = clock
    [bob_phone] = await connected(bob, rewrite=lambda frame: frame, retry_every=0.05)
    await bob_phone.wait_for(MessageWaiting)
    for count in range(2, MAX_RETRIES + 1):
        later += retry_wait(count - 1)
        asks = await bob_phone.wait_for(MessageWaiting, count)
        assert asks[-1].count == count
    later += retry_wait(MAX_RETRIES)
    [failed] = await bob_phone.wait_for(MessageUndecryptable)
    later += 10 * retry_wait(MAX_RETRIES)
    await asyncio.sleep(0.5)  # ten timer rounds on a clock far past every wait
    requests = [f for f in bob_phone.connection.sent if f.get("partial")]
    assert len(requests) == MAX_RETRIES
    assert {tuple(f["targets"]) for f in requests} == {(alice.device.device_id,)}
    assert len(bob_phone.of(MessageWaiting)) == MAX_RETRIES
    assert bob_phone.of(MessageUndecryptable) == [failed]
    await bob_phone.close()


def test_the_cli_shows_a_message_that_could_not_be_decrypted_and_asks_again(pair):
    """`read` shows the line where the message stands; `retry USER` starts the asks over
    (the engine's retry_again), and the sender, holding the message again, sends it."""
    alice, bob = pair

    async def lost() -> str:
        alice_phone, bob_phone = await connected(alice, bob)
        await alice_phone.connection.send_text(bob.account_id, "one")
        await bob_phone.wait_for(TextMessage)
        await bob_phone.connection.send_text(alice.account_id, "two")
        await alice_phone.wait_for(TextMessage)
        await bob_phone.close()  # alice is offline before bob's ask can reach her
        bob.store.delete_session(alice.device.device_id)
        sent = await alice_phone.connection.send_text(bob.account_id, "three")
        await alice_phone.close()
        age_cache(alice, RESEND_CACHE_MS + 1)
        [bob_phone] = await connected(bob)
        await bob_phone.wait_for(MessageWaiting)
        [alice_phone] = await connected(alice)
        await bob_phone.wait_for(MessageUndecryptable)
        await alice_phone.close()
        await bob_phone.close()
        return sent.envelope_id

    asyncio.run(lost())
    bob.store.close()
    shown = run_cli("read", "--store", str(bob.store.path), alice.account_id)
    assert shown.returncode == 0, shown.stderr
    assert f"This message from {alice.account_id} could not be decrypted" in shown.stdout
    assert f"python -m client retry {alice.account_id}" in shown.stdout

    age_cache(alice, -(RESEND_CACHE_MS + 1))  # the sender holds it after all
    asked = run_cli("retry", "--store", str(bob.store.path), alice.account_id)
    assert asked.returncode == 0, asked.stderr
    assert f"Asked {alice.account_id} again for 1 message" in asked.stdout

    async def answered() -> list[str]:
        restored = Messenger(Store.open(bob.store.path), bob.transport)
        alice_phone, bob_phone = await connected(alice, restored)
        await bob_phone.wait_for(TextMessage)
        await alice_phone.close()
        await bob_phone.close()
        assert restored.store.retries() == {}
        return [m.text for m in bob_phone.of(TextMessage)]

    assert asyncio.run(answered()) == ["three"]


def age_cache(messenger: Messenger, by: int) -> None:
    """Make the sender's resend cache `by` ms older, through a second connection to its file."""
    with sqlite3.connect(messenger.store.path) as db:
        db.execute("UPDATE resend_cache SET sent_at = sent_at - ?", (by,))
    db.close()
