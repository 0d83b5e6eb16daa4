"""How device sockets end, on the live server (Daphne, Redis): a close racing pushes raises
nothing on the server, and every way a socket ends releases its "active now" row."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from client.http import HttpTransport
from protocol.frames import CLOSE_REVOKED
from tests.support.actors import CompanionActor, PrimaryActor, link, ok, person
from tests.support.server import LiveServer
from tests.support.wire import DeviceSocket

# Daphne reports an application that raised from a check it runs once a second.
DAPHNE_CHECK_SECONDS = 1.0


def socket_rows(live_app: LiveServer, device_id: str) -> int:
    with sqlite3.connect(live_app.db_path) as db:
        return db.execute(
            "SELECT count(*) FROM devices_devicesocket WHERE device_id = ?", (device_id,)
        ).fetchone()[0]


def active_now(actor: PrimaryActor, device_id: str) -> bool:
    devices = ok(actor.transport.get("/api/devices"))["devices"]
    return next(d["active_now"] for d in devices if d["device_id"] == device_id)


async def eventually(check, *, within: float = 10.0, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await asyncio.to_thread(check):
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


async def server_errors(live_app: LiveServer, since: int) -> list[str]:
    """Lines Daphne logged about a consumer that raised, after giving it time to report."""
    await asyncio.sleep(2 * DAPHNE_CHECK_SECONDS)
    log = live_app.log()[since:]
    return [line for line in log.splitlines() if "Exception" in line or "Traceback" in line]


async def chatter(socket: DeviceSocket, stop: asyncio.Event, frames, pause: float = 0.002) -> None:
    """Keep the server answering on `socket` (pongs, accepted, errors) until `stop` or close."""
    n = 0
    with contextlib.suppress(ConnectionClosed):
        while not stop.is_set():
            await socket.send_frame(frames(n))
            n += 1
            await asyncio.sleep(pause)


async def race_a_log_out(
    *,
    alice: PrimaryActor,
    laptop: CompanionActor,
    at_laptop: list[DeviceSocket],
    bob: PrimaryActor,
    from_bob: DeviceSocket,
) -> None:
    """Log `laptop` out while bob's envelopes ring its doorbell and each of its sockets keeps
    the server answering (pongs, accepted), so the revocation, the device-list change and the
    replies all race the close. Returns once every laptop socket got `revoked` and 4001."""
    for socket in (*at_laptop, from_bob):
        await socket.connect()
    stop = asyncio.Event()
    to_alice = {alice.device_id: "eA", laptop.device_id: "eA"}

    def from_laptop(n: int) -> dict:
        if n % 2:
            return {"type": "ping", "id": f"p{n}"}
        return {
            "type": "send",
            "id": f"l{n}",
            "recipient": bob.username,
            "targets": {bob.device_id: "eA"},
        }

    tasks = [
        asyncio.create_task(
            chatter(
                from_bob,
                stop,
                lambda n: {
                    "type": "send",
                    "id": f"b{n}",
                    "recipient": alice.username,
                    "targets": to_alice,
                },
            )
        ),
        *(asyncio.create_task(chatter(socket, stop, from_laptop)) for socket in at_laptop),
    ]
    await asyncio.sleep(0.2)
    await asyncio.to_thread(alice.revoke, laptop.device_id)
    for socket in at_laptop:
        # a ping may notice the log-out before the push does
        revoked = await socket.next("revoked", within=10)
        assert revoked["reason"] in {"removed_by_primary", "logged_out"}
        assert (await socket.next("closed", within=10))["code"] == CLOSE_REVOKED
    stop.set()
    await asyncio.gather(*tasks)
    for socket in (*at_laptop, from_bob):
        await socket.close()


async def test_a_log_out_racing_doorbells_and_replies_raises_nothing_on_the_server(live_app):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    laptop_http = HttpTransport(live_app.url)
    laptop = await asyncio.to_thread(link, alice, CompanionActor(laptop_http))
    since = len(live_app.log())
    await race_a_log_out(
        alice=alice,
        laptop=laptop,
        at_laptop=[
            DeviceSocket(live_app.ws_url, live_app.url, laptop_http.cookie_header())
            for _ in range(3)
        ],
        bob=bob,
        from_bob=DeviceSocket(live_app.ws_url, live_app.url, bob.transport.cookie_header()),
    )
    await eventually(
        lambda: socket_rows(live_app, laptop.device_id) == 0, what="the laptop's socket rows"
    )
    assert await server_errors(live_app, since) == []


async def test_closing_a_socket_while_envelopes_stream_in_raises_nothing_on_the_server(live_app):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    since = len(live_app.log())
    sender = await DeviceSocket(
        live_app.ws_url, live_app.url, alice.transport.cookie_header()
    ).connect()
    stop = asyncio.Event()
    streaming = asyncio.create_task(
        chatter(
            sender,
            stop,
            lambda n: {
                "type": "send",
                "id": f"s{n}",
                "recipient": bob.username,
                "targets": {bob.device_id: "eA"},
            },
            pause=0.0005,
        )
    )
    for _ in range(10):
        receiver = await DeviceSocket(
            live_app.ws_url, live_app.url, bob.transport.cookie_header()
        ).connect()
        await receiver.next("deliver", within=10)
        await receiver.close()
    stop.set()
    await streaming
    await eventually(lambda: not active_now(bob, bob.device_id), what="bob no longer active now")
    assert socket_rows(live_app, bob.device_id) == 0
    assert await server_errors(live_app, since) == []
    await sender.close()


@pytest.mark.parametrize(
    "origin", ["http://localhost:9999", "https://localhost:{port}", "http://127.0.0.1:{port}"]
)
async def test_a_socket_from_another_origin_is_refused_at_the_handshake(live_app, origin):
    alice = person(live_app, "alice")
    socket = DeviceSocket(
        live_app.ws_url, origin.format(port=live_app.port), alice.transport.cookie_header()
    )
    with pytest.raises(InvalidStatus) as refused:
        await socket.connect()
    assert refused.value.response.status_code == 403
    assert not active_now(alice, alice.device_id)
