"""One stored ciphertext per group message (docs/protocol.md 25.9): a `group_send` is checked
against the members of the stored chain and their current devices, stores the message once
and a row per target device that points at it (with the pairwise distribution that rode
along for that device), delivers both, and frees the message with its last row. The group
log is real (signed entries posted over HTTP), the messages real sender-key messages."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from messaging.models import GroupMessage, QueuedEnvelope
from protocol.encoding import b64u_encode
from protocol.groups import EntryKind
from protocol.rng import system_rng
from protocol.senderkeys import encrypt_group, new_sender_key
from tests.messaging.test_group_log import GROUP, Chain, writer
from tests.messaging.test_queue import connect
from tests.messaging.test_state_log import make_primary
from tests.support.actors import CompanionActor, DjangoTransport, link

pytestmark = pytest.mark.django_db(transaction=True)


def _people() -> dict:
    alice = make_primary("alice")
    laptop = link(alice, CompanionActor(DjangoTransport()))
    bobby, carol, dave = (make_primary(n) for n in ("bobby", "carol", "dave"))
    chain = Chain()
    chain.write(writer(alice), EntryKind.CREATE, ["alice", "bobby", "carol"], name="Climbing")
    return {
        "alice": alice,
        "laptop": laptop,
        "bobby": bobby,
        "carol": carol,
        "dave": dave,
        "chain": chain,
    }


@pytest.fixture
async def people():
    return await sync_to_async(_people)()


def message(chain: Chain, account: str, device: str, text: bytes = b"hello", group=GROUP) -> bytes:
    key = new_sender_key(system_rng, group_id=group, sender=account, device=device)
    return encrypt_group(key, text, head_seq=chain.seq, head_hash=chain.head, rng=system_rng)[1]


def group_send(
    envelope_id: str,
    data: bytes,
    targets: list[str],
    keys: dict[str, bytes] | None = None,
    group: bytes = GROUP,
) -> str:
    return json.dumps(
        {
            "type": "group_send",
            "v": 1,
            "id": envelope_id,
            "group_id": b64u_encode(group),
            "message": b64u_encode(data),
            "targets": targets,
            "keys": {d: b64u_encode(c) for d, c in (keys or {}).items()},
        }
    )


def all_but_laptop(p) -> list[str]:
    return [p["alice"].device_id, p["bobby"].device_id, p["carol"].device_id]


async def answer(socket) -> dict:
    return await socket.receive_json_from(timeout=3)


async def stored() -> tuple[int, list[tuple[str, bool, bool]]]:
    """(group messages, [(device, has a ciphertext, points at a group message)])."""

    def read():
        rows = QueuedEnvelope.objects.order_by("id").values_list(
            "device_id", "ciphertext", "group_message_id"
        )
        return GroupMessage.objects.count(), [(d, c is not None, g is not None) for d, c, g in rows]

    return await sync_to_async(read)()


async def test_the_message_is_stored_once_delivered_to_every_target_and_freed_with_its_last_row(
    people,
):
    p = people
    sender = await connect(p["laptop"])
    at_bobby, at_carol = await connect(p["bobby"]), await connect(p["carol"])
    data = message(p["chain"], "alice", p["laptop"].device_id)
    distribution = b"pairwise ciphertext of the sender key"
    await sender.send_to(
        text_data=group_send("g1", data, all_but_laptop(p), {p["bobby"].device_id: distribution})
    )
    assert await answer(sender) == {"type": "accepted", "v": 1, "id": "g1"}
    count, rows = await stored()
    assert count == 1
    assert sorted(rows) == sorted(
        [
            (p["alice"].device_id, False, True),
            (p["bobby"].device_id, True, True),
            (p["carol"].device_id, False, True),
        ]
    )
    stored_message = await sync_to_async(lambda: bytes(GroupMessage.objects.get().ciphertext))()
    assert stored_message == data  # the message once, not once per device
    [to_bobby] = (await answer(at_bobby))["envelopes"]
    [to_carol] = (await answer(at_carol))["envelopes"]
    assert (to_bobby["id"], to_bobby["sender"], to_bobby["sender_device"]) == (
        "g1",
        "alice",
        p["laptop"].device_id,
    )
    assert (to_bobby["group"], to_bobby["ciphertext"]) == (
        b64u_encode(data),
        b64u_encode(distribution),
    )
    assert to_carol["group"] == b64u_encode(data) and "ciphertext" not in to_carol
    for socket, envelope in ((at_bobby, to_bobby), (at_carol, to_carol)):
        await socket.send_to(
            text_data=json.dumps({"type": "ack", "v": 1, "seqs": [envelope["seq"]]})
        )
        await socket.send_to(text_data=json.dumps({"type": "ping", "v": 1, "id": "sync"}))
        assert (await answer(socket))["type"] == "pong"
    assert await stored() == (1, [(p["alice"].device_id, False, True)])
    # the primary reads its queue on connecting: the same message, then its ack frees it
    at_alice = await connect(p["alice"])
    [to_alice] = (await answer(at_alice))["envelopes"]
    assert to_alice["group"] == b64u_encode(data)
    await at_alice.send_to(text_data=json.dumps({"type": "ack", "v": 1, "seqs": [to_alice["seq"]]}))
    await at_alice.send_to(text_data=json.dumps({"type": "ping", "v": 1, "id": "sync"}))
    assert (await answer(at_alice))["type"] == "pong"
    assert await stored() == (0, [])
    for socket in (sender, at_bobby, at_carol, at_alice):
        await socket.disconnect()


async def test_the_targets_must_be_every_current_device_of_every_member(people):
    p = people
    await sync_to_async(p["chain"].write)(writer(p["alice"]), EntryKind.REMOVE, ["carol"])
    sender = await connect(p["laptop"])
    data = message(p["chain"], "alice", p["laptop"].device_id)
    alice, bobby, carol = p["alice"].device_id, p["bobby"].device_id, p["carol"].device_id
    cases = [
        ([alice], {"missing": [bobby], "extra": [], "stale": []}),
        ([alice, bobby, carol], {"missing": [], "extra": [carol], "stale": []}),
        (
            [alice, bobby, p["laptop"].device_id],
            {"missing": [], "extra": [p["laptop"].device_id], "stale": []},
        ),
        (
            [alice, bobby, p["dave"].device_id],
            {"missing": [], "extra": [p["dave"].device_id], "stale": []},
        ),
    ]
    for n, (targets, expected) in enumerate(cases):
        await sender.send_to(text_data=group_send(f"m{n}", data, targets))
        error = await answer(sender)
        assert (error["type"], error["code"], error["ref"], error["data"]) == (
            "error",
            "mismatched_devices",
            f"m{n}",
            expected,
        )
    assert await stored() == (0, [])
    await sender.send_to(text_data=group_send("m9", data, [alice, bobby]))
    assert (await answer(sender))["type"] == "accepted"  # the corrected send, after the removal
    await sender.disconnect()


async def test_a_logged_out_device_is_stale(people):
    p = people
    await sync_to_async(p["alice"].revoke)(p["laptop"].device_id)
    sender = await connect(p["bobby"])
    data = message(p["chain"], "bobby", p["bobby"].device_id)
    targets = [p["alice"].device_id, p["laptop"].device_id, p["carol"].device_id]
    await sender.send_to(text_data=group_send("m1", data, targets))
    error = await answer(sender)
    assert error["code"] == "mismatched_devices" and error["data"]["stale"] == [
        p["laptop"].device_id
    ]
    await sender.disconnect()


async def test_a_non_member_or_a_group_that_does_not_exist_is_not_found(people):
    p = people
    outsider = await connect(p["dave"])
    data = message(p["chain"], "dave", p["dave"].device_id)
    await outsider.send_to(text_data=group_send("m1", data, all_but_laptop(p)))
    assert (await answer(outsider))["code"] == "group_not_found"
    other = bytes(16)
    elsewhere = message(p["chain"], "dave", p["dave"].device_id, group=other)
    await outsider.send_to(text_data=group_send("m2", elsewhere, all_but_laptop(p), group=other))
    assert (await answer(outsider))["code"] == "group_not_found"
    assert await stored() == (0, [])
    await outsider.disconnect()


async def test_a_message_must_be_this_devices_own_and_of_this_group(people):
    p = people
    sender = await connect(p["laptop"])
    targets = all_but_laptop(p)
    as_the_phone = message(p["chain"], "alice", p["alice"].device_id)
    of_another_group = message(p["chain"], "alice", p["laptop"].device_id, group=bytes(16))
    own = message(p["chain"], "alice", p["laptop"].device_id)
    frames = {
        "as another device": group_send("m1", as_the_phone, targets),
        "of another group": group_send("m2", of_another_group, targets),
        "not a group message": group_send("m3", b"\x01\x01pairwise", targets),
        "a key for a non-target": group_send("m4", own, targets, {p["dave"].device_id: b"k"}),
        "a target twice": group_send("m5", own, [*targets, targets[0]]),
    }
    for what, frame in frames.items():
        await sender.send_to(text_data=frame)
        error = await answer(sender)
        assert (error["type"], error["code"]) == ("error", "bad_frame"), what
    assert await stored() == (0, [])
    await sender.disconnect()


async def test_a_resent_group_send_stores_nothing_more(people):
    p = people
    sender = await connect(p["laptop"])
    frame = group_send(
        "same", message(p["chain"], "alice", p["laptop"].device_id), all_but_laptop(p)
    )
    for _ in range(3):
        await sender.send_to(text_data=frame)
        assert (await answer(sender))["type"] == "accepted"
    count, rows = await stored()
    assert (count, len(rows)) == (1, 3)
    await sender.disconnect()


async def test_the_expiry_job_frees_old_messages_and_those_a_logout_left_without_rows(people):
    p = people
    sender = await connect(p["laptop"])
    for n in range(2):
        data = message(p["chain"], "alice", p["laptop"].device_id)
        await sender.send_to(text_data=group_send(f"m{n}", data, all_but_laptop(p)))
        assert (await answer(sender))["type"] == "accepted"
    await sender.disconnect()
    await sync_to_async(
        lambda: QueuedEnvelope.objects.filter(envelope_id="m0").update(
            created_at=timezone.now() - timedelta(days=31)
        )
    )()
    await sync_to_async(
        lambda: GroupMessage.objects.filter(rows__envelope_id="m0").update(
            created_at=timezone.now() - timedelta(days=31)
        )
    )()
    await sync_to_async(call_command)("expire_envelopes", verbosity=0)
    count, rows = await stored()
    assert (count, len(rows)) == (1, 3)
    # every target logs out or is dropped: the message has no rows left, and goes
    await sync_to_async(QueuedEnvelope.objects.all().delete)()
    await sync_to_async(call_command)("expire_envelopes", verbosity=0)
    assert await stored() == (0, [])
