"""Attachments (docs/protocol.md 19.5): a ciphertext blob uploaded in pieces, resumable, granted
by the sends that name it to their target devices, fetched (resumably) by them alone, and
deleted once each has it or by the expiry job."""

from __future__ import annotations

import io
import json
import os
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import AsyncClient, Client
from django.utils import timezone

from devices.models import Device
from messaging import attachments
from messaging.models import Attachment, AttachmentGrant, QueuedEnvelope
from protocol.attachments import blob_size
from tests.messaging.test_group_send import _people as _group_people
from tests.messaging.test_group_send import all_but_laptop, group_send, message
from tests.messaging.test_queue import _people, connect, send_frame

pytestmark = pytest.mark.django_db(transaction=True)

PIECE = 64 * 1024
BLOB = os.urandom(2 * PIECE + 1000)  # three pieces, the last one short


@pytest.fixture(autouse=True)
def storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }
    settings.PARLEY_ATTACHMENT_PIECE_BYTES = PIECE
    return tmp_path


@pytest.fixture
async def people():
    return await sync_to_async(_people)()


def open_upload(actor, size: int):
    return actor.transport.client.post("/api/attachments", {"size": size}, "application/json")


def put(actor, blob_id: str, index: int, data: bytes, **extra):
    return actor.transport.client.put(
        f"/api/attachments/{blob_id}/pieces/{index}",
        data,
        content_type="application/octet-stream",
        **extra,
    )


def piece(index: int, blob: bytes = BLOB) -> bytes:
    return blob[index * PIECE : (index + 1) * PIECE]


def upload(actor, blob: bytes = BLOB) -> str:
    opened = open_upload(actor, len(blob))
    assert opened.status_code == 201, opened.content
    blob_id = opened.json()["blob_id"]
    for index in range(opened.json()["pieces"]):
        assert put(actor, blob_id, index, piece(index, blob)).status_code == 200
    return blob_id


async def fetch(actor, blob_id: str, *, start: int | None = None, stop_after: int | None = None):
    """(status, bytes read, response) of a download by `actor`'s device, through the ASGI
    handler; `stop_after`: the device goes away after that many bytes."""
    client = AsyncClient()
    client.cookies = actor.transport.client.cookies
    headers = {} if start is None else {"Range": f"bytes={start}-"}
    response = await client.get(f"/api/attachments/{blob_id}", headers=headers)
    if not response.streaming:
        return response.status_code, response.content, response
    body = b""
    async for chunk in response.streaming_content:
        body += chunk
        if stop_after is not None and len(body) >= stop_after:
            break
    return response.status_code, body, response


def stored_pieces(storage, blob_id: str) -> list[str]:
    folder = storage / blob_id
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def grants(blob_id: str) -> dict[str, bool]:
    """device id -> fetched"""
    rows = AttachmentGrant.objects.filter(attachment_id=blob_id).values_list(
        "device_id", "fetched_at"
    )
    return {d: f is not None for d, f in await sync_to_async(list)(rows)}


async def test_a_blob_sent_is_fetched_whole_by_every_target_then_deleted(people, storage):
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    blob_id = await sync_to_async(upload)(laptop)
    assert stored_pieces(storage, blob_id) == ["000000", "000001", "000002"]
    sender = await connect(laptop)
    targets = {bob.device_id: b"key for bob", alice.device_id: b"transcript"}
    await sender.send_to(text_data=send_frame("e1", "bobby", targets, attachments=[blob_id]))
    assert await sender.receive_json_from(timeout=3) == {"type": "accepted", "v": 1, "id": "e1"}
    # every target of the send, the sender's own other device included
    assert await grants(blob_id) == {bob.device_id: False, alice.device_id: False}
    status, body, response = await fetch(bob, blob_id)
    assert (status, body) == (200, BLOB)
    assert response["Content-Length"] == str(len(BLOB))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Cache-Control"] == "no-store"
    # fetching is not having: the device says so once the file opened
    assert await grants(blob_id) == {bob.device_id: False, alice.device_id: False}
    assert (await sync_to_async(fetched)(bob, blob_id)).json() == {"fetched": True}
    assert await grants(blob_id) == {bob.device_id: True, alice.device_id: False}
    assert (await fetch(alice, blob_id))[:2] == (200, BLOB)
    assert (
        await sync_to_async(fetched)(laptop, blob_id)
    ).status_code == 200  # the uploader's: no change
    assert stored_pieces(storage, blob_id) != []
    assert (await sync_to_async(fetched)(alice, blob_id)).status_code == 200
    assert not await sync_to_async(Attachment.objects.filter(pk=blob_id).exists)()
    assert stored_pieces(storage, blob_id) == []
    assert (await fetch(bob, blob_id))[0] == 404
    assert (await sync_to_async(fetched)(bob, blob_id)).status_code == 404
    await sender.disconnect()


def fetched(actor, blob_id: str):
    return actor.transport.client.post(
        f"/api/attachments/{blob_id}/fetched", {}, "application/json"
    )


def test_an_interrupted_upload_resumes_where_the_server_stands(people, storage):
    laptop = people["alice_laptop"]
    opened = open_upload(laptop, len(BLOB))
    assert opened.json() == {
        "blob_id": opened.json()["blob_id"],
        "piece_bytes": PIECE,
        "pieces": 3,
        "stored": 0,
    }
    blob_id = opened.json()["blob_id"]
    first = put(laptop, blob_id, 0, piece(0))
    assert first.json() == {"stored": 1, "pieces": 3, "complete": False}
    # the answer was lost: the same piece again gets the same answer, other bytes do not
    assert put(laptop, blob_id, 0, piece(0)).json() == first.json()
    other = put(laptop, blob_id, 0, bytes(PIECE))
    assert (other.status_code, other.json()["error"]["code"]) == (409, "piece_mismatch")
    skipped = put(laptop, blob_id, 2, piece(2))
    assert skipped.status_code == 409
    assert skipped.json()["error"]["code"] == "piece_out_of_order"
    assert skipped.json()["error"]["data"] == {"stored": 1}
    # after a reconnect the device asks where the upload stands and goes on from there
    status = laptop.transport.client.get(f"/api/attachments/{blob_id}/upload").json()
    assert status == {
        "stored": 1,
        "pieces": 3,
        "complete": False,
        "size": len(BLOB),
        "piece_bytes": PIECE,
    }
    assert put(laptop, blob_id, 1, piece(1)).json()["complete"] is False
    assert put(laptop, blob_id, 2, piece(2)).json() == {"stored": 3, "pieces": 3, "complete": True}
    assert stored_pieces(storage, blob_id) == ["000000", "000001", "000002"]
    assert Attachment.objects.get(pk=blob_id).completed_at is not None


async def test_a_download_cut_off_resumes_with_a_range(people):
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    blob_id = await sync_to_async(upload)(bob)
    sender = await connect(bob)
    targets = {alice.device_id: b"k", laptop.device_id: b"k"}
    await sender.send_to(text_data=send_frame("e1", "alice", targets, attachments=[blob_id]))
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    _, part, _ = await fetch(laptop, blob_id, stop_after=1000)
    assert BLOB.startswith(part)
    status, rest, response = await fetch(laptop, blob_id, start=len(part))
    assert (status, part + rest) == (206, BLOB)
    assert response["Content-Range"] == f"bytes {len(part)}-{len(BLOB) - 1}/{len(BLOB)}"
    assert response["Content-Length"] == str(len(BLOB) - len(part))
    # the uploader reads it too, from any byte, without a grant of its own
    status, tail, _ = await fetch(bob, blob_id, start=PIECE + 5)
    assert (status, tail) == (206, BLOB[PIECE + 5 :])
    status, _, response = await fetch(bob, blob_id, start=len(BLOB))
    assert (status, response.json()["error"]["code"]) == (416, "range_not_satisfiable")
    await sender.disconnect()


@pytest.mark.parametrize(
    ("file_bytes", "blob_bytes"),
    [(0, 41), (1, 42), (65536, 65577), (65537, 65595), (25_000_000, 25_006_518)],
)
def test_the_blob_size_is_the_secretstream_of_the_file(file_bytes, blob_bytes):
    assert blob_size(file_bytes) == blob_bytes


def test_a_file_over_the_limit_is_refused_before_its_upload_with_the_limit(people):
    laptop = people["alice_laptop"]
    too_large = open_upload(laptop, blob_size(25_000_000) + 1)
    assert too_large.status_code == 413
    assert too_large.json()["error"] == {
        "code": "attachment_too_large",
        "message": "Files can be at most 25 MB.",
        "data": {"limit": 25_000_000},
    }
    largest = open_upload(laptop, blob_size(25_000_000))
    assert (largest.status_code, largest.json()["pieces"]) == (201, -(-25_006_518 // PIECE))
    too_small = open_upload(laptop, blob_size(0) - 1)
    assert too_small.status_code == 400
    assert too_small.json()["error"]["data"] == {"field": "size"}
    assert Attachment.objects.count() == 1


def test_the_quota_counts_every_live_attachment_of_the_account(people, settings):
    settings.PARLEY_ATTACHMENT_QUOTA_BYTES = 3 * len(BLOB)
    alice, laptop = people["alice"], people["alice_laptop"]
    upload(laptop)
    assert open_upload(alice, len(BLOB)).status_code == 201  # unfinished, still counted
    refused = open_upload(alice, 2 * len(BLOB))
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "attachment_quota"
    assert refused.json()["error"]["data"] == {"quota": 3 * len(BLOB), "used": 2 * len(BLOB)}
    assert open_upload(people["bob"], 2 * len(BLOB)).status_code == 201  # another account's


async def test_nobody_without_a_grant_learns_anything_of_a_blob(people):
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    blob_id = await sync_to_async(upload)(laptop)
    unknown = await fetch(bob, "A" * 22)
    for stranger in (bob, alice):  # another account; the uploader's own other device
        status, body, _ = await fetch(stranger, blob_id)
        assert (status, body) == (404, unknown[1])
        assert json.loads(body)["error"]["code"] == "not_found"
    unfinished = (await sync_to_async(open_upload)(laptop, len(BLOB))).json()["blob_id"]
    assert (await fetch(laptop, unfinished))[0] == 404
    for stranger in (bob, alice):
        written = await sync_to_async(put)(stranger, unfinished, 0, piece(0))
        assert (written.status_code, written.json()["error"]["code"]) == (404, "not_found")
        asked = await sync_to_async(stranger.transport.client.get)(
            f"/api/attachments/{unfinished}/upload"
        )
        assert asked.status_code == 404
    assert await sync_to_async(lambda: Attachment.objects.get(pk=unfinished).pieces_stored)() == 0


async def test_a_send_naming_a_blob_not_complete_and_its_own_is_refused_and_stores_nothing(
    people,
):
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    theirs = await sync_to_async(upload)(bob)
    unfinished = (await sync_to_async(open_upload)(laptop, len(BLOB))).json()["blob_id"]
    ours = await sync_to_async(upload)(laptop)
    sender = await connect(laptop)
    targets = {bob.device_id: b"k", alice.device_id: b"k"}
    for named in ([ours, theirs], [unfinished]):
        await sender.send_to(text_data=send_frame("e1", "bobby", targets, attachments=named))
        refused = await sender.receive_json_from(timeout=3)
        assert (refused["type"], refused["code"], refused["ref"]) == (
            "error",
            "attachment_unknown",
            "e1",
        )
        assert refused["data"] == {"blob_id": named[-1]}
    assert await sync_to_async(QueuedEnvelope.objects.count)() == 0
    assert await sync_to_async(AttachmentGrant.objects.count)() == 0
    for bad in (["not a blob id"], [ours, ours], [ours] * 17, ours):
        await sender.send_to(text_data=send_frame("e2", "bobby", targets, attachments=bad))
        answer = await sender.receive_json_from(timeout=3)
        assert (answer["code"], answer["data"]) == ("bad_frame", {"field": "attachments"})
    # the corrected send keeps its id
    await sender.send_to(text_data=send_frame("e1", "bobby", targets, attachments=[ours]))
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    assert await grants(ours) == {bob.device_id: False, alice.device_id: False}
    await sender.disconnect()


async def test_a_group_send_grants_every_target_device_and_its_resend_changes_nothing():
    p = await sync_to_async(_group_people)()
    blob_id = await sync_to_async(upload)(p["laptop"])
    sender = await connect(p["laptop"])
    data = message(p["chain"], "alice", p["laptop"].device_id)
    frame = json.loads(group_send("g1", data, all_but_laptop(p)))
    frame["attachments"] = [blob_id]
    for _ in range(2):
        await sender.send_to(text_data=json.dumps(frame))
        assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    assert await grants(blob_id) == dict.fromkeys(all_but_laptop(p), False)
    status, body, _ = await fetch(p["carol"], blob_id)
    assert (status, body) == (200, BLOB)
    assert (await fetch(p["dave"], blob_id))[0] == 404  # not in the group
    await sender.disconnect()


def test_expiry_deletes_old_attachments_and_uploads_unfinished_for_a_day(people, storage):
    laptop = people["alice_laptop"]
    device = Device.objects.get(pk=laptop.device_id)
    now = timezone.now()
    old = upload(laptop)
    Attachment.objects.filter(pk=old).update(created_at=now - timedelta(days=31))
    stale = attachments.attachment_open(
        device=device, size=len(BLOB), now=now - timedelta(hours=25)
    )
    attachments.piece_store(
        device=device, blob_id=stale.blob_id, index=0, length=PIECE, body=io.BytesIO(piece(0))
    )
    recent = attachments.attachment_open(
        device=device, size=len(BLOB), now=now - timedelta(hours=1)
    )
    kept = upload(laptop)
    out = io.StringIO()
    call_command("expire_envelopes", stdout=out)
    assert "expired attachments: 2" in out.getvalue()
    assert sorted(Attachment.objects.values_list("id", flat=True)) == sorted([recent.blob_id, kept])
    assert stored_pieces(storage, old) == stored_pieces(storage, stale.blob_id) == []
    assert len(stored_pieces(storage, kept)) == 3


def test_a_piece_without_the_csrf_token_is_refused(people):
    laptop = people["alice_laptop"]
    blob_id = open_upload(laptop, len(BLOB)).json()["blob_id"]
    browser = Client(enforce_csrf_checks=True)
    browser.cookies = laptop.transport.client.cookies
    browser.get("/chats")  # the page sets the csrftoken cookie
    path = f"/api/attachments/{blob_id}/pieces/0"
    refused = browser.put(path, piece(0), content_type="application/octet-stream")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "csrf_failed")
    token = browser.cookies["csrftoken"].value
    stored = browser.put(
        path, piece(0), content_type="application/octet-stream", HTTP_X_CSRFTOKEN=token
    )
    assert stored.json()["stored"] == 1


def test_a_content_length_other_than_the_pieces_is_refused_before_reading(people, storage):
    laptop = people["alice_laptop"]
    blob_id = open_upload(laptop, len(BLOB)).json()["blob_id"]
    short = put(laptop, blob_id, 0, piece(0), CONTENT_LENGTH=str(PIECE - 1))
    assert short.status_code == 400
    assert short.json()["error"]["data"] == {"field": "Content-Length", "expected": PIECE}
    put(laptop, blob_id, 0, piece(0))
    put(laptop, blob_id, 1, piece(1))
    long = put(laptop, blob_id, 2, piece(2) + b"x")
    assert (long.status_code, long.json()["error"]["code"]) == (413, "too_large")
    assert long.json()["error"]["data"] == {"expected": 1000}
    assert stored_pieces(storage, blob_id) == ["000000", "000001"]
    assert Attachment.objects.get(pk=blob_id).pieces_stored == 2


def share(actor, device_id: str, blob_ids: list[str]):
    return actor.transport.client.post(
        "/api/attachments/grants",
        {"device_id": device_id, "blob_ids": blob_ids},
        "application/json",
    )


async def test_a_device_shares_the_blobs_it_may_fetch_with_another_own_device_only(people):
    """What the history of a newly linked device needs (docs/protocol.md 19.5): the approving
    device grants it the files the history points at. It cannot grant what it may not fetch
    itself, nor grant anything to a device of another account."""
    alice, laptop, bob = people["alice"], people["alice_laptop"], people["bob"]
    blob_id = await sync_to_async(upload)(bob)
    sender = await connect(bob)
    frame = send_frame(
        "e1", "alice", {alice.device_id: b"key"}, attachments=[blob_id], partial=True
    )
    await sender.send_to(text_data=frame)
    assert (await sender.receive_json_from(timeout=3))["type"] == "accepted"
    await sender.disconnect()
    assert (await fetch(laptop, blob_id))[0] == 404  # not a target of that send

    refused = await sync_to_async(share)(bob, laptop.device_id, [blob_id])
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "device_not_found")
    mine_only = await sync_to_async(share)(laptop, alice.device_id, [blob_id])
    assert mine_only.json() == {"granted": []}  # the laptop may not fetch it itself
    shared = await sync_to_async(share)(alice, laptop.device_id, [blob_id, "A" * 22])
    assert shared.json() == {"granted": [blob_id]}
    assert (await fetch(laptop, blob_id))[:2] == (200, BLOB)
    malformed = await sync_to_async(share)(alice, laptop.device_id, ["not a blob id"])
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "invalid_input")
