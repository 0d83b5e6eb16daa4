"""The envelope queue over the device socket: fan-out check, durable accept, delivery in
order, acks, idempotent resends, and bad frames answered with error frames."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from config.asgi import application
from messaging.models import QueuedEnvelope, SentEnvelope
from protocol.encoding import b64u_encode
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"
pytestmark = pytest.mark.django_db(transaction=True)


def _people() -> dict[str, object]:
    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username="alice"
    ).sign_up()
    alice_laptop = link(alice, CompanionActor(DjangoTransport()))
    bob = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username="bobby"
    ).sign_up()
    return {"alice": alice, "alice_laptop": alice_laptop, "bob": bob}


@pytest.fixture
async def people():
    return await sync_to_async(_people)()


async def connect(actor) -> WebsocketCommunicator:
    cookie = "; ".join(f"{k}={v.value}" for k, v in actor.transport.client.cookies.items())
    socket = WebsocketCommunicator(
        application,
        "/ws/device/",
        headers=[(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())],
    )
    assert (await socket.connect())[0]
    return socket


def send_frame(envelope_id: str, recipient: str, targets: dict[str, bytes], **more: object) -> str:
    return json.dumps(
        {
            "type": "send",
            "v": 1,
            "id": envelope_id,
            "recipient": recipient,
            "targets": {d: b64u_encode(c) for d, c in targets.items()},
            **more,
        }
    )


async def rows() -> int:
    return await sync_to_async(QueuedEnvelope.objects.count)()


async def test_send_is_stored_for_every_target_then_accepted_then_delivered_and_deleted_on_ack(
    people,
):
    laptop, bob = people["alice_laptop"], people["bob"]
    sender = await connect(laptop)
    receiver = await connect(bob)
    targets = {bob.device_id: b"to bob", people["alice"].device_id: b"transcript"}
    await sender.send_to(text_data=send_frame("e1", "bobby", targets))
    assert await sender.receive_json_from(timeout=3) == {"type": "accepted", "v": 1, "id": "e1"}
    deliver = await receiver.receive_json_from(timeout=3)
    assert deliver["type"] == "deliver"
    [envelope] = deliver["envelopes"]
    assert (
        envelope["id"],
        envelope["sender"],
        envelope["sender_device"],
        envelope["ciphertext"],
    ) == ("e1", "alice", laptop.device_id, b64u_encode(b"to bob"))
    assert await rows() == 2
    await receiver.send_to(text_data=json.dumps({"type": "ack", "v": 1, "seqs": [envelope["seq"]]}))
    await receiver.send_to(text_data=json.dumps({"type": "ping", "v": 1, "id": "sync"}))
    assert (await receiver.receive_json_from(timeout=3))["type"] == "pong"
    assert await sync_to_async(list)(
        QueuedEnvelope.objects.values_list("device_id", flat=True)
    ) == [people["alice"].device_id]
    await sender.disconnect()
    await receiver.disconnect()


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ("only_bob", {"missing": ["alice_primary"], "extra": [], "stale": []}),
        ("with_self", {"missing": [], "extra": ["alice_laptop"], "stale": []}),
        ("with_stranger", {"missing": [], "extra": ["stranger"], "stale": []}),
    ],
)
async def test_a_target_set_other_than_the_current_devices_is_refused_with_what_to_fix(
    people, targets, expected
):
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    ids = {"alice_primary": alice.device_id, "alice_laptop": laptop.device_id, "stranger": "A" * 22}
    chosen = {
        "only_bob": {bob.device_id: b"x"},
        "with_self": {bob.device_id: b"x", alice.device_id: b"x", laptop.device_id: b"x"},
        "with_stranger": {bob.device_id: b"x", alice.device_id: b"x", "A" * 22: b"x"},
    }[targets]
    sender = await connect(laptop)
    await sender.send_to(text_data=send_frame("e1", "bobby", chosen))
    error = await sender.receive_json_from(timeout=3)
    assert (error["type"], error["code"], error["ref"]) == ("error", "mismatched_devices", "e1")
    assert error["data"] == {k: [ids[name] for name in v] for k, v in expected.items()}
    assert await rows() == 0
    await sender.disconnect()


async def test_a_partial_send_reaches_just_the_devices_named_and_still_refuses_others(people):
    """A retry request or a resend goes to one device (docs/protocol.md 24.4): no device is
    missing then, but a stranger or the sender itself is still refused."""
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    sender = await connect(laptop)
    receiver = await connect(bob)
    await sender.send_to(
        text_data=send_frame("p1", "bobby", {bob.device_id: b"again"}, partial=True)
    )
    assert await sender.receive_json_from(timeout=3) == {"type": "accepted", "v": 1, "id": "p1"}
    [envelope] = (await receiver.receive_json_from(timeout=3))["envelopes"]
    assert (envelope["id"], envelope["ciphertext"]) == ("p1", b64u_encode(b"again"))
    await sender.send_to(
        text_data=send_frame("p2", "alice", {alice.device_id: b"own"}, partial=True)
    )
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    for envelope_id, recipient, targets, fixed in (
        ("p3", "bobby", {"A" * 22: b"x"}, {"missing": [], "extra": ["A" * 22], "stale": []}),
        (
            "p4",
            "alice",
            {laptop.device_id: b"x"},
            {"missing": [], "extra": [laptop.device_id], "stale": []},
        ),
    ):
        await sender.send_to(text_data=send_frame(envelope_id, recipient, targets, partial=True))
        error = await sender.receive_json_from(timeout=3)
        assert (error["code"], error["ref"], error["data"]) == (
            "mismatched_devices",
            envelope_id,
            fixed,
        )
    await sender.send_to(text_data=send_frame("p5", "bobby", {bob.device_id: b"x"}, partial=1))
    error = await sender.receive_json_from(timeout=3)
    assert (error["code"], error["data"]) == ("bad_frame", {"field": "partial"})
    assert await rows() == 2
    await sender.disconnect()
    await receiver.disconnect()


async def test_a_logged_out_device_is_stale_until_the_sender_refreshes(people):
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    await sync_to_async(alice.revoke)(laptop.device_id)
    sender = await connect(bob)
    await sender.send_to(
        text_data=send_frame("e1", "alice", {alice.device_id: b"x", laptop.device_id: b"x"})
    )
    error = await sender.receive_json_from(timeout=3)
    assert error["code"] == "mismatched_devices" and error["data"]["stale"] == [laptop.device_id]
    await sender.disconnect()


async def test_resending_an_envelope_id_is_idempotent(people):
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    frame = send_frame("same-id", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
    for _ in range(3):
        await sender.send_to(text_data=frame)
        assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    assert await rows() == 2
    await sender.disconnect()


async def test_an_offline_device_drains_its_queue_in_order_in_batches(people):
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    for n in range(250):
        await sender.send_to(
            text_data=send_frame(
                f"e{n}", "bobby", {bob.device_id: n.to_bytes(2, "big"), alice.device_id: b"t"}
            )
        )
        assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    receiver = await connect(bob)
    seen: list[str] = []
    while len(seen) < 250:
        frame = await receiver.receive_json_from(timeout=3)
        assert frame["type"] == "deliver" and len(frame["envelopes"]) <= 100
        seen += [e["id"] for e in frame["envelopes"]]
        await receiver.send_to(
            text_data=json.dumps(
                {"type": "ack", "v": 1, "seqs": [e["seq"] for e in frame["envelopes"]]}
            )
        )
    assert seen == [f"e{n}" for n in range(250)]
    await receiver.send_to(text_data=json.dumps({"type": "ping", "v": 1}))
    assert (await receiver.receive_json_from(timeout=3))["type"] == "pong"
    assert await sync_to_async(QueuedEnvelope.objects.filter(device_id=bob.device_id).count)() == 0
    await sender.disconnect()
    await receiver.disconnect()


async def test_a_device_cannot_ack_another_devices_envelopes(people):
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    await sender.send_to(
        text_data=send_frame("e1", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
    )
    await sender.receive_json_from(timeout=3)
    seqs = await sync_to_async(list)(QueuedEnvelope.objects.values_list("id", flat=True))
    await sender.send_to(text_data=json.dumps({"type": "ack", "v": 1, "seqs": seqs}))
    await sender.send_to(text_data=json.dumps({"type": "ping", "v": 1}))
    assert (await sender.receive_json_from(timeout=3))["type"] == "pong"
    assert await rows() == 2
    await sender.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "send", "v": 1}, "bad_frame"),
        ({"type": "send", "v": 1, "id": "e", "recipient": "bobby", "targets": []}, "bad_frame"),
        (
            {
                "type": "send",
                "v": 1,
                "id": "e",
                "recipient": "bobby",
                "targets": {"d": "not base64!"},
            },
            "bad_frame",
        ),
        (
            {
                "type": "send",
                "v": 1,
                "id": "e",
                "recipient": "bobby",
                "targets": {"d": b64u_encode(bytes(70_000))},
            },
            "too_large",
        ),
        (
            {
                "type": "send",
                "v": 1,
                "id": "e",
                "recipient": "bobby",
                "targets": {f"d{n}": "AA" for n in range(10)},
            },
            "bad_frame",
        ),
        (
            {"type": "send", "v": 1, "id": "x" * 65, "recipient": "bobby", "targets": {"d": "AA"}},
            "bad_frame",
        ),
        (
            {"type": "send", "v": 1, "id": "e", "recipient": "nobody", "targets": {"d": "AA"}},
            "account_not_found",
        ),
        ({"type": "ack", "v": 1, "seqs": ["1"]}, "bad_frame"),
        ({"type": "ack", "v": 1, "seqs": []}, "bad_frame"),
        ({"type": "ack", "v": 1, "seqs": list(range(1, 1002))}, "bad_frame"),
        ({"type": "deliver", "v": 1}, "unknown_type"),
    ],
)
async def test_malformed_frames_get_an_error_frame_and_store_nothing(people, frame, code):
    sender = await connect(people["alice_laptop"])
    await sender.send_to(text_data=json.dumps(frame))
    error = await sender.receive_json_from(timeout=3)
    assert (error["type"], error["code"]) == ("error", code) and error["message"]
    assert await rows() == 0
    await sender.send_to(text_data=json.dumps({"type": "ping", "v": 1}))
    assert (await sender.receive_json_from(timeout=3))["type"] == "pong"
    await sender.disconnect()


async def test_sends_beyond_the_rate_limit_are_refused_and_not_stored(people, settings):
    settings.PARLEY_SEND_RATE = 0.001
    settings.PARLEY_SEND_BURST = 3
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    answers = []
    for n in range(5):
        await sender.send_to(
            text_data=send_frame(f"e{n}", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
        )
        reply = await sender.receive_json_from(timeout=3)
        answers.append(reply.get("code", reply["type"]))
    assert answers == ["accepted", "accepted", "accepted", "rate_limited", "rate_limited"]
    assert await rows() == 6
    await sender.disconnect()


async def test_envelopes_older_than_30_days_are_dropped_by_the_expiry_job(people):
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    for n in range(2):
        await sender.send_to(
            text_data=send_frame(f"e{n}", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
        )
        await sender.receive_json_from(timeout=3)
    await sender.disconnect()
    first = await sync_to_async(lambda: list(QueuedEnvelope.objects.filter(envelope_id="e0")))()
    await sync_to_async(QueuedEnvelope.objects.filter(envelope_id="e0").update)(
        created_at=timezone.now() - timedelta(days=31)
    )
    await sync_to_async(call_command)("expire_envelopes", verbosity=0)
    left = await sync_to_async(list)(QueuedEnvelope.objects.values_list("envelope_id", flat=True))
    assert sorted(left) == ["e1", "e1"] and len(first) == 2


async def test_the_replay_memory_outlives_the_rows_and_is_pruned_after_30_days(people):
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    frame = send_frame("kept", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
    await sender.send_to(text_data=frame)
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    await sync_to_async(QueuedEnvelope.objects.all().delete)()  # as if both copies were acked
    remembered = SentEnvelope.objects.filter(sender_device_id=laptop.device_id)
    await sync_to_async(remembered.update)(accepted_at=timezone.now() - timedelta(days=29))
    await sync_to_async(call_command)("expire_envelopes", verbosity=0)
    await sender.send_to(text_data=frame)
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    assert await rows() == 0  # still inside the window: nothing stored again
    await sync_to_async(remembered.update)(accepted_at=timezone.now() - timedelta(days=31))
    await sync_to_async(call_command)("expire_envelopes", verbosity=0)
    assert not await sync_to_async(remembered.exists)()
    await sender.disconnect()


async def test_a_refused_send_is_not_remembered_so_its_corrected_retry_is_stored(people):
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    await sender.send_to(text_data=send_frame("retry-me", "bobby", {bob.device_id: b"x"}))
    assert (await sender.receive_json_from(timeout=3))["code"] == "mismatched_devices"
    await sender.send_to(
        text_data=send_frame("retry-me", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
    )
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    assert await rows() == 2
    await sender.disconnect()


async def test_unacknowledged_deliveries_are_pushed_again_to_a_connected_device(people, settings):
    settings.PARLEY_REPUSH_SECONDS = 0.5
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    receiver = await connect(bob)
    sender = await connect(laptop)
    await sender.send_to(
        text_data=send_frame("e1", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
    )
    await sender.receive_json_from(timeout=3)
    first = await receiver.receive_json_from(timeout=3)
    again = await receiver.receive_json_from(timeout=5)  # never acked: sent again by the sweeper
    assert first["type"] == again["type"] == "deliver"
    assert [e["id"] for e in again["envelopes"]] == [e["id"] for e in first["envelopes"]] == ["e1"]
    await sender.disconnect()
    await receiver.disconnect()


async def test_a_lost_doorbell_is_made_good_even_after_later_envelopes_were_forwarded(
    people, settings
):
    """A doorbell is only a doorbell: if one push is lost and a later one arrives, the skipped
    envelope is still delivered (by the sweeper), not left below the cursor."""
    from messaging import delivery

    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    receiver = await connect(bob)
    # Frames are handled in order: the pong comes once the socket's connect has run.
    await receiver.send_json_to({"type": "ping", "v": 1, "id": "p"})
    assert (await receiver.receive_json_from(timeout=3))["type"] == "pong"
    # Hide bob's socket from this process's doorbells for one send: that doorbell is lost.
    here = delivery.sweeper().sockets
    bob_sockets = here.pop(bob.device_id)
    sender = await connect(laptop)
    await sender.send_to(
        text_data=send_frame("lost", "bobby", {bob.device_id: b"1", alice.device_id: b"t"})
    )
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    here[bob.device_id] = bob_sockets
    await sender.send_to(
        text_data=send_frame("later", "bobby", {bob.device_id: b"2", alice.device_id: b"t"})
    )
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    seen = []
    while "lost" not in seen:
        frame = await receiver.receive_json_from(timeout=6)
        seen += [e["id"] for e in frame["envelopes"]]
        await receiver.send_to(
            text_data=json.dumps(
                {"type": "ack", "v": 1, "seqs": [e["seq"] for e in frame["envelopes"]]}
            )
        )
    assert seen[0] == "later" and "lost" in seen
    await sender.disconnect()
    await receiver.disconnect()


async def test_a_send_while_another_connection_holds_the_database_waits_off_the_loop(people):
    # On SQLite the queue's commits run on the event loop (messaging/queue_db.py). While an
    # HTTP request (here: another connection) holds the write lock, a send must neither fail
    # nor stall the loop: it waits in Django's thread, and is stored once the lock is free.
    laptop, bob, alice = people["alice_laptop"], people["bob"], people["alice"]
    sender = await connect(laptop)
    receiver = await connect(bob)
    holder = sqlite3.connect(connections["default"].settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        await sender.send_to(
            text_data=send_frame("held", "bobby", {bob.device_id: b"x", alice.device_id: b"y"})
        )
        loop = asyncio.get_running_loop()
        for _ in range(5):  # the loop runs on while the send waits for the lock
            started = loop.time()
            await asyncio.sleep(0.1)
            assert loop.time() - started < 0.5
        assert await sender.receive_nothing(timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await sender.receive_json_from(timeout=5) == {"type": "accepted", "v": 1, "id": "held"}
    [envelope] = (await receiver.receive_json_from(timeout=3))["envelopes"]
    assert envelope["id"] == "held"
    assert await rows() == 2
    await sender.disconnect()
    await receiver.disconnect()
