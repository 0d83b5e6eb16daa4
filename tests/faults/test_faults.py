"""Faults on the single-node setup (Daphne + SQLite + Redis): a Daphne restart and a Redis
restart during a send burst, and a connection dropped in the middle of a drain. In each,
every accepted envelope is delivered (at least once; exactly once after de-duplication)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import InvalidHandshake

from client.http import HttpTransport
from tests.support.actors import PrimaryActor
from tests.support.redis import start_redis
from tests.support.server import LiveServer, start_server
from tests.support.softauthn import SoftAuthenticator
from tests.support.wire import DeviceSocket

BURST = 300


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("faults")
    redis = start_redis(tmp_path)
    server = start_server(
        tmp_path,
        redis_url=redis.url,
        extra_env={"PARLEY_SEND_RATE": "100000", "PARLEY_SEND_BURST": "100000"},
    )
    yield server, redis
    server.stop()
    redis.stop()


def pair(server: LiveServer, tag: str):
    people = []
    for name in (f"alice{tag}", f"bob{tag}"):
        transport = HttpTransport(server.url)
        people.append(
            (
                PrimaryActor(
                    transport, SoftAuthenticator(origin=server.url), username=name
                ).sign_up(),
                transport,
            )
        )
    return people


def socket(server: LiveServer, transport: HttpTransport) -> DeviceSocket:
    return DeviceSocket(ws_url=server.ws_url, origin=server.url, cookie=transport.cookie_header())


async def connect_retrying(server: LiveServer, transport: HttpTransport) -> DeviceSocket:
    for attempt in range(100):
        try:
            return await socket(server, transport).connect()
        # down, draining (HTTP 503 at the handshake), or cut off while it stops (as the client)
        except (OSError, InvalidHandshake):
            await asyncio.sleep(min(0.05 * 2**attempt, 0.5))
    raise TimeoutError("server did not come back")


async def burst_with_fault(server: LiveServer, fault) -> tuple[set[str], list[str]]:
    """Alice sends BURST envelopes to Bob while `fault` happens at envelope 100; both
    reconnect when their socket drops; Alice resends unaccepted ids (idempotent)."""
    (alice, alice_http), (bob, bob_http) = await asyncio.to_thread(
        pair, server, str(id(fault))[-6:]
    )
    accepted: set[str] = set()
    received: list[str] = []
    ids = [f"m{n:04d}" for n in range(BURST)]
    sender_done = asyncio.Event()

    async def sender() -> None:
        sock = await socket(server, alice_http).connect()
        n = 0
        while n < len(ids):
            if n == 100 and not fault.done:
                await fault()
            try:
                await sock.send(ids[n], bob.username, {bob.device_id: ids[n].encode()})
                frame = await sock.next("accepted", "closed", within=10)
            except Exception:
                frame = {"type": "closed"}
            if frame["type"] == "closed":
                sock = await connect_retrying(server, alice_http)
                continue  # resend the same id
            accepted.add(ids[n])
            n += 1
        await sock.close()
        sender_done.set()

    async def receiver() -> None:
        sock = await socket(server, bob_http).connect()
        while True:
            got = {e["id"] for e in sock.received}
            if sender_done.is_set() and accepted <= set(received) | got:
                break
            try:
                frame = await sock.next("deliver", "closed", within=15)
            except TimeoutError:
                break
            if frame["type"] == "closed":
                received.extend(e["id"] for e in sock.received)
                sock = await connect_retrying(server, bob_http)
        received.extend(e["id"] for e in sock.received)
        await sock.close()

    await asyncio.gather(sender(), receiver())
    return accepted, received


class Fault:
    def __init__(self, action):
        self.action = action
        self.done = False

    async def __call__(self) -> None:
        self.done = True
        await asyncio.to_thread(self.action)


def report(name: str, accepted: set[str], received: list[str]) -> None:
    unique = set(received)
    print(f"{name}: accepted {len(accepted)}, delivered {len(received)} ({len(unique)} distinct)")
    assert len(accepted) == BURST
    assert unique == accepted


async def test_daphne_restart_during_a_send_burst_loses_nothing(node):
    server, _ = node
    accepted, received = await burst_with_fault(server, Fault(lambda: server.restart()))
    report("Daphne restart", accepted, received)


async def test_redis_restart_during_a_send_burst_loses_nothing(node):
    server, redis = node
    accepted, received = await burst_with_fault(server, Fault(lambda: redis.restart()))
    report("Redis restart", accepted, received)


async def test_a_connection_dropped_in_the_middle_of_a_drain_gets_the_rest(node):
    server, _ = node
    (alice, alice_http), (bob, bob_http) = await asyncio.to_thread(pair, server, "drain")
    sender = await socket(server, alice_http).connect()
    for n in range(1000):
        await sender.send(f"q{n:04d}", bob.username, {bob.device_id: b"x"})
        await sender.next("accepted")
    await sender.close()
    first = await socket(server, bob_http).connect()
    await first.next("deliver")
    await first.next("deliver")
    first.socket.transport.abort()  # the network goes away: no close handshake
    await first.close()
    seen = [e["id"] for e in first.received]
    second = await socket(server, bob_http).connect()
    while len(set(seen) | {e["id"] for e in second.received}) < 1000:
        await second.next("deliver", within=10)
    seen += [e["id"] for e in second.received]
    await second.close()
    print(
        f"drain interrupted after {len(first.received)}: accepted 1000, delivered {len(seen)} ({len(set(seen))} distinct)"
    )
    assert set(seen) == {f"q{n:04d}" for n in range(1000)}
