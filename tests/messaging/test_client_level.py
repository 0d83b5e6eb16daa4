"""The queue as clients meet it, on the live server (Daphne, Redis, real HTTP + WebSocket):
a conversation between the command-line client and Python devices, mismatched_devices
retries, a 10,000-envelope drain, idempotent resends, and what a device may not do."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from client.connection import LoggedOut
from client.http import HttpTransport
from client.messenger import ReceiptReceived, SentTranscript, TextMessage
from tests.client.test_cli import link_with_cli, run_cli
from tests.support.actors import CompanionActor, PrimaryActor, link, ok, person
from tests.support.devices import Device, companion_messenger, primary_messenger
from tests.support.server import LiveServer
from tests.support.wire import DeviceSocket


def queued(live_app: LiveServer, device_id: str) -> int:
    with sqlite3.connect(live_app.db_path) as db:
        return db.execute(
            "SELECT count(*) FROM messaging_queuedenvelope WHERE device_id = ?", (device_id,)
        ).fetchone()[0]


async def eventually(check, *, within: float = 5.0, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


async def raw_socket(live_app: LiveServer, actor: PrimaryActor, **options) -> DeviceSocket:
    socket = DeviceSocket(live_app.ws_url, live_app.url, actor.transport.cookie_header())
    for key, value in options.items():
        setattr(socket, key, value)
    return await socket.connect()


async def test_conversation_between_the_cli_and_devices_that_were_offline(live_app, tmp_path):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    cli_store = tmp_path / "alice-cli.sqlite3"
    cli_device = await asyncio.to_thread(link_with_cli, live_app, alice, cli_store)
    alice_phone = Device(primary_messenger(alice, tmp_path))  # offline for now
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    # receipts go to contacts only (section 22.6): each is in the other's synced contacts,
    # on every device of theirs (the phone sends its account's sync key to the CLI)
    bob_phone.messenger.add_contact(alice.username)
    alice_phone.messenger.add_contact(bob.username)
    await alice_phone.connect()
    await alice_phone.connection.share_sync_key()
    await alice_phone.close()
    alice_phone.events.clear()

    sent = await asyncio.to_thread(
        run_cli, "send", "--store", str(cli_store), bob.username, "hello bob"
    )
    assert (sent.returncode, sent.stderr) == (0, "")
    assert sent.stdout == f"Sent to {bob.username} (1 device); a copy to your other device\n"

    [hello] = await bob_phone.wait_for(TextMessage)
    assert (hello.sender, hello.sender_device, hello.text) == (
        alice.username,
        cli_device,
        "hello bob",
    )
    reply = await bob_phone.connection.send_text(alice.username, "hi alice")
    assert set(reply.recipient_devices) == {alice.device_id, cli_device}

    listen = await asyncio.to_thread(
        run_cli, "listen", "--store", str(cli_store), "--count", "1", "--seconds", "15"
    )
    assert listen.returncode == 0, listen.stderr
    lines = listen.stdout.splitlines()
    assert lines[0].startswith(f"Listening as {alice.username} ")
    bob_shown = f"Test User ({bob.username})"  # the display name bob chose, then the username
    assert f"Delivered: your message to {bob_shown} (device {bob.device_id})" in lines
    assert lines[-1].endswith(f"] {bob_shown}: hi alice"), lines

    # Alice's phone was offline throughout: it gets her own message (as a sent transcript
    # from the CLI) and then Bob's reply, in order, once each.
    await alice_phone.connect()
    await alice_phone.wait_for(TextMessage)
    shown = [e for e in alice_phone.events if isinstance(e, SentTranscript | TextMessage)]
    assert [(type(e), e.text) for e in shown] == [
        (SentTranscript, "hello bob"),
        (TextMessage, "hi alice"),
    ]
    assert shown[0].recipient == bob.username and shown[0].message_id == hello.message_id
    # Bob gets a delivery receipt for his reply from each of Alice's devices
    receipts = await bob_phone.wait_for(ReceiptReceived, 2)
    assert {r.sender_device for r in receipts} == {alice.device_id, cli_device}
    assert all(r.message_ids == (reply.message_id,) for r in receipts)
    await alice_phone.close()
    await bob_phone.close()
    await eventually(
        lambda: queued(live_app, alice.device_id) == queued(live_app, bob.device_id) == 0,
        what="every row acked",
    )

    # a reconnect (which also sends `fetch`) shows nothing twice
    await alice_phone.connect()
    await asyncio.sleep(0.5)
    assert len([e for e in alice_phone.events if isinstance(e, TextMessage)]) == 1
    await alice_phone.close()


async def test_a_device_linked_after_the_list_was_cached_gets_the_retried_send(live_app, tmp_path):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect()
    first = await alice_phone.connection.send_text(bob.username, "one")
    assert (first.recipient_devices, first.attempt) == ((bob.device_id,), 1)

    bob_laptop = await Device(companion_messenger(bob, tmp_path, name="Laptop")).connect()
    second = await alice_phone.connection.send_text(bob.username, "two")
    # the cached list (version 1) was refused with mismatched_devices, refetched, verified
    assert second.attempt == 2
    assert set(second.recipient_devices) == {bob.device_id, bob_laptop.device_id}
    [message] = await bob_laptop.wait_for(TextMessage)
    assert (message.sender, message.text) == (alice.username, "two")
    assert alice_phone.messenger.store.device_list(bob.username).version == 2
    await alice_phone.close()
    await bob_laptop.close()


def _insert_envelopes(
    live_app: LiveServer, *, device_id: str, sender: PrimaryActor, n: int
) -> None:
    """Queue rows exactly as envelope_accept stores them (sending 10,000 through the socket
    takes minutes on this server; see the report), in one transaction."""
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(live_app.db_path, timeout=30) as db:
        db.executemany(
            "INSERT INTO messaging_queuedenvelope"
            " (envelope_id, sender, sender_device_id, ciphertext, created_at, device_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    f"bulk-{i}",
                    sender.username,
                    sender.device_id,
                    f"opaque {i}".encode(),
                    created,
                    device_id,
                )
                for i in range(n)
            ],
        )


async def test_offline_device_drains_ten_thousand_envelopes_in_order_once_each(live_app):
    sender, receiver = person(live_app, "sender"), person(live_app, "offline")
    through_socket = 200
    socket = await raw_socket(live_app, sender)
    for i in range(through_socket):
        await socket.send(
            f"sock-{i}", receiver.username, {receiver.device_id: f"opaque s{i}".encode()}
        )
    for _ in range(through_socket):
        assert (await socket.next("accepted", "error"))["type"] == "accepted"
    await socket.close()
    _insert_envelopes(
        live_app, device_id=receiver.device_id, sender=sender, n=10_000 - through_socket
    )
    assert queued(live_app, receiver.device_id) == 10_000

    started = time.monotonic()
    inbox = await raw_socket(live_app, receiver)
    while len(inbox.received) < 10_000:
        await inbox.next("deliver", within=15)
    drained = time.monotonic() - started
    print(f"\n10,000 envelopes drained in {drained:.2f} s ({10_000 / drained:.0f}/s)")
    ids = [e["id"] for e in inbox.received]
    assert ids == [f"sock-{i}" for i in range(through_socket)] + [
        f"bulk-{i}" for i in range(10_000 - through_socket)
    ]
    seqs = [e["seq"] for e in inbox.received]
    assert seqs == sorted(set(seqs))
    await eventually(lambda: queued(live_app, receiver.device_id) == 0, what="every row acked")
    await asyncio.sleep(0.3)
    assert len(inbox.received) == 10_000  # nothing came twice
    await inbox.close()


async def test_a_resent_envelope_is_stored_and_delivered_once(live_app):
    sender, receiver = person(live_app, "sender"), person(live_app, "receiver")
    socket = await raw_socket(live_app, sender)
    for _ in range(2):
        await socket.send("same-id", receiver.username, {receiver.device_id: b"opaque"})
        assert await socket.next("accepted", "error") == {
            "type": "accepted",
            "v": 1,
            "id": "same-id",
        }
    assert queued(live_app, receiver.device_id) == 1
    inbox = await raw_socket(live_app, receiver)
    await inbox.next("deliver")
    with pytest.raises(TimeoutError):
        await inbox.next("deliver", within=0.5)
    assert [e["id"] for e in inbox.received] == ["same-id"]
    await socket.close()
    await inbox.close()


async def test_a_resend_after_the_ack_is_accepted_and_stores_nothing(live_app):
    """Issue #9 item 3: the id is remembered for the replay window (30 days), not only while
    its rows are queued, so a resend on the same socket or a new one delivers nothing again."""
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    laptop = link(alice, CompanionActor(HttpTransport(live_app.url)))
    inboxes = [await raw_socket(live_app, actor) for actor in (bob, alice)]
    targets = {bob.device_id: b"for bob", alice.device_id: b"sent transcript"}
    socket = await raw_socket(live_app, laptop)
    await socket.send("once", bob.username, targets)
    assert (await socket.next("accepted", "error"))["type"] == "accepted"
    for inbox in inboxes:
        assert [e["id"] for e in (await inbox.next("deliver"))["envelopes"]] == ["once"]
    await eventually(
        lambda: queued(live_app, bob.device_id) == queued(live_app, alice.device_id) == 0,
        what="both copies acked",
    )

    await socket.send("once", bob.username, targets)
    assert await socket.next("accepted", "error") == {"type": "accepted", "v": 1, "id": "once"}
    await socket.close()
    again = await raw_socket(live_app, laptop)
    await again.send("once", bob.username, targets)
    assert await again.next("accepted", "error") == {"type": "accepted", "v": 1, "id": "once"}
    assert queued(live_app, bob.device_id) == queued(live_app, alice.device_id) == 0
    for inbox in inboxes:
        with pytest.raises(TimeoutError):
            await inbox.next("deliver", within=0.5)
        assert [e["id"] for e in inbox.received] == ["once"]
        await inbox.close()
    await again.close()


async def test_a_device_cannot_ack_or_read_another_devices_envelopes(live_app):
    alice, bob, eve = (person(live_app, n) for n in ("alice", "bob", "eve"))
    socket = await raw_socket(live_app, alice)
    await socket.send("for-bob", bob.username, {bob.device_id: b"opaque"})
    assert (await socket.next("accepted", "error"))["type"] == "accepted"
    with sqlite3.connect(live_app.db_path) as db:
        [seq] = db.execute(
            "SELECT id FROM messaging_queuedenvelope WHERE device_id = ?", (bob.device_id,)
        ).fetchone()
    intruder = await raw_socket(live_app, eve, auto_ack=False)
    await intruder.send_frame({"type": "ack", "seqs": [seq]})
    await intruder.send_frame({"type": "fetch"})
    await intruder.send_frame({"type": "ping", "id": "after"})
    assert (await intruder.next("pong", "deliver"))["type"] == "pong"
    assert intruder.received == []  # not delivered to eve
    assert queued(live_app, bob.device_id) == 1  # and eve's ack deleted nothing
    inbox = await raw_socket(live_app, bob)
    [envelope] = (await inbox.next("deliver"))["envelopes"]
    assert (envelope["seq"], envelope["id"]) == (seq, "for-bob")
    for s in (socket, intruder, inbox):
        await s.close()


async def test_a_logged_out_device_is_wiped_and_its_socket_refused(live_app, tmp_path):
    alice = person(live_app, "alice")
    laptop = await Device(companion_messenger(alice, tmp_path)).connect()
    cookie = laptop.messenger.transport.cookie_header()
    store_path = Path(laptop.messenger.store.path)
    alice.revoke(laptop.device_id)
    [event] = await laptop.wait_for(LoggedOut)
    assert "logged out" in event.reason
    assert not await asyncio.to_thread(store_path.exists)  # its keys are deleted
    socket = DeviceSocket(live_app.ws_url, live_app.url, cookie)
    with pytest.raises(InvalidStatus) as refused:
        await socket.connect()
    assert refused.value.response.status_code == 403
    devices = ok(alice.transport.get("/api/devices"))
    assert laptop.device_id not in {d["device_id"] for d in devices["devices"]}
