"""Signing in as primary on a new browser re-registers the account (DESIGN §7 device lists)."""

from __future__ import annotations

import pytest

from devices.models import Device, DeviceList
from protocol import devicelist as dl
from protocol.encoding import b64u_encode
from protocol.exceptions import AccountKeyChanged
from tests.support.actors import (
    CompanionActor,
    DjangoTransport,
    PrimaryActor,
    link,
    new_device_keys,
    now_ms,
    prekey_upload,
)

pytestmark = pytest.mark.django_db


def reregister(old: PrimaryActor, *, version: int) -> tuple[int, dict, str, object]:
    """A new browser with the same passkey (a synced passkey) and fresh keys."""
    browser = DjangoTransport()
    device_id, keys = new_device_keys()
    begin = browser.post("/api/accounts/reregister/options", {"username": old.username})[1]
    assert begin["device_list_version"] == 2  # v1 at sign-up, v2 when the laptop was linked
    now = now_ms()
    new_list = dl.sign_device_list(
        keys.identity,
        account_id=old.username,
        version=version,
        timestamp=now,
        devices=[
            dl.DeviceEntry(device_id=device_id, identity_key=keys.identity.public, added_at=now)
        ],
    )
    status, body = browser.post(
        "/api/accounts/reregister",
        {
            "challenge_id": begin["challenge_id"],
            "credential": old.authenticator.get(begin["options"]),
            "device": {
                "device_id": device_id,
                "identity_key": b64u_encode(keys.identity.public),
                "name": "New phone",
                "platform": "Python",
            },
            "device_list": new_list.to_dict(),
            **prekey_upload(keys),
        },
    )
    return status, body, device_id, new_list


def test_a_new_primary_replaces_the_account_key_and_logs_out_every_other_device():
    from tests.support.softauthn import SoftAuthenticator

    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    status, body, device_id, new_list = reregister(alice, version=3)
    assert status == 200 and body["device"] == {
        "device_id": device_id,
        "name": "New phone",
        "is_primary": True,
    }
    assert set(
        Device.objects.filter(user__username="alice", revoked_at__isnull=True).values_list(
            "id", flat=True
        )
    ) == {device_id}
    assert alice.transport.get("/api/me")[0] == 401 and laptop.transport.get("/api/me")[0] == 401
    published = dl.DeviceList.from_dict(
        DeviceList.objects.filter(user__username="alice").order_by("-version").first().body
    )
    # A contact who pinned the old account key sees the change as its own, visible event.
    with pytest.raises(AccountKeyChanged):
        dl.verify_device_list(
            published, expected_account_key=alice.keys.identity.public, last_accepted_version=2
        )
    dl.verify_device_list(published, last_accepted_version=2)


def test_re_registration_cannot_roll_the_list_version_back():
    from tests.support.softauthn import SoftAuthenticator

    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    link(alice, CompanionActor(DjangoTransport()))
    status, body, _, _ = reregister(alice, version=2)
    assert (status, body["error"]["code"]) == (409, "stale_device_list")
    assert Device.objects.filter(user__username="alice", revoked_at__isnull=True).count() == 2
