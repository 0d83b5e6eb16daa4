"""Logging devices out (DESIGN §5): cut off at once, everywhere, with a signed list."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db.models import F

from config.asgi import application
from devices.models import Device, DeviceSession, OneTimePrekey
from devices.selectors import suspended_device_ids
from protocol.frames import CLOSE_REVOKED, CLOSE_UNAUTHENTICATED
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"


def make_primary(username: str = "alice") -> PrimaryActor:
    return PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username=username
    ).sign_up()


async def device_socket(transport: DjangoTransport) -> WebsocketCommunicator:
    cookie = "; ".join(f"{k}={v.value}" for k, v in transport.client.cookies.items())
    communicator = WebsocketCommunicator(
        application,
        "/ws/device/",
        headers=[(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())],
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.mark.django_db
def test_removed_companion_is_cut_off_from_the_api_and_its_keys_are_gone():
    primary = make_primary()
    companion = link(primary, CompanionActor(DjangoTransport()))
    assert OneTimePrekey.objects.filter(device_id=companion.device_id).exists()
    primary.revoke(companion.device_id)
    status, body = companion.transport.get("/api/me")
    assert status == 401 and body["error"]["code"] == "not_signed_in"
    assert not DeviceSession.objects.filter(device_id=companion.device_id).exists()
    assert not OneTimePrekey.objects.filter(device_id=companion.device_id).exists()
    listed = {d["device_id"] for d in primary.transport.get("/api/devices")[1]["devices"]}
    assert listed == {primary.device_id}


def key_sign_in(companion: CompanionActor, *, signer=None) -> tuple[int, dict]:
    """Sign `companion` back in with a device key (its own unless `signer` is given)."""
    from protocol.encoding import b64u_decode, b64u_encode
    from protocol.linking import sign_in

    begin = companion.transport.post(
        "/api/devices/signin/options", {"device_id": companion.device_id}
    )[1]
    signature = sign_in(
        signer or companion.keys.identity,
        origin=ORIGIN,
        device_id=companion.device_id,
        nonce=b64u_decode(begin["nonce"]),
    )
    return companion.transport.post(
        "/api/devices/signin",
        {
            "challenge_id": begin["challenge_id"],
            "device_id": companion.device_id,
            "signature": b64u_encode(signature),
        },
    )


@pytest.mark.django_db
def test_revoked_device_cannot_sign_back_in_with_its_identity_key():
    primary = make_primary()
    companion = link(primary, CompanionActor(DjangoTransport()))
    primary.revoke(companion.device_id)
    status, body = key_sign_in(companion)
    assert (status, body["error"]["code"]) == (403, "device_revoked")


@pytest.mark.django_db
def test_expired_session_signs_back_in_with_the_identity_key_only():
    primary = make_primary()
    companion = link(primary, CompanionActor(DjangoTransport()))
    companion.transport.client.cookies.clear()
    assert companion.transport.get("/api/me")[0] == 401
    assert key_sign_in(companion, signer=primary.keys.identity)[0] == 403
    assert key_sign_in(companion)[0] == 200
    assert companion.transport.get("/api/me")[1]["device"]["device_id"] == companion.device_id


@pytest.mark.django_db
def test_companion_logging_itself_out_is_a_suspension_until_the_primary_resigns():
    primary = make_primary()
    companion = link(primary, CompanionActor(DjangoTransport()))
    assert companion.transport.post(f"/api/devices/{companion.device_id}/revoke", {})[0] == 200
    user = Device.objects.get(pk=primary.device_id).user
    assert suspended_device_ids(user) == [companion.device_id]
    assert primary.transport.get(f"/api/accounts/{primary.username}/device-list")[1][
        "suspended"
    ] == [companion.device_id]
    resigned = primary.signed_list(
        devices=[d for d in primary.last_list.devices if d.device_id != companion.device_id]
    )
    assert (
        primary.transport.post("/api/devices/list", {"device_list": resigned.to_dict()})[0] == 200
    )
    assert suspended_device_ids(user) == []


def veto_window_passed(device_id: str) -> None:
    """Move the device's link time back past the veto window."""
    window = timedelta(seconds=settings.PARLEY_VETO_WINDOW_SECONDS + 1)
    Device.objects.filter(pk=device_id).update(added_at=F("added_at") - window)


def veto_until_seen_by(device: CompanionActor | PrimaryActor) -> dict[str, str | None]:
    listed = device.transport.get("/api/devices")[1]["devices"]
    return {d["device_id"]: d["veto_until"] for d in listed}


@pytest.mark.django_db
def test_a_companion_cannot_log_out_an_older_device_nor_one_past_the_veto_window():
    primary = make_primary()
    first = link(primary, CompanionActor(DjangoTransport()))
    second = link(primary, CompanionActor(DjangoTransport()))
    for target in (first, primary):
        status, body = second.transport.post(f"/api/devices/{target.device_id}/revoke", {})
        assert (status, body["error"]["code"]) == (403, "not_primary")
    veto_window_passed(second.device_id)
    assert veto_until_seen_by(first)[second.device_id] is None
    status, body = first.transport.post(f"/api/devices/{second.device_id}/revoke", {})
    assert (status, body["error"]["code"]) == (403, "not_primary")
    assert Device.objects.filter(revoked_at__isnull=True).count() == 3


@pytest.mark.django_db
def test_an_older_companion_removes_a_just_linked_one_and_the_primary_resigns_without_it():
    primary = make_primary()
    first = link(primary, CompanionActor(DjangoTransport()))
    second = link(primary, CompanionActor(DjangoTransport()))
    added = Device.objects.get(pk=second.device_id).added_at
    until = (added + timedelta(seconds=settings.PARLEY_VETO_WINDOW_SECONDS)).isoformat()
    assert veto_until_seen_by(first) == {
        primary.device_id: None,
        first.device_id: None,
        second.device_id: until,
    }
    assert veto_until_seen_by(primary)[second.device_id] == until
    assert set(veto_until_seen_by(second).values()) == {None}

    assert first.transport.post(f"/api/devices/{second.device_id}/revoke", {}) == (
        200,
        {"revoked": second.device_id},
    )
    assert second.transport.get("/api/me")[0] == 401
    assert key_sign_in(second)[0] == 403
    assert Device.objects.get(pk=second.device_id).revoked_reason == "removed_by_device"
    assert first.transport.get("/api/me")[0] == 200  # the remover stays signed in
    user = Device.objects.get(pk=primary.device_id).user
    assert suspended_device_ids(user) == [second.device_id]
    resigned = primary.signed_list(
        devices=[d for d in primary.last_list.devices if d.device_id != second.device_id]
    )
    assert (
        primary.transport.post("/api/devices/list", {"device_list": resigned.to_dict()})[0] == 200
    )
    assert suspended_device_ids(user) == []


@pytest.mark.django_db
def test_removing_a_companion_needs_a_list_without_it():
    primary = make_primary()
    companion = link(primary, CompanionActor(DjangoTransport()))
    still_there = primary.signed_list(devices=list(primary.last_list.devices))
    status, body = primary.transport.post(
        f"/api/devices/{companion.device_id}/revoke", {"device_list": still_there.to_dict()}
    )
    assert (status, body["error"]["code"]) == (409, "device_list_mismatch")
    assert body["error"]["data"] == {"missing": [], "extra": [companion.device_id]}
    assert Device.objects.get(pk=companion.device_id).revoked_at is None


@pytest.mark.django_db
def test_primary_logging_itself_out_resets_the_account():
    primary = make_primary()
    companions = [link(primary, CompanionActor(DjangoTransport())) for _ in range(2)]
    assert primary.transport.post(f"/api/devices/{primary.device_id}/revoke", {})[0] == 200
    assert Device.objects.filter(user__username="alice", revoked_at__isnull=True).count() == 0
    for companion in companions:
        assert companion.transport.get("/api/me")[0] == 401


@pytest.mark.django_db(transaction=True)
async def test_revocation_closes_the_device_socket_at_once_and_tells_the_other_devices():
    from asgiref.sync import sync_to_async

    primary = await sync_to_async(make_primary)()
    companion = await sync_to_async(link)(primary, CompanionActor(DjangoTransport()))
    companion_socket = await device_socket(companion.transport)
    primary_socket = await device_socket(primary.transport)
    await sync_to_async(primary.revoke)(companion.device_id)
    assert await companion_socket.receive_json_from(timeout=2) == {
        "type": "revoked",
        "v": 1,
        "reason": "removed_by_primary",
    }
    closed = await companion_socket.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": CLOSE_REVOKED}
    notice = await primary_socket.receive_json_from(timeout=2)
    assert (
        notice["type"] == "devices_changed"
        and notice["reason"] == "revoked"
        and notice["device_id"] == companion.device_id
    )
    await primary_socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_vetoed_companion_is_cut_off_at_once_and_the_other_devices_are_told():
    from asgiref.sync import sync_to_async

    primary = await sync_to_async(make_primary)()
    first = await sync_to_async(link)(primary, CompanionActor(DjangoTransport()))
    second = await sync_to_async(link)(primary, CompanionActor(DjangoTransport()))
    second_socket = await device_socket(second.transport)
    primary_socket = await device_socket(primary.transport)
    removed = await sync_to_async(first.transport.post)(
        f"/api/devices/{second.device_id}/revoke", {}
    )
    assert removed[0] == 200
    assert await second_socket.receive_json_from(timeout=2) == {
        "type": "revoked",
        "v": 1,
        "reason": "removed_by_device",
    }
    assert await second_socket.receive_output(timeout=2) == {
        "type": "websocket.close",
        "code": CLOSE_REVOKED,
    }
    notice = await primary_socket.receive_json_from(timeout=2)
    assert (notice["reason"], notice["device_id"]) == ("revoked", second.device_id)
    await primary_socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_device_socket_needs_a_signed_in_device():
    communicator = WebsocketCommunicator(
        application, "/ws/device/", headers=[(b"origin", ORIGIN.encode())]
    )
    connected, code = await communicator.connect()
    assert not connected and code == CLOSE_UNAUTHENTICATED


@pytest.mark.django_db(transaction=True)
async def test_every_device_hears_about_a_new_link():
    from asgiref.sync import sync_to_async

    primary = await sync_to_async(make_primary)()
    first = await sync_to_async(link)(primary, CompanionActor(DjangoTransport()))
    listener = await device_socket(first.transport)
    second = await sync_to_async(link)(
        primary, CompanionActor(DjangoTransport(), name="Tablet"), name="Tablet"
    )
    notice = await listener.receive_json_from(timeout=2)
    assert notice == {
        "type": "devices_changed",
        "v": 1,
        "reason": "linked",
        "device_id": second.device_id,
        "device_name": "Tablet",
    }
    await listener.send_to(text_data=json.dumps({"type": "ping", "v": 1, "id": "a"}))
    assert (await listener.receive_json_from(timeout=2))["type"] == "pong"
    await listener.disconnect()


@pytest.mark.django_db
def test_signing_out_ends_the_session_but_keeps_the_device():
    primary = make_primary()
    companion = link(primary, CompanionActor(DjangoTransport()))
    assert companion.transport.post("/api/accounts/signout", {})[0] == 200
    assert companion.transport.get("/api/me")[0] == 401
    assert Device.objects.get(pk=companion.device_id).revoked_at is None
    assert companion.device_id in {
        d["device_id"] for d in primary.transport.get("/api/devices")[1]["devices"]
    }
