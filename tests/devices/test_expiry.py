"""The expiry job: stale link sessions and challenges go; companions of an inactive primary
are logged out (a suspension the primary later re-signs)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Challenge
from devices.models import Device, LinkSession
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

pytestmark = pytest.mark.django_db


def test_companions_are_logged_out_when_the_primary_was_unused_for_the_inactivity_limit(settings):
    settings.PARLEY_PRIMARY_INACTIVITY_DAYS = 14
    primary = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    companion = link(primary, CompanionActor(DjangoTransport()))
    waiting = CompanionActor(DjangoTransport()).open_link()
    Device.objects.filter(pk=primary.device_id).update(
        last_seen_on=(timezone.now() - timedelta(days=14)).date()
    )
    out = StringIO()
    call_command("expire_devices", stdout=out)
    assert Device.objects.get(pk=companion.device_id).revoked_at is None
    Device.objects.filter(pk=primary.device_id).update(
        last_seen_on=(timezone.now() - timedelta(days=15)).date()
    )
    LinkSession.objects.filter(pk=waiting.link_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    out = StringIO()
    call_command("expire_devices", stdout=out)
    assert "companions logged out: 1" in out.getvalue()
    assert Device.objects.get(pk=companion.device_id).revoked_reason == "primary_inactive"
    assert Device.objects.get(pk=primary.device_id).revoked_at is None
    assert not LinkSession.objects.filter(pk=waiting.link_id).exists()
    assert not Challenge.objects.exists()
    assert companion.transport.get("/api/me")[0] == 401
