"""Linking over the HTTP API with Python devices: the rules of DESIGN §4 and §7 (linking)."""

from __future__ import annotations

import pytest

from accounts.models import Passkey
from devices.models import Device, DeviceList, LinkSession
from protocol import devicelist as dl
from protocol.encoding import b64u_encode
from tests.support.actors import ApiFailure, CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"
pytestmark = pytest.mark.django_db


@pytest.fixture
def primary() -> PrimaryActor:
    return PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username="alice"
    ).sign_up()


def test_linked_companion_gets_its_own_session_and_appears_in_the_signed_list(primary):
    companion = link(primary, CompanionActor(DjangoTransport()), name="Work laptop")
    me = companion.transport.get("/api/me")
    assert me == (
        200,
        {
            "account": {"username": "alice", "display_name": "Test User"},
            "device": {
                "device_id": companion.device_id,
                "name": "Work laptop",
                "is_primary": False,
            },
        },
    )
    stored = DeviceList.objects.filter(user__username="alice").order_by("-version").first()
    published = dl.DeviceList.from_dict(stored.body)
    dl.verify_device_list(published, expected_account_key=primary.keys.identity.public)
    assert published.version == 2
    assert {d.device_id for d in published.devices} == {primary.device_id, companion.device_id}


def test_fifth_companion_is_refused_and_no_device_is_created(primary):
    for n in range(4):
        link(primary, CompanionActor(DjangoTransport()), name=f"Laptop {n}")
    fifth = CompanionActor(DjangoTransport())
    qr = fifth.open_link()
    with pytest.raises(ApiFailure) as refused:
        primary.approve(qr)
    assert refused.value.code == "companion_limit"
    assert (
        refused.value.body["error"]["message"] == "You can link up to 4 devices; log one out first."
    )
    assert Device.objects.filter(user__username="alice", revoked_at__isnull=True).count() == 5
    # The new browser is not signed in: its link session tells it the account is full.
    assert fifth.transport.get(f"/api/link/{qr.link_id}")[1]["state"] == "account_full"


def test_the_approval_page_knows_at_once_that_the_account_is_full(primary):
    for n in range(3):
        link(primary, CompanionActor(DjangoTransport()), name=f"Laptop {n}")
    newcomer = CompanionActor(DjangoTransport())
    qr = newcomer.open_link()
    detail = primary.transport.get(f"/api/link/{qr.link_id}/detail")[1]
    assert (detail["account_full"], detail["max_companions"]) == (False, 4)
    status, body = primary.transport.post(f"/api/link/{qr.link_id}/decline", {"account_full": True})
    assert (status, body["error"]["code"]) == (409, "link_state")
    assert newcomer.transport.get(f"/api/link/{qr.link_id}")[1]["state"] == "waiting"

    link(primary, CompanionActor(DjangoTransport()), name="Laptop 3")
    detail = primary.transport.get(f"/api/link/{qr.link_id}/detail")[1]
    assert (detail["state"], detail["account_full"]) == ("waiting", True)
    assert primary.transport.post(f"/api/link/{qr.link_id}/decline", {"account_full": True}) == (
        200,
        {"declined": True},
    )
    assert newcomer.transport.get(f"/api/link/{qr.link_id}")[1]["state"] == "account_full"
    status, body = primary.transport.get(f"/api/link/{qr.link_id}/detail")
    assert (status, body["error"]["code"]) == (410, "link_used")
    assert "your account was full" in body["error"]["message"]


def test_an_account_filled_during_the_approval_refuses_it_without_using_the_passkey(primary):
    for n in range(3):
        link(primary, CompanionActor(DjangoTransport()), name=f"Laptop {n}")
    late = CompanionActor(DjangoTransport())
    qr = late.open_link()
    begin = primary.transport.post(f"/api/link/{qr.link_id}/approve/options", {})[1]
    link(primary, CompanionActor(DjangoTransport()), name="Laptop 3")
    before = passkey_record()
    status, body = primary.transport.post(
        f"/api/link/{qr.link_id}/approve", approval_body(primary, begin)
    )
    assert (status, body["error"]["code"]) == (409, "companion_limit")
    assert passkey_record() == before
    assert late.transport.get(f"/api/link/{qr.link_id}")[1]["state"] == "account_full"


def passkey_record() -> tuple[int, object]:
    passkey = Passkey.objects.get(user__username="alice")
    return passkey.sign_count, passkey.last_used_at


def approval_body(primary: PrimaryActor, begin: dict) -> dict:
    return {
        "challenge_id": begin["challenge_id"],
        "credential": primary.authenticator.get(begin["options"]),
        "provisioning": b64u_encode(b"x" * 100),
        "name": "L",
        "send_history": False,
    }


def test_approving_an_approved_link_again_leaves_the_passkey_untouched(primary):
    qr = CompanionActor(DjangoTransport()).open_link()
    path = f"/api/link/{qr.link_id}"
    first, second = (primary.transport.post(f"{path}/approve/options", {})[1] for _ in range(2))
    assert primary.transport.post(f"{path}/approve", approval_body(primary, first))[0] == 200
    before = passkey_record()
    status, body = primary.transport.post(f"{path}/approve", approval_body(primary, second))
    assert (status, body["error"]["code"]) == (410, "link_used")
    assert passkey_record() == before
    status, body = primary.transport.post(f"{path}/approve/options", {})
    assert (status, body["error"]["code"]) == (410, "link_used")


def test_approval_without_user_verification_is_refused_by_the_server(primary):
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    primary.authenticator.user_verified = False
    with pytest.raises(ApiFailure) as refused:
        primary.approve(qr)
    assert refused.value.code == "user_verification_failed"
    assert LinkSession.objects.get(pk=qr.link_id).state == LinkSession.State.WAITING


def test_approval_challenge_is_single_use(primary):
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    begin = primary.transport.post(f"/api/link/{qr.link_id}/approve/options", {})[1]
    assertion = primary.authenticator.get(begin["options"])
    body = {
        "challenge_id": begin["challenge_id"],
        "credential": assertion,
        "provisioning": b64u_encode(b"x" * 100),
        "name": "L",
        "send_history": False,
    }
    assert primary.transport.post(f"/api/link/{qr.link_id}/approve", body)[0] == 200
    status, replay = primary.transport.post(f"/api/link/{qr.link_id}/approve", body)
    assert (status, replay["error"]["code"]) == (400, "challenge_used")


def test_a_photographed_qr_is_worth_nothing_in_another_browser(primary):
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    primary.approve(qr)
    thief = DjangoTransport()
    status, body = thief.get(f"/api/link/{qr.link_id}")
    assert (status, body["error"]["code"]) == (404, "link_not_found")


def test_link_token_needs_the_new_identity_key_and_is_single_use(primary):
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    primary.approve(qr)
    companion.sign()
    primary.complete(qr)
    forged = companion.transport.post(
        f"/api/link/{qr.link_id}/redeem", {"signature": b64u_encode(bytes(64))}
    )
    assert forged[0] == 409 and forged[1]["error"]["code"] == "invalid_signature"
    companion.redeem()
    with pytest.raises(ApiFailure) as reused:
        companion.redeem()
    assert reused.value.code == "link_used"


def test_expired_link_session_is_refused(primary, settings):
    settings.PARLEY_LINK_TTL_SECONDS = 0
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    with pytest.raises(ApiFailure) as refused:
        primary.approve(qr)
    assert refused.value.code == "link_expired"


def test_only_the_primary_can_approve(primary):
    companion = link(primary, CompanionActor(DjangoTransport()))
    newcomer = CompanionActor(DjangoTransport())
    qr = newcomer.open_link()
    status, body = companion.transport.post(f"/api/link/{qr.link_id}/approve/options", {})
    assert (status, body["error"]["code"]) == (403, "not_primary")


def test_list_that_does_not_carry_the_new_device_signature_is_refused(primary):
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    primary.approve(qr)
    companion.sign()
    detail = primary.transport.get(f"/api/link/{qr.link_id}/detail")[1]
    wrong = dl.DeviceEntry(
        device_id=detail["device_id"],
        identity_key=qr.identity_key,
        added_at=1,
        device_signature=bytes(64),
    )
    bad_list = primary.signed_list(devices=[*primary.last_list.devices, wrong])
    status, body = primary.transport.post(
        f"/api/link/{qr.link_id}/complete", {"device_list": bad_list.to_dict()}
    )
    assert status == 409 and body["error"]["code"] in {"device_list_mismatch", "invalid_signature"}
    assert not Device.objects.filter(pk=detail["device_id"]).exists()


def test_an_expired_request_says_so_to_the_new_device(primary, settings):
    settings.PARLEY_LINK_TTL_SECONDS = 0
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    assert companion.transport.get(f"/api/link/{qr.link_id}")[1]["state"] == "expired"


def test_the_primary_can_decline_and_the_new_device_sees_it(primary):
    companion = CompanionActor(DjangoTransport())
    qr = companion.open_link()
    assert primary.transport.post(f"/api/link/{qr.link_id}/decline", {})[0] == 200
    assert companion.transport.get(f"/api/link/{qr.link_id}")[1]["state"] == "cancelled"
    with pytest.raises(ApiFailure) as refused:
        primary.approve(qr)
    assert refused.value.code == "link_used"
