"""Signing in as primary on a new browser re-registers the account (DESIGN §7 device lists).

The passkey names the account: nobody asks the server about a username first, so the server
tells an anonymous caller nothing about which accounts exist or what their passkeys are."""

from __future__ import annotations

import secrets

import pytest

from client.http import HttpTransport
from devices.models import Device, DeviceList
from protocol import devicelist as dl
from protocol.encoding import b64u_decode, b64u_encode
from protocol.exceptions import AccountKeyChanged
from tests.support.actors import (
    CompanionActor,
    DjangoTransport,
    PrimaryActor,
    Transport,
    link,
    new_device_keys,
    now_ms,
    prekey_upload,
)
from tests.support.server import LiveServer
from tests.support.softauthn import SoftAuthenticator

pytestmark = pytest.mark.django_db

OPTIONS = ("/api/accounts/signin/options", "/api/accounts/reregister/options")


def verify_passkey(browser: Transport, authenticator: SoftAuthenticator) -> tuple[int, dict]:
    """Step one: an anonymous challenge, answered by whichever passkey the person picks."""
    begin = browser.post("/api/accounts/reregister/options", {})[1]
    return browser.post(
        "/api/accounts/reregister/verify",
        {"challenge_id": begin["challenge_id"], "credential": authenticator.get(begin["options"])},
    )


def reregister(
    old: PrimaryActor, *, version: int | None = None
) -> tuple[int, dict, str, dl.DeviceList]:
    """A new browser with the same passkey (a synced passkey) and fresh keys."""
    browser = DjangoTransport()
    device_id, keys = new_device_keys()
    status, verified = verify_passkey(browser, old.authenticator)
    assert status == 200, verified
    # Only now, after the passkey answered, does the browser learn its account and list version.
    assert verified["account"]["username"] == old.username
    assert verified["device_list_version"] == 2  # v1 at sign-up, v2 when the laptop was linked
    now = now_ms()
    new_list = dl.sign_device_list(
        keys.identity,
        account_id=verified["account"]["username"],
        version=verified["device_list_version"] + 1 if version is None else version,
        timestamp=now,
        devices=[
            dl.DeviceEntry(device_id=device_id, identity_key=keys.identity.public, added_at=now)
        ],
    )
    status, body = browser.post(
        "/api/accounts/reregister",
        {
            "reregister_id": verified["reregister_id"],
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


def alice_with_laptop() -> PrimaryActor:
    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    link(alice, CompanionActor(DjangoTransport()))
    return alice


def test_sign_up_asks_for_a_discoverable_passkey_so_no_username_is_needed_later():
    begin = DjangoTransport().post(
        "/api/accounts/register/options", {"username": "alice", "display_name": "Alice"}
    )[1]
    selection = begin["options"]["authenticatorSelection"]
    assert selection["residentKey"] == "required" and selection["requireResidentKey"] is True
    assert selection["userVerification"] == "required"


def test_a_new_primary_replaces_the_account_key_and_logs_out_every_other_device():
    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    status, body, device_id, new_list = reregister(alice)
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
    alice = alice_with_laptop()
    status, body, _, _ = reregister(alice, version=2)
    assert (status, body["error"]["code"]) == (409, "stale_device_list")
    assert Device.objects.filter(user__username="alice", revoked_at__isnull=True).count() == 2


def test_a_verified_passkey_allows_one_re_registration_only():
    alice = alice_with_laptop()
    browser = DjangoTransport()
    verified = verify_passkey(browser, alice.authenticator)[1]
    device_id, keys = new_device_keys()
    now = now_ms()
    new_list = dl.sign_device_list(
        keys.identity,
        account_id="alice",
        version=3,
        timestamp=now,
        devices=[
            dl.DeviceEntry(device_id=device_id, identity_key=keys.identity.public, added_at=now)
        ],
    )
    body = {
        "reregister_id": verified["reregister_id"],
        "device": {
            "device_id": device_id,
            "identity_key": b64u_encode(keys.identity.public),
            "name": "New phone",
            "platform": "Python",
        },
        "device_list": new_list.to_dict(),
        **prekey_upload(keys),
    }
    assert browser.post("/api/accounts/reregister", body)[0] == 200
    status, again = browser.post("/api/accounts/reregister", body)
    assert (status, again["error"]["code"]) == (400, "challenge_used")


# Against the live server, as an anonymous caller meets it.


@pytest.fixture
def live_alice(live_app: LiveServer) -> PrimaryActor:
    return PrimaryActor(
        HttpTransport(live_app.url),
        SoftAuthenticator(origin=live_app.url),
        username=f"alice{secrets.token_hex(4)}",
    ).sign_up()


def _without_challenge(answer: dict) -> dict:
    options = {k: v for k, v in answer["options"].items() if k != "challenge"}
    return {"keys": sorted(answer), "options": options}


@pytest.mark.parametrize("path", OPTIONS, ids=["signin", "reregister"])
def test_passkey_options_are_the_same_for_an_existing_and_an_unknown_username(
    live_app: LiveServer, live_alice: PrimaryActor, path: str
):
    stranger = HttpTransport(live_app.url)
    answers = [
        stranger.post(path, body)
        for body in ({"username": live_alice.username}, {"username": "nobody.here"}, {})
    ]
    assert [status for status, _ in answers] == [200, 200, 200]
    shapes = [_without_challenge(answer) for _, answer in answers]
    assert shapes[0] == shapes[1] == shapes[2]
    assert shapes[0]["keys"] == ["challenge_id", "options"]  # no device_list_version
    assert shapes[0]["options"].get("allowCredentials", []) == []  # no credential ids


SIGN_IN_EXTRA = {"device_id": "A" * 22, "device_signature": b64u_encode(bytes(64))}


@pytest.mark.parametrize(
    ("path", "extra"),
    [("/api/accounts/signin", SIGN_IN_EXTRA), ("/api/accounts/reregister/verify", {})],
    ids=["signin", "reregister"],
)
def test_a_passkey_the_server_does_not_know_is_refused_like_a_forged_one(
    live_app: LiveServer, live_alice: PrimaryActor, path: str, extra: dict
):
    stranger = SoftAuthenticator(origin=live_app.url)
    stranger.create(
        {"user": {"id": b64u_encode(secrets.token_bytes(32))}, "challenge": b64u_encode(b"x" * 32)}
    )
    answers = []
    for authenticator, forge in ((stranger, False), (live_alice.authenticator, True)):
        browser = HttpTransport(live_app.url)
        begin = browser.post("/api/accounts/signin/options", {})[1]
        credential = authenticator.get(begin["options"])
        if forge:
            signature = bytearray(b64u_decode(credential["response"]["signature"]))
            signature[-1] ^= 1
            credential["response"]["signature"] = b64u_encode(bytes(signature))
        answers.append(
            browser.post(
                path, {"challenge_id": begin["challenge_id"], "credential": credential, **extra}
            )
        )
    (unknown_status, unknown), (forged_status, forged) = answers
    assert unknown_status == forged_status == 400
    assert unknown["error"] == forged["error"]
    assert live_alice.username not in str(forged)


def test_the_list_version_reaches_only_the_holder_of_the_passkey(
    live_app: LiveServer, live_alice: PrimaryActor
):
    status, verified = verify_passkey(HttpTransport(live_app.url), live_alice.authenticator)
    assert status == 200
    assert verified["account"] == {
        "username": live_alice.username,
        "display_name": live_alice.display_name,
    }
    assert verified["device_list_version"] == 1
    assert set(verified) == {"reregister_id", "account", "device_list_version"}
