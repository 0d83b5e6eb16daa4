"""The server keeps only the UTC day a device was last seen (for expiry); a device's exact
last use is in the account's end-to-end-encrypted synced state (docs/protocol.md 22.8)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import Device
from devices.services import device_touch
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

pytestmark = pytest.mark.django_db


def test_the_devices_api_tells_the_day_a_device_was_last_seen_and_no_time_of_day():
    primary = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    link(primary, CompanionActor(DjangoTransport()))
    status, answer = primary.transport.get("/api/devices")
    assert status == 200
    today = timezone.now().astimezone(UTC).date().isoformat()
    for device in answer["devices"]:
        assert device["last_seen_on"] == today
        assert "last_used_at" not in device
    fields = {f.name for f in Device._meta.get_fields()}
    assert "last_seen_on" in fields and "last_used_at" not in fields


def test_a_device_seen_again_the_same_day_writes_nothing_and_the_next_day_writes_the_day():
    primary = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    device = Device.objects.get(pk=primary.device_id)
    morning = datetime(2026, 12, 3, 0, 5, tzinfo=UTC)
    device_touch(device, now=morning)
    with CaptureQueriesContext(connection) as queries:
        device_touch(device, now=datetime(2026, 12, 3, 23, 55, tzinfo=UTC))
    assert len(queries) == 0
    assert Device.objects.get(pk=device.pk).last_seen_on == date(2026, 12, 3)
    device_touch(device, now=datetime(2026, 12, 4, 0, 1, tzinfo=UTC))
    assert Device.objects.get(pk=device.pk).last_seen_on == date(2026, 12, 4)
