""" "Active now" holds exactly while a socket is open on a live server process: a consumer
that crashes or is cancelled releases its row and its place in the sweeper, and the rows
of a process that stopped beating count for nothing and are reaped."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.utils import timezone

from config.asgi import application
from devices import events, presence
from devices.models import Device, DeviceSocket, ServerProcess
from devices.services import seen_day
from messaging import delivery
from protocol.frames import CLOSE_REVOKED
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link, ok
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"


def make_primary(username: str = "alice") -> PrimaryActor:
    return PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username=username
    ).sign_up()


def active_now(actor: PrimaryActor) -> bool:
    devices = ok(actor.transport.get("/api/devices"))["devices"]
    return next(d["active_now"] for d in devices if d["device_id"] == actor.device_id)


def socket_rows(device_id: str) -> int:
    return DeviceSocket.objects.filter(device_id=device_id).count()


async def open_socket(actor: PrimaryActor) -> WebsocketCommunicator:
    cookie = "; ".join(f"{k}={v.value}" for k, v in actor.transport.client.cookies.items())
    socket = WebsocketCommunicator(
        application,
        "/ws/device/",
        headers=[(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())],
    )
    assert (await socket.connect())[0]
    assert await sync_to_async(active_now)(actor)
    assert actor.device_id in delivery.sweeper().sockets
    return socket


async def assert_released(actor: PrimaryActor) -> None:
    assert await sync_to_async(socket_rows)(actor.device_id) == 0
    assert not await sync_to_async(active_now)(actor)
    assert actor.device_id not in delivery.sweeper().sockets


@pytest.mark.django_db(transaction=True)
async def test_a_consumer_whose_handler_raises_releases_its_row_and_the_sweeper():
    alice = await sync_to_async(make_primary)()
    socket = await open_socket(alice)
    # An event this consumer has no handler for (a newer node's, during a rolling upgrade)
    # makes dispatch raise: the consumer ends without websocket.disconnect.
    await get_channel_layer().group_send(
        events.device_group(alice.device_id), {"type": "from.a.newer.node"}
    )
    with pytest.raises(ValueError, match="No handler"):
        await socket.receive_output(timeout=3)
    await assert_released(alice)


@pytest.mark.django_db(transaction=True)
async def test_a_consumer_cancelled_by_the_server_releases_its_row_and_the_sweeper():
    alice = await sync_to_async(make_primary)()
    socket = await open_socket(alice)
    # What Daphne does at shutdown, or to a consumer slow to finish after a close.
    socket.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await socket.future
    await assert_released(alice)


@pytest.mark.django_db(transaction=True)
async def test_a_closed_socket_releases_its_row_and_the_sweeper():
    alice = await sync_to_async(make_primary)()
    socket = await open_socket(alice)
    await socket.disconnect()
    await assert_released(alice)


@pytest.mark.django_db(transaction=True)
async def test_a_process_holding_a_socket_beats_so_the_socket_stays_active(settings):
    settings.PARLEY_HEARTBEAT_SECONDS = 0.2
    alice = await sync_to_async(make_primary)()
    socket = await open_socket(alice)
    process = ServerProcess.objects.filter(pk=presence.PROCESS_ID)
    opened_at = (await sync_to_async(process.get)()).beat_at
    for _ in range(100):  # the sweeper's heart beats every 0.2 s; 3 missed beats is dead
        await asyncio.sleep(0.1)
        if (await sync_to_async(process.get)()).beat_at > opened_at:
            break
    else:
        raise AssertionError("the process never beat while holding a socket")
    await asyncio.sleep(1.0)  # five beats' worth: silent, the process would be dead by now
    assert await sync_to_async(active_now)(alice)
    await socket.disconnect()


@pytest.mark.django_db
def test_sockets_of_a_silent_process_are_not_active_and_are_reaped(settings):
    settings.PARLEY_HEARTBEAT_SECONDS = 10
    alice, bob = make_primary("alice"), make_primary("bobby")
    now = timezone.now()
    # A node killed with SIGKILL leaves its rows and its last beat behind.
    ServerProcess.objects.create(id="killed", beat_at=now - timedelta(seconds=31))
    ServerProcess.objects.create(id="alive", beat_at=now - timedelta(seconds=5))
    DeviceSocket.objects.create(
        channel_name="on-killed", device_id=alice.device_id, process_id="killed", seen_at=now
    )
    DeviceSocket.objects.create(
        channel_name="on-alive", device_id=bob.device_id, process_id="alive", seen_at=now
    )
    assert not active_now(alice)
    assert active_now(bob)
    out = StringIO()
    call_command("expire_devices", stdout=out)
    assert "sockets reaped: 1" in out.getvalue()
    assert socket_rows(alice.device_id) == 0 and socket_rows(bob.device_id) == 1
    assert set(ServerProcess.objects.values_list("id", flat=True)) == {"alive"}


@pytest.mark.django_db(transaction=True)
async def test_pings_keep_a_socket_seen_through_the_beat_without_a_write_of_their_own(settings):
    settings.PARLEY_HEARTBEAT_SECONDS = 0.2
    alice = await sync_to_async(make_primary)()
    socket = await open_socket(alice)
    row = DeviceSocket.objects.filter(device_id=alice.device_id)
    opened_seen = (await sync_to_async(row.get)()).seen_at
    device = Device.objects.filter(pk=alice.device_id)
    await sync_to_async(device.update)(last_seen_on=date(2020, 1, 1))
    await socket.send_json_to({"type": "ping", "v": 1, "id": "p"})
    assert await socket.receive_json_from(timeout=2) == {"type": "pong", "v": 1, "id": "p"}
    for _ in range(50):  # written at the next beat, 0.2 s away
        await asyncio.sleep(0.1)
        if (await sync_to_async(row.get)()).seen_at > opened_seen:
            break
    else:
        raise AssertionError("the ping never reached the socket's row")
    # The same beat writes the day the device was seen.
    assert (await sync_to_async(device.get)()).last_seen_on == seen_day(timezone.now())
    # A ping noted just before the close writes no row back at the next beat (which comes:
    # another socket keeps the process beating).
    other = await open_socket(alice)
    await socket.send_json_to({"type": "ping", "v": 1, "id": "last"})
    assert (await socket.receive_json_from(timeout=2))["id"] == "last"
    await socket.disconnect()
    await asyncio.sleep(0.6)
    assert await sync_to_async(socket_rows)(alice.device_id) == 1
    await other.disconnect()
    await assert_released(alice)


@pytest.mark.django_db(transaction=True)
async def test_a_device_logged_out_while_its_push_was_lost_is_closed_at_the_next_beat(settings):
    settings.PARLEY_HEARTBEAT_SECONDS = 0.2
    alice = await sync_to_async(make_primary)()
    laptop = await sync_to_async(link)(alice, CompanionActor(DjangoTransport()))
    socket = await open_socket(laptop)
    row = await DeviceSocket.objects.select_related("device").aget(device_id=laptop.device_id)
    # The layer loses the push: the socket is out of its groups when the log-out is sent.
    layer = get_channel_layer()
    for group in (events.device_group(row.device_id), events.user_group(row.device.user_id)):
        await layer.group_discard(group, row.channel_name)
    await asyncio.to_thread(alice.revoke, laptop.device_id)
    frame = await socket.receive_json_from(timeout=3)
    assert frame == {"type": "revoked", "v": 1, "reason": "logged_out"}
    assert (await socket.receive_output(timeout=2))["code"] == CLOSE_REVOKED
    await socket.wait(timeout=2)
    assert await sync_to_async(socket_rows)(laptop.device_id) == 0
    assert laptop.device_id not in delivery.sweeper().sockets
