"""Rate limits on sign-in, link sessions and prekey fetches (sends are limited per socket,
tests/messaging/test_queue.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from protocol.encoding import b64u_encode
from tests.support.actors import DjangoTransport, PrimaryActor, new_device_keys
from tests.support.softauthn import SoftAuthenticator

pytestmark = pytest.mark.django_db


def test_sign_in_attempts_beyond_the_limit_get_429_with_retry_after(settings):
    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "sign_in": (3, 60)}
    client = Client()
    statuses = [
        client.post("/api/accounts/signin/options", {}, content_type="application/json").status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    refused = client.post(
        "/api/devices/signin/options", {"device_id": "A" * 22}, content_type="application/json"
    ).json()["error"]
    assert refused["code"] == "rate_limited" and 0 < refused["data"]["retry_after_ms"] <= 60_000


def test_sign_up_probes_beyond_the_limit_get_429_whether_the_name_is_taken_or_free(settings):
    from django.core.cache import cache

    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "signup": (3, 60)}
    PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    cache.clear()  # alice signed up from the prober's address too
    prober = Client()
    answers = [
        prober.post(
            "/api/accounts/register/options",
            {"username": name, "display_name": "Probe"},
            content_type="application/json",
        )
        for name in ("alice", "free.one", "bob.free", "alice", "free.two")
    ]
    assert [a.status_code for a in answers] == [409, 200, 200, 429, 429]
    assert answers[0].json()["error"]["code"] == "username_taken"
    # Beyond the limit a taken name and a free one get the same refusal.
    assert [a.json()["error"]["code"] for a in answers[3:]] == ["rate_limited"] * 2
    assert "alice" not in answers[3].content.decode()
    # Another address still signs up.
    other = Client(REMOTE_ADDR="192.0.2.7").post(
        "/api/accounts/register/options",
        {"username": "carol", "display_name": "Carol"},
        content_type="application/json",
    )
    assert other.status_code == 200


def test_link_sessions_beyond_the_limit_are_refused_and_not_created(settings):
    from devices.models import LinkSession

    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "link": (2, 60)}
    client = Client()
    statuses = []
    for _ in range(3):
        device_id, keys = new_device_keys(0)
        body = {
            "device_id": device_id,
            "identity_key": b64u_encode(keys.identity.public),
            "ephemeral_key": b64u_encode(bytes(range(32))),
            "name": "Laptop",
        }
        statuses.append(client.post("/api/link", body, content_type="application/json").status_code)
    assert statuses == [200, 200, 429]
    assert LinkSession.objects.count() == 2


def test_prekey_fetches_are_limited_per_requester_and_refused_ones_take_nothing(settings):
    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "bundles": (4, 60)}
    settings.PARLEY_PREKEY_SHARE = 100  # the fair share is tested in test_key_directory.py
    PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="alice"
    ).sign_up()
    mallory = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="mallory"
    ).sign_up()
    carol = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin="http://localhost:8000"), username="carol"
    ).sign_up()
    statuses = [mallory.transport.post("/api/accounts/alice/bundles", {})[0] for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    otp = carol.transport.post("/api/accounts/alice/bundles", {})[1]["bundles"][0][
        "one_time_prekey"
    ]
    assert otp is not None and otp["id"] == 5
