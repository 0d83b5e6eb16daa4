"""One-time prekey pools on the live server (Daphne, Redis, real HTTP + WebSocket), issue #9
item 4: one other account cannot drain them, and a device is told over its socket when its
pool runs low (on the claim, and on connect) and the Python client refills it at once."""

from __future__ import annotations

import asyncio
import time

from client.http import HttpTransport
from tests.support.actors import CompanionActor, PrimaryActor, link, ok, person
from tests.support.devices import Device, primary_messenger
from tests.support.server import LiveServer
from tests.support.wire import DeviceSocket

POOL = 10  # what the test actors upload
# five one-time prekeys left, and five of the 10 one-time KEM prekeys of sign-up (27.6)
LOW = {"type": "prekeys_low", "v": 1, "remaining": 5, "kem_remaining": 5}


def companion(live_app: LiveServer, primary: PrimaryActor, name: str) -> CompanionActor:
    return link(primary, CompanionActor(HttpTransport(live_app.url), name=name), name=name)


def pool(actor: PrimaryActor | CompanionActor) -> int:
    return ok(actor.transport.get("/api/prekeys"))["one_time_prekeys"]


def fetch(requester, account: str, device_ids: list[str] | None = None) -> dict[str, dict]:
    body = {} if device_ids is None else {"device_ids": device_ids}
    bundles = ok(requester.transport.post(f"/api/accounts/{account}/bundles", body))["bundles"]
    return {b["device_id"]: b for b in bundles}


async def socket_of(live_app: LiveServer, actor) -> DeviceSocket:
    return await DeviceSocket(
        live_app.ws_url, live_app.url, actor.transport.cookie_header()
    ).connect()


async def eventually(check, *, within: float = 10.0, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.1)


def test_eleven_fetches_from_one_account_take_one_prekey_per_device(live_app):
    """The issue's attack: 11 fetches from one other account used to empty every pool."""
    alice, mallory = person(live_app, "alice"), person(live_app, "mallory")
    laptop, tablet = companion(live_app, alice, "Laptop"), companion(live_app, alice, "Tablet")
    devices = [alice, laptop, tablet]
    answers = [fetch(mallory, alice.username) for _ in range(11)]
    for device in devices:
        handed = [a[device.device_id]["one_time_prekey"] for a in answers]
        assert handed[0] is not None and handed[1:] == [None] * 10
        # every later bundle still lets Mallory start a session (signed prekey only, §3.2)
        assert {a[device.device_id]["signed_prekey"]["id"] for a in answers} == {1}
        assert pool(device) == POOL - 1
    assert all(
        fetch(person(live_app, "carol"), alice.username)[d.device_id]["one_time_prekey"]
        for d in devices
    )


async def test_a_device_is_told_over_its_socket_when_its_pool_runs_low_and_on_connect(live_app):
    alice = await asyncio.to_thread(person, live_app, "alice")
    laptop = await asyncio.to_thread(companion, live_app, alice, "Laptop")
    socket = await socket_of(live_app, alice)
    await socket.send_frame({"type": "ping", "id": "full"})
    assert (await socket.next())["type"] == "pong"  # a full pool: nothing said on connect
    # Alice's own laptop is not held to a share: five fetches leave five of ten
    for _ in range(5):
        await asyncio.to_thread(fetch, laptop, alice.username, [alice.device_id])
    assert await socket.next("prekeys_low") == LOW
    await socket.close()
    # a device that was offline when it ran low learns it when it connects
    again = await socket_of(live_app, alice)
    assert await again.next() == LOW
    await again.close()


async def test_the_python_client_refills_its_pool_at_once_when_told(live_app, tmp_path):
    alice = await asyncio.to_thread(person, live_app, "alice")
    laptop = await asyncio.to_thread(companion, live_app, alice, "Laptop")
    phone = await Device(primary_messenger(alice, tmp_path)).connect()
    for _ in range(4):
        await asyncio.to_thread(fetch, laptop, alice.username, [alice.device_id])
    assert await asyncio.to_thread(pool, alice) == POOL - 4  # not low yet: nothing uploaded
    await asyncio.to_thread(fetch, laptop, alice.username, [alice.device_id])
    await eventually(lambda: pool(alice) == 100, what="the pool refilled to 100")
    # the private halves stay here: the first ten (five handed out, not yet used by a peer)
    # and 95 fresh ones numbered after them
    held = [k.id for k in phone.messenger.store.one_time_prekeys()]
    assert held == list(range(1, POOL + 96))
    await phone.close()
