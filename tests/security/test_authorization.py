"""Authorization matrix: every endpoint tried as nobody, as another account's device, and
with a logged-out device's session. Each must be refused and change nothing."""

from __future__ import annotations

import pytest
from django.apps import apps

from protocol import groups
from protocol.encoding import b64u_encode
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"
GROUP = bytes(range(16))
GROUP_URL = f"/api/groups/{b64u_encode(GROUP)}/entries"
pytestmark = pytest.mark.django_db


def state_snapshot() -> dict[str, object]:
    """Row counts, and what changes in place without adding a row (a device's name)."""
    counts: dict[str, object] = {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label in {"accounts", "devices", "messaging"}
        and m._meta.model_name != "challenge"
    }
    device = apps.get_model("devices", "Device")
    counts["device names"] = sorted(device.objects.values_list("id", "name"))
    user = apps.get_model("accounts", "User")
    counts["display names"] = sorted(user.objects.values_list("username", "display_name"))
    return counts


@pytest.fixture
def world():
    alice = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username="alice"
    ).sign_up()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    pending = CompanionActor(DjangoTransport())
    qr = pending.open_link()
    alice.approve(qr)
    blob = alice.transport.client.post(
        f"/api/history?to={laptop.device_id}", b"sealed", content_type="application/octet-stream"
    ).json()["blob_id"]
    state = {"version": 1, "kind": "patch", "blob": b64u_encode(b"alice's state")}
    assert alice.transport.post("/api/state", state)[0] == 201
    create = groups.sign_entry(
        group_id=GROUP,
        seq=0,
        previous=groups.ZERO_HASH,
        kind=groups.EntryKind.CREATE,
        actor="alice",
        identity=alice.keys.identity,
        timestamp=0,
        accounts=["alice"],
        name="alice's group",
    )
    assert alice.transport.post(GROUP_URL, {"seq": 0, "entry": b64u_encode(create)})[0] == 201
    bob = PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username="bobby"
    ).sign_up()
    gone = link(bob, CompanionActor(DjangoTransport()))
    bob.revoke(gone.device_id)
    return {"alice": alice, "laptop": laptop, "pending": qr, "blob": blob, "bob": bob, "gone": gone}


def requests(w) -> list[tuple[str, str, dict | None]]:
    """Calls that touch alice's account, her devices or her link request."""
    a, laptop, link_id = w["alice"], w["laptop"], w["pending"].link_id
    return [
        ("GET", "/api/me", None),
        ("GET", "/api/devices", None),
        ("POST", f"/api/devices/{laptop.device_id}/revoke", {}),
        ("POST", f"/api/devices/{a.device_id}/revoke", {}),
        ("POST", f"/api/devices/{laptop.device_id}/rename", {"name": "Mine"}),
        ("POST", "/api/me/display-name", {"display_name": "Mine"}),
        ("POST", "/api/devices/list", {"device_list": a.last_list.to_dict()}),
        (
            "POST",
            "/api/prekeys",
            {"one_time_prekeys": [{"id": 999, "public_key": b64u_encode(bytes(32))}]},
        ),
        ("GET", "/api/prekeys", None),
        ("GET", f"/api/link/{link_id}", None),
        ("GET", f"/api/link/{link_id}/detail", None),
        ("POST", f"/api/link/{link_id}/approve/options", {}),
        ("POST", f"/api/link/{link_id}/complete", {"device_list": a.last_list.to_dict()}),
        ("POST", f"/api/link/{link_id}/decline", {}),
        ("POST", f"/api/link/{link_id}/cancel", {}),
        (
            "POST",
            f"/api/link/{link_id}/device-signature",
            {"device_signature": b64u_encode(bytes(64))},
        ),
        ("POST", f"/api/link/{link_id}/redeem", {"signature": b64u_encode(bytes(64))}),
        ("GET", f"/api/history/{w['blob']}", None),
        ("GET", "/api/state", None),
        ("POST", "/api/state", {"version": 2, "kind": "snapshot", "blob": b64u_encode(b"x")}),
        ("GET", GROUP_URL, None),
        ("POST", GROUP_URL, {"seq": 1, "entry": b64u_encode(bytes(200))}),
    ]


def call(transport: DjangoTransport, method: str, path: str, body: dict | None) -> int:
    if method == "GET":
        return transport.client.get(path).status_code
    return transport.client.post(path, body, content_type="application/json").status_code


@pytest.mark.parametrize("who", ["nobody", "another account", "logged-out device"])
def test_every_call_on_someone_elses_things_is_refused_and_changes_nothing(world, who):
    transport = {
        "nobody": DjangoTransport(),
        "another account": world["bob"].transport,
        "logged-out device": world["gone"].transport,
    }[who]
    before = state_snapshot()
    answers = {}
    for method, path, body in requests(world):
        if who == "another account" and path in (
            "/api/me",
            "/api/me/display-name",
            "/api/devices",
            "/api/prekeys",
            "/api/devices/list",
            "/api/state",
        ):
            continue  # bob's own account: covered by the other rows, tests/devices, tests/messaging
        answers[f"{method} {path}"] = call(transport, method, path, body)
    accepted = {k: v for k, v in answers.items() if not 400 <= v < 500}
    assert accepted == {}
    assert state_snapshot() == before
