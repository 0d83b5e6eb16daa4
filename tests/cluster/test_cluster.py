"""The scale-out setup for real: PostgreSQL, Redis and two Daphne nodes; devices on
different nodes talk, log-outs cross nodes (and race pushes without a server exception), a
node killed under load loses nothing and leaves no device "active now", and the replay memory,
the prekey fair share and the compare-and-swap of the state log and of group logs hold on
PostgreSQL across nodes, and a file uploaded through one node is fetched through the other."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import redis

from client.http import HttpTransport
from protocol import groups
from protocol.attachments import blob_size
from protocol.encoding import b64u_encode
from protocol.frames import CLOSE_REVOKED
from tests.messaging.test_socket_lifecycle import eventually, race_a_log_out, server_errors
from tests.support.actors import CompanionActor, PrimaryActor, link, ok
from tests.support.cluster import Cluster, start_cluster
from tests.support.softauthn import SoftAuthenticator
from tests.support.wire import DeviceSocket


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("cluster")
    os.chmod(workdir, 0o755)
    started = start_cluster(
        workdir,
        nodes=2,
        durable=False,
        extra_env={
            "PARLEY_SEND_RATE": "100000",
            "PARLEY_SEND_BURST": "100000",
            # a node silent for 3 s is dead, so the kill test need not wait 30 s
            "PARLEY_HEARTBEAT_SECONDS": "1",
            # attachments in a store every node reaches (docs/operations.md)
            "PARLEY_ATTACHMENT_DIR": str(workdir / "attachments"),
        },
    )
    yield started
    started.stop()


def account(cluster: Cluster, username: str) -> tuple[PrimaryActor, HttpTransport]:
    node = cluster.nodes[0]
    transport = HttpTransport(node.url)
    return PrimaryActor(
        transport, SoftAuthenticator(origin=node.url), username=username
    ).sign_up(), transport


def socket_on(cluster: Cluster, node: int, transport: HttpTransport) -> DeviceSocket:
    target = cluster.nodes[node]
    # The session lives in PostgreSQL, so the cookie from node 0 is valid on every node.
    return DeviceSocket(ws_url=target.ws_url, origin=target.url, cookie=transport.cookie_header())


async def test_devices_on_different_nodes_exchange_messages(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice1")
    bob, bob_http = await asyncio.to_thread(account, cluster, "bob1")
    to_bob = await socket_on(cluster, 0, alice_http).connect()
    at_bob = await socket_on(cluster, 1, bob_http).connect()
    await to_bob.send("hello", "bob1", {bob.device_id: b"ciphertext for bob"})
    assert (await to_bob.next("accepted"))["id"] == "hello"
    delivered = await at_bob.next("deliver")
    assert [e["id"] for e in delivered["envelopes"]] == ["hello"]
    await at_bob.send("hi back", "alice1", {alice.device_id: b"ciphertext for alice"})
    await at_bob.next("accepted")
    assert [e["id"] for e in (await to_bob.next("deliver"))["envelopes"]] == ["hi back"]
    await to_bob.close()
    await at_bob.close()


def publishes(cluster: Cluster) -> int:
    stats = redis.Redis.from_url(cluster.redis.url).info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


async def settled(socket: DeviceSocket) -> DeviceSocket:
    """Frames are handled in order: the pong comes once the socket's connect has run (its row
    written, its device's queue read)."""
    await socket.send_frame({"type": "ping", "id": "settled"})
    await socket.next("pong")
    return socket


async def test_a_doorbell_goes_through_redis_only_to_a_socket_on_another_node(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice_bell")
    bob, bob_http = await asyncio.to_thread(account, cluster, "bob_bell")
    alice_socket = await socket_on(cluster, 0, alice_http).connect()
    bob_socket = await settled(await socket_on(cluster, 0, bob_http).connect())
    before = publishes(cluster)
    await alice_socket.send("same node", "bob_bell", {bob.device_id: b"for bob"})
    await alice_socket.next("accepted")
    assert [e["id"] for e in (await bob_socket.next("deliver"))["envelopes"]] == ["same node"]
    assert publishes(cluster) == before  # rung on the node itself
    await bob_socket.close()
    bob_socket = await settled(await socket_on(cluster, 1, bob_http).connect())
    before = publishes(cluster)
    await alice_socket.send("other node", "bob_bell", {bob.device_id: b"for bob"})
    await alice_socket.next("accepted")
    assert [e["id"] for e in (await bob_socket.next("deliver"))["envelopes"]] == ["other node"]
    assert publishes(cluster) == before + 1
    await alice_socket.close()
    await bob_socket.close()


async def test_a_log_out_on_one_node_closes_the_socket_on_the_other(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice2")
    laptop_http = HttpTransport(cluster.nodes[0].url)
    laptop = await asyncio.to_thread(link, alice, CompanionActor(laptop_http))
    laptop_socket = await socket_on(cluster, 1, laptop_http).connect()
    await asyncio.to_thread(alice.revoke, laptop.device_id)
    assert await laptop_socket.next("revoked") == {
        "type": "revoked",
        "v": 1,
        "reason": "removed_by_primary",
    }
    assert (await laptop_socket.next("closed"))["code"] == CLOSE_REVOKED
    await laptop_socket.close()


async def test_a_node_killed_under_load_loses_no_accepted_envelope(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice3")
    bob, bob_http = await asyncio.to_thread(account, cluster, "bob3")
    victim = cluster.nodes[1]
    accepted: set[str] = set()
    received: list[str] = []

    async def receiver() -> None:
        """Bob's device sits on the victim node, then reconnects to the survivor and drains."""
        sock = await socket_on(cluster, 1, bob_http).connect()
        await sock.next("closed", within=30)
        received.extend(e["id"] for e in sock.received)
        survivor = await socket_on(cluster, 0, bob_http).connect()
        while len(set(received) | {e["id"] for e in survivor.received}) < 200:
            await survivor.next("deliver", within=10)
        received.extend(e["id"] for e in survivor.received)
        await survivor.close()

    async def sender() -> None:
        """Alice sends 200 envelopes through the victim node; unanswered ones are resent to
        the survivor with the same id (idempotent at the server)."""
        sock = await socket_on(cluster, 1, alice_http).connect()
        pending = [f"m{n:03d}" for n in range(200)]
        for n, envelope_id in enumerate(pending):
            if n == 80:
                victim.stop(kill=True)
            try:
                await sock.send(envelope_id, "bob3", {bob.device_id: envelope_id.encode()})
                frame = await sock.next("accepted", "closed", within=5)
                if frame["type"] == "accepted":
                    accepted.add(envelope_id)
                    continue
            except Exception:
                pass
            break
        survivor = await socket_on(cluster, 0, alice_http).connect()
        for envelope_id in pending:
            if envelope_id not in accepted:
                await survivor.send(envelope_id, "bob3", {bob.device_id: envelope_id.encode()})
                assert (await survivor.next("accepted", within=5))["id"] == envelope_id
                accepted.add(envelope_id)
        await survivor.close()

    try:
        await asyncio.gather(receiver(), sender())
    finally:
        victim.start()
    unique = list(dict.fromkeys(received))
    print(
        f"accepted {len(accepted)}, delivered {len(received)} ({len(unique)} after de-duplication)"
    )
    assert set(unique) == accepted and len(accepted) == 200


async def test_a_resend_after_the_ack_stores_nothing_on_either_node(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice4")
    bob, bob_http = await asyncio.to_thread(account, cluster, "bob4")
    first = await socket_on(cluster, 0, alice_http).connect()
    inbox = await socket_on(cluster, 1, bob_http).connect()
    await first.send("once", "bob4", {bob.device_id: b"ciphertext"})
    assert (await first.next("accepted"))["id"] == "once"
    assert [e["id"] for e in (await inbox.next("deliver"))["envelopes"]] == ["once"]
    await inbox.send_frame({"type": "ping", "id": "acked"})  # the ack went before this ping
    await inbox.next("pong")
    second = await socket_on(cluster, 1, alice_http).connect()
    for socket in (first, second):
        await socket.send("once", "bob4", {bob.device_id: b"ciphertext"})
        assert await socket.next("accepted", "error") == {"type": "accepted", "v": 1, "id": "once"}
    with pytest.raises(TimeoutError):
        await inbox.next("deliver", within=1.0)
    for socket in (first, second, inbox):
        await socket.close()


def test_concurrent_fetches_from_one_account_on_both_nodes_take_one_prekey(cluster):
    alice, alice_http = account(cluster, "alice9")
    mallory, mallory_http = account(cluster, "mallory9")
    # the session lives in PostgreSQL: the same cookies work on the other node
    other = HttpTransport(cluster.nodes[1].url)
    other.import_cookies(mallory_http.export_cookies())

    def fetch(n: int) -> object:
        transport = mallory_http if n % 2 else other
        status, body = transport.post("/api/accounts/alice9/bundles", {})
        assert status == 200, body
        bundle = body["bundles"][0]
        return bundle["one_time_prekey"], bundle["kem_prekey"]["last_resort"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(fetch, range(8)))
    handed = [otp for otp, _ in answers if otp is not None]
    assert len(handed) == 1
    # and one one-time KEM prekey (27.6), the last-resort one for the seven others
    assert sorted(last for _, last in answers) == [False] + [True] * 7
    assert alice_http.get("/api/prekeys") == (
        200,
        {"one_time_prekeys": 9, "kem_prekeys": 9, "last_resort_kem_prekey": 1},
    )


async def test_a_log_out_on_one_node_racing_pushes_on_the_other_raises_nothing(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice5")
    bob, bob_http = await asyncio.to_thread(account, cluster, "bob5")
    laptop_http = HttpTransport(cluster.nodes[0].url)
    laptop = await asyncio.to_thread(link, alice, CompanionActor(laptop_http))
    since = [len(node.log()) for node in cluster.nodes]
    await race_a_log_out(
        alice=alice,
        laptop=laptop,
        at_laptop=[socket_on(cluster, n, laptop_http) for n in (1, 1, 0)],
        bob=bob,
        from_bob=socket_on(cluster, 0, bob_http),
    )
    await eventually(lambda: socket_rows(cluster, laptop.device_id) == 0, what="rows released")
    for node, offset in zip(cluster.nodes, since, strict=True):
        assert await server_errors(node, offset) == []


def socket_rows(cluster: Cluster, device_id: str) -> int:
    with psycopg.connect(cluster.postgres.url) as db:
        return db.execute(
            "SELECT count(*) FROM devices_devicesocket WHERE device_id = %s", (device_id,)
        ).fetchone()[0]


def active_now(transport: HttpTransport, device_id: str) -> bool:
    devices = ok(transport.get("/api/devices"))["devices"]
    return next(d["active_now"] for d in devices if d["device_id"] == device_id)


async def test_a_killed_node_leaves_no_device_active_now_and_its_rows_are_reaped(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice6")
    laptop_http = HttpTransport(cluster.nodes[0].url)
    laptop = await asyncio.to_thread(link, alice, CompanionActor(laptop_http))
    victim = cluster.nodes[1]
    on_survivor = await socket_on(cluster, 0, alice_http).connect()
    on_victim = await socket_on(cluster, 1, laptop_http).connect()
    await eventually(lambda: active_now(alice_http, laptop.device_id), what="laptop active now")
    victim.stop(kill=True)
    try:
        await eventually(
            lambda: not active_now(alice_http, laptop.device_id),
            within=20,
            what="the laptop on the killed node no longer active now",
        )
        await eventually(
            lambda: socket_rows(cluster, laptop.device_id) == 0,
            within=20,
            what="the killed node's socket row reaped",
        )
        assert active_now(alice_http, alice.device_id)  # the survivor's socket still counts
    finally:
        victim.start()
    await on_victim.close()
    await on_survivor.close()


# ------------------------------------------------------------ the state log on PostgreSQL


def state_write(transport: HttpTransport, version: int, blob: bytes, kind: str = "patch"):
    return transport.post(
        "/api/state", {"version": version, "kind": kind, "blob": b64u_encode(blob)}
    )


def on_node(cluster: Cluster, node: int, transport: HttpTransport) -> HttpTransport:
    """The same device's session through another node (the session lives in PostgreSQL)."""
    other = HttpTransport(cluster.nodes[node].url)
    other.import_cookies(transport.export_cookies())
    return other


def test_devices_on_both_nodes_writing_at_the_same_version_get_one_201_and_one_409(cluster):
    alice, alice_http = account(cluster, "alice10")
    laptop = link(alice, CompanionActor(HttpTransport(cluster.nodes[0].url)))
    writers = [alice_http, on_node(cluster, 1, laptop.transport)]
    rounds = 20
    barrier = threading.Barrier(len(writers))

    def write_each_round(transport: HttpTransport) -> list[tuple[int, dict]]:
        answers = []
        for n in range(1, rounds + 1):
            barrier.wait(timeout=30)
            answers.append(state_write(transport, n, transport.origin.encode()))
        return answers

    with ThreadPoolExecutor(len(writers)) as pool:
        per_device = list(pool.map(write_each_round, writers))
    for n, answers in enumerate(zip(*per_device, strict=True), start=1):
        assert sorted(status for status, _ in answers) == [201, 409], (n, answers)
        refused = next(body for status, body in answers if status == 409)
        assert refused["error"] == {
            "code": "state_version_conflict",
            "message": refused["error"]["message"],
            "data": {"version": n},
        }
    page = ok(writers[1].get("/api/state"))
    assert [e["version"] for e in page["entries"]] == list(range(1, rounds + 1))


def state_read(transport: HttpTransport, after: int) -> dict:
    """A page of the state log, read past the client's 1 MiB answer limit (a page may hold
    4 MiB of blobs, docs/protocol.md 19.3)."""
    request = urllib.request.Request(
        f"{transport.origin}/api/state?after={after}", headers={"Cookie": transport.cookie_header()}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_the_state_log_pages_and_compacts_on_postgresql(cluster):
    alice, alice_http = account(cluster, "alice11")
    with psycopg.connect(cluster.postgres.url) as db:
        (user_id,) = db.execute(
            "SELECT id FROM accounts_user WHERE username = %s", ("alice11",)
        ).fetchone()
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO messaging_stateentry (user_id, version, kind, blob, author_device_id,"
                " created_at) VALUES (%s, %s, 'patch', %s, 'seeded', now())",
                [(user_id, n, bytes(64 * 1024) if n <= 70 else b"x") for n in range(1, 601)],
            )
    first = state_read(alice_http, 0)
    assert (len(first["entries"]), first["more"], first["version"]) == (64, True, 600)  # 4 MiB
    second = state_read(alice_http, 70)
    assert [e["version"] for e in second["entries"]] == list(range(71, 571))  # 500 entries
    assert second["more"]
    assert state_write(alice_http, 601, b"whole state", "snapshot") == (201, {"version": 601})
    assert state_write(alice_http, 602, b"after it") == (201, {"version": 602})
    for after in (0, 599):
        page = state_read(alice_http, after)
        assert [(e["version"], e["kind"]) for e in page["entries"]] == [
            (601, "snapshot"),
            (602, "patch"),
        ]
    with psycopg.connect(cluster.postgres.url) as db:
        assert db.execute(
            "SELECT count(*) FROM messaging_stateentry WHERE user_id = %s", (user_id,)
        ).fetchone() == (2,)


async def test_a_state_write_on_one_node_rings_the_other_devices_on_the_other(cluster):
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice12")
    laptop = await asyncio.to_thread(
        link, alice, CompanionActor(HttpTransport(cluster.nodes[0].url))
    )
    at_laptop = await socket_on(cluster, 1, laptop.transport).connect()
    at_alice = await socket_on(cluster, 1, alice_http).connect()
    assert await asyncio.to_thread(state_write, alice_http, 1, b"patch") == (201, {"version": 1})
    assert await at_laptop.next("state_changed") == {"type": "state_changed", "v": 1, "version": 1}
    with pytest.raises(TimeoutError):  # the writer's own socket is not rung
        await at_alice.next("state_changed", within=1.0)
    for socket in (at_laptop, at_alice):
        await socket.close()


# ------------------------------------------------------------ group logs on PostgreSQL


def group_write(transport: HttpTransport, group_id: bytes, seq: int, wire: bytes):
    return transport.post(
        f"/api/groups/{b64u_encode(group_id)}/entries", {"seq": seq, "entry": b64u_encode(wire)}
    )


def group_entry(actor: PrimaryActor, group_id: bytes, seq: int, previous: bytes, **fields):
    return groups.sign_entry(
        group_id=group_id,
        seq=seq,
        previous=previous,
        actor=actor.username,
        identity=fields.pop("identity", actor.keys.identity),
        timestamp=0,
        **fields,
    )


def test_devices_on_both_nodes_writing_one_group_seq_get_one_201_and_one_409(cluster):
    alice, alice_http = account(cluster, "alice13")
    laptop = link(alice, CompanionActor(HttpTransport(cluster.nodes[0].url)))
    writers = [
        (alice_http, alice.keys.identity),
        (on_node(cluster, 1, laptop.transport), laptop.keys.identity),
    ]
    group_id, head, rounds = bytes(range(16)), groups.ZERO_HASH, 10
    for seq in range(rounds):
        signed = [
            group_entry(
                alice,
                group_id,
                seq,
                head,
                identity=identity,
                kind=groups.EntryKind.CREATE if seq == 0 else groups.EntryKind.RENAME,
                accounts=["alice13"] if seq == 0 else [],
                name=f"{seq} by {transport.origin}",
            )
            for transport, identity in writers
        ]
        barrier = threading.Barrier(len(writers))

        def write(
            i: int, seq: int = seq, signed: list[bytes] = signed, barrier=barrier
        ) -> tuple[int, dict]:
            barrier.wait(timeout=30)
            return group_write(writers[i][0], group_id, seq, signed[i])

        with ThreadPoolExecutor(len(writers)) as pool:
            answers = list(pool.map(write, range(len(writers))))
        assert sorted(status for status, _ in answers) == [201, 409], (seq, answers)
        refused = next(body for status, body in answers if status == 409)
        assert (refused["error"]["code"], refused["error"]["data"]) == (
            "group_head_moved",
            {"head": seq},
        )
        won = signed[[status for status, _ in answers].index(201)]
        head = groups.entry_hash(won)
    page = ok(writers[1][0].get(f"/api/groups/{b64u_encode(group_id)}/entries"))
    assert [e["seq"] for e in page["entries"]] == list(range(rounds))
    assert page["head"] == rounds - 1


async def test_a_group_entry_on_one_node_rings_a_member_on_the_other(cluster):
    """On PostgreSQL, with a group name the database's text types could not hold."""
    alice, alice_http = await asyncio.to_thread(account, cluster, "alice14")
    bob, bob_http = await asyncio.to_thread(account, cluster, "bobby14")
    at_bob = await socket_on(cluster, 1, bob_http).connect()
    group_id = bytes(range(1, 17))
    create = group_entry(
        alice,
        group_id,
        0,
        groups.ZERO_HASH,
        kind=groups.EntryKind.CREATE,
        accounts=["alice14", "bobby14"],
        name="across\x00nodes",  # U+0000, which PostgreSQL's text and jsonb refuse
    )
    assert await asyncio.to_thread(group_write, alice_http, group_id, 0, create) == (
        201,
        {"seq": 0},
    )
    assert await at_bob.next("group_changed") == {
        "type": "group_changed",
        "v": 1,
        "group_id": b64u_encode(group_id),
        "seq": 0,
    }
    page = await asyncio.to_thread(bob_http.get, f"/api/groups/{b64u_encode(group_id)}/entries")
    assert page[1]["entries"] == [{"seq": 0, "entry": b64u_encode(create)}]
    await at_bob.close()


async def test_a_group_message_is_stored_once_on_postgresql_and_freed_by_the_last_ack(cluster):
    """docs/protocol.md 25.9 on PostgreSQL: a group send on one node reaches members on both
    nodes from one stored message, which the last ack deletes."""
    from protocol.rng import system_rng
    from protocol.senderkeys import encrypt_group, new_sender_key

    people = [await asyncio.to_thread(account, cluster, n) for n in ("alice15", "bob15", "carol15")]
    (alice, alice_http), (bob, bob_http), (carol, carol_http) = people
    group_id = bytes(range(2, 18))
    create = group_entry(
        alice,
        group_id,
        0,
        groups.ZERO_HASH,
        kind=groups.EntryKind.CREATE,
        accounts=["alice15", "bob15", "carol15"],
        name="Across",
    )
    assert (await asyncio.to_thread(group_write, alice_http, group_id, 0, create))[0] == 201
    receivers = [socket_on(cluster, 1, bob_http), socket_on(cluster, 0, carol_http)]
    for receiver in receivers:
        receiver.auto_ack = False  # the test acks, after counting what is stored
    at_bob, at_carol = [await settled(await r.connect()) for r in receivers]
    sender = await socket_on(cluster, 0, alice_http).connect()
    key = new_sender_key(system_rng, group_id=group_id, sender="alice15", device=alice.device_id)
    head = groups.entry_hash(create)
    _, message = encrypt_group(key, b"x" * 64, head_seq=0, head_hash=head, rng=system_rng)
    await sender.send_frame(
        {
            "type": "group_send",
            "id": "g1",
            "group_id": b64u_encode(group_id),
            "message": b64u_encode(message),
            "targets": [bob.device_id, carol.device_id],
            "keys": {bob.device_id: b64u_encode(b"bob's copy of the key")},
        }
    )
    assert (await sender.next("accepted"))["id"] == "g1"
    with psycopg.connect(cluster.postgres.url) as db:
        assert db.execute("SELECT count(*) FROM messaging_groupmessage").fetchone() == (1,)
    for socket in (at_bob, at_carol):
        [envelope] = (await socket.next("deliver"))["envelopes"]
        assert envelope["group"] == b64u_encode(message)
        await socket.send_frame({"type": "ack", "seqs": [envelope["seq"]]})
        await settled(socket)
    with psycopg.connect(cluster.postgres.url) as db:
        assert db.execute("SELECT count(*) FROM messaging_groupmessage").fetchone() == (0,)
    for socket in (sender, at_bob, at_carol):
        await socket.close()


async def test_a_file_uploaded_through_one_node_is_fetched_through_the_other(cluster):
    """The blob's pieces go to node 0, the send that grants it too; bob's device fetches it
    from node 1, and once it has, neither node serves it any more (docs/protocol.md 19.5)."""
    alice, alice_http = await asyncio.to_thread(account, cluster, "alicefiles")
    bob, bob_http = await asyncio.to_thread(account, cluster, "bobfiles")
    blob = os.urandom(blob_size(1_500_000))
    status, opened = await asyncio.to_thread(
        alice_http.post, "/api/attachments", {"size": len(blob)}
    )
    assert status == 201, opened
    step = opened["piece_bytes"]
    for index in range(opened["pieces"]):
        piece = blob[index * step : (index + 1) * step]
        path = f"/api/attachments/{opened['blob_id']}/pieces/{index}"
        ok(await asyncio.to_thread(alice_http.put_bytes, path, piece))
    to_bob = await socket_on(cluster, 0, alice_http).connect()
    await to_bob.send_frame(
        {
            "type": "send",
            "v": 1,
            "id": "a file",
            "recipient": "bobfiles",
            "targets": {bob.device_id: b64u_encode(b"the pointer, encrypted")},
            "attachments": [opened["blob_id"]],
        }
    )
    assert (await to_bob.next("accepted", "error"))["type"] == "accepted"
    await to_bob.close()

    bob_on_1 = HttpTransport(cluster.nodes[1].url)
    bob_on_1.import_cookies(bob_http.export_cookies())
    fetched = bytearray()
    status, error = await asyncio.to_thread(
        bob_on_1.download, f"/api/attachments/{opened['blob_id']}", fetched.extend
    )
    assert (status, error, bytes(fetched) == blob) == (200, None, True)
    said = await asyncio.to_thread(
        bob_on_1.post, f"/api/attachments/{opened['blob_id']}/fetched", {}
    )
    assert said == (200, {"fetched": True})
    again = await asyncio.to_thread(
        bob_http.download, f"/api/attachments/{opened['blob_id']}", fetched.extend
    )
    assert again[0] == 404  # fetched by every device it was granted to: deleted
