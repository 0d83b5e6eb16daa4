"""The key directory: signed lists it refuses, prekeys it hands out once, and each other
account's fair share of a device's one-time prekeys."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from devices.models import DeviceList, OneTimePrekey, PrekeyClaim
from protocol import devicelist as dl
from protocol.encoding import b64u_encode
from tests.support.actors import (
    CompanionActor,
    DjangoTransport,
    PrimaryActor,
    link,
    new_device_keys,
    now_ms,
)
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"


def make_primary(username: str = "alice") -> PrimaryActor:
    return PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username=username
    ).sign_up()


def _tampered_lists(
    primary: PrimaryActor, companion: CompanionActor
) -> dict[str, tuple[dict, str]]:
    """Lists a misbehaving client or server might publish, with the error the server gives."""
    devices = list(primary.last_list.devices)
    good = primary.signed_list(devices=devices)
    stranger = new_device_keys()[1].identity
    forged = dl.sign_device_list(
        stranger,
        account_id="alice",
        version=good.version,
        timestamp=now_ms(),
        devices=[
            replace(d, identity_key=stranger.public) if d.device_id == primary.device_id else d
            for d in devices
        ],
    )
    companion_entry = next(d for d in devices if d.device_id == companion.device_id)
    unsigned_companion = dl.sign_device_list(
        primary.keys.identity,
        account_id="alice",
        version=good.version,
        timestamp=now_ms(),
        devices=[
            replace(companion_entry, device_signature=None) if d is companion_entry else d
            for d in devices
        ],
    )
    bad_signature = good.to_dict() | {"signature": b64u_encode(bytes(64))}
    old = dl.sign_device_list(
        primary.keys.identity,
        account_id="alice",
        version=primary.last_list.version,
        timestamp=now_ms(),
        devices=devices,
    )
    return {
        "bad account signature": (bad_signature, "invalid_signature"),
        "signed by another key": (forged.to_dict(), "account_key_changed"),
        "companion without device signature": (
            unsigned_companion.to_dict(),
            "missing_device_signature",
        ),
        "same version again (rollback)": (old.to_dict(), "stale_device_list"),
        "another account's id": (good.to_dict() | {"account_id": "mallory"}, "wrong_account"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case",
    [
        "bad account signature",
        "signed by another key",
        "companion without device signature",
        "same version again (rollback)",
        "another account's id",
    ],
)
def test_server_refuses_a_device_list_that_does_not_verify(case):
    primary = make_primary()
    companion = link(primary, CompanionActor(DjangoTransport()))
    body, code = _tampered_lists(primary, companion)[case]
    before = DeviceList.objects.count()
    status, answer = primary.transport.post("/api/devices/list", {"device_list": body})
    assert (status, answer["error"]["code"]) == (409, code), answer
    assert DeviceList.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "device_list"),
        ({"device_list": "x"}, "device_list"),
        ({"device_list": {"account_id": "alice"}}, "device_list"),
    ],
)
def test_malformed_device_list_input_gets_a_clear_error(body, field):
    primary = make_primary()
    status, answer = primary.transport.post("/api/devices/list", body)
    assert (
        status == 400 and answer["error"]["data"]["field"] == field and answer["error"]["message"]
    )


@pytest.mark.django_db
def test_bundles_hand_out_each_one_time_prekey_once_and_then_none(settings):
    settings.PARLEY_PREKEY_SHARE = 100  # the pool itself; the fair share is tested below
    alice = make_primary("alice")
    bob = make_primary("bobby")
    seen = []
    for _ in range(11):
        bundles = bob.transport.post("/api/accounts/alice/bundles", {})[1]["bundles"]
        assert [b["device_id"] for b in bundles] == [alice.device_id]
        otp = bundles[0]["one_time_prekey"]
        seen.append(None if otp is None else otp["id"])
    assert seen == [*range(1, 11), None]


@pytest.mark.django_db(transaction=True)
def test_one_time_prekeys_are_never_handed_out_twice_under_concurrent_fetches(settings):
    settings.PARLEY_PREKEY_SHARE = 100
    alice = make_primary("alice")
    fetchers = [make_primary(f"user{n}") for n in range(6)]
    handed: list[int] = []
    failures: list[object] = []
    lock = threading.Lock()

    def fetch(actor: PrimaryActor) -> None:
        for _ in range(3):
            status, body = actor.transport.post("/api/accounts/alice/bundles", {})
            if status != 200:
                failures.append(body)
                continue
            otp = body["bundles"][0]["one_time_prekey"]
            if otp is not None:
                with lock:
                    handed.append(otp["id"])

    threads = [threading.Thread(target=fetch, args=(a,)) for a in fetchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(handed) == len(set(handed)) == 10
    assert not OneTimePrekey.objects.filter(device_id=alice.device_id).exists()


@pytest.mark.django_db
def test_prekey_upload_checks_the_signed_prekey_signature():
    primary = make_primary()
    bad = {
        "signed_prekey": {
            "id": 2,
            "public_key": b64u_encode(bytes(range(32))),
            "signature": b64u_encode(bytes(64)),
        },
        "one_time_prekeys": [],
    }
    status, body = primary.transport.post("/api/prekeys", bad)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")
    status, body = primary.transport.post(
        "/api/prekeys", {"one_time_prekeys": [{"id": 1, "public_key": b64u_encode(bytes(32))}]}
    )
    assert (status, body["error"]["code"]) == (409, "prekey_id_reused")
    assert primary.transport.get("/api/prekeys") == (
        200,
        # and what sign-up gave: 10 one-time KEM prekeys and the last-resort one (27.6)
        {"one_time_prekeys": 10, "kem_prekeys": 10, "last_resort_kem_prekey": 1},
    )


@pytest.mark.django_db
def test_bundles_can_be_asked_for_single_devices_and_never_include_the_requester():
    alice = make_primary("alice")
    laptop = link(alice, CompanionActor(DjangoTransport()))
    own = laptop.transport.post("/api/accounts/alice/bundles", {})[1]["bundles"]
    assert [b["device_id"] for b in own] == [alice.device_id]
    bob = make_primary("bobby")
    only_laptop = bob.transport.post(
        "/api/accounts/alice/bundles", {"device_ids": [laptop.device_id]}
    )[1]["bundles"]
    assert [b["device_id"] for b in only_laptop] == [laptop.device_id]
    status, body = bob.transport.post("/api/accounts/alice/bundles", {"device_ids": "x"})
    assert (status, body["error"]["data"]["field"]) == (400, "device_ids")


def _otp_ids(actor: PrimaryActor, account: str) -> dict[str, int | None]:
    status, body = actor.transport.post(f"/api/accounts/{account}/bundles", {})
    assert status == 200, body
    for bundle in body["bundles"]:
        assert bundle["signed_prekey"]["public_key"]  # a session can always start
    return {
        b["device_id"]: None if b["one_time_prekey"] is None else b["one_time_prekey"]["id"]
        for b in body["bundles"]
    }


@pytest.mark.django_db
def test_another_account_gets_one_one_time_prekey_per_device_a_day_then_signed_prekeys_only():
    alice = make_primary("alice")
    laptop = link(alice, CompanionActor(DjangoTransport()))
    mallory = make_primary("mallory")
    mallory_laptop = link(mallory, CompanionActor(DjangoTransport()))
    devices = {alice.device_id, laptop.device_id}
    assert _otp_ids(mallory, "alice") == dict.fromkeys(devices, 1)
    for _ in range(10):
        assert _otp_ids(mallory, "alice") == dict.fromkeys(devices, None)
    assert _otp_ids(mallory_laptop, "alice") == dict.fromkeys(devices, None)  # per account
    assert _otp_ids(make_primary("carol"), "alice") == dict.fromkeys(devices, 2)
    for device_id in devices:
        assert OneTimePrekey.objects.filter(device_id=device_id).count() == 8

    PrekeyClaim.objects.update(claimed_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert _otp_ids(mallory, "alice") == dict.fromkeys(devices, 3)  # a new day, a new share


@pytest.mark.django_db
def test_the_accounts_own_devices_are_not_held_to_the_share():
    alice = make_primary("alice")
    laptop = link(alice, CompanionActor(DjangoTransport()))
    assert [_otp_ids(laptop, "alice")[alice.device_id] for _ in range(3)] == [1, 2, 3]
    assert not PrekeyClaim.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_fetches_of_one_account_get_no_more_than_its_share():
    alice = make_primary("alice")
    mallory = make_primary("mallory")
    handed: list[int | None] = []
    lock = threading.Lock()

    def fetch() -> None:
        otp = _otp_ids(mallory, "alice")[alice.device_id]
        with lock:
            handed.append(otp)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(handed, key=lambda x: x is None) == [1, None, None, None, None, None]
    assert OneTimePrekey.objects.filter(device_id=alice.device_id).count() == 9


@pytest.mark.django_db
def test_the_expiry_job_drops_claims_older_than_the_window():
    make_primary("alice")
    mallory = make_primary("mallory")
    _otp_ids(mallory, "alice")
    PrekeyClaim.objects.update(claimed_at=timezone.now() - timedelta(hours=23))
    call_command("expire_devices", stdout=StringIO())
    assert PrekeyClaim.objects.count() == 2  # a one-time prekey and a one-time KEM prekey
    PrekeyClaim.objects.update(claimed_at=timezone.now() - timedelta(hours=25))
    out = StringIO()
    call_command("expire_devices", stdout=out)
    assert "prekey claims: 2" in out.getvalue()
    assert not PrekeyClaim.objects.exists()
