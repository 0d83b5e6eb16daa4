"""Readiness and the drain of a stopped node, behind a balancer as deployed: two Daphne nodes
on PostgreSQL and Redis, each health-checked on /readyz by tests/support/balancer.py, one
public origin (the balancer's). A node told SIGTERM answers `draining`, refuses new sockets
with HTTP 503, commits and answers what its sockets already read, tells them to reconnect
(close code 1012) and exits by itself; the Python client's sends all arrive, once each."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import psycopg
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from client.connection import Connected
from client.messenger import TextMessage
from protocol.frames import CLOSE_SERVICE_RESTART
from tests.support.actors import person
from tests.support.balancer import start_balancer
from tests.support.cluster import Cluster, start_cluster
from tests.support.devices import Device, primary_messenger
from tests.support.ports import free_port
from tests.support.server import LiveServer

DRAIN_SECONDS = 5


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("drain")
    os.chmod(workdir, 0o755)
    port = free_port()
    cluster = start_cluster(
        workdir,
        nodes=2,
        durable=False,
        extra_env={
            "PARLEY_ORIGIN": f"http://localhost:{port}",  # the balancer's: the one public origin
            "PARLEY_SEND_RATE": "100000",
            "PARLEY_SEND_BURST": "100000",
            "PARLEY_HEARTBEAT_SECONDS": "1",
            "PARLEY_DRAIN_SECONDS": str(DRAIN_SECONDS),
        },
    )
    balancer = start_balancer([node.port for node in cluster.nodes], port=port)
    yield cluster, balancer
    balancer.stop()
    cluster.stop()


def readiness(node: LiveServer, *, host: str = "10.0.0.7:8000") -> tuple[int, dict]:
    """/readyz as a proxy's health check asks it: plain HTTP to the node's own address, with
    a Host that is not in ALLOWED_HOSTS."""
    request = urllib.request.Request(f"http://127.0.0.1:{node.port}/readyz", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def eventually(check, *, within: float = 10.0, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(0.02)


def stop_and_time(node: LiveServer) -> float:
    """SIGTERM, as systemd's stop sends it; the seconds until the node exited by itself."""
    assert node.process is not None
    started = time.monotonic()
    node.process.send_signal(signal.SIGTERM)
    node.process.wait(timeout=DRAIN_SECONDS + 10)
    return time.monotonic() - started


def exited_by_itself(node: LiveServer, seconds: float) -> None:
    assert seconds < DRAIN_SECONDS + 3, f"the node took {seconds:.1f} s to stop"
    assert "did not exit" not in node.log()  # never the harness's SIGKILL


def socket_processes(cluster: Cluster, device_id: str) -> list[str]:
    """The server processes holding a socket row of the device."""
    with psycopg.connect(cluster.postgres.url) as db:
        rows = db.execute(
            "SELECT process_id FROM devices_devicesocket WHERE device_id = %s", (device_id,)
        )
        return [process for (process,) in rows]


def test_a_ready_node_says_so_to_a_health_check_with_any_host(deployment):
    cluster, _ = deployment
    for node in cluster.nodes:
        assert readiness(node) == (200, {"status": "ready"})
        assert readiness(node, host="localhost") == (200, {"status": "ready"})


def test_a_node_whose_redis_is_away_is_not_ready(deployment):
    cluster, balancer = deployment
    cluster.redis.stop()
    try:
        assert readiness(cluster.nodes[0]) == (503, {"status": "channel_layer_unavailable"})
    finally:
        cluster.redis.restart()
    eventually(lambda: readiness(cluster.nodes[0])[0] == 200, what="ready again")
    eventually(lambda: all(balancer.ready.values()), what="the balancer sees both ready")


def status_socket_that_never_closes(node: LiveServer, origin: str) -> socket.socket:
    """An open /ws/status/ socket whose client never answers a close: the node's drain waits
    for it (autobahn gives up after its 1 s close handshake timeout)."""
    raw = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /ws/status/ HTTP/1.1\r\nHost: localhost:{node.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return raw


def close_code_of(raw: socket.socket) -> int:
    """The code of the close frame the server sends (server frames are not masked)."""
    frame = raw.recv(4096)
    assert frame[0] == 0x88, frame  # FIN + close
    return int.from_bytes(frame[2:4], "big")


async def refused_status(node: LiveServer, origin: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(f"{node.ws_url}/ws/status/", origin=origin):
            pass
    return refused.value.response.status_code


def test_a_draining_node_says_draining_refuses_sockets_with_503_and_exits(deployment):
    cluster, balancer = deployment
    victim = cluster.nodes[1]
    held = status_socket_that_never_closes(victim, balancer.url)
    try:
        assert victim.process is not None
        started = time.monotonic()
        victim.process.send_signal(signal.SIGTERM)
        eventually(lambda: readiness(victim)[0] == 503, within=2, what="503 from /readyz")
        assert readiness(victim) == (503, {"status": "draining"})
        assert asyncio.run(refused_status(victim, balancer.url)) == 503  # a proxy may retry
        assert close_code_of(held) == CLOSE_SERVICE_RESTART
        victim.process.wait(timeout=DRAIN_SECONDS + 10)
        exited_by_itself(victim, time.monotonic() - started)
        assert readiness(cluster.nodes[0]) == (200, {"status": "ready"})
    finally:
        held.close()
        victim.start()
    eventually(lambda: all(balancer.ready.values()), what="the balancer sees both ready")


async def test_a_node_stopped_during_a_burst_loses_and_repeats_no_message(deployment, tmp_path):
    cluster, balancer = deployment
    victim, survivor = cluster.nodes
    alice = await asyncio.to_thread(person, balancer, "alice")
    bob = await asyncio.to_thread(person, balancer, "bob")
    balancer.prefer(survivor.port)  # Bob's socket sits on the node that stays
    bob_phone = await Device(primary_messenger(bob, tmp_path)).connect()
    balancer.prefer(victim.port)
    alice_phone = await Device(primary_messenger(alice, tmp_path)).connect()
    assert balancer.routed[-1] == victim.port
    connection = alice_phone.connection
    assert connection is not None
    first_socket = connection.socket
    eventually(lambda: len(socket_processes(cluster, alice.device_id)) == 1, what="a socket row")
    [on_victim] = socket_processes(cluster, alice.device_id)
    texts = [f"message {n:03d}" for n in range(200)]
    answered_on: dict[str, str] = {}
    stopping: asyncio.Future[float] | None = None
    # encrypted beforehand, so that the burst is the socket's alone (no HTTP meanwhile)
    prepared = [alice_phone.messenger.prepare_send(bob.username, text) for text in texts]
    try:
        futures = []
        for text, outgoing in zip(texts, prepared, strict=True):
            future = await connection.submit(outgoing)
            future.add_done_callback(
                lambda _, text=text: answered_on.setdefault(
                    text, "victim" if connection.socket is first_socket else "survivor"
                )
            )
            futures.append(future)
            if stopping is None and len(answered_on) >= 30:
                stopping = asyncio.ensure_future(asyncio.to_thread(stop_and_time, victim))
            await asyncio.sleep(0.003)
        assert stopping is not None, "the victim was never stopped"
        await asyncio.wait_for(asyncio.gather(*futures), 30)  # every send accepted, none refused
        exited_by_itself(victim, await stopping)
        # deleted by the node as it closed the socket (a silent node's rows are reaped only
        # after three beats of 1 s)
        assert on_victim not in socket_processes(cluster, alice.device_id)

        assert first_socket.close_code == CLOSE_SERVICE_RESTART
        assert [e.reconnect for e in alice_phone.of(Connected)] == [False, True]
        await bob_phone.wait_for(TextMessage, len(texts), within=30)
        await asyncio.sleep(1.0)  # a copy delivered twice would show by now
        shown = [e.text for e in bob_phone.of(TextMessage)]
        assert sorted(shown) == texts  # every message once, none lost, none twice
        where = list(answered_on.values())
        print(
            f"accepted by the victim {where.count('victim')}, after the reconnect "
            f"(sent again, or sent meanwhile) {where.count('survivor')}"
        )
        assert where.count("victim") >= 30 and where.count("survivor") > 0
        assert balancer.routed[-1] == survivor.port  # Alice's socket after the reconnect
    finally:
        await alice_phone.close()
        await bob_phone.close()
        if stopping is not None:
            await asyncio.gather(stopping, return_exceptions=True)
        victim.start()
