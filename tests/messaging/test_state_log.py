"""The account's state log (docs/protocol.md section 19.3): opaque entries written by the
account's own devices with compare-and-swap on the version, compacted by snapshots, read in
pages, limited in size, count and rate, with a doorbell to the account's other sockets."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone

from accounts.models import User
from config.asgi import application
from messaging.models import StateEntry
from messaging.schemas import (
    STATE_MAX_PATCHES,
    STATE_PAGE_BYTES,
    STATE_PAGE_ENTRIES,
    STATE_PATCH_MAX_BYTES,
    STATE_SNAPSHOT_MAX_BYTES,
)
from protocol.encoding import b64u_decode, b64u_encode
from tests.support.actors import CompanionActor, DjangoTransport, PrimaryActor, link
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"


def make_primary(username: str = "alice") -> PrimaryActor:
    return PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username=username
    ).sign_up()


def write(transport: DjangoTransport, version: object, blob: bytes, kind: str = "patch"):
    return post(transport, {"version": version, "kind": kind, "blob": b64u_encode(blob)})


def post(transport: DjangoTransport, body: dict) -> tuple[int, dict]:
    response = transport.client.post(
        "/api/state", json.dumps(body), content_type="application/json"
    )
    return response.status_code, response.json()


def read(transport: DjangoTransport, after: int | None = None) -> dict:
    response = transport.client.get("/api/state" if after is None else f"/api/state?after={after}")
    assert response.status_code == 200, response.json()
    return response.json()


def listed(page: dict) -> list[tuple[int, str]]:
    return [(e["version"], e["kind"]) for e in page["entries"]]


def seed(username: str, entries: list[tuple[int, str, bytes]]) -> None:
    """Entries put straight into the table: a long log without a thousand requests."""
    user = User.objects.get(username=username)
    StateEntry.objects.bulk_create(
        StateEntry(
            user=user,
            version=n,
            kind=kind,
            blob=blob,
            author_device_id="seeded",
            created_at=timezone.now(),
        )
        for n, kind, blob in entries
    )


def stored() -> list[tuple[str, int, str]]:
    return list(
        StateEntry.objects.order_by("user_id", "version").values_list(
            "user__username", "version", "kind"
        )
    )


@pytest.mark.django_db
def test_writes_at_the_next_version_are_read_back_in_order_with_their_authors():
    alice = make_primary()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    assert read(laptop.transport) == {"version": 0, "entries": [], "more": False}
    assert write(alice.transport, 1, b"first") == (201, {"version": 1})
    assert write(laptop.transport, 2, b"second") == (201, {"version": 2})
    page = read(laptop.transport)
    assert page == {
        "version": 2,
        "entries": [
            {
                "version": 1,
                "kind": "patch",
                "blob": b64u_encode(b"first"),
                "device": alice.device_id,
            },
            {
                "version": 2,
                "kind": "patch",
                "blob": b64u_encode(b"second"),
                "device": laptop.device_id,
            },
        ],
        "more": False,
    }
    assert listed(read(alice.transport, after=1)) == [(2, "patch")]
    assert read(alice.transport, after=2) == {"version": 2, "entries": [], "more": False}


@pytest.mark.django_db
@pytest.mark.parametrize("version", [1, 2, 4, 100])
def test_a_write_not_at_the_next_version_is_a_409_with_the_current_one_and_stores_nothing(version):
    alice = make_primary()
    assert write(alice.transport, 1, b"a")[0] == 201
    assert write(alice.transport, 2, b"b")[0] == 201
    before = stored()
    status, body = write(alice.transport, version, b"late", kind="snapshot")
    assert (status, body["error"]["code"], body["error"]["data"]) == (
        409,
        "state_version_conflict",
        {"version": 2},
    )
    assert stored() == before
    assert write(alice.transport, 3, b"rebased")[0] == 201


@pytest.mark.django_db
def test_a_snapshot_drops_what_it_stands_for_and_a_device_behind_it_starts_there():
    alice = make_primary()
    for n in (1, 2, 3):
        assert write(alice.transport, n, b"p%d" % n)[0] == 201
    assert write(alice.transport, 4, b"whole state", kind="snapshot")[0] == 201
    assert write(alice.transport, 5, b"p5")[0] == 201
    assert stored() == [("alice", 4, "snapshot"), ("alice", 5, "patch")]
    for after in (0, 2, 3):  # a new device, and devices that missed patches it compacted
        assert read(alice.transport, after=after)["entries"][0] == {
            "version": 4,
            "kind": "snapshot",
            "blob": b64u_encode(b"whole state"),
            "device": alice.device_id,
        }
        assert listed(read(alice.transport, after=after)) == [(4, "snapshot"), (5, "patch")]
    assert listed(read(alice.transport, after=4)) == [(5, "patch")]
    assert read(alice.transport, after=5)["entries"] == []


@pytest.mark.django_db
def test_a_page_holds_at_most_500_entries_and_more_says_to_ask_again():
    alice = make_primary()
    seed("alice", [(n, "patch", b"x") for n in range(1, STATE_PAGE_ENTRIES + 101)])
    first = read(alice.transport)
    assert (first["version"], len(first["entries"]), first["more"]) == (600, 500, True)
    assert [e["version"] for e in first["entries"]] == list(range(1, 501))
    second = read(alice.transport, after=500)
    assert ([e["version"] for e in second["entries"]], second["more"]) == (
        list(range(501, 601)),
        False,
    )


@pytest.mark.django_db
def test_a_page_holds_at_most_4_mib_of_blobs_but_always_its_first_entry():
    alice = make_primary()
    big = bytes(STATE_PATCH_MAX_BYTES)
    seed("alice", [(n, "patch", big) for n in range(1, 71)])
    first = read(alice.transport)
    fits = STATE_PAGE_BYTES // STATE_PATCH_MAX_BYTES  # 64 patches of 64 KiB: exactly 4 MiB
    assert (len(first["entries"]), first["more"]) == (fits, True)
    assert sum(len(b64u_decode(e["blob"])) for e in first["entries"]) == STATE_PAGE_BYTES
    assert listed(read(alice.transport, after=fits)) == [(n, "patch") for n in range(fits + 1, 71)]

    snapshot = bytes(range(256)) * (STATE_SNAPSHOT_MAX_BYTES // 256)
    assert write(alice.transport, 71, snapshot, kind="snapshot")[0] == 201
    assert write(alice.transport, 72, b"after")[0] == 201
    alone = read(alice.transport)
    assert (listed(alone), alone["more"]) == ([(71, "snapshot")], True)
    assert b64u_decode(alone["entries"][0]["blob"]) == snapshot
    assert listed(read(alice.transport, after=71)) == [(72, "patch")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"version": 1, "kind": "patch", "blob": b64u_encode(bytes(STATE_PATCH_MAX_BYTES + 1))},
            413,
            "too_large",
        ),
        (
            {
                "version": 1,
                "kind": "snapshot",
                "blob": b64u_encode(bytes(STATE_SNAPSHOT_MAX_BYTES + 1)),
            },
            413,
            "too_large",
        ),
        ({"version": 1, "kind": "patch", "blob": ""}, 400, "invalid_input"),
        ({"version": 1, "kind": "patch", "blob": "AB=="}, 400, "invalid_input"),
        ({"version": 1, "kind": "patch", "blob": "A"}, 400, "invalid_input"),
        ({"version": 1, "kind": "patch"}, 400, "invalid_input"),
        ({"version": 1, "kind": "diff", "blob": "AAAA"}, 400, "invalid_input"),
        ({"version": 1, "kind": ["patch"], "blob": "AAAA"}, 400, "invalid_input"),
        ({"version": 1, "kind": {"patch": 1}, "blob": "AAAA"}, 400, "invalid_input"),
        ({"version": 1, "kind": "patch", "blob": ["AAAA"]}, 400, "invalid_input"),
        ({"version": 1, "blob": "AAAA"}, 400, "invalid_input"),
        ({"version": 0, "kind": "patch", "blob": "AAAA"}, 400, "invalid_input"),
        ({"version": True, "kind": "patch", "blob": "AAAA"}, 400, "invalid_input"),
        ({"version": "1", "kind": "patch", "blob": "AAAA"}, 400, "invalid_input"),
        ({"kind": "patch", "blob": "AAAA"}, 400, "invalid_input"),
    ],
    ids=lambda value: str(value)[:60],
)
def test_a_malformed_or_oversized_write_is_a_clear_4xx_and_stores_nothing(body, status, code):
    alice = make_primary()
    answer = post(alice.transport, body)
    assert (answer[0], answer[1]["error"]["code"]) == (status, code)
    assert stored() == []


@pytest.mark.django_db
def test_the_largest_blobs_are_taken():
    alice = make_primary()
    assert write(alice.transport, 1, bytes(STATE_PATCH_MAX_BYTES))[0] == 201
    assert write(alice.transport, 2, bytes(STATE_SNAPSHOT_MAX_BYTES), kind="snapshot")[0] == 201


@pytest.mark.django_db
def test_a_body_over_the_largest_snapshot_is_refused_before_it_is_read():
    alice = make_primary()
    response = alice.transport.client.post(
        "/api/state", b"x" * (STATE_SNAPSHOT_MAX_BYTES * 2), content_type="application/json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "too_large")


@pytest.mark.django_db
@pytest.mark.parametrize("after", ["-1", "abc", "1.5", "9" * 17, "٣", ""])
def test_a_malformed_after_is_a_400_naming_it(after):
    alice = make_primary()
    response = alice.transport.client.get(f"/api/state?after={after}")
    assert response.status_code == 400
    assert response.json()["error"]["data"] == {"field": "after"}


@pytest.mark.django_db
def test_past_1000_patches_a_snapshot_is_needed_and_then_patches_go_on():
    alice = make_primary()
    seed("alice", [(n, "patch", b"x") for n in range(1, STATE_MAX_PATCHES + 1)])
    status, body = write(alice.transport, STATE_MAX_PATCHES + 1, b"one more")
    assert (status, body["error"]["code"], body["error"]["data"]) == (
        409,
        "state_compaction_needed",
        {"version": STATE_MAX_PATCHES, "max_patches": STATE_MAX_PATCHES},
    )
    assert write(alice.transport, STATE_MAX_PATCHES + 1, b"state", kind="snapshot")[0] == 201
    assert StateEntry.objects.count() == 1
    assert write(alice.transport, STATE_MAX_PATCHES + 2, b"one more")[0] == 201


@pytest.mark.django_db
def test_writes_are_rate_limited_per_device(settings):
    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "state": (3, 60)}
    alice = make_primary()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    for n in (1, 2, 3):
        assert write(alice.transport, n, b"p")[0] == 201
    status, body = write(alice.transport, 4, b"p")
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert body["error"]["data"]["retry_after_ms"] > 0
    assert listed(read(alice.transport)) == [(1, "patch"), (2, "patch"), (3, "patch")]
    assert write(laptop.transport, 4, b"p")[0] == 201  # the other device has its own budget


@pytest.mark.django_db
def test_another_account_neither_sees_nor_changes_this_log():
    alice = make_primary()
    bob = make_primary("bobby")
    assert write(alice.transport, 1, b"alice's")[0] == 201
    assert read(bob.transport) == {"version": 0, "entries": [], "more": False}
    assert write(bob.transport, 1, b"bob's")[0] == 201  # bob's own log, at his own version
    assert write(bob.transport, 3, b"x")[1]["error"]["data"] == {"version": 1}
    assert [e["blob"] for e in read(alice.transport)["entries"]] == [b64u_encode(b"alice's")]
    assert stored() == [("alice", 1, "patch"), ("bobby", 1, "patch")]


@pytest.mark.django_db
def test_a_removed_device_is_refused_and_the_log_outlives_it():
    alice = make_primary()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    assert write(laptop.transport, 1, b"from the laptop")[0] == 201
    alice.revoke(laptop.device_id)
    for status, body in (read_raw(laptop.transport), write(laptop.transport, 2, b"x")):
        assert (status, body["error"]["code"]) == (401, "not_signed_in")
    assert [e["device"] for e in read(alice.transport)["entries"]] == [laptop.device_id]


def read_raw(transport: DjangoTransport) -> tuple[int, dict]:
    response = transport.client.get("/api/state")
    return response.status_code, response.json()


@pytest.mark.django_db(transaction=True)
def test_devices_writing_at_the_same_version_at_once_get_one_201_and_409s():
    """Real concurrent requests, one thread and database connection each, on SQLite."""
    alice = make_primary()
    devices = [alice, *(link(alice, CompanionActor(DjangoTransport())) for _ in range(2))]
    rounds = 15
    answers: list[list[tuple[int, dict]]] = [[] for _ in range(rounds)]
    barrier = threading.Barrier(len(devices))

    def device(actor) -> None:
        try:
            for n in range(rounds):
                barrier.wait(timeout=30)
                answers[n].append(write(actor.transport, n + 1, actor.device_id.encode()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=device, args=(actor,)) for actor in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for n, round_answers in enumerate(answers, start=1):
        statuses = sorted(status for status, _ in round_answers)
        assert statuses == [201, 409, 409], (n, round_answers)
        assert all(b["error"]["data"] == {"version": n} for s, b in round_answers if s == 409)
    page = read(alice.transport)
    assert [e["version"] for e in page["entries"]] == list(range(1, rounds + 1))


async def device_socket(transport: DjangoTransport) -> WebsocketCommunicator:
    cookie = "; ".join(f"{k}={v.value}" for k, v in transport.client.cookies.items())
    socket = WebsocketCommunicator(
        application,
        "/ws/device/",
        headers=[(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())],
    )
    assert (await socket.connect())[0]
    return socket


@pytest.mark.django_db(transaction=True)
async def test_a_write_rings_the_accounts_other_sockets_through_redis_not_the_writers(
    redis_channel_layer,
):
    alice = await sync_to_async(make_primary)()
    laptop = await sync_to_async(link)(alice, CompanionActor(DjangoTransport()))
    bob = await sync_to_async(make_primary)("bobby")
    at_alice, at_laptop, at_bob = [
        await device_socket(actor.transport) for actor in (alice, laptop, bob)
    ]
    assert (await sync_to_async(write)(laptop.transport, 1, b"p"))[0] == 201
    assert await at_alice.receive_json_from(timeout=5) == {
        "type": "state_changed",
        "v": 1,
        "version": 1,
    }
    assert (await sync_to_async(write)(alice.transport, 2, b"s", "snapshot"))[0] == 201
    assert await at_laptop.receive_json_from(timeout=5) == {
        "type": "state_changed",
        "v": 1,
        "version": 2,
    }
    assert (await sync_to_async(write)(alice.transport, 1, b"stale"))[0] == 409
    for socket in (at_alice, at_laptop, at_bob):
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
