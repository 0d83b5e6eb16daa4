"""Names a person reads: a distinct default name per device within the account, renaming a
device from any own device, and the display name anyone who knows a username may read."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from devices.models import Device
from devices.services import device_rename, distinct_device_name
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator
from web.errors import Conflict, NotFound

ORIGIN = "http://localhost:8000"
pytestmark = pytest.mark.django_db


def make_primary(username: str = "alice", display_name: str = "Alice Liddell") -> PrimaryActor:
    return PrimaryActor(
        DjangoTransport(),
        SoftAuthenticator(origin=ORIGIN),
        username=username,
        display_name=display_name,
    ).sign_up()


def names(username: str = "alice") -> list[str]:
    return list(
        Device.objects.filter(user__username=username, revoked_at__isnull=True)
        .order_by("added_at")
        .values_list("name", flat=True)
    )


def test_devices_linked_under_the_same_name_get_distinct_ones():
    primary = make_primary()  # its device is "Phone"
    for _ in range(3):
        link(primary, CompanionActor(DjangoTransport()), name="Chromium on Linux")
    link(primary, CompanionActor(DjangoTransport()), name="phone")
    assert names() == [
        "Phone",
        "Chromium on Linux",
        "Chromium on Linux 2",
        "Chromium on Linux 3",
        "phone 2",
    ]


def test_the_new_device_is_told_its_name_when_it_signs_in():
    primary = make_primary()
    link(primary, CompanionActor(DjangoTransport()), name="Laptop")
    second = CompanionActor(DjangoTransport())
    qr = second.open_link()
    primary.approve(qr, name="Laptop")
    second.sign()
    assert primary.complete(qr)["name"] == "Laptop 2"
    assert second.redeem()["name"] == "Laptop 2"
    assert second.transport.get("/api/me")[1]["device"]["name"] == "Laptop 2"


def test_a_logged_out_devices_name_is_free_again():
    primary = make_primary()
    laptop = link(primary, CompanionActor(DjangoTransport()), name="Laptop")
    primary.revoke(laptop.device_id)
    link(primary, CompanionActor(DjangoTransport()), name="Laptop")
    assert names() == ["Phone", "Laptop"]


def test_a_long_name_keeps_its_number_within_the_limit():
    primary = make_primary()
    user = Device.objects.get(pk=primary.device_id).user
    Device.objects.filter(pk=primary.device_id).update(name="x" * 64)
    assert distinct_device_name(user=user, name="x" * 64) == "x" * 62 + " 2"


def test_a_companion_renames_the_primary_and_every_device_sees_it():
    primary = make_primary()
    laptop = link(primary, CompanionActor(DjangoTransport()), name="Laptop")
    status, body = laptop.transport.post(
        f"/api/devices/{primary.device_id}/rename", {"name": "  Alice's phone  "}
    )
    assert (status, body) == (200, {"device_id": primary.device_id, "name": "Alice's phone"})
    listed = {
        d["device_id"]: d["name"] for d in primary.transport.get("/api/devices")[1]["devices"]
    }
    assert listed == {primary.device_id: "Alice's phone", laptop.device_id: "Laptop"}
    assert primary.transport.get("/api/me")[1]["device"]["name"] == "Alice's phone"


def test_a_device_renames_itself():
    primary = make_primary()
    status, body = primary.transport.post(
        f"/api/devices/{primary.device_id}/rename", {"name": "Desk"}
    )
    assert status == 200 and names() == ["Desk"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_input"),
        ({"name": ""}, "invalid_input"),
        ({"name": "   "}, "invalid_input"),
        ({"name": "x" * 65}, "invalid_input"),
        ({"name": 7}, "invalid_input"),
        ({"name": "laptop"}, "device_name_taken"),
    ],
)
def test_a_refused_rename_changes_nothing(body, code):
    primary = make_primary()
    link(primary, CompanionActor(DjangoTransport()), name="Laptop")
    status, answer = primary.transport.post(f"/api/devices/{primary.device_id}/rename", body)
    assert 400 <= status < 500 and answer["error"]["code"] == code
    assert names() == ["Phone", "Laptop"]


def test_nobody_renames_another_accounts_device_or_a_logged_out_one():
    alice = make_primary()
    laptop = link(alice, CompanionActor(DjangoTransport()), name="Laptop")
    bob = make_primary("bobby", "Bob")
    status, answer = bob.transport.post(f"/api/devices/{alice.device_id}/rename", {"name": "Mine"})
    assert (status, answer["error"]["code"]) == (404, "device_not_found")
    alice.revoke(laptop.device_id)
    status, answer = alice.transport.post(f"/api/devices/{laptop.device_id}/rename", {"name": "X"})
    assert (status, answer["error"]["code"]) == (404, "device_not_found")
    status, _ = DjangoTransport().post(f"/api/devices/{alice.device_id}/rename", {"name": "X"})
    assert status == 401
    assert names() == ["Phone"] and names("bobby") == ["Phone"]


def test_the_rename_service_refuses_a_taken_name_and_a_foreign_device():
    alice = make_primary()
    laptop = link(alice, CompanionActor(DjangoTransport()), name="Laptop")
    bob = make_primary("bobby", "Bob")
    actor = Device.objects.get(pk=alice.device_id)
    with pytest.raises(Conflict) as taken:
        device_rename(actor=actor, device_id=alice.device_id, name="LAPTOP")
    assert taken.value.code == "device_name_taken"
    with pytest.raises(NotFound):
        device_rename(actor=actor, device_id=bob.device_id, name="Mine")
    assert device_rename(actor=actor, device_id=laptop.device_id, name="Laptop").name == "Laptop"


@pytest.mark.django_db(transaction=True)
async def test_the_accounts_other_devices_are_told_of_a_rename(redis_channel_layer):
    from asgiref.sync import sync_to_async

    alice = await sync_to_async(make_primary)()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    user_id = await sync_to_async(lambda: Device.objects.get(pk=alice.device_id).user_id)()
    await layer.group_add(f"user.{user_id}", channel)
    actor = await sync_to_async(Device.objects.select_related("user").get)(pk=alice.device_id)
    await sync_to_async(device_rename)(actor=actor, device_id=alice.device_id, name="Desk")
    event = await layer.receive(channel)
    assert event == {
        "type": "devices.changed",
        "reason": "renamed",
        "device_id": alice.device_id,
        "device_name": "Desk",
    }


def test_a_contacts_display_name_is_public_to_any_signed_in_device():
    make_primary("alice", "Alice Liddell")
    bob = make_primary("bobby", "Bob")
    assert bob.transport.get("/api/accounts/alice/profile") == (
        200,
        {"username": "alice", "display_name": "Alice Liddell"},
    )
    status, answer = bob.transport.get("/api/accounts/nobody/profile")
    assert (status, answer["error"]["code"]) == (404, "account_not_found")
    assert DjangoTransport().get("/api/accounts/alice/profile")[0] == 401


def test_any_device_sets_the_accounts_display_name_and_contacts_read_it():
    alice = make_primary("alice", "Alice")
    laptop = link(alice, CompanionActor(DjangoTransport()), name="Laptop")
    bob = make_primary("bobby", "Bob")
    status, body = laptop.transport.post("/api/me/display-name", {"display_name": " Alice L. "})
    assert (status, body) == (200, {"username": "alice", "display_name": "Alice L."})
    assert alice.transport.get("/api/me")[1]["account"]["display_name"] == "Alice L."
    assert bob.transport.get("/api/accounts/alice/profile")[1]["display_name"] == "Alice L."


@pytest.mark.parametrize(
    "body", [{}, {"display_name": ""}, {"display_name": "  "}, {"display_name": "x" * 65}]
)
def test_a_refused_display_name_changes_nothing(body):
    alice = make_primary("alice", "Alice")
    status, answer = alice.transport.post("/api/me/display-name", body)
    assert (status, answer["error"]["code"]) == (400, "invalid_input")
    assert alice.transport.get("/api/me")[1]["account"]["display_name"] == "Alice"
    assert DjangoTransport().post("/api/me/display-name", {"display_name": "X"})[0] == 401


@pytest.mark.django_db(transaction=True)
async def test_the_accounts_devices_are_told_of_a_new_display_name(redis_channel_layer):
    from asgiref.sync import sync_to_async

    from devices.services import account_rename

    alice = await sync_to_async(make_primary)()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    actor = await sync_to_async(Device.objects.select_related("user").get)(pk=alice.device_id)
    await layer.group_add(f"user.{actor.user_id}", channel)
    await sync_to_async(account_rename)(actor=actor, display_name="Alice L.")
    assert await layer.receive(channel) == {"type": "account.renamed", "display_name": "Alice L."}
