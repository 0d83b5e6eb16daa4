"""History bundles: an opaque blob for one device of the same account, fetched once."""

from __future__ import annotations

import pytest

from messaging.models import HistoryBlob
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

pytestmark = pytest.mark.django_db


def test_blob_goes_to_its_device_once_and_nobody_else():
    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    tablet = link(alice, CompanionActor(DjangoTransport()))
    blob = bytes(range(256)) * 10
    upload = alice.transport.client.post(
        f"/api/history?to={laptop.device_id}", blob, content_type="application/octet-stream"
    )
    assert upload.status_code == 200
    blob_id = upload.json()["blob_id"]
    assert tablet.transport.client.get(f"/api/history/{blob_id}").status_code == 404
    fetched = laptop.transport.client.get(f"/api/history/{blob_id}")
    assert (fetched.status_code, fetched.content) == (200, blob)
    assert laptop.transport.client.get(f"/api/history/{blob_id}").status_code == 404
    assert not HistoryBlob.objects.exists()


def test_blob_for_another_account_or_of_wrong_type_is_refused():
    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    bob = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="bobby"
    ).sign_up()
    wrong_account = alice.transport.client.post(
        f"/api/history?to={bob.device_id}", b"x", content_type="application/octet-stream"
    )
    assert (wrong_account.status_code, wrong_account.json()["error"]["code"]) == (
        404,
        "device_not_found",
    )
    wrong_type = alice.transport.client.post(
        f"/api/history?to={bob.device_id}", {"a": 1}, content_type="application/json"
    )
    assert wrong_type.status_code == 400
    assert not HistoryBlob.objects.exists()
